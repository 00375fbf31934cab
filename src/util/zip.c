/*
 * zip.c - see zip.h. APPNOTE.TXT 6.3: local header, data, data descriptor per entry; then the
 * central directory, [ZIP64 end record + locator], end record. Little endian throughout.
 */
#include "zip.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fdio.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_DESC 0x08074b50u
#define SIG_END 0x06054b50u
#define SIG_END64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define FLAG_DESC 0x0008
#define FLAG_UTF8 0x0800
#define MAX32 0xFFFFFFFFu
#define MAX_NAME 1023
#define OUT_CHUNK 65536

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

/* ---- writer --------------------------------------------------------------------------------- */

typedef struct zentry {
    char *name;
    uint16_t method, dtime, ddate;
    int zip64;
    uint32_t crc;
    uint64_t csize, usize, off;
} zentry;

struct zip_writer {
    zip_sink_fn sink;
    void *ctx;
    int force64;
    uint64_t off;
    zentry *e;
    size_t n, cap;
    int open;          /* an entry is being written */
    z_stream z;
    int z_init;
    uint8_t *zbuf;
};

uint64_t zip_writer_offset(const zip_writer *w)
{
    return w->off;
}

static int emit(zip_writer *w, const void *p, size_t n, rs_err *err)
{
    int rc = n ? w->sink(w->ctx, p, n) : RS_OK;
    if (rc)
        return rs_err_set(err, rc, "zip: the output refused %zu bytes", n);
    w->off += n;
    return RS_OK;
}

int zip_writer_new(zip_sink_fn sink, void *ctx, int force_zip64, zip_writer **out, rs_err *err)
{
    zip_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->zbuf = malloc(OUT_CHUNK))) {
        free(w);
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    w->sink = sink;
    w->ctx = ctx;
    w->force64 = force_zip64;
    *out = w;
    return RS_OK;
}

void zip_writer_free(zip_writer *w)
{
    if (!w)
        return;
    if (w->z_init)
        deflateEnd(&w->z);
    for (size_t i = 0; i < w->n; i++)
        free(w->e[i].name);
    free(w->e);
    free(w->zbuf);
    free(w);
}

static void dos_time(time_t t, uint16_t *dt, uint16_t *dd)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    if (tm.tm_year < 80) {
        *dt = 0;
        *dd = (1 << 5) | 1;
        return;
    }
    *dt = (uint16_t)(tm.tm_hour << 11 | tm.tm_min << 5 | tm.tm_sec / 2);
    *dd = (uint16_t)((tm.tm_year - 80) << 9 | (tm.tm_mon + 1) << 5 | tm.tm_mday);
}

