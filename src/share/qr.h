/*
 * qr.h - a share link as a QR code (libqrencode), for the patient handout. The token exists only
 * in the link at creation time (only its hash is stored), so the code is drawn then, in the
 * answer to POST /api/shares, never later.
 */
#ifndef RS_SHARE_QR_H
#define RS_SHARE_QR_H

#include "../util/buf.h"
#include "../util/err.h"

#define SHARE_QR_MAX_TEXT 2048

/* text as an SVG image: black modules on white, a 4-module quiet zone, error correction level M
 * (a crumpled print-out still scans), one path of horizontal runs. Appended to out. */
int share_qr_svg(const char *text, rs_buf *out, rs_err *err);

#endif
