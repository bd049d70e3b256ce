-- luacheck configuration: lualib/ modules return tables and set no globals; specs run
-- under busted inside the pacer host, which provides the `pacer` global.
std = "lua54"
max_line_length = 120
globals = {}
read_globals = {"pacer"}
files["lualib/pacer/base/boot.lua"] = {globals = {"coroutine", "pacer", "os"}}
-- exact error texts in specs and SVG templates are kept whole on one line
files["spec/"] = {std = "+busted", max_line_length = 170}
files["bench/"] = {max_line_length = 160}
files["lualib/pacer/cli/report.lua"] = {max_line_length = 180}
files["bench/peers/node/"] = {only = {}}
exclude_files = {"bench/peers/node/node_modules/", "build*/"}
