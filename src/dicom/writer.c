/* writer.c - dataset model -> DICOM bytes (see writer.h). */
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "../util/fdio.h"

typedef struct enc {
    int explicit_vr;
    int big_endian;
} enc;

typedef struct wr {
    dcm_file *f;
    rs_buf *out;
    rs_err *err;
    int explicit_out;     /* the dataset is written with explicit VRs */
} wr;

static int elem_size(const wr *w, const dcm_elem *e, enc c, uint64_t *size);

/* The VR to put in the stream for e. */
static uint16_t out_vr(const wr *w, const dcm_elem *e)
{
    /* a UN stays UN: the dictionary's guess is good for reading it, not for asserting it */
    if ((e->flags & DCM_EF_VR_WAS_UN) && w->explicit_out)
        return DCM_VR_UN;
    if (e->vr == DCM_VR_NONE || !dcm_vr_is_valid(e->vr))
        return DCM_VR_UN;
    return e->vr;
}

/* Items of a UN written as UN are implicit VR little endian (PS3.5 6.2.2). */
static enc child_enc(const wr *w, const dcm_elem *e, enc c)
{
    if (out_vr(w, e) == DCM_VR_UN) {
        c.explicit_vr = 0;
        c.big_endian = 0;
    }
    return c;
}

static uint32_t header_size(uint16_t vr, enc c)
{
    if (!c.explicit_vr)
        return 8;
    const dcm_vr_info *vi = dcm_vr_info_get(vr);
    return (vi && vi->long_len) ? 12 : 8;
}

static uint32_t padded(uint32_t n) { return n + (n & 1); }

static int items_size(const wr *w, const dcm_ds *ds, enc c, uint64_t *size)
{
    uint64_t s = 0;
    for (uint32_t i = 0; i < ds->n; i++) {
        uint64_t es;
        int rc = elem_size(w, &ds->e[i], c, &es);
        if (rc)
            return rc;
        s += es;
    }
    *size = s;
    return RS_OK;
}

/* Bytes of the value part of an SQ (items and delimiters). */
static int seq_value_size(const wr *w, const dcm_elem *e, enc c, uint64_t *size)
{
    enc ic = child_enc(w, e, c);
    uint64_t s = 0;
    for (uint32_t k = 0; k < e->v.sq.n; k++) {
        const dcm_ds *it = e->v.sq.items[k];
        uint64_t is;
        int rc = items_size(w, it, ic, &is);
        if (rc)
            return rc;
        s += 8 + is + (it->item_len == DCM_UNDEF_LEN ? 8 : 0);
    }
    if (e->flags & DCM_EF_UNDEF_LEN)
        s += 8;
    *size = s;
    return RS_OK;
}

/*
 * (gggg,0000) group lengths are recomputed and always written as one UL, whatever was read: a
 * 3-byte one padded to 4 would otherwise become a group length only on the next read, and one
 * read as UN would be counted with a UN header while written with a UL header.
 */
static int is_group_length(const dcm_elem *e)
{
    return DCM_TAG_ELEM(e->tag) == 0 && e->vr == DCM_VR_UL && !(e->flags & DCM_EF_ENCAPS);
}

static int elem_size(const wr *w, const dcm_elem *e, enc c, uint64_t *size)
{
    uint16_t vr = out_vr(w, e);
    uint64_t v;
    if (is_group_length(e)) {
        *size = header_size(DCM_VR_UL, c) + 4;
        return RS_OK;
    }
    if (e->vr == DCM_VR_SQ) {
        int rc = seq_value_size(w, e, c, &v);
        if (rc)
            return rc;
        vr = vr == DCM_VR_UN ? DCM_VR_UN : DCM_VR_SQ;
    } else if (e->flags & DCM_EF_ENCAPS) {
        v = 8;
        for (uint32_t k = 0; k < e->v.px.n; k++)
            v += 8 + padded(e->v.px.frags[k].len);
    } else {
        v = padded(e->len);
    }
    *size = header_size(vr, c) + v;
    return RS_OK;
}

