/* crypto.c: what the Lua layer needs from OpenSSL and the kernel's CSPRNG: random
 * keys (idempotency), HMAC-SHA256 and a constant-time comparison (webhook signatures). */
#include <lauxlib.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>

/* random_hex(nbytes) -> hex string from the kernel's CSPRNG (idempotency keys) */
static int l_random_hex(lua_State *L) {
  lua_Integer n = luaL_optinteger(L, 1, 16);
  luaL_argcheck(L, n > 0 && n <= 64, 1, "1..64 bytes");
  unsigned char raw[64];
  FILE *f = fopen("/dev/urandom", "rb");
  size_t got = f ? fread(raw, 1, (size_t)n, f) : 0;
  if (f) fclose(f);
  if (got != (size_t)n) return luaL_error(L, "random_hex: cannot read /dev/urandom");
  char hex[129];
  for (lua_Integer i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", raw[i]);
  lua_pushlstring(L, hex, (size_t)n * 2);
  return 1;
}

/* hmac_sha256(key, data) -> lower-case hex */
static int l_hmac_sha256(lua_State *L) {
  size_t klen, dlen;
  const char *key = luaL_checklstring(L, 1, &klen), *data = luaL_checklstring(L, 2, &dlen);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, dlen, mac, &n))
    return luaL_error(L, "hmac_sha256: failed");
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  for (unsigned int i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", mac[i]);
  lua_pushlstring(L, hex, 2 * n);
  return 1;
}

/* equal(a, b): compares in time that depends only on the lengths (signatures) */
static int l_equal(lua_State *L) {
  size_t alen, blen;
  const char *a = luaL_checklstring(L, 1, &alen), *b = luaL_checklstring(L, 2, &blen);
  lua_pushboolean(L, alen == blen && CRYPTO_memcmp(a, b, alen) == 0);
  return 1;
}

int luaopen_pacer_crypto(lua_State *L) {
  static const luaL_Reg funcs[] = {
      {"random_hex", l_random_hex}, {"hmac_sha256", l_hmac_sha256}, {"equal", l_equal}, {NULL, NULL}};
  luaL_newlib(L, funcs);
  return 1;
}
