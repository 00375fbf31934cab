/*
 * sign.c - see sign.h.
 */
#include "sign.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"

#define KEY_FILE "backup-key.pem"
#define PUB_FILE "backup-key.pub"

struct backup_key {
    EVP_PKEY *pkey;
};

void backup_hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int backup_unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return RS_EFORMAT;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return RS_EFORMAT;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return RS_OK;
}

void backup_fingerprint(const uint8_t pub[BACKUP_KEY_RAW], char out[STORE_HASH_HEX + 1])
{
    backup_sha256_hex(pub, BACKUP_KEY_RAW, out);
}

static int key_paths(const char *datadir, char *key, char *pub, rs_err *err)
{
    if (snprintf(key, PATH_MAX, "%s/%s", datadir, KEY_FILE) >= PATH_MAX ||
        snprintf(pub, PATH_MAX, "%s/%s", datadir, PUB_FILE) >= PATH_MAX)
        return rs_err_set(err, RS_EINVAL, "data directory path too long");
    return RS_OK;
}

static int write_pem(const char *path, EVP_PKEY *k, int private, rs_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, private ? 0600 : 0644);
    if (fd < 0)
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", path, strerror(errno));
    FILE *f = fdopen(fd, "w");
    int ok = f && (private ? PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) : PEM_write_PUBKEY(f, k));
    ok = ok && fflush(f) == 0 && fsync(fd) == 0;
    if (f)
        fclose(f);
    else
        close(fd);
    return ok ? RS_OK : rs_err_set(err, RS_EIO, "cannot write %s", path);
}

static int create_key(const char *key, const char *pub, EVP_PKEY **out, rs_err *err)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    *out = NULL;
    if (!c || EVP_PKEY_keygen_init(c) != 1 || EVP_PKEY_keygen(c, out) != 1) {
        EVP_PKEY_CTX_free(c);
        return rs_err_set(err, RS_EIO, "cannot generate an ed25519 key");
    }
    EVP_PKEY_CTX_free(c);
    int rc = write_pem(key, *out, 1, err);
    if (rc == RS_OK) {
        unlink(pub); /* a stale public key of another private key would mislead */
        rc = write_pem(pub, *out, 0, err);
    }
    return rc;
}

int backup_key_load(const char *datadir, backup_key **out, int *created, rs_err *err)
{
    char key[PATH_MAX], pub[PATH_MAX];
    *out = NULL;
    if (created)
        *created = 0;
    int rc = key_paths(datadir, key, pub, err);
    if (rc)
        return rc;
    backup_key *k = calloc(1, sizeof *k);
    if (!k)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    int fd = open(key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 && errno == ENOENT) {
        rc = create_key(key, pub, &k->pkey, err);
        if (rc == RS_OK && created)
            *created = 1;
    } else if (fd < 0) {
        rc = rs_err_set(err, RS_EIO, "cannot open %s: %s", key, strerror(errno));
    } else if (fstat(fd, &st) != 0 || (st.st_mode & 077)) {
        rc = rs_err_set(err, RS_EINVAL, "%s is readable by others (mode %o): chmod 600 it", key,
                        (unsigned)st.st_mode & 0777);
    } else {
        FILE *f = fdopen(fd, "r");
        k->pkey = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
        if (f)
            fclose(f);
        fd = -1;
        if (!k->pkey || EVP_PKEY_id(k->pkey) != EVP_PKEY_ED25519)
            rc = rs_err_set(err, RS_EFORMAT, "%s is not an ed25519 private key", key);
    }
    if (fd >= 0)
        close(fd);
    if (rc) {
        backup_key_free(k);
        return rc;
    }
    *out = k;
    return RS_OK;
}

void backup_key_free(backup_key *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

void backup_key_public(const backup_key *k, uint8_t pub[BACKUP_KEY_RAW])
{
    size_t n = BACKUP_KEY_RAW;
    EVP_PKEY_get_raw_public_key(k->pkey, pub, &n);
}

int backup_key_sign(const backup_key *k, const void *msg, size_t n, uint8_t sig[BACKUP_SIG_RAW], rs_err *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t len = BACKUP_SIG_RAW;
    int ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, k->pkey) == 1 &&
             EVP_DigestSign(md, sig, &len, msg, n) == 1 && len == BACKUP_SIG_RAW;
    EVP_MD_CTX_free(md);
    return ok ? RS_OK : rs_err_set(err, RS_EIO, "cannot sign the manifest");
}

int backup_sig_check(const uint8_t pub[BACKUP_KEY_RAW], const void *msg, size_t n, const uint8_t *sig,
                     size_t sig_len, rs_err *err)
{
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, BACKUP_KEY_RAW);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = k && md && sig_len == BACKUP_SIG_RAW && EVP_DigestVerifyInit(md, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestVerify(md, sig, sig_len, msg, n) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    return ok ? RS_OK : rs_err_set(err, RS_EFORMAT, "the manifest's signature does not verify");
}

int backup_pubkey_read(const char *path, uint8_t pub[BACKUP_KEY_RAW], rs_err *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return rs_err_set(err, RS_EIO, "cannot open %s: %s", path, strerror(errno));
    EVP_PKEY *k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    size_t n = BACKUP_KEY_RAW;
    int ok = k && EVP_PKEY_id(k) == EVP_PKEY_ED25519 && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 &&
             n == BACKUP_KEY_RAW;
    EVP_PKEY_free(k);
    return ok ? RS_OK : rs_err_set(err, RS_EFORMAT, "%s is not an ed25519 public key (PEM)", path);
}