int zip_entry_begin(zip_writer *w, const char *name, int method, time_t mtime, uint64_t size_hint, rs_err *err)
{
    size_t nl = strlen(name);
    if (w->open)
        return rs_err_set(err, RS_EINVAL, "zip: an entry is still open");
    if (!nl || nl > MAX_NAME || (method != ZIP_STORE && method != ZIP_DEFLATE))
        return rs_err_set(err, RS_EINVAL, "zip: bad entry name or method");
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        zentry *ne = realloc(w->e, cap * sizeof *ne);
        if (!ne)
            return rs_err_set(err, RS_ENOMEM, "out of memory");
        w->e = ne;
        w->cap = cap;
    }
    zentry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name)))
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    w->n++;
    e->method = (uint16_t)method;
    e->off = w->off;
    /* deflate may grow incompressible data a little: leave room */
    e->zip64 = w->force64 || size_hint == ZIP_SIZE_UNKNOWN || size_hint >= MAX32 - (MAX32 >> 8) ||
               w->off >= MAX32;
    dos_time(mtime, &e->dtime, &e->ddate);
    e->crc = (uint32_t)crc32(0, NULL, 0);
    if (method == ZIP_DEFLATE) {
        if (w->z_init)
            deflateReset(&w->z);
        else if (deflateInit2(&w->z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return rs_err_set(err, RS_ENOMEM, "zip: deflate init failed");
        w->z_init = 1;
    }
    uint8_t h[30 + 20];
    put32(h, SIG_LOCAL);
    put16(h + 4, e->zip64 ? 45 : 20);
    put16(h + 6, FLAG_DESC | FLAG_UTF8);
    put16(h + 8, e->method);
    put16(h + 10, e->dtime);
    put16(h + 12, e->ddate);
    put32(h + 14, 0);
    put32(h + 18, e->zip64 ? MAX32 : 0);
    put32(h + 22, e->zip64 ? MAX32 : 0);
    put16(h + 26, (uint16_t)nl);
    put16(h + 28, e->zip64 ? 20 : 0);
    if (e->zip64) { /* sizes follow in the descriptor; the extra says they are 8 bytes there */
        put16(h + 30, 0x0001);
        put16(h + 32, 16);
        put64(h + 34, 0);
        put64(h + 42, 0);
    }
    int rc = emit(w, h, 30, err);
    rc = rc ? rc : emit(w, name, nl, err);
    rc = rc ? rc : emit(w, h + 30, e->zip64 ? 20 : 0, err);
    w->open = rc == RS_OK;
    return rc;
}

static int deflate_out(zip_writer *w, zentry *e, int flush, rs_err *err)
{
    int zr;
    do {
        w->z.next_out = w->zbuf;
        w->z.avail_out = OUT_CHUNK;
        zr = deflate(&w->z, flush);
        if (zr == Z_STREAM_ERROR)
            return rs_err_set(err, RS_EIO, "zip: deflate failed");
        size_t got = OUT_CHUNK - w->z.avail_out;
        e->csize += got;
        int rc = emit(w, w->zbuf, got, err);
        if (rc)
            return rc;
    } while (w->z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
    return RS_OK;
}

int zip_entry_write(zip_writer *w, const void *p, size_t n, rs_err *err)
{
    if (!w->open)
        return rs_err_set(err, RS_EINVAL, "zip: no open entry");
    zentry *e = &w->e[w->n - 1];
    const uint8_t *s = p;
    while (n) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        e->crc = (uint32_t)crc32(e->crc, s, chunk);
        e->usize += chunk;
        int rc;
        if (e->method == ZIP_STORE) {
            e->csize += chunk;
            rc = emit(w, s, chunk, err);
        } else {
            w->z.next_in = (Bytef *)s;
            w->z.avail_in = chunk;
            rc = deflate_out(w, e, Z_NO_FLUSH, err);
        }
        if (rc)
            return rc;
        s += chunk;
        n -= chunk;
    }
    return RS_OK;
}

int zip_entry_end(zip_writer *w, rs_err *err)
{
    if (!w->open)
        return rs_err_set(err, RS_EINVAL, "zip: no open entry");
    zentry *e = &w->e[w->n - 1];
    w->open = 0;
    int rc = e->method == ZIP_DEFLATE ? deflate_out(w, e, Z_FINISH, err) : RS_OK;
    if (rc)
        return rc;
    if (!e->zip64 && (e->csize >= MAX32 || e->usize >= MAX32))
        return rs_err_set(err, RS_ELIMIT, "zip: entry %s grew past its announced size", e->name);
    uint8_t d[24];
    put32(d, SIG_DESC);
    put32(d + 4, e->crc);
    if (e->zip64) {
        put64(d + 8, e->csize);
        put64(d + 16, e->usize);
    } else {
        put32(d + 8, (uint32_t)e->csize);
        put32(d + 12, (uint32_t)e->usize);
    }
    return emit(w, d, e->zip64 ? 24 : 16, err);
}

static int central_entry(zip_writer *w, const zentry *e, rs_err *err)
{
    int big = e->zip64 || e->off >= MAX32;
    size_t nl = strlen(e->name);
    uint8_t h[46], x[28];
    put32(h, SIG_CENTRAL);
    put16(h + 4, 3 << 8 | 45); /* made by: Unix */
    put16(h + 6, big ? 45 : 20);
    put16(h + 8, FLAG_DESC | FLAG_UTF8);
    put16(h + 10, e->method);
    put16(h + 12, e->dtime);
    put16(h + 14, e->ddate);
    put32(h + 16, e->crc);
    put32(h + 20, big ? MAX32 : (uint32_t)e->csize);
    put32(h + 24, big ? MAX32 : (uint32_t)e->usize);
    put16(h + 28, (uint16_t)nl);
    put16(h + 30, big ? 28 : 0);
    put16(h + 32, 0);
    put16(h + 34, 0);
    put16(h + 36, 0);
    put32(h + 38, (uint32_t)0100644 << 16);
    put32(h + 42, big ? MAX32 : (uint32_t)e->off);
    put16(x, 0x0001);
    put16(x + 2, 24);
    put64(x + 4, e->usize);
    put64(x + 12, e->csize);
    put64(x + 20, e->off);
    int rc = emit(w, h, sizeof h, err);
    rc = rc ? rc : emit(w, e->name, nl, err);
    return rc ? rc : emit(w, x, big ? sizeof x : 0, err);
}

int zip_writer_finish(zip_writer *w, rs_err *err)
{
    if (w->open)
        return rs_err_set(err, RS_EINVAL, "zip: an entry is still open");
    uint64_t cd = w->off;
    int rc = RS_OK;
    for (size_t i = 0; i < w->n && rc == RS_OK; i++)
        rc = central_entry(w, &w->e[i], err);
    if (rc)
        return rc;
    uint64_t cdlen = w->off - cd, end64 = w->off;
    int big = w->force64 || w->n >= 0xFFFF || cd >= MAX32 || cdlen >= MAX32;
    if (big) {
        uint8_t r[56 + 20];
        put32(r, SIG_END64);
        put64(r + 4, 44);
        put16(r + 12, 3 << 8 | 45);
        put16(r + 14, 45);
        put32(r + 16, 0);
        put32(r + 20, 0);
        put64(r + 24, w->n);
        put64(r + 32, w->n);
        put64(r + 40, cdlen);
        put64(r + 48, cd);
        put32(r + 56, SIG_LOC64);
        put32(r + 60, 0);
        put64(r + 64, end64);
        put32(r + 72, 1);
        rc = emit(w, r, sizeof r, err);
    }
    uint8_t e[22];
    put32(e, SIG_END);
    put16(e + 4, 0);
    put16(e + 6, 0);
    put16(e + 8, big ? 0xFFFF : (uint16_t)w->n);
    put16(e + 10, big ? 0xFFFF : (uint16_t)w->n);
    put32(e + 12, big ? MAX32 : (uint32_t)cdlen);
    put32(e + 16, big ? MAX32 : (uint32_t)cd);
    put16(e + 20, 0);
    return rc ? rc : emit(w, e, sizeof e, err);
}

/* ---- reader --------------------------------------------------------------------------------- */

struct zip_reader {
    int fd;
    uint64_t size;
    zip_limits lim;
    zip_entry_info *e;
    size_t n;
    uint64_t extracted;  /* running total of inflated bytes */
};

size_t zip_reader_count(const zip_reader *r) { return r->n; }
const zip_entry_info *zip_reader_entry(const zip_reader *r, size_t i) { return i < r->n ? &r->e[i] : NULL; }

void zip_reader_close(zip_reader *r)
{
    if (!r)
        return;
    free(r->e);
    free(r);
}

/* The end record (and its ZIP64 twin): where the central directory is and how many entries. */
static int find_end(zip_reader *r, uint64_t *cd, uint64_t *cdlen, uint64_t *count, rs_err *err)
{
    size_t tail = r->size < 65557 ? (size_t)r->size : 65557;
    if (tail < 22)
        return rs_err_set(err, RS_EFORMAT, "zip: too short");
    uint8_t *b = malloc(tail);
    if (!b)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    int rc = rs_pread_all(r->fd, b, tail, r->size - tail) ? rs_err_set(err, RS_EIO, "zip: cannot read") : RS_OK;
    size_t at = (size_t)-1;
    for (size_t i = tail - 22; rc == RS_OK && i + 1 > 0; i--)
        if (get32(b + i) == SIG_END && i + 22 + get16(b + i + 20) == tail) {
            at = i;
            break;
        }
    if (rc == RS_OK && at == (size_t)-1)
        rc = rs_err_set(err, RS_EFORMAT, "zip: no end of central directory");
    if (rc == RS_OK) {
        *count = get16(b + at + 10);
        *cdlen = get32(b + at + 12);
        *cd = get32(b + at + 16);
        if ((*count == 0xFFFF || *cdlen == MAX32 || *cd == MAX32) && at >= 20 && get32(b + at - 20) == SIG_LOC64) {
            uint8_t r64[56];
            uint64_t off64 = get64(b + at - 20 + 8);
            if (off64 + 56 > r->size || rs_pread_all(r->fd, r64, 56, off64) || get32(r64) != SIG_END64)
                rc = rs_err_set(err, RS_EFORMAT, "zip: bad ZIP64 end record");
            else {
                *count = get64(r64 + 32);
                *cdlen = get64(r64 + 40);
                *cd = get64(r64 + 48);
            }
        }
    }
    if (rc == RS_OK && (*cd > r->size || *cdlen > r->size - *cd))
        rc = rs_err_set(err, RS_EFORMAT, "zip: central directory outside the file");
    free(b);
    return rc;
}

static void zip64_extra(zip_entry_info *e, const uint8_t *x, size_t n)
{
    while (n >= 4) {
        uint16_t id = get16(x), len = get16(x + 2);
        if ((size_t)len + 4 > n)
            return;
        if (id == 0x0001) {
            const uint8_t *v = x + 4;
            size_t left = len;
            if (e->usize == MAX32 && left >= 8) { e->usize = get64(v); v += 8; left -= 8; }
            if (e->csize == MAX32 && left >= 8) { e->csize = get64(v); v += 8; left -= 8; }
            if (e->local_off == MAX32 && left >= 8) e->local_off = get64(v);
            return;
        }
        x += 4 + len;
        n -= 4 + (size_t)len;
    }
}

static unsigned depth(const char *name)
{
    unsigned d = 1;
    for (; *name; name++)
        d += *name == '/' || *name == '\\';
    return d;
}

static int check_entry(const zip_reader *r, const zip_entry_info *e, uint64_t *total, rs_err *err)
{
    /* a directory entry still declares sizes, and extraction honours them: the size limits
       apply to it as to a file (only the depth of a name that holds no data is let go) */
    if (!e->is_dir && depth(e->name) > r->lim.max_depth)
        return rs_err_set(err, RS_ELIMIT, "zip: %s: more than %u path levels", e->name, r->lim.max_depth);
    if (e->usize > r->lim.max_entry)
        return rs_err_set(err, RS_ELIMIT, "zip: %s: %llu bytes uncompressed, over the %llu cap", e->name,
                          (unsigned long long)e->usize, (unsigned long long)r->lim.max_entry);
    if (e->usize > 1024 && e->usize / (e->csize ? e->csize : 1) > r->lim.max_ratio)
        return rs_err_set(err, RS_ELIMIT, "zip: %s: compression ratio over %u:1 (a zip bomb?)", e->name,
                          r->lim.max_ratio);
    *total += e->usize;
    if (*total > r->lim.max_total)
        return rs_err_set(err, RS_ELIMIT, "zip: more than %llu bytes uncompressed in all",
                          (unsigned long long)r->lim.max_total);
    return RS_OK;
}

static int read_central(zip_reader *r, const uint8_t *cd, uint64_t len, uint64_t count, rs_err *err)
{
    uint64_t p = 0, total = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (p + 46 > len || get32(cd + p) != SIG_CENTRAL)
            return rs_err_set(err, RS_EFORMAT, "zip: bad central directory entry %llu", (unsigned long long)i);
        uint16_t nl = get16(cd + p + 28), xl = get16(cd + p + 30), cl = get16(cd + p + 32);
        if (p + 46 + nl + xl + cl > len)
            return rs_err_set(err, RS_EFORMAT, "zip: central directory entry past its end");
        zip_entry_info *e = &r->e[r->n++];
        memset(e, 0, sizeof *e);
        e->flags = get16(cd + p + 8);
        e->method = get16(cd + p + 10);
        e->crc = get32(cd + p + 16);
        e->csize = get32(cd + p + 20);
        e->usize = get32(cd + p + 24);
        e->local_off = get32(cd + p + 42);
        size_t copy = nl < sizeof e->name ? nl : sizeof e->name - 1;
        memcpy(e->name, cd + p + 46, copy);
        for (size_t k = 0; k < copy; k++)
            if (e->name[k] == 0 || (unsigned char)e->name[k] < 0x20)
                e->name[k] = '?'; /* names only go into reports: keep them printable */
        e->is_dir = nl && cd[p + 46 + nl - 1] == '/';
        zip64_extra(e, cd + p + 46 + nl, xl);
        int rc = check_entry(r, e, &total, err);
        if (rc)
            return rc;
        p += 46 + (uint64_t)nl + xl + cl;
    }
    return RS_OK;
}