/* ---- output ----------------------------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v, int be)
{
    if (be) {
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
    } else {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
    }
}

static void put32(uint8_t *p, uint32_t v, int be)
{
    if (be) {
        put16(p, (uint16_t)(v >> 16), 1);
        put16(p + 2, (uint16_t)v, 1);
    } else {
        put16(p, (uint16_t)v, 0);
        put16(p + 2, (uint16_t)(v >> 16), 0);
    }
}

static int put_header(wr *w, uint32_t tag, uint16_t vr, uint64_t len, enc c)
{
    uint8_t h[12];
    put16(h, DCM_TAG_GROUP(tag), c.big_endian);
    put16(h + 2, DCM_TAG_ELEM(tag), c.big_endian);
    if (len > DCM_UNDEF_LEN)
        return rs_err_set(w->err, RS_ELIMIT, "(%04X,%04X) is too long to encode", DCM_TAG_GROUP(tag),
                          DCM_TAG_ELEM(tag));
    if (!c.explicit_vr || DCM_TAG_GROUP(tag) == 0xFFFE) {
        put32(h + 4, (uint32_t)len, c.big_endian);
        return rs_buf_append(w->out, h, 8);
    }
    h[4] = (uint8_t)(vr >> 8);
    h[5] = (uint8_t)vr;
    if (header_size(vr, c) == 12) {
        h[6] = h[7] = 0;
        put32(h + 8, (uint32_t)len, c.big_endian);
        return rs_buf_append(w->out, h, 12);
    }
    if (len > 0xFFFF)
        return rs_err_set(w->err, RS_ELIMIT, "(%04X,%04X) value of %llu bytes does not fit VR %c%c",
                          DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag), (unsigned long long)len, vr >> 8, vr & 0xff);
    put16(h + 6, (uint16_t)len, c.big_endian);
    return rs_buf_append(w->out, h, 8);
}

static int put_value(wr *w, const dcm_elem *e, const uint8_t *p, uint32_t n, uint16_t vr, enc c)
{
    size_t at = w->out->len;
    int rc = rs_buf_append(w->out, p, n);
    if (rc)
        return rc;
    if (c.big_endian)
        dcm_swap_value(vr == DCM_VR_UN ? e->vr : vr, w->out->p + at, n);
    if (n & 1) {
        const dcm_vr_info *vi = dcm_vr_info_get(e->vr);
        rc = rs_buf_putc(w->out, vi ? vi->pad : 0);
    }
    return rc;
}

static int write_ds(wr *w, dcm_ds *ds, enc c);

static int write_group_length(wr *w, dcm_ds *ds, uint32_t i, enc c)
{
    uint64_t total = 0;
    uint16_t g = DCM_TAG_GROUP(ds->e[i].tag);
    for (uint32_t k = i + 1; k < ds->n && DCM_TAG_GROUP(ds->e[k].tag) == g; k++) {
        uint64_t s;
        int rc = elem_size(w, &ds->e[k], c, &s);
        if (rc)
            return rc;
        total += s;
    }
    int rc = put_header(w, ds->e[i].tag, DCM_VR_UL, 4, c);
    uint8_t v[4];
    put32(v, (uint32_t)total, c.big_endian);
    return rc ? rc : rs_buf_append(w->out, v, 4);
}

static int write_elem(wr *w, dcm_ds *ds, uint32_t i, enc c)
{
    dcm_elem *e = &ds->e[i];
    uint16_t vr = out_vr(w, e);
    int rc;
    if (is_group_length(e))
        return write_group_length(w, ds, i, c);
    if (e->vr == DCM_VR_SQ) {
        uint64_t v;
        rc = seq_value_size(w, e, c, &v);
        if (rc)
            return rc;
        int undef = (e->flags & DCM_EF_UNDEF_LEN) != 0;
        rc = put_header(w, e->tag, vr == DCM_VR_UN ? DCM_VR_UN : DCM_VR_SQ, undef ? DCM_UNDEF_LEN : v, c);
        enc ic = child_enc(w, e, c);
        for (uint32_t k = 0; k < e->v.sq.n && rc == RS_OK; k++) {
            dcm_ds *it = e->v.sq.items[k];
            uint64_t is;
            rc = items_size(w, it, ic, &is);
            int iundef = it->item_len == DCM_UNDEF_LEN;
            if (rc == RS_OK)
                rc = put_header(w, DCM_TAG_ITEM, 0, iundef ? DCM_UNDEF_LEN : is, ic);
            if (rc == RS_OK)
                rc = write_ds(w, it, ic);
            if (rc == RS_OK && iundef)
                rc = put_header(w, DCM_TAG_ITEM_DELIM, 0, 0, ic);
        }
        if (rc == RS_OK && undef)
            rc = put_header(w, DCM_TAG_SEQ_DELIM, 0, 0, c);
        return rc;
    }
    if (e->flags & DCM_EF_BULK) {
        rc = dcm_file_load(w->f, e, w->err);
        if (rc)
            return rc;
    }
    if (e->flags & DCM_EF_ENCAPS) {
        rc = put_header(w, e->tag, vr == DCM_VR_OW ? DCM_VR_OW : DCM_VR_OB, DCM_UNDEF_LEN, c);
        for (uint32_t k = 0; k < e->v.px.n && rc == RS_OK; k++) {
            const dcm_frag *fr = &e->v.px.frags[k];
            rc = put_header(w, DCM_TAG_ITEM, 0, padded(fr->len), c);
            if (rc == RS_OK)
                rc = rs_buf_append(w->out, fr->bytes, fr->len);
            if (rc == RS_OK && (fr->len & 1))
                rc = rs_buf_putc(w->out, 0);
        }
        return rc ? rc : put_header(w, DCM_TAG_SEQ_DELIM, 0, 0, c);
    }
    rc = put_header(w, e->tag, vr, padded(e->len), c);
    return rc ? rc : put_value(w, e, e->v.bytes ? e->v.bytes : (const uint8_t *)"", e->len, vr, c);
}

static int write_ds(wr *w, dcm_ds *ds, enc c)
{
    for (uint32_t i = 0; i < ds->n; i++) {
        /* group 0002 belongs to the file meta information only (PS3.10 7.1): written after the
           meta group, such elements would be read back as part of it */
        if (ds == w->f->ds && DCM_TAG_GROUP(ds->e[i].tag) == 0x0002)
            continue;
        int rc = write_elem(w, ds, i, c);
        if (rc)
            return rc == RS_ENOMEM ? rs_err_set(w->err, rc, "out of memory encoding the dataset") : rc;
    }
    return RS_OK;
}

