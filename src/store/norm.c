/* norm.c - normal forms of values for matching (see norm.h). */
#include "norm.h"

#include <stdint.h>
#include <string.h>

/* Decode one UTF-8 sequence at s (n > 0 bytes left); returns its length, 0 when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (len == 0 || len > n || (len == 4 && s[0] > 0xF4))
        return 0;
    uint32_t c = s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    *cp = c;
    return len;
}

static int utf8_put(rs_buf *out, uint32_t c)
{
    unsigned char b[4];
    size_t n;
    if (c < 0x80) {
        b[0] = (unsigned char)c;
        n = 1;
    } else if (c < 0x800) {
        b[0] = (unsigned char)(0xC0 | c >> 6);
        b[1] = (unsigned char)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        b[0] = (unsigned char)(0xE0 | c >> 12);
        b[1] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
        b[2] = (unsigned char)(0x80 | (c & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | c >> 18);
        b[1] = (unsigned char)(0x80 | (c >> 12 & 0x3F));
        b[2] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
        b[3] = (unsigned char)(0x80 | (c & 0x3F));
        n = 4;
    }
    return rs_buf_append(out, b, n);
}

/* Upper case of c for the scripts names are written in on our users' modalities. */
static uint32_t upper_of(uint32_t c)
{
    if (c >= 'a' && c <= 'z')
        return c - 32;
    if (c < 0x80)
        return c;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7)   /* Latin-1 */
        return c - 32;
    if (c == 0xFF)
        return 0x178;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177))  /* Latin Ext-A, even = upper */
        return c & ~1u;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))  /* Latin Ext-A, odd = upper */
        return (c & 1) ? c : c - 1;
    if (c == 0x3C2)                              /* Greek final sigma */
        return 0x3A3;
    if (c >= 0x3B1 && c <= 0x3CB)
        return c - 32;
    if (c == 0x3AC)
        return 0x386;
    if (c >= 0x3AD && c <= 0x3AF)
        return c - 37;
    if (c == 0x3CC)
        return 0x38C;
    if (c == 0x3CD || c == 0x3CE)
        return c - 63;
    if (c >= 0x430 && c <= 0x44F)                /* Cyrillic */
        return c - 32;
    if (c >= 0x450 && c <= 0x45F)
        return c - 80;
    return c;
}

int store_norm_upper(const char *s, size_t n, rs_buf *out)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = rs_buf_reserve(out, n + 1);
    for (size_t i = 0; i < n && rc == 0;) {
        uint32_t c;
        size_t len = utf8_decode(p + i, n - i, &c);
        if (len == 0) {               /* not UTF-8: keep the byte, never lose text */
            rc = rs_buf_putc(out, p[i]);
            i++;
            continue;
        }
        rc = utf8_put(out, upper_of(c));
        i += len;
    }
    return rc;
}

/* Append one component group (without its '=') trimmed: spaces at the ends, trailing '^'s. */
static int put_group(rs_buf *out, const char *g, size_t n)
{
    while (n && g[0] == ' ')
        g++, n--;
    while (n && (g[n - 1] == ' ' || g[n - 1] == '^'))
        n--;
    return store_norm_upper(g, n, out);
}

int store_norm_pn(const char *s, rs_buf *out)
{
    size_t start = out->len, keep = out->len; /* keep: length up to the last non-empty group */
    int rc = rs_buf_reserve(out, strlen(s) + 1);
    for (const char *g = s; rc == 0;) {
        const char *eq = strchr(g, '=');
        size_t n = eq ? (size_t)(eq - g) : strlen(g);
        if (g != s)
            rc = rs_buf_putc(out, '=');
        size_t before = out->len;
        if (rc == 0)
            rc = put_group(out, g, n);
        if (out->len > before)
            keep = out->len;
        if (!eq)
            break;
        g = eq + 1;
    }
    out->len = keep > start ? keep : start;
    if (out->p)
        out->p[out->len] = 0;
    return rc;
}

static int all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int store_norm_da(const char *s, char out[STORE_DA_LEN + 1])
{
    size_t n = strlen(s);
    if (n == 8 && all_digits(s, 8)) {
        memcpy(out, s, 8);
    } else if (n == 10 && s[4] == '.' && s[7] == '.' && all_digits(s, 4) && all_digits(s + 5, 2) &&
               all_digits(s + 8, 2)) {
        memcpy(out, s, 4);
        memcpy(out + 4, s + 5, 2);
        memcpy(out + 6, s + 8, 2);
    } else {
        return -1;
    }
    out[8] = 0;
    return 0;
}

int store_norm_tm(const char *s, int upper, char out[STORE_TM_LEN + 1])
{
    static const char lo[] = "000000.000000", hi[] = "235959.999999";
    char d[STORE_TM_LEN + 1];
    size_t k = 0;
    /* digits of HHMMSS, skipping ACR-NEMA colons, then an optional fraction */
    for (; *s && *s != '.' && k < 6; s++) {
        if (*s == ':')
            continue;
        if (*s < '0' || *s > '9')
            return -1;
        d[k++] = *s;
    }
    if (k == 0 || k % 2)
        return -1;
    size_t whole = k;
    if (*s == '.' && whole == 6) {
        d[k++] = '.';
        for (s++; *s >= '0' && *s <= '9' && k < STORE_TM_LEN; s++)
            d[k++] = *s;
    }
    if (*s && *s != ' ')
        return -1;
    memcpy(out, d, k);
    /* an upper bound given to the hour or minute covers that whole hour or minute */
    memcpy(out + k, (upper ? hi : lo) + k, STORE_TM_LEN - k);
    if (k == 7) /* "HHMMSS." with no digits */
        memcpy(out + 7, (upper ? hi : lo) + 7, STORE_TM_LEN - 7);
    out[STORE_TM_LEN] = 0;
    return 0;
}