typedef struct span {
    uint64_t off, end;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Entries whose data overlap are refused: central entries sharing one compressed stream turn a
   small file into max_total of output (the overlapping-file bomb) and no zipper writes them.
   Each entry spans at least its 30-byte local header and its compressed data. */
static int check_overlap(const zip_reader *r, rs_err *err)
{
    if (r->n < 2)
        return RS_OK;
    span *s = malloc(r->n * sizeof *s);
    if (!s)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    for (size_t i = 0; i < r->n; i++) {
        s[i].off = r->e[i].local_off;
        s[i].end = r->e[i].csize > UINT64_MAX - 30 - s[i].off ? UINT64_MAX : s[i].off + 30 + r->e[i].csize;
    }
    qsort(s, r->n, sizeof *s, span_cmp);
    int rc = RS_OK;
    for (size_t i = 1; i < r->n && rc == RS_OK; i++)
        if (s[i].off < s[i - 1].end)
            rc = rs_err_set(err, RS_ELIMIT, "zip: entries overlap at offset %llu (a zip bomb?)",
                            (unsigned long long)s[i].off);
    free(s);
    return rc;
}

int zip_reader_open(int fd, const zip_limits *lim, zip_reader **out, rs_err *err)
{
    struct stat st;
    *out = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return rs_err_set(err, RS_EINVAL, "zip: not a regular file");
    zip_reader *r = calloc(1, sizeof *r);
    if (!r)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    r->fd = fd;
    r->size = (uint64_t)st.st_size;
    r->lim = lim ? *lim : (zip_limits){0};
    if (!r->lim.max_entries) r->lim.max_entries = 10000;
    if (!r->lim.max_total) r->lim.max_total = 4ull << 30;
    if (!r->lim.max_entry) r->lim.max_entry = 1ull << 30;
    if (!r->lim.max_ratio) r->lim.max_ratio = 200;
    if (!r->lim.max_depth) r->lim.max_depth = 16;
    uint64_t cd = 0, cdlen = 0, count = 0;
    uint8_t *buf = NULL;
    int rc = find_end(r, &cd, &cdlen, &count, err);
    if (rc == RS_OK && count > r->lim.max_entries)
        rc = rs_err_set(err, RS_ELIMIT, "zip: %llu entries, over the %u cap", (unsigned long long)count,
                        r->lim.max_entries);
    if (rc == RS_OK && count > cdlen / 46)
        rc = rs_err_set(err, RS_EFORMAT, "zip: entry count larger than the central directory");
    if (rc == RS_OK && (!(buf = malloc(cdlen ? cdlen : 1)) || !(r->e = calloc(count ? count : 1, sizeof *r->e))))
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
    if (rc == RS_OK && cdlen && rs_pread_all(fd, buf, cdlen, cd))
        rc = rs_err_set(err, RS_EIO, "zip: cannot read the central directory");
    if (rc == RS_OK)
        rc = read_central(r, buf, cdlen, count, err);
    if (rc == RS_OK)
        rc = check_overlap(r, err);
    free(buf);
    if (rc) {
        zip_reader_close(r);
        return rc;
    }
    *out = r;
    return RS_OK;
}

static int inflate_entry(zip_reader *r, const zip_entry_info *e, uint64_t data_off, rs_buf *out, rs_err *err)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK)
        return rs_err_set(err, RS_ENOMEM, "zip: inflate init failed");
    uint8_t in[OUT_CHUNK];
    uint64_t left = e->csize, off = data_off;
    int rc = RS_OK, zr = Z_OK;
    while (rc == RS_OK && zr != Z_STREAM_END) {
        size_t want = left < sizeof in ? (size_t)left : sizeof in;
        if (!want) {
            rc = rs_err_set(err, RS_EFORMAT, "zip: %s: deflate stream cut short", e->name);
            break;
        }
        if (rs_pread_all(r->fd, in, want, off)) {
            rc = rs_err_set(err, RS_EFORMAT, "zip: %s: data past the end of the file", e->name);
            break;
        }
        off += want;
        left -= want;
        z.next_in = in;
        z.avail_in = (uInt)want;
        while (rc == RS_OK && z.avail_in && zr != Z_STREAM_END) {
            /* never more than declared: the declared size passed the limits */
            size_t room = (size_t)(e->usize - out->len);
            uint8_t tmp[OUT_CHUNK];
            z.next_out = tmp;
            z.avail_out = sizeof tmp;
            zr = inflate(&z, Z_NO_FLUSH);
            if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
                rc = rs_err_set(err, RS_EFORMAT, "zip: %s: bad deflate data", e->name);
            size_t got = sizeof tmp - z.avail_out;
            if (rc == RS_OK && got > room)
                rc = rs_err_set(err, RS_ELIMIT, "zip: %s inflates past its declared size (a zip bomb?)", e->name);
            if (rc == RS_OK && rs_buf_append(out, tmp, got))
                rc = rs_err_set(err, RS_ENOMEM, "out of memory");
            if (zr == Z_BUF_ERROR && !got)
                break;
        }
    }
    inflateEnd(&z);
    return rc;
}

