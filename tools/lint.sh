#!/bin/sh
# tools/lint.sh: luacheck (.luacheckrc) over the Lua, and clang-format (.clang-format) as a
# check over the C. One line each: "lint <tool>: ok" or "lint <tool>: FAILED".
set -u
cd "$(dirname "$0")/.."
rc=0
if luacheck --no-color --formatter plain -q lualib spec scripts bench tools; then
  echo "lint luacheck: ok"
else
  echo "lint luacheck: FAILED"
  rc=1
fi
if clang-format --dry-run -Werror $(git ls-files 'runtime/*.[ch]' 'tests/*.[ch]' 'fuzz/*.[ch]'); then
  echo "lint clang-format: ok"
else
  echo "lint clang-format: FAILED (run: cmake --build build --target format)"
  rc=1
fi
exit $rc
