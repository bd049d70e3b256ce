-- tools/busted.lua: runs busted inside the pacer host, so specs drive the real loop:
--   ./build/pacer tools/busted.lua [busted options] spec
require "busted.runner" ({standalone = false})
