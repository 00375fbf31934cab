/* token.c - see token.h. */
#include "token.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/random.h>

#include "../util/err.h"

int token_random_bytes(void *p, size_t n)
{
    unsigned char *q = p;
    while (n) {
        ssize_t r = getrandom(q, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return RS_EIO;
        }
        q += r;
        n -= (size_t)r;
    }
    return RS_OK;
}

int token_random_text(size_t n, char *out, size_t cap)
{
    unsigned char raw[64];
    if (n > sizeof raw || cap < sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING))
        return RS_EINVAL;
    int rc = token_random_bytes(raw, n);
    if (rc == RS_OK)
        sodium_bin2base64(out, cap, raw, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    return rc;
}

int token_new(char out[TOKEN_CHARS + 1])
{
    return token_random_text(TOKEN_BYTES, out, TOKEN_CHARS + 1);
}

int token_well_formed(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= TOKEN_CHARS || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                                  c == '-' || c == '_'))
            return 0;
    }
    return n == TOKEN_CHARS;
}

void token_hash(const char *s, uint8_t out[TOKEN_HASH_BYTES])
{
    crypto_hash_sha256(out, (const unsigned char *)s, strlen(s));
}
