/* input.c: pacer.c.input, a job's input file read incrementally: CSV records or lines
 * (runtime/core/csv.c) with the line each began on, hashed (SHA-256) as it is read, so
 * memory stays flat whatever the file's size. Also the file facts a ledger keeps to see
 * that its input changed: size, modification time, content hash.
 *   r = input.open(path | "-", "csv" | "lines" | "auto") -> reader | nil, err
 *       ("auto": lines when the first byte that is not blank or a BOM is '{', else csv)
 *   r:mode() -> "csv" | "lines"
 *   r:next() -> fields, line | false, line, reason (a malformed record) | nil (the end)
 *   r:hash() -> hex SHA-256 of the bytes read so far;  r:close()
 *   input.stat(path) -> size, mtime | nil, err;  input.hash_file(path) -> hex | nil, err */
#include "core/csv.h"
#include "mod/bind.h"
#include <errno.h>
#include <lauxlib.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PACER_INPUT "pacer.input"
#define CHUNK       65536
#define MAX_RECORD  (1024 * 1024)

typedef struct reader {
  FILE *f; /* NULL once closed */
  int is_stdin;
  int eof;
  int lines; /* the mode: lines, else csv */
  csv_reader *csv;
  EVP_MD_CTX *sha;
} reader;

static void hex(const unsigned char *d, unsigned int n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (unsigned int i = 0; i < n; i++) {
    out[2 * i] = digits[d[i] >> 4];
    out[2 * i + 1] = digits[d[i] & 15];
  }
  out[2 * n] = 0;
}

static reader *checkreader(lua_State *L) {
  reader *r = luaL_checkudata(L, 1, PACER_INPUT);
  if (!r->csv || !r->f) luaL_error(L, "attempt to use a closed input");
  return r;
}

/* close, __close and __gc: idempotent, never raise */
static int reader_close(lua_State *L) {
  reader *r = luaL_checkudata(L, 1, PACER_INPUT);
  if (r->f && !r->is_stdin) fclose(r->f);
  r->f = NULL;
  csv_free(r->csv);
  r->csv = NULL;
  if (r->sha) EVP_MD_CTX_free(r->sha);
  r->sha = NULL;
  return 0;
}

/* Reads the next chunk into the parser (or tells it the input ended). */
static void refill(lua_State *L, reader *r) {
  char buf[CHUNK];
  size_t n = fread(buf, 1, sizeof buf, r->f);
  if (n > 0) {
    EVP_DigestUpdate(r->sha, buf, n);
    if (csv_feed(r->csv, buf, n) != 0) luaL_error(L, "input: out of memory");
  }
  if (n < sizeof buf) {
    if (ferror(r->f)) luaL_error(L, "input: cannot read: %s", strerror(errno));
    r->eof = 1;
    csv_eof(r->csv);
  }
}

/* r:next() -> fields, line | false, line, reason | nil */
static int reader_next(lua_State *L) {
  reader *r = checkreader(L);
  csv_record rec;
  for (;;) {
    int rc = csv_next(r->csv, &rec);
    if (rc < 0) return luaL_error(L, "input: out of memory");
    if (rc == CSV_END) return 0;
    if (rc == CSV_MORE) {
      if (r->eof) return 0; /* cannot happen: the parser has had its eof */
      refill(L, r);
      continue;
    }
    if (rc == CSV_BAD) {
      lua_pushboolean(L, 0);
      lua_pushinteger(L, rec.line);
      lua_pushstring(L, rec.error);
      return 3;
    }
    lua_createtable(L, (int)rec.nfields, 0);
    size_t start = 0;
    for (size_t i = 0; i < rec.nfields; i++) {
      lua_pushlstring(L, rec.data + start, rec.ends[i] - start);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
      start = rec.ends[i];
    }
    lua_pushinteger(L, rec.line);
    return 2;
  }
}

