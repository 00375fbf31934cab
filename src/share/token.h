/*
 * token.h - the secrets radshare hands out (share-link tokens, unlock grants, staff session ids):
 * 32 bytes from the kernel CSPRNG (getrandom), written as unpadded base64url (43 characters), and
 * kept at rest only as their SHA-256 so a copy of state.sqlite opens nothing.
 */
#ifndef RS_TOKEN_H
#define RS_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_BYTES 32
#define TOKEN_CHARS 43  /* base64url of 32 bytes, no padding */
#define TOKEN_HASH_BYTES 32

/* Fill p with n bytes from getrandom(); RS_OK or RS_EIO. */
int token_random_bytes(void *p, size_t n);
/* n random bytes as unpadded base64url into out (cap >= 4*n/3 + 2). */
int token_random_text(size_t n, char *out, size_t cap);
/* A fresh 256-bit token, out has TOKEN_CHARS + 1 bytes. */
int token_new(char out[TOKEN_CHARS + 1]);
/* 1 if s looks like a token (exact length, base64url alphabet): cheap filter before the database. */
int token_well_formed(const char *s);
/* SHA-256 of the token text. */
void token_hash(const char *s, uint8_t out[TOKEN_HASH_BYTES]);

#endif
