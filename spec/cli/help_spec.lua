-- spec/cli/help_spec.lua: `pacer --help`, README's "The command line" section, the
-- manual page (docs/pacer.1) and the bash completion name the same options, subcommands
-- and environment variables. Every list comes from the real text: README as written, and
-- the help of a real pacer process; nothing here copies the list.
local H = dofile("spec/support/helpers.lua")

-- The names a text mentions: {options = set, commands = set, env = set}.
-- options: -x / --word at a word start; commands: "pacer WORD [word]" at a line start
-- (only lines of `command_lines`, the usage lines); env: PACER_* names.
local function names(text, command_lines)
  local r = {options = {}, commands = {}, env = {}}
  for opt in (" " .. text):gmatch("[^%w%-](%-%-?%a[%w%-]*)") do r.options[opt] = true end
  for var in text:gmatch("PACER_[%u_]+") do r.env[var] = true end
  for line in (command_lines or text):gmatch("[^\n]+") do
    local rest = line:match("^%s*usage:%s+pacer%s+(.*)") or line:match("^%s*pacer%s+(.*)")
    local cmd = rest and rest:match("^(%l+)%f[%s%z]")
    if cmd then
      local sub = rest:match("^%l+%s+(%l+)%f[%s%z]")
      r.commands[sub and (cmd .. " " .. sub) or cmd] = true
    end
  end
  return r
end

local function sorted(set)
  local l = {}
  for k in pairs(set) do l[#l + 1] = k end
  table.sort(l)
  return l
end

-- The names of `a[kind]` missing from `b[kind]`, as a message; nil when none are.
local function missing(a, b, kind, a_name, b_name)
  local l = {}
  for _, k in ipairs(sorted(a[kind])) do
    if not b[kind][k] then l[#l + 1] = k end
  end
  if #l > 0 then return string.format("%s names %s missing from %s: %s", a_name, kind, b_name, table.concat(l, ", ")) end
end

-- Asserts that every name of a, of each kind, is in b.
local function all_in(a, b, a_name, b_name)
  local problems = {}
  for _, kind in ipairs{"options", "commands", "env"} do
    problems[#problems + 1] = missing(a, b, kind, a_name, b_name)
  end
  assert(#problems == 0, table.concat(problems, "\n"))
end

local function readme_section()
  local readme = assert(H.read_file("README.md"))
  local section = readme:match("\n## The command line\n(.-)\n## ")
  assert(section, "README has no '## The command line' section")
  local block = section:match("```\n(.-)\n```")
  assert(block, "README's command line section has no code block")
  return section, block
end

local function help()
  local r = H.run_pacer{"--help"}
  assert.are.equal(0, r.code, r.stderr)
  return r.stdout
end

local function has_groff()
  return os.execute("command -v groff >/dev/null 2>&1") == true
end

describe("pacer --help and README's command line section", function()
  it("name the same options, subcommands and environment variables", function()
    local section, block = readme_section()
    local readme, usage = names(section, block), names(help())
    assert.is_true(#sorted(readme.options) >= 10, "too few options found in README")
    assert.is_true(#sorted(readme.commands) >= 3, "too few subcommands found in README")
    local problems = {}
    for _, kind in ipairs{"options", "commands", "env"} do
      problems[#problems + 1] = missing(readme, usage, kind, "README", "pacer --help")
      problems[#problems + 1] = missing(usage, readme, kind, "pacer --help", "README")
    end
    assert(#problems == 0, table.concat(problems, "\n"))
  end)

  it("--help covers every flag of `pacer mock --help` and `pacer report --help`", function()
    local usage = names(help())
    for _, sub in ipairs{"mock", "report"} do
      local r = H.run_pacer{sub, "--help"}
      assert.are.equal(0, r.code, r.stderr)
      local problem = missing(names(r.stdout), usage, "options", "pacer " .. sub .. " --help", "pacer --help")
      assert(problem == nil, problem)
    end
  end)

  it("the bash completion offers every option and subcommand of --help", function()
    local comp = assert(H.read_file("tools/completion/pacer.bash"))
    local words = {}
    for w in comp:gmatch("[%w%-_]+") do words[w] = true end
    local usage = names(help())
    local absent = {}
    for _, o in ipairs(sorted(usage.options)) do
      if not words[o] then absent[#absent + 1] = o end
    end
    for _, c in ipairs(sorted(usage.commands)) do
      for w in c:gmatch("%S+") do
        if not words[w] then absent[#absent + 1] = w end
      end
    end
    assert(#absent == 0, "absent from tools/completion/pacer.bash: " .. table.concat(absent, ", "))
  end)

  it("the bash completion completes subcommands, flags and --progress values in bash", function()
    local function complete(...)
      local words = {}
      for i, w in ipairs{...} do words[i] = H.q(w) end
      local out, code = H.sh(string.format(
        "bash -c '. tools/completion/pacer.bash; COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); _pacer; "
        .. "printf \"%%s\\n\" \"${COMPREPLY[@]}\"' _ %s", table.concat(words, " ")), 10)
      assert.are.equal(0, code, out)
      return out
    end
    H.contains(complete("pacer", "mo"), "mock\n")
    H.contains(complete("pacer", "mock", "--fail-"), "--fail-status\n")
    assert.are.equal("gcra\nfixed\n", complete("pacer", "mock", "--mode", ""))
    assert.are.equal("plain\n", complete("pacer", "--progress=p"))
    assert.are.equal("status\nexport\n", complete("pacer", "job", ""))
    H.contains(complete("pacer", "scripts/de"), "scripts/demo.lua\n")
  end)
end)

describe("docs/pacer.1", function()
  it("renders without a warning (groff -man -ww -z)", function()
    if not has_groff() then
      pending("groff is not installed")
      return
    end
    local out, code = H.sh("groff -man -ww -z docs/pacer.1 2>&1", 20)
    assert.are.equal(0, code, out)
    assert.are.equal("", out)
  end)

  it("has the sections of a manual page", function()
    local page = assert(H.read_file("docs/pacer.1"))
    for _, s in ipairs{"NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "ENVIRONMENT", "FILES",
      "EXAMPLES", "SEE ALSO"} do
      assert(page:find("\n.SH " .. s .. "\n", 1, true) or page:find('\n.SH "' .. s .. '"\n', 1, true),
        "no section " .. s)
    end
  end)

  it("names every option, subcommand and environment variable of --help", function()
    if not has_groff() then
      pending("groff is not installed")
      return
    end
    local text = H.sh("groff -man -Tascii -P-cbou docs/pacer.1 2>/dev/null", 20)
    local synopsis = text:match("\nSYNOPSIS\n(.-)\n%u")
    assert(synopsis, "no SYNOPSIS in the rendered page")
    local page, usage = names(text, synopsis), names(help())
    all_in(usage, page, "pacer --help", "pacer.1")
  end)
end)
