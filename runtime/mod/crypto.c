/* crypto.c: what the Lua layer needs from OpenSSL and the kernel's CSPRNG: random
 * keys (idempotency), HMAC-SHA256 and a constant-time comparison (webhook signatures),
 * base64/base64url, and JWS signatures (HS256, RS256, ES256) for pacer.auth.jwt:
 * private keys are loaded once into a "pacer.pkey" userdata that owns the EVP_PKEY. */
#include <lauxlib.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#define PACER_PKEY "pacer.pkey"

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

/* hmac_sha256_raw(key, data) -> the 32-byte MAC (JWS HS256) */
static int l_hmac_sha256_raw(lua_State *L) {
  size_t klen, dlen;
  const char *key = luaL_checklstring(L, 1, &klen), *data = luaL_checklstring(L, 2, &dlen);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, dlen, mac, &n))
    return luaL_error(L, "hmac_sha256: failed");
  lua_pushlstring(L, (const char *)mac, n);
  return 1;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Encodes s with `alphabet`; pads with '=' unless url (JWS: base64url without padding). */
static int b64_encode(lua_State *L, const char *alphabet, int pad) {
  size_t n;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
    luaL_addchar(&b, alphabet[v >> 18 & 63]);
    luaL_addchar(&b, alphabet[v >> 12 & 63]);
    if (i + 1 < n)
      luaL_addchar(&b, alphabet[v >> 6 & 63]);
    else if (pad)
      luaL_addchar(&b, '=');
    if (i + 2 < n)
      luaL_addchar(&b, alphabet[v & 63]);
    else if (pad)
      luaL_addchar(&b, '=');
  }
  luaL_pushresult(&b);
  return 1;
}

static int l_base64(lua_State *L) {
  return b64_encode(L, B64, 1);
}
static int l_base64url(lua_State *L) {
  return b64_encode(L, B64URL, 0);
}

/* base64url_decode(s) -> bytes | nil (either alphabet, padding optional) */
static int l_base64url_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  unsigned v = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i], d;
    if (c == '=') break;
    if (c >= 'A' && c <= 'Z')
      d = c - 'A';
    else if (c >= 'a' && c <= 'z')
      d = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      d = c - '0' + 52;
    else if (c == '-' || c == '+')
      d = 62;
    else if (c == '_' || c == '/')
      d = 63;
    else {
      lua_pushnil(L);
      return 1;
    }
    v = v << 6 | (unsigned)d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      luaL_addchar(&b, (char)(v >> bits & 0xff));
    }
  }
  luaL_pushresult(&b);
  return 1;
}

typedef struct pkey {
  EVP_PKEY *k;
} pkey;

static pkey *checkpkey(lua_State *L, int i) {
  pkey *p = luaL_checkudata(L, i, PACER_PKEY);
  if (!p->k) luaL_error(L, "attempt to use a freed key");
  return p;
}

/* The last OpenSSL error as text, the queue cleared (never includes key material). */
static const char *ssl_reason(void) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  return r ? r : "unknown error";
}

/* load_key(pem) -> key | nil, why. The key's type: key:type() -> "RSA" | "EC". */
static int l_load_key(lua_State *L) {
  size_t n;
  const char *pem = luaL_checklstring(L, 1, &n);
  pkey *p = lua_newuserdatauv(L, sizeof *p, 0); /* made empty first: a raise leaks nothing */
  p->k = NULL;
  luaL_setmetatable(L, PACER_PKEY);
  BIO *bio = BIO_new_mem_buf(pem, (int)n);
  if (!bio) return luaL_error(L, "load_key: out of memory");
  p->k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (!p->k) {
    lua_pushnil(L);
    lua_pushfstring(L, "not a PEM private key (%s)", ssl_reason());
    return 2;
  }
  return 1;
}