/* ---- meta and file ---------------------------------------------------------------------------- */

static int copy_uid(dcm_file *f, uint32_t from, uint32_t to)
{
    char uid[80];
    int n = dcm_ds_get_str(f->ds, from, 0, uid, sizeof uid);
    if (n <= 0)
        return RS_ENOTFOUND;
    return dcm_ds_set_str(f->meta, to, DCM_VR_UI, uid);
}

/* UI values are padded with NUL to even length (PS3.5 9.1); set_str leaves that to the writer. */
int dcm_meta_complete(dcm_file *f, const dcm_ts *ts, rs_err *err)
{
    int rc = RS_OK;
    if (!dcm_ds_find(f->meta, DCM_TAG(0x0002, 0x0001))) {
        static const uint8_t version[2] = {0, 1};
        rc = dcm_ds_set_bytes(f->meta, DCM_TAG(0x0002, 0x0001), DCM_VR_OB, version, 2);
    }
    if (rc == RS_OK && !dcm_ds_find(f->meta, DCM_TAG_MEDIA_SOP_CLASS))
        copy_uid(f, DCM_TAG_SOP_CLASS_UID, DCM_TAG_MEDIA_SOP_CLASS);
    if (rc == RS_OK && !dcm_ds_find(f->meta, DCM_TAG_MEDIA_SOP_INSTANCE))
        copy_uid(f, DCM_TAG_SOP_INSTANCE_UID, DCM_TAG_MEDIA_SOP_INSTANCE);
    char cur[68];
    if (rc == RS_OK && (dcm_ds_get_str(f->meta, DCM_TAG_TRANSFER_SYNTAX, 0, cur, sizeof cur) < 0 ||
                        strcmp(cur, ts->uid) != 0) && ts->uid[0])
        rc = dcm_ds_set_str(f->meta, DCM_TAG_TRANSFER_SYNTAX, DCM_VR_UI, ts->uid);
    if (rc == RS_OK && !dcm_ds_find(f->meta, DCM_TAG_IMPL_CLASS_UID)) {
        rc = dcm_ds_set_str(f->meta, DCM_TAG_IMPL_CLASS_UID, DCM_VR_UI, DCM_IMPL_CLASS_UID);
        if (rc == RS_OK)
            rc = dcm_ds_set_str(f->meta, DCM_TAG_IMPL_VERSION, DCM_VR_SH, DCM_IMPL_VERSION);
    }
    if (rc == RS_OK && !dcm_ds_find(f->meta, DCM_TAG_META_GROUP_LENGTH)) {
        static const uint8_t zero[4];
        rc = dcm_ds_set_bytes(f->meta, DCM_TAG_META_GROUP_LENGTH, DCM_VR_UL, zero, 4);
    }
    return rc ? rs_err_set(err, rc, "cannot build the file meta information") : RS_OK;
}

