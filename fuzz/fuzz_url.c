/* fuzz_url: lualib/pacer/base/url.lua (query, parse_query, add_query, join, redact) in an
 * embedded Lua 5.4; the module is loaded from the source tree (PACER_URL_LUA).
 * Input: text; lines are the fields f1, f2, ... and the whole input is used too.
 * Every call gets strings or tables of strings only, so any Lua error is a finding
 * (no documented type error can apply). Invariants (the Lua chunk below):
 *   parse_query returns string keys with a string or a list of >= 2 strings;
 *   parse_query(query(t)) == t for t built from field pairs (repeats become lists);
 *   add_query(u, q) keeps u's part before '#' as a prefix, its fragment as a suffix and
 *   contains q; join never fails;
 *   redact(scheme://user:pass@rest) never contains pass (user and pass as RFC 3986
 *   allows: no / ? # @, no ':' in user; pass without '*' and not occurring elsewhere);
 *   redact(https://h/p?<query(t)>) turns every value of a secret-named key into ***
 *   and leaves the other keys' values as they were.
 * Coverage: the system liblua is not instrumented, so a line hook feeds Lua line-to-line
 * edges (url.lua's and the harness's) to libFuzzer as extra counters. */
#include "fuzz.h"
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef PACER_URL_LUA
#error "PACER_URL_LUA must name lualib/pacer/base/url.lua"
#endif

/* starts at line 1001 so its lines do not share counters with url.lua's */
#define NL10  "\n\n\n\n\n\n\n\n\n\n"
#define NL100 NL10 NL10 NL10 NL10 NL10 NL10 NL10 NL10 NL10 NL10
static const char harness[] = NL100 NL100 NL100 NL100 NL100 NL100 NL100 NL100 NL100 NL100
    "local url, whole = ...\n"
    "local function fail(...) error('INVARIANT: ' .. string.format(...), 0) end\n"
    "local function deq(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not deq(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if a[k] == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "local f = {}\n"
    "for line in (whole .. '\\n'):gmatch('(.-)\\n') do f[#f + 1] = line end\n"
    "local function field(i) return f[i] or '' end\n"
    "local function add(t, k, v)\n"
    "  if t[k] == nil then t[k] = v elseif type(t[k]) == 'table' then table.insert(t[k], v) else t[k] = {t[k], v} end\n"
    "end\n"
    /* parse_query of anything */
    "for _, s in ipairs({whole, field(1)}) do\n"
    "  for k, v in pairs(url.parse_query(s)) do\n"
    "    if type(k) ~= 'string' then fail('parse_query key %s', type(k)) end\n"
    "    if type(v) == 'table' then\n"
    "      if #v < 2 then fail('parse_query list of %d', #v) end\n"
    "      for _, x in ipairs(v) do if type(x) ~= 'string' then fail('parse_query value %s', type(x)) end end\n"
    "    elseif type(v) ~= 'string' then fail('parse_query value %s', type(v)) end\n"
    "  end\n"
    "end\n"
    /* query round trip */
    "local q = {}\n"
    "for i = 1, #f - 1, 2 do add(q, f[i], f[i + 1]) end\n"
    "local qs = url.query(q)\n"
    "if not deq(url.parse_query(qs), q) then fail('parse_query(query(t)) ~= t for %q', qs) end\n"
    /* add_query and join */
    "local u = field(1)\n"
    "local base, frag = u:match('^([^#]*)(.*)$')\n"
    "for _, add_q in ipairs({field(2), q}) do\n"
    "  local s = type(add_q) == 'string' and add_q or url.query(add_q)\n"
    "  local a = url.add_query(u, add_q)\n"
    "  if s == '' then if a ~= u then fail('add_query with nothing changed %q', u) end\n"
    "  elseif a:sub(1, #base) ~= base or a:sub(#a - #frag + 1) ~= frag or not a:find(s, 1, true) then\n"
    "    fail('add_query(%q, %q) = %q', u, s, a)\n"
    "  end\n"
    "end\n"
    "for _, p in ipairs({{field(1), field(2)}, {field(3), field(1)}, {nil, field(2)}}) do\n"
    "  if type(url.join(p[1], p[2])) ~= 'string' then fail('join returned no string') end\n"
    "end\n"
    "if type(url.redact(whole)) ~= 'string' then fail('redact returned no string') end\n"
    /* no password in a redacted scheme://user:pass@rest */
    "local scheme = field(1):match('^%a[%w+.-]*$') or 'https'\n"
    "local user = field(2):gsub('[/?#@:]', '')\n"
    "local pass = field(3):gsub('[/?#@]', '')\n"
    "local rest = field(4)\n"
    "local cred = scheme .. '://' .. user .. ':' .. pass .. '@' .. rest\n"
    "local r = url.redact(cred)\n"
    "if pass ~= '' and not pass:find('*', 1, true)\n"
    "   and not (scheme .. '://' .. user .. ':***@' .. rest):find(pass, 1, true)\n"
    "   and r:find(pass, 1, true) then\n"
    "  fail('redact(%q) = %q shows the password %q', cred, r, pass)\n"
    "end\n"
    /* secret query values */
    "local sq = {}\n"
    "for i = 4, #f - 1, 2 do add(sq, f[i], f[i + 1]) end\n"
    "local plain = 'https://h/p?' .. url.query(sq)\n"
    "local red = url.redact(plain)\n"
    "local got = url.parse_query(red:match('^https://h/p%?(.*)$') or fail('redact(%q) = %q', plain, red))\n"
    "for k, v in pairs(sq) do\n"
    "  local want = v\n"
    "  if url.secret_name(k) then\n"
    "    want = type(v) == 'table' and {} or '***'\n"
    "    if type(v) == 'table' then for i = 1, #v do want[i] = '***' end end\n"
    "  end\n"
    "  if not deq(got[k], want) then fail('redact(%q) = %q: key %q', plain, red, k) end\n"
    "end\n";

FZ_COUNTERS(lua_edges, 4096);
static unsigned prev_line;

static void line_hook(lua_State *L, lua_Debug *ar) { /* no lua_getinfo: it is slow */
  (void)L;
  unsigned line = (unsigned)ar->currentline;
  lua_edges[(prev_line * 7919u ^ line) % sizeof lua_edges]++;
  prev_line = line;
}

/* Lua allocates on every call and ASan's default quarantine (256 MB) and 30-frame malloc
 * stacks make that ~3x slower; the Lua VM is not instrumented anyway. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
  return "quarantine_size_mb=16:malloc_context_size=5";
}

static int traceback(lua_State *L) {
  luaL_traceback(L, L, lua_tostring(L, 1), 1);
  return 1;
}

static lua_State *L;
static int url_ref, harness_ref;

static void setup(void) {
  L = luaL_newstate();
  if (!L) abort();
  luaL_openlibs(L);
  if (luaL_loadfile(L, PACER_URL_LUA) || lua_pcall(L, 0, 1, 0)) FZ_FAIL("loading url.lua: %s", lua_tostring(L, -1));
  url_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (luaL_loadbuffer(L, harness, sizeof harness - 1, "=fuzz_url harness")) FZ_FAIL("harness: %s", lua_tostring(L, -1));
  harness_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_sethook(L, line_hook, LUA_MASKLINE, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) setup();
  prev_line = 0;
  lua_settop(L, 0);
  lua_pushcfunction(L, traceback);
  lua_rawgeti(L, LUA_REGISTRYINDEX, harness_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, url_ref);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 2, 0, 1) != LUA_OK) FZ_FAIL("Lua error: %s", lua_tostring(L, -1));
  lua_settop(L, 0);
  return 0;
}
