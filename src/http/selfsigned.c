/*
 * selfsigned.c - see selfsigned.h. OpenSSL 3: EVP_EC_gen, X509 with v3 extensions from the
 * same text syntax as openssl.cnf. CA:TRUE because the certificate is its own trust anchor:
 * clients given it as a CA file (curl --cacert, a browser's authority import) accept it then.
 */
#include "selfsigned.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define VALID_DAYS 825

static int ossl_err(rs_err *err, const char *what)
{
    char buf[160] = "";
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    return rs_err_set(err, RS_EIO, "self-signed HTTPS certificate: %s%s%s", what, *buf ? ": " : "", buf);
}

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = e && X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

static int write_pem(const char *path, int mode, EVP_PKEY *key, X509 *x, rs_err *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", tmp, strerror(errno));
    }
    int ok = key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, x);
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0)
        return RS_OK;
    unlink(tmp);
    return rs_err_set(err, RS_EIO, "cannot write %s", path);
}

static int make_pair(const http_selfsigned *o, const char *extra_ip, rs_err *err)
{
    char host[256] = "localhost", san[1024];
    if (gethostname(host, sizeof host) != 0 || !*host || strpbrk(host, ", \t"))
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    int n = snprintf(san, sizeof san, "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1", host);
    if (extra_ip && *extra_ip && strcmp(extra_ip, "0.0.0.0") && strcmp(extra_ip, "::") &&
        strcmp(extra_ip, "127.0.0.1") && strcmp(extra_ip, "::1") && strcmp(extra_ip, "localhost") && !strpbrk(extra_ip, ", \t"))
        snprintf(san + n, sizeof san - (size_t)n, ",%s:%s", strspn(extra_ip, "0123456789.:abcdefABCDEF") ==
                 strlen(extra_ip) ? "IP" : "DNS", extra_ip);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    int rc = RS_OK;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    if (!key || !x || RAND_bytes(serial, sizeof serial) != 1) {
        rc = ossl_err(err, "key generation");
        goto out;
    }
    serial[0] &= 0x7f; /* positive */
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    X509_NAME *name = X509_get_subject_name(x);
    if (!bn || !X509_set_version(x, 2) || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(x), (long)VALID_DAYS * 86400) || !X509_set_pubkey(x, key) ||
        !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"radshare (self-signed)", -1, -1,
                                    0) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)host, -1, -1, 0) ||
        !X509_set_issuer_name(x, name) || !add_ext(x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
        !add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") ||
        !add_ext(x, NID_ext_key_usage, "serverAuth") || !add_ext(x, NID_subject_key_identifier, "hash") ||
        !add_ext(x, NID_subject_alt_name, san) || !X509_sign(x, key, EVP_sha256())) {
        rc = ossl_err(err, "certificate");
        goto out;
    }
    rc = write_pem(o->key, 0600, key, NULL, err);
    if (rc == RS_OK)
        rc = write_pem(o->cert, 0644, NULL, x, err);
out:
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}

/* The certificate at path, if it is one and has not expired (NULL otherwise). */
static X509 *load_valid(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (x && X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

int http_selfsigned_ensure(const char *datadir, const char *extra_ip, http_selfsigned *out, rs_err *err)
{
    char dir[4000];
    memset(out, 0, sizeof *out);
    if (snprintf(dir, sizeof dir, "%s/tls", datadir) >= (int)sizeof dir)
        return rs_err_set(err, RS_EINVAL, "data directory path too long");
    snprintf(out->cert, sizeof out->cert, "%s/https-cert.pem", dir);
    snprintf(out->key, sizeof out->key, "%s/https-key.pem", dir);
    if (mkdir(datadir, 0750) != 0 && errno != EEXIST)
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", datadir, strerror(errno));
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", dir, strerror(errno));
    struct stat st;
    X509 *x = stat(out->key, &st) == 0 ? load_valid(out->cert) : NULL;
    if (!x) {
        int rc = make_pair(out, extra_ip, err);
        if (rc)
            return rc;
        out->created = 1;
        if (!(x = load_valid(out->cert)))
            return ossl_err(err, "reading it back");
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    int ok = X509_digest(x, EVP_sha256(), md, &len);
    X509_free(x);
    if (!ok)
        return ossl_err(err, "fingerprint");
    for (unsigned i = 0; i < len && 3 * i + 3 <= sizeof out->fingerprint; i++)
        snprintf(out->fingerprint + 3 * i, 4, i + 1 < len ? "%02X:" : "%02X", md[i]);
    return RS_OK;
}
