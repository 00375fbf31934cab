/*
 * selfsigned.h - an HTTPS certificate made on first start (`radshare serve --https-self-signed`)
 * when no certificate is configured: the demo and a first installation get TLS at once, and a
 * real certificate (--https-cert/--https-key) replaces it later.
 *
 *   DATA/tls/https-key.pem    EC P-256 private key, PKCS#8, mode 0600
 *   DATA/tls/https-cert.pem   self-signed X.509 v3 certificate: CN and subjectAltName = this
 *                             host's name, localhost, 127.0.0.1, ::1 (and the bind address),
 *                             serverAuth, valid 825 days (the longest clients accept)
 *
 * An existing pair is reused (clients that pinned or trusted it keep working); one that has
 * expired is replaced. The SHA-256 fingerprint is what a user compares with the browser's.
 */
#ifndef HTTP_SELFSIGNED_H
#define HTTP_SELFSIGNED_H

#include <stddef.h>

#include "../util/err.h"

typedef struct http_selfsigned {
    char cert[4096], key[4096];   /* the paths */
    char fingerprint[96];         /* "AB:CD:..." SHA-256 of the DER certificate */
    int created;                  /* made now (else reused) */
} http_selfsigned;

/* Make or reuse DATA/tls/https-{key,cert}.pem. extra_ip (may be NULL): an address to add to the names. */
int http_selfsigned_ensure(const char *datadir, const char *extra_ip, http_selfsigned *out, rs_err *err);

#endif
