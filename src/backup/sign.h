/*
 * sign.h - the ed25519 key that signs backup manifests (OpenSSL EVP).
 *
 *   DATA/backup-key.pem   private key, PKCS#8 PEM, mode 0600, made by the first backup
 *   DATA/backup-key.pub   the public key, PEM (what `restore --trust` takes)
 *
 * The fingerprint is the SHA-256 of the raw 32-byte public key, in hex: printed by every
 * backup, accepted by `restore --fingerprint`. The private key is never copied into a backup:
 * whoever can write to the backup medium must not be able to sign for it.
 */
#ifndef BACKUP_SIGN_H
#define BACKUP_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "../store/blobstore.h"
#include "../util/err.h"

#define BACKUP_KEY_RAW 32
#define BACKUP_SIG_RAW 64

typedef struct backup_key backup_key;

/* Load DATA's key, creating it on first use (created set to 1 then; may be NULL). */
int backup_key_load(const char *datadir, backup_key **out, int *created, rs_err *err);
void backup_key_free(backup_key *k);
void backup_key_public(const backup_key *k, uint8_t pub[BACKUP_KEY_RAW]);
int backup_key_sign(const backup_key *k, const void *msg, size_t n, uint8_t sig[BACKUP_SIG_RAW], rs_err *err);

/* RS_OK when sig is pub's signature of msg, RS_EFORMAT otherwise. */
int backup_sig_check(const uint8_t pub[BACKUP_KEY_RAW], const void *msg, size_t n, const uint8_t *sig,
                     size_t sig_len, rs_err *err);
/* The raw public key of a PEM public key file (backup-key.pub). */
int backup_pubkey_read(const char *path, uint8_t pub[BACKUP_KEY_RAW], rs_err *err);
void backup_fingerprint(const uint8_t pub[BACKUP_KEY_RAW], char out[STORE_HASH_HEX + 1]);

/* Lowercase hex and back (RS_EFORMAT on anything but exactly n bytes of hex). */
void backup_hex(const uint8_t *p, size_t n, char *out);
int backup_unhex(const char *s, uint8_t *out, size_t n);

#endif
