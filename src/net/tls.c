/* tls.c - DICOM over TLS with OpenSSL (see tls.h). */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct net_tls_ctx {
    SSL_CTX *ssl;
    int verify_clients;
};

struct net_tls {
    SSL *ssl;
};

/* The most recent OpenSSL reason, for one log line. */
static const char *ossl_reason(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    if (!e)
        return "no further detail";
    ERR_error_string_n(e, buf, cap);
    ERR_clear_error();
    return buf;
}

int net_tls_ctx_new(const char *cert, const char *key, const char *ca, net_tls_ctx **out, rs_err *err)
{
    char why[256];
    *out = NULL;
    net_tls_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    int rc = RS_OK;
    c->ssl = SSL_CTX_new(TLS_server_method());
    if (!c->ssl) {
        rc = rs_err_set(err, RS_ENOMEM, "TLS: %s", ossl_reason(why, sizeof why));
        goto out;
    }
    SSL_CTX_set_min_proto_version(c->ssl, TLS1_2_VERSION);
    SSL_CTX_set_options(c->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(c->ssl, cert) != 1) {
        rc = rs_err_set(err, RS_EINVAL, "TLS certificate %s: %s", cert, ossl_reason(why, sizeof why));
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(c->ssl, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(c->ssl) != 1) {
        rc = rs_err_set(err, RS_EINVAL, "TLS key %s: %s", key, ossl_reason(why, sizeof why));
        goto out;
    }
    if (ca) {
        if (SSL_CTX_load_verify_locations(c->ssl, ca, NULL) != 1) {
            rc = rs_err_set(err, RS_EINVAL, "TLS CA %s: %s", ca, ossl_reason(why, sizeof why));
            goto out;
        }
        SSL_CTX_set_verify(c->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        c->verify_clients = 1;
    }
out:
    if (rc) {
        net_tls_ctx_free(c);
        return rc;
    }
    *out = c;
    return RS_OK;
}

void net_tls_ctx_free(net_tls_ctx *c)
{
    if (!c)
        return;
    SSL_CTX_free(c->ssl);
    free(c);
}

static void set_timeouts(int fd, int timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

int net_tls_accept(net_tls_ctx *c, int fd, int timeout_ms, net_tls **out, rs_err *err)
{
    char why[256];
    *out = NULL;
    net_tls *t = calloc(1, sizeof *t);
    if (!t)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    set_timeouts(fd, timeout_ms);
    t->ssl = SSL_new(c->ssl);
    if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
        net_tls_close(t);
        return rs_err_set(err, RS_ENOMEM, "TLS: %s", ossl_reason(why, sizeof why));
    }
    ERR_clear_error();
    int r = SSL_accept(t->ssl);
    if (r != 1) {
        int e = SSL_get_error(t->ssl, r);
        int timed_out = e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK);
        long v = SSL_get_verify_result(t->ssl);
        int rc;
        if (timed_out)
            rc = rs_err_set(err, RS_ELIMIT, "TLS handshake: no answer for %d ms", timeout_ms);
        else if (v != X509_V_OK)
            rc = rs_err_set(err, RS_EINVAL, "TLS handshake: client certificate refused: %s",
                            X509_verify_cert_error_string(v));
        else
            rc = rs_err_set(err, RS_EFORMAT, "TLS handshake failed: %s",
                            e == SSL_ERROR_SSL ? ossl_reason(why, sizeof why) : "connection closed");
        ERR_clear_error();
        SSL_free(t->ssl); /* no close_notify after a failed handshake */
        free(t);
        return rc;
    }
    *out = t;
    return RS_OK;
}

void net_tls_describe(const net_tls *t, char *buf, size_t cap)
{
    char subject[256] = "-";
    X509 *peer = SSL_get_peer_certificate(t->ssl);
    if (peer) {
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, subject, sizeof subject);
        X509_free(peer);
    }
    snprintf(buf, cap, "%s %s, client certificate %s", SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl),
             subject);
}

/* An SSL_read/SSL_write result as recv/send would give it. */
static ssize_t as_syscall(net_tls *t, int r)
{
    if (r > 0)
        return r;
    int e = SSL_get_error(t->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e != SSL_ERROR_SYSCALL || errno == 0)
        errno = e == SSL_ERROR_SYSCALL ? ECONNRESET : EPROTO;
    return -1;
}

ssize_t net_tls_read(net_tls *t, void *p, size_t n)
{
    return as_syscall(t, SSL_read(t->ssl, p, n > 0x7fffffff ? 0x7fffffff : (int)n));
}

ssize_t net_tls_write(net_tls *t, const void *p, size_t n)
{
    return as_syscall(t, SSL_write(t->ssl, p, n > 0x7fffffff ? 0x7fffffff : (int)n));
}

int net_tls_pending(const net_tls *t) { return SSL_pending(t->ssl); }

void net_tls_close(net_tls *t)
{
    if (!t)
        return;
    if (t->ssl) {
        SSL_shutdown(t->ssl);
        ERR_clear_error();
        SSL_free(t->ssl);
    }
    free(t);
}