static int pkey_type(lua_State *L) {
  pkey *p = checkpkey(L, 1);
  int id = EVP_PKEY_base_id(p->k);
  lua_pushstring(L, id == EVP_PKEY_RSA ? "RSA" : id == EVP_PKEY_EC ? "EC" : "other");
  return 1;
}

/* key:bits() -> the key's size in bits (ES256 needs a P-256 key: 256) */
static int pkey_bits(lua_State *L) {
  lua_pushinteger(L, EVP_PKEY_bits(checkpkey(L, 1)->k));
  return 1;
}

/* key:sign(data) -> the SHA-256 signature: PKCS#1 v1.5 for RSA (RS256); for EC the DER
 * ECDSA signature turned into JWS's raw r || s, 32 bytes each (ES256). nil, why on failure. */
static int pkey_sign(lua_State *L) {
  pkey *p = checkpkey(L, 1);
  size_t dlen;
  const unsigned char *data = (const unsigned char *)luaL_checklstring(L, 2, &dlen);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t siglen = 0;
  int ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, p->k) == 1 &&
           EVP_DigestSign(ctx, NULL, &siglen, data, dlen) == 1;
  unsigned char *sig = ok ? lua_newuserdatauv(L, siglen, 0) : NULL; /* Lua-owned: safe across a raise */
  ok = ok && EVP_DigestSign(ctx, sig, &siglen, data, dlen) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) {
    lua_pushnil(L);
    lua_pushfstring(L, "signing failed (%s)", ssl_reason());
    return 2;
  }
  if (EVP_PKEY_base_id(p->k) != EVP_PKEY_EC) {
    lua_pushlstring(L, (const char *)sig, siglen);
    return 1;
  }
  const unsigned char *der = sig;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &der, (long)siglen);
  if (!es) {
    lua_pushnil(L);
    lua_pushliteral(L, "signing failed (bad ECDSA signature)");
    return 2;
  }
  unsigned char raw[64];
  const BIGNUM *r, *s;
  ECDSA_SIG_get0(es, &r, &s);
  ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
  ECDSA_SIG_free(es);
  if (!ok) {
    lua_pushnil(L);
    lua_pushliteral(L, "signing failed (ES256 needs a P-256 key)");
    return 2;
  }
  lua_pushlstring(L, (const char *)raw, 64);
  return 1;
}

static int pkey_gc(lua_State *L) {
  pkey *p = luaL_checkudata(L, 1, PACER_PKEY);
  if (p->k) EVP_PKEY_free(p->k);
  p->k = NULL;
  return 0;
}

static int pkey_tostring(lua_State *L) {
  pkey *p = luaL_checkudata(L, 1, PACER_PKEY);
  lua_pushfstring(L, "pacer.pkey (%s): %p", p->k ? (EVP_PKEY_base_id(p->k) == EVP_PKEY_EC ? "EC" : "RSA") : "freed",
                  (void *)p); /* never the key itself */
  return 1;
}

int luaopen_pacer_crypto(lua_State *L) {
  static const luaL_Reg funcs[] = {{"random_hex", l_random_hex},
                                   {"hmac_sha256", l_hmac_sha256},
                                   {"hmac_sha256_raw", l_hmac_sha256_raw},
                                   {"equal", l_equal},
                                   {"base64", l_base64},
                                   {"base64url", l_base64url},
                                   {"base64url_decode", l_base64url_decode},
                                   {"load_key", l_load_key},
                                   {NULL, NULL}};
  static const luaL_Reg key_methods[] = {{"sign", pkey_sign}, {"type", pkey_type}, {"bits", pkey_bits}, {NULL, NULL}};
  static const luaL_Reg key_meta[] = {
      {"__gc", pkey_gc}, {"__close", pkey_gc}, {"__tostring", pkey_tostring}, {NULL, NULL}};
  luaL_newmetatable(L, PACER_PKEY);
  luaL_setfuncs(L, key_meta, 0);
  luaL_newlib(L, key_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  return 1;
}