/* r:hash() -> hex SHA-256 of what was read so far (of the whole input once at its end) */
static int reader_hash(lua_State *L) {
  reader *r = checkreader(L);
  EVP_MD_CTX *copy = EVP_MD_CTX_new();
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  int ok = copy && EVP_MD_CTX_copy_ex(copy, r->sha) && EVP_DigestFinal_ex(copy, d, &n);
  EVP_MD_CTX_free(copy);
  if (!ok) return luaL_error(L, "input: cannot hash");
  char out[2 * EVP_MAX_MD_SIZE + 1];
  hex(d, n, out);
  lua_pushstring(L, out);
  return 1;
}

/* "auto": the mode from the first bytes, read now and fed to the parser */
static void sniff(lua_State *L, reader *r) {
  char buf[CHUNK];
  size_t n = fread(buf, 1, sizeof buf, r->f), i = 0;
  if (n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) i = 3;
  while (i < n && buf[i] && strchr(" \t\r\n", buf[i])) i++;
  r->lines = i < n && buf[i] == '{';
  if (!(r->csv = csv_new(r->lines ? CSV_LINES : CSV_FIELDS, MAX_RECORD))) luaL_error(L, "input: out of memory");
  EVP_DigestUpdate(r->sha, buf, n);
  if (csv_feed(r->csv, buf, n) != 0) luaL_error(L, "input: out of memory");
  if (n < sizeof buf) {
    if (ferror(r->f)) luaL_error(L, "input: cannot read: %s", strerror(errno));
    r->eof = 1;
    csv_eof(r->csv);
  }
}

/* open(path | "-", "csv" | "lines" | "auto") -> reader | nil, err */
static int l_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  static const char *const modes[] = {"csv", "lines", "auto", NULL};
  int mode = luaL_checkoption(L, 2, "csv", modes);
  reader *r = lua_newuserdatauv(L, sizeof *r, 0); /* made closed first: an error leaves nothing half-made */
  memset(r, 0, sizeof *r);
  luaL_setmetatable(L, PACER_INPUT);
  r->sha = EVP_MD_CTX_new();
  if (!r->sha || !EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL)) return luaL_error(L, "input: out of memory");
  if (strcmp(path, "-") == 0) {
    r->f = stdin;
    r->is_stdin = 1;
  } else if (!(r->f = fopen(path, "rb"))) {
    int e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "cannot open %s: %s", path, strerror(e));
    return 2;
  }
  if (mode == 2) {
    sniff(L, r);
  } else {
    r->lines = mode == 1;
    if (!(r->csv = csv_new(r->lines ? CSV_LINES : CSV_FIELDS, MAX_RECORD)))
      return luaL_error(L, "input: out of memory");
  }
  return 1;
}

static int reader_mode(lua_State *L) {
  lua_pushstring(L, checkreader(L)->lines ? "lines" : "csv");
  return 1;
}

/* stat(path) -> size, mtime (seconds, with nanoseconds) | nil, err */
static int l_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot stat %s: %s", path, strerror(errno));
    return 2;
  }
  lua_pushinteger(L, (lua_Integer)st.st_size);
  lua_pushnumber(L, (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9);
  return 2;
}

/* hash_file(path) -> hex SHA-256 of the file | nil, err */
static int l_hash_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  FILE *f = fopen(path, "rb");
  if (!f) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot open %s: %s", path, strerror(errno));
    return 2;
  }
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
  char buf[CHUNK];
  size_t n;
  while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0) ok = EVP_DigestUpdate(ctx, buf, n);
  int read_error = ferror(f);
  fclose(f);
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dn = 0;
  ok = ok && !read_error && EVP_DigestFinal_ex(ctx, d, &dn);
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot read %s", path);
    return 2;
  }
  char out[2 * EVP_MAX_MD_SIZE + 1];
  hex(d, dn, out);
  lua_pushstring(L, out);
  return 1;
}

int luaopen_pacer_input(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"next", reader_next}, {"hash", reader_hash}, {"mode", reader_mode}, {"close", reader_close}, {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"open", l_open}, {"stat", l_stat}, {"hash_file", l_hash_file}, {NULL, NULL}};
  static const luaL_Reg meta[] = {{"__gc", reader_close}, {"__close", reader_close}, {NULL, NULL}};
  bind_createmeta(L, PACER_INPUT, methods, meta);
  luaL_newlib(L, funcs);
  return 1;
}
