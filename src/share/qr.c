/* qr.c - see qr.h. */
#include "qr.h"

#include <qrencode.h>
#include <string.h>

#define QUIET 4

int share_qr_svg(const char *text, rs_buf *out, rs_err *err)
{
    if (!text || !*text || strlen(text) > SHARE_QR_MAX_TEXT)
        return rs_err_set(err, RS_EINVAL, "nothing to encode, or too long for a QR code");
    /* 8-bit mode, case-sensitive: a token is base64url, and QR's alphanumeric mode has no lower case */
    QRcode *q = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M);
    if (!q)
        return rs_err_set(err, RS_ENOMEM, "cannot build the QR code");
    int w = q->width, side = w + 2 * QUIET;
    int rc = rs_buf_printf(out,
                           "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\""
                           " shape-rendering=\"crispEdges\"><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
                           "<path fill=\"#000\" d=\"",
                           side, side, side * 8, side * 8, side, side);
    for (int y = 0; y < w && rc == RS_OK; y++)
        for (int x = 0; x < w && rc == RS_OK;) {
            if (!(q->data[y * w + x] & 1)) {
                x++;
                continue;
            }
            int run = 1;
            while (x + run < w && (q->data[y * w + x + run] & 1))
                run++;
            rc = rs_buf_printf(out, "M%d %dh%dv1h-%dz", x + QUIET, y + QUIET, run, run);
            x += run;
        }
    rc = rc ? rc : rs_buf_puts(out, "\"/></svg>");
    QRcode_free(q);
    return rc ? rs_err_set(err, RS_ENOMEM, "out of memory") : RS_OK;
}