static int deflate_tail(rs_buf *out, size_t from, rs_err *err)
{
    size_t n = out->len - from;
    uLong bound = compressBound((uLong)n);
    uint8_t *tmp = malloc(bound + 16);
    if (!tmp)
        return rs_err_set(err, RS_ENOMEM, "out of memory deflating");
    z_stream zs = {0};
    int rc = RS_OK;
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(tmp);
        return rs_err_set(err, RS_ENOMEM, "cannot start zlib deflater");
    }
    zs.next_in = out->p + from;
    zs.avail_in = (uInt)n;
    zs.next_out = tmp;
    zs.avail_out = (uInt)(bound + 16);
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
        rc = rs_err_set(err, RS_EIO, "deflate failed");
    size_t outn = zs.total_out;
    deflateEnd(&zs);
    if (rc == RS_OK) {
        out->len = from;
        rc = rs_buf_append(out, tmp, outn);
        if (rc == RS_OK && (outn & 1))
            rc = rs_buf_putc(out, 0);
    }
    free(tmp);
    return rc;
}

int dcm_write(dcm_file *f, const dcm_write_opts *o, rs_buf *out, rs_err *err)
{
    static const dcm_write_opts defaults;
    if (!o)
        o = &defaults;
    const dcm_ts *ts = o->ts ? o->ts : f->ts;
    if (ts->encapsulated != f->ts->encapsulated && dcm_ds_find(f->ds, DCM_TAG_PIXEL_DATA))
        return rs_err_set(err, RS_EUNSUPPORTED, "cannot change pixel data encoding from %s to %s here",
                          f->ts->name, ts->name);
    wr w = {.f = f, .out = out, .err = err, .explicit_out = ts->explicit_vr};
    int rc = RS_OK;
    if (!o->no_meta) {
        rc = dcm_meta_complete(f, ts, err);
        if (rc)
            return rc;
        if (!o->no_preamble) {
            uint8_t pre[132] = {0};
            if (o->keep_preamble && f->has_preamble)
                memcpy(pre, f->preamble, 128);
            memcpy(pre + 128, "DICM", 4);
            rc = rs_buf_append(out, pre, sizeof pre);
        }
        enc mc = {1, 0};
        wr mw = w;
        mw.explicit_out = 1; /* meta is always explicit VR LE */
        if (rc == RS_OK)
            rc = write_ds(&mw, f->meta, mc);
        if (rc)
            return rc == RS_ENOMEM ? rs_err_set(err, rc, "out of memory") : rc;
    }
    enc c = {ts->explicit_vr, ts->big_endian};
    size_t start = out->len;
    rc = write_ds(&w, f->ds, c);
    if (rc == RS_OK && ts->deflated)
        rc = deflate_tail(out, start, err);
    return rc;
}

int dcm_write_path(dcm_file *f, const dcm_write_opts *o, const char *path, rs_err *err)
{
    rs_buf b = RS_BUF_INIT;
    int rc = dcm_write(f, o, &b, err);
    rc = rc ? rc : dcm_write_bytes_path(&b, path, err);
    rs_buf_free(&b);
    return rc;
}

int dcm_write_bytes_path(const rs_buf *b, const char *path, rs_err *err)
{
    int rc = RS_OK;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    snprintf(tmp, plen + 16, "%s.tmp%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = rs_err_set(err, RS_EIO, "%s: %s", tmp, strerror(errno));
    } else {
        if (rs_write_all(fd, b->p, b->len) != RS_OK || fsync(fd) != 0)
            rc = rs_err_set(err, RS_EIO, "%s: %s", tmp, strerror(errno));
        if (close(fd) != 0 && rc == RS_OK)
            rc = rs_err_set(err, RS_EIO, "%s: %s", tmp, strerror(errno));
        if (rc == RS_OK && rename(tmp, path) != 0)
            rc = rs_err_set(err, RS_EIO, "%s: %s", path, strerror(errno));
        if (rc)
            unlink(tmp);
    }
    free(tmp);
    return rc;
}