int zip_reader_extract(zip_reader *r, size_t i, rs_buf *out, rs_err *err)
{
    rs_buf_reset(out);
    if (i >= r->n)
        return rs_err_set(err, RS_EINVAL, "zip: no entry %zu", i);
    const zip_entry_info *e = &r->e[i];
    uint8_t h[30];
    if (e->flags & 0x0001)
        return rs_err_set(err, RS_EUNSUPPORTED, "zip: %s is encrypted", e->name);
    if (e->method != ZIP_STORE && e->method != ZIP_DEFLATE)
        return rs_err_set(err, RS_EUNSUPPORTED, "zip: %s: compression method %u", e->name, e->method);
    if (r->extracted + e->usize > r->lim.max_total)
        return rs_err_set(err, RS_ELIMIT, "zip: total extracted size over the cap");
    if (e->local_off + 30 > r->size || rs_pread_all(r->fd, h, 30, e->local_off) || get32(h) != SIG_LOCAL)
        return rs_err_set(err, RS_EFORMAT, "zip: %s: bad local header", e->name);
    uint64_t data = e->local_off + 30 + get16(h + 26) + get16(h + 28);
    if (data > r->size || e->csize > r->size - data)
        return rs_err_set(err, RS_EFORMAT, "zip: %s: data outside the file", e->name);
    if (rs_buf_reserve(out, (size_t)e->usize + 1))
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    int rc;
    if (e->method == ZIP_STORE) {
        if (e->csize != e->usize)
            return rs_err_set(err, RS_EFORMAT, "zip: %s: stored sizes differ", e->name);
        rc = rs_pread_all(r->fd, out->p, (size_t)e->usize, data) ? rs_err_set(err, RS_EIO, "zip: read failed")
                                                                  : RS_OK;
        if (rc == RS_OK) {
            out->len = (size_t)e->usize;
            out->p[out->len] = 0;
        }
    } else {
        rc = inflate_entry(r, e, data, out, err);
    }
    if (rc == RS_OK && out->len != e->usize)
        rc = rs_err_set(err, RS_EFORMAT, "zip: %s: %zu bytes, %llu declared", e->name, out->len,
                        (unsigned long long)e->usize);
    if (rc == RS_OK && (uint32_t)crc32(0, out->p, (uInt)out->len) != e->crc)
        rc = rs_err_set(err, RS_EFORMAT, "zip: %s: CRC mismatch", e->name);
    r->extracted += out->len;
    return rc;
}
