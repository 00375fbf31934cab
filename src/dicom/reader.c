/*
 * reader.c - the Part 10 / raw dataset parser (see reader.h).
 *
 * One recursive-descent pass: dataset -> elements -> (sequence -> items -> dataset) with the
 * encoding (explicit/implicit VR, byte order) carried in the reader state, because a UN
 * sequence switches to implicit VR little endian for its items (PS3.5 6.2.2) and broken files
 * switch on their own. Errors unwind through the return code; nothing is freed on the way
 * because the arena owns everything and the caller frees the file once.
 */
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dict.h"

#define DEFAULT_MAX_VALUE (1024u * 1024u * 1024u)
#define DEFAULT_MAX_MEMORY ((size_t)2 * 1024 * 1024 * 1024)
#define DEFAULT_MAX_DEPTH 64
#define MAX_ITEMS_PER_SEQ 10000000u
/* elements moved to insert out-of-order ones, per file (about 40 bytes each) */
#define MAX_SHIFTED_ELEMS (16u * 1024u * 1024u)

typedef struct rd {
    dcm_in *in;
    dcm_file *f;
    const dcm_read_opts *o;
    rs_err *err;
    uint32_t max_value;
    unsigned max_depth;
    int explicit_vr;
    int big_endian;
    int bulk_ok;      /* the input allows reading values back later */
    int stopped;      /* stop_tag reached */
    uint64_t shifted; /* elements moved so far to insert out-of-order ones */
    int went_explicit; /* sniff_encoding switched a dataset from implicit to explicit VR */
} rd;

/* parse_ds outcomes besides errors */
enum { DS_END = 1, DS_ITEM_DELIM = 2, DS_SEQ_DELIM = 3, DS_TRUNC = 4 };

static int parse_ds(rd *r, dcm_ds *ds, uint64_t end, unsigned depth);

static uint16_t u16(const rd *r, const uint8_t *p)
{
    return r->big_endian ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static uint32_t u32(const rd *r, const uint8_t *p)
{
    return r->big_endian ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
                         : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]);
}

static uint32_t rd_tag(const rd *r, const uint8_t *p)
{
    return (uint32_t)u16(r, p) << 16 | u16(r, p + 2);
}

static int warn_or_fail(rd *r, uint64_t off, const char *what)
{
    if (r->o->strict)
        return rs_err_at(r->err, RS_EFORMAT, off, "%s", what);
    dcm_file_warn(r->f, off, "%s", what);
    return RS_OK;
}

static int trunc_err(rd *r, int rc, uint64_t off, const char *what)
{
    if (rc == RS_EIO)
        return rs_err_at(r->err, RS_EIO, off, "read error while reading %s: %s", what,
                         strerror(r->in->sys_errno ? r->in->sys_errno : EIO));
    if (rc == RS_ENOMEM)
        return rs_err_at(r->err, RS_ENOMEM, off, "out of memory reading %s", what);
    if (rc == RS_EFORMAT)
        return rs_err_at(r->err, RS_EFORMAT, off, "corrupt deflate stream while reading %s", what);
    return rs_err_at(r->err, RS_ETRUNC, off, "file ends in the middle of %s", what);
}

/*
 * The input ended early. Strict: an error. Otherwise keep everything read so far (the way
 * pydicom and DCMTK do): record a warning and unwind every level with DS_TRUNC.
 */
static int truncated(rd *r, int rc, uint64_t off, const char *what)
{
    if (rc != RS_ETRUNC || r->o->strict)
        return trunc_err(r, rc, off, what);
    dcm_file_warn(r->f, off, "file is truncated: it ends in the middle of %s", what);
    return DS_TRUNC;
}

static int is_upper(uint8_t c) { return c >= 'A' && c <= 'Z'; }

/* Two bytes that look like an explicit VR. */
static int looks_like_vr(const uint8_t *p)
{
    return is_upper(p[0]) && is_upper(p[1]) && dcm_vr_is_valid(DCM_VR(p[0], p[1]));
}

/* ---- VR from the dictionary (implicit VR, or UN in the stream) ------------------------- */

static const dcm_dict_entry *private_entry(const dcm_ds *ds, uint32_t tag)
{
    uint16_t el = DCM_TAG_ELEM(tag);
    if (!(el & 0xff00))
        return NULL;
    const dcm_elem *c = dcm_ds_find(ds, (tag & 0xffff0000u) | (el >> 8));
    if (!c || (c->flags & DCM_EF_BULK) || !c->v.bytes || c->vr == DCM_VR_SQ)
        return NULL;
    char creator[80];
    size_t n = c->len < sizeof creator - 1 ? c->len : sizeof creator - 1;
    memcpy(creator, c->v.bytes, n);
    creator[n] = 0;
    return dcm_dict_lookup_private(creator, tag);
}

/* The VR a tag has in the dictionary (first alternative if ambiguous), UN when unknown. */
static uint16_t dict_vr(const dcm_ds *ds, uint32_t tag, int *ambiguous)
{
    const dcm_dict_entry *d;
    *ambiguous = 0;
    if (dcm_tag_is_private(tag)) {
        uint16_t el = DCM_TAG_ELEM(tag);
        if (el >= 0x0010 && el <= 0x00ff)
            return DCM_VR_LO;
        if (el == 0x0000)
            return DCM_VR_UL;
        d = private_entry(ds, tag);
    } else {
        d = dcm_dict_lookup(tag);
    }
    if (!d || !d->vr[0])
        return DCM_VR_UN;
    *ambiguous = d->vr[1] != 0;
    return d->vr[0];
}

/* ---- values -------------------------------------------------------------------------------- */

/* IS and DS values must be numbers (PS3.5 6.2); a bad one is kept as text but reported. */
static void check_number_string(rd *r, const dcm_elem *e)
{
    const char *p = (const char *)e->v.bytes, *end = p + e->len;
    while (p < end) {
        const char *q = memchr(p, '\\', (size_t)(end - p));
        const char *ve = q ? q : end;
        char tmp[32];
        size_t n = 0;
        for (const char *c = p; c < ve; c++)
            if (*c != ' ' && *c != '\0' && n < sizeof tmp - 1)
                tmp[n++] = *c;
        tmp[n] = 0;
        if (n) {
            char *stop;
            errno = 0;
            if (e->vr == DCM_VR_IS)
                (void)strtoll(tmp, &stop, 10);
            else
                (void)strtod(tmp, &stop);
            if (*stop || n >= sizeof tmp - 1) {
                dcm_file_warn(r->f, e->off, "(%04X,%04X) %s value '%.20s' is not a valid number",
                              DCM_TAG_GROUP(e->tag), DCM_TAG_ELEM(e->tag), e->vr == DCM_VR_IS ? "IS" : "DS", tmp);
                return;
            }
        }
        p = q ? q + 1 : end;
    }
}

static int read_value(rd *r, dcm_elem *e, uint32_t len, int allow_bulk)
{
    uint64_t off = r->in->pos;
    uint64_t left = dcm_in_remaining(r->in);
    int cut = 0;
    if (len > left) {
        if (r->o->strict)
            return rs_err_at(r->err, RS_ETRUNC, off, "value of (%04X,%04X) claims %u bytes but only %llu remain",
                             DCM_TAG_GROUP(e->tag), DCM_TAG_ELEM(e->tag), len, (unsigned long long)left);
        dcm_file_warn(r->f, off, "file is truncated: value of (%04X,%04X) claims %u bytes, only %llu remain; kept what is there",
                      DCM_TAG_GROUP(e->tag), DCM_TAG_ELEM(e->tag), len, (unsigned long long)left);
        len = (uint32_t)left;
        cut = 1;
    }
    e->len = len;
    e->off = off;
    if (allow_bulk && r->bulk_ok && r->o->bulk_min && len >= r->o->bulk_min) {
        e->flags |= DCM_EF_BULK;
        if (r->big_endian) /* dcm_file_load() swaps it; not within little-endian UN items */
            e->flags |= DCM_EF_SWAPPED;
        int rc = dcm_in_read(r->in, NULL, len);
        return rc ? truncated(r, rc, off, "a value") : cut ? DS_TRUNC : RS_OK;
    }
    if (len > r->max_value)
        return rs_err_at(r->err, RS_ELIMIT, off, "value of (%04X,%04X) is %u bytes, above the %u-byte limit",
                         DCM_TAG_GROUP(e->tag), DCM_TAG_ELEM(e->tag), len, r->max_value);
    uint8_t *p = rs_arena_alloc(&r->f->arena, (size_t)len + 1);
    if (!p)
        return rs_err_at(r->err, RS_ELIMIT, off, "value of %u bytes exceeds the memory limit", len);
    int rc = dcm_in_read(r->in, p, len);
    if (rc) {
        /* a stream of unknown size (deflate) ended inside the value: keep what was read, so
           the element never claims more bytes than it holds (consumers trust e->len) */
        e->len = len = (uint32_t)(r->in->pos - off);
        p[len] = 0;
        if (r->big_endian) {
            dcm_swap_value(e->vr, p, len);
            e->flags |= DCM_EF_SWAPPED;
        }
        e->v.bytes = p;
        return truncated(r, rc, off, "a value");
    }
    p[len] = 0;
    if (r->big_endian) {
        dcm_swap_value(e->vr, p, len);
        e->flags |= DCM_EF_SWAPPED;
    }
    e->v.bytes = p;
    if (e->vr == DCM_VR_IS || e->vr == DCM_VR_DS)
        check_number_string(r, e);
    return cut ? DS_TRUNC : RS_OK;
}

/* Item or delimiter header: tag + 32-bit length, no VR in any syntax. */
static int read_item_header(rd *r, uint32_t *tag, uint32_t *len)
{
    int rc = dcm_in_need(r->in, 8);
    if (rc)
        return rc;
    *tag = rd_tag(r, r->in->p);
    *len = u32(r, r->in->p + 4);
    dcm_in_advance(r->in, 8);
    return RS_OK;
}

/* Encapsulated pixel data (or any undefined-length binary made of items): a list of fragments. */
static int parse_fragments(rd *r, dcm_elem *e)
{
    dcm_frag *fr = NULL;
    uint32_t n = 0, cap = 0;
    e->flags |= DCM_EF_ENCAPS | DCM_EF_UNDEF_LEN;
    e->len = DCM_UNDEF_LEN;
    e->off = r->in->pos;
    int rc = RS_OK;
    for (;;) {
        uint64_t at = r->in->pos;
        uint32_t tag, len;
        rc = read_item_header(r, &tag, &len);
        if (rc == RS_ETRUNC && dcm_in_at_end(r->in)) {
            rc = warn_or_fail(r, at, "encapsulated pixel data has no sequence delimiter");
            break;
        }
        if (rc) {
            rc = truncated(r, rc, at, "an encapsulated pixel data item");
            if (rc == DS_TRUNC)
                break;
            return rc;
        }
        if (tag == DCM_TAG_SEQ_DELIM)
            break;
        if (tag != DCM_TAG_ITEM)
            return rs_err_at(r->err, RS_EFORMAT, at,
                             "expected an item in encapsulated pixel data, found (%04X,%04X)",
                             DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag));
        if (len == DCM_UNDEF_LEN)
            return rs_err_at(r->err, RS_EFORMAT, at, "pixel data fragment with undefined length");
        if (n == MAX_ITEMS_PER_SEQ)
            return rs_err_at(r->err, RS_ELIMIT, at, "more than %u fragments", MAX_ITEMS_PER_SEQ);
        if (n == cap) {
            uint32_t nc = cap ? cap * 2 : 8;
            dcm_frag *nf = rs_arena_realloc(&r->f->arena, fr, cap * sizeof *fr, nc * sizeof *fr);
            if (!nf)
                return rs_err_at(r->err, RS_ELIMIT, at, "fragment table exceeds the memory limit");
            fr = nf;
            cap = nc;
        }
        dcm_elem tmp = {.tag = e->tag, .vr = DCM_VR_OB};
        /* the basic offset table (first item) is always loaded: it is small and indexes frames */
        rc = read_value(r, &tmp, len, n > 0);
        if (rc < 0)
            return rc;
        fr[n].off = tmp.off;
        fr[n].len = tmp.len;
        fr[n].bytes = (tmp.flags & DCM_EF_BULK) ? NULL : tmp.v.bytes;
        if (!fr[n].bytes)
            e->flags |= DCM_EF_BULK;
        n++;
        if (rc == DS_TRUNC)
            break;
    }
    e->v.px.frags = fr;
    e->v.px.n = n;
    return rc == DS_TRUNC ? DS_TRUNC : RS_OK;
}

/* A sequence: items until the declared length is used up or the sequence delimiter. */
static int parse_seq(rd *r, dcm_ds *parent, dcm_elem *e, uint32_t len, unsigned depth, int implicit_items)
{
    if (depth >= r->max_depth)
        return rs_err_at(r->err, RS_ELIMIT, r->in->pos, "sequences nested deeper than %u", r->max_depth);
    int save_explicit = r->explicit_vr, save_big = r->big_endian, save_went = r->went_explicit;
    r->went_explicit = 0;
    if (implicit_items) {
        r->explicit_vr = 0;
        r->big_endian = 0;
        e->flags |= DCM_EF_IMPLICIT_ITEMS;
    }
    uint64_t end = len == DCM_UNDEF_LEN ? UINT64_MAX : r->in->pos + len;
    e->off = r->in->pos;
    e->len = len;
    if (len == DCM_UNDEF_LEN)
        e->flags |= DCM_EF_UNDEF_LEN;
    dcm_ds **items = NULL;
    uint32_t n = 0, cap = 0;
    int rc = RS_OK;
    for (;;) {
        uint64_t at = r->in->pos;
        if (end != UINT64_MAX && at >= end) {
            if (at > end)
                rc = warn_or_fail(r, at, "items overrun the length of their sequence");
            break;
        }
        uint32_t tag, ilen;
        rc = read_item_header(r, &tag, &ilen);
        if (rc == RS_ETRUNC && end == UINT64_MAX && dcm_in_at_end(r->in) && r->in->avail == 0) {
            rc = warn_or_fail(r, at, "sequence has no delimiter before the end of the file");
            break;
        }
        if (rc) {
            rc = truncated(r, rc, at, "a sequence item header");
            break;
        }
        if (tag == DCM_TAG_SEQ_DELIM) {
            if (end != UINT64_MAX)
                rc = warn_or_fail(r, at, "sequence delimiter inside a defined-length sequence");
            break;
        }
        if (tag != DCM_TAG_ITEM) {
            rc = rs_err_at(r->err, RS_EFORMAT, at, "expected a sequence item, found (%04X,%04X)",
                           DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag));
            break;
        }
        if (n == MAX_ITEMS_PER_SEQ) {
            rc = rs_err_at(r->err, RS_ELIMIT, at, "more than %u items in a sequence", MAX_ITEMS_PER_SEQ);
            break;
        }
        if (ilen != DCM_UNDEF_LEN && end != UINT64_MAX && ilen > end - r->in->pos) {
            rc = warn_or_fail(r, at, "item overruns the length of its sequence");
            if (rc)
                break;
        }
        dcm_ds *item = dcm_ds_new(r->f, parent);
        if (!item) {
            rc = rs_err_at(r->err, RS_ELIMIT, at, "items exceed the memory limit");
            break;
        }
        item->item_len = ilen;
        item->item_off = r->in->pos;
        if (n == cap) {
            uint32_t nc = cap ? cap * 2 : 4;
            dcm_ds **ni = rs_arena_realloc(&r->f->arena, items, cap * sizeof *items, nc * sizeof *items);
            if (!ni) {
                rc = rs_err_at(r->err, RS_ELIMIT, at, "items exceed the memory limit");
                break;
            }
            items = ni;
            cap = nc;
        }
        items[n++] = item;
        rc = parse_ds(r, item, ilen == DCM_UNDEF_LEN ? UINT64_MAX : r->in->pos + ilen, depth + 1);
        if (rc < 0 || rc == DS_TRUNC)
            break;
        if (rc == DS_SEQ_DELIM) { /* item without its delimiter, sequence closed: accept */
            rc = RS_OK;
            break;
        }
        if (ilen == DCM_UNDEF_LEN && rc != DS_ITEM_DELIM) {
            rc = warn_or_fail(r, r->in->pos, "item has no item delimiter");
            if (rc)
                break;
        }
        rc = RS_OK;
    }
    if (implicit_items && r->went_explicit) {
        /* items of a UN that turned out explicit VR after all: their VRs are not the dictionary's
           and would be lost in the implicit encoding a UN is written with, so keep it an SQ */
        e->flags &= (uint16_t)~(DCM_EF_IMPLICIT_ITEMS | DCM_EF_VR_WAS_UN);
    }
    r->went_explicit |= save_went;
    e->v.sq.items = items;
    e->v.sq.n = n;
    r->explicit_vr = save_explicit;
    r->big_endian = save_big;
    return rc;
}

/* ---- elements -------------------------------------------------------------------------------- */

/*
 * A dataset whose encoding does not match what the syntax says (an implicit dataset in an
 * explicit file, or the reverse) is read as it really is, like DCMTK and pydicom do.
 */
static void sniff_encoding(rd *r, uint64_t end)
{
    if (dcm_in_need(r->in, 8) != RS_OK)
        return;
    const uint8_t *p = r->in->p;
    uint32_t tag = rd_tag(r, p);
    if (DCM_TAG_GROUP(tag) == 0xFFFE)
        return;
    int vr_like = looks_like_vr(p + 4);
    if (r->explicit_vr && !vr_like) {
        r->explicit_vr = 0;
        dcm_file_warn(r->f, r->in->pos, "expected explicit VR but the dataset is implicit VR; reading it as implicit");
    } else if (!r->explicit_vr && vr_like) {
        /* an implicit length whose two low bytes happen to be a VR is possible but would be a huge
           first element: only switch when the explicit reading gives a plausible length */
        const dcm_vr_info *vi = dcm_vr_info_get(DCM_VR(p[4], p[5]));
        uint32_t elen = vi->long_len ? (dcm_in_need(r->in, 12) == RS_OK ? u32(r, r->in->p + 8) : 0)
                                     : u16(r, p + 6);
        uint64_t room = end != UINT64_MAX ? end - r->in->pos : dcm_in_remaining(r->in);
        if (elen == DCM_UNDEF_LEN || elen <= room) {
            r->explicit_vr = 1;
            r->went_explicit = 1;
            dcm_file_warn(r->f, r->in->pos, "expected implicit VR but the dataset is explicit VR; reading it as explicit");
        }
    }
}

/* Read one element header; fills tag/vr/len and whether the VR came from the stream. */
static int read_header(rd *r, uint32_t *tag, uint16_t *vr, uint32_t *len, int *explicit_hdr)
{
    int rc = dcm_in_need(r->in, 8);
    if (rc)
        return rc;
    const uint8_t *p = r->in->p;
    *tag = rd_tag(r, p);
    *explicit_hdr = 0;
    if (DCM_TAG_GROUP(*tag) == 0xFFFE || !r->explicit_vr) {
        *vr = DCM_VR_NONE;
        *len = u32(r, p + 4);
        dcm_in_advance(r->in, 8);
        return RS_OK;
    }
    uint16_t v = DCM_VR(p[4], p[5]);
    const dcm_vr_info *vi = dcm_vr_info_get(v);
    if (!vi) {
        /* not a VR: this element is implicit (seen in the wild); a one-off, not a mode switch */
        *vr = DCM_VR_NONE;
        *len = u32(r, p + 4);
        dcm_in_advance(r->in, 8);
        return RS_EUNSUPPORTED;
    }
    *explicit_hdr = 1;
    *vr = v;
    if (vi->long_len) {
        rc = dcm_in_need(r->in, 12);
        if (rc)
            return rc;
        *len = u32(r, r->in->p + 8);
        dcm_in_advance(r->in, 12);
    } else {
        *len = u16(r, p + 6);
        dcm_in_advance(r->in, 8);
    }
    return RS_OK;
}

static int parse_elem(rd *r, dcm_ds *ds, uint32_t tag, uint16_t vr, uint32_t len, int from_stream,
                      uint64_t hdr_off, unsigned depth)
{
    int ambiguous = 0;
    uint16_t flags = 0;
    if (!from_stream) {
        vr = dict_vr(ds, tag, &ambiguous);
        flags |= DCM_EF_VR_IMPLICIT;
    } else if (vr == DCM_VR_UN) {
        /* a UN for a tag the dictionary knows is read as what it is (pydicom and DCMTK agree) */
        uint16_t known = dict_vr(ds, tag, &ambiguous);
        /* decide on the bytes really there: a truncated value is kept (and written) shorter, and
           must be read the same way when that output is read back */
        uint64_t have = len < dcm_in_remaining(r->in) ? len : dcm_in_remaining(r->in);
        if (known != DCM_VR_UN && (dcm_tag_is_private(tag) || len == DCM_UNDEF_LEN || have < 0xffff)) {
            vr = known;
            flags |= DCM_EF_VR_WAS_UN;
        } else {
            ambiguous = 0;
        }
    }
    dcm_elem *prev = dcm_ds_find(ds, tag);
    if (prev)
        dcm_file_warn(r->f, hdr_off, "duplicate element (%04X,%04X); the later one is kept",
                      DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag));
    else if (ds->n && ds->e[ds->n - 1].tag > tag) {
        dcm_file_warn(r->f, hdr_off, "element (%04X,%04X) out of order", DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag));
        /* inserting moves every later element: without a bound, a file of descending tags
           costs O(n^2) (1 MB: 3.5 s, 2 MB: 13 s) */
        uint32_t lo = 0, hi = ds->n;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (ds->e[mid].tag < tag)
                lo = mid + 1;
            else
                hi = mid;
        }
        r->shifted += ds->n - lo;
        if (r->shifted > MAX_SHIFTED_ELEMS)
            return rs_err_at(r->err, RS_ELIMIT, hdr_off, "too many elements out of order");
    }
    dcm_elem *e = dcm_ds_put(ds, tag, vr);
    if (!e)
        return rs_err_at(r->err, RS_ELIMIT, hdr_off, "dataset exceeds the memory limit");
    e->flags = flags;
    if (ambiguous)
        e->flags |= DCM_EF_VR_IMPLICIT; /* resolved once the whole dataset is known */

    if (len == DCM_UNDEF_LEN) {
        if (vr == DCM_VR_SQ)
            return parse_seq(r, ds, e, len, depth, (flags & DCM_EF_VR_WAS_UN) != 0);
        if (vr == DCM_VR_UN) {
            e->vr = DCM_VR_SQ;
            e->flags |= DCM_EF_VR_WAS_UN;
            return parse_seq(r, ds, e, len, depth, 1);
        }
        if (tag == DCM_TAG_PIXEL_DATA || (vr == DCM_VR_OB || vr == DCM_VR_OW)) {
            if (r->explicit_vr || tag == DCM_TAG_PIXEL_DATA) {
                if (vr != DCM_VR_OB && vr != DCM_VR_OW)
                    e->vr = DCM_VR_OB;
                return parse_fragments(r, e);
            }
        }
        /* an undefined length only makes sense for something made of items */
        if (dcm_in_need(r->in, 4) == RS_OK && rd_tag(r, r->in->p) == DCM_TAG_ITEM) {
            e->vr = DCM_VR_SQ;
            return parse_seq(r, ds, e, len, depth, 0);
        }
        return rs_err_at(r->err, RS_EFORMAT, hdr_off, "undefined length for (%04X,%04X) with VR %c%c",
                         DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag), vr >> 8, vr & 0xff);
    }
    if (vr == DCM_VR_SQ) {
        if (len > dcm_in_remaining(r->in) && r->o->strict)
            return rs_err_at(r->err, RS_ETRUNC, hdr_off, "sequence (%04X,%04X) claims %u bytes but only %llu remain",
                             DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag), len,
                             (unsigned long long)dcm_in_remaining(r->in));
        return parse_seq(r, ds, e, len, depth, (flags & DCM_EF_VR_WAS_UN) != 0);
    }
    if (len & 1)
        dcm_file_warn(r->f, hdr_off, "(%04X,%04X) has an odd value length (%u)", DCM_TAG_GROUP(tag),
                      DCM_TAG_ELEM(tag), len);
    const dcm_vr_info *vi = dcm_vr_info_get(e->vr);
    if (vi && vi->fixed_size && len % vi->fixed_size)
        dcm_file_warn(r->f, hdr_off, "(%04X,%04X) length %u is not a multiple of %u for VR %c%c", DCM_TAG_GROUP(tag),
                      DCM_TAG_ELEM(tag), len, vi->fixed_size, e->vr >> 8, e->vr & 0xff);
    /* what the reader itself consults is never bulk: the meta group (transfer syntax), the
       character set, private creators, and the attributes resolve_vr() reads */
    int bulk = DCM_TAG_GROUP(tag) != 0x0002 && tag != DCM_TAG_SPECIFIC_CHARSET &&
               !(dcm_tag_is_private(tag) && DCM_TAG_ELEM(tag) < 0x100) && tag != DCM_TAG_BITS_ALLOCATED &&
               tag != DCM_TAG_PIXEL_REPRESENTATION && tag != DCM_TAG_LUT_DESCRIPTOR;
    return read_value(r, e, len, bulk);
}

/*
 * Parse elements into ds until end (absolute offset), an item delimiter, a sequence delimiter
 * (returned to the caller) or the end of input at top level. Returns <0 error or a DS_* code.
 */
/* A (gggg,0000) group length is checked against the bytes its group really takes. */
typedef struct group_check {
    uint16_t group;
    int armed;
    uint64_t start;  /* offset after the group length element */
    uint64_t claimed;
} group_check;

/* Called with the group of each element and with -1 at the end of the dataset. */
static void group_check_step(rd *r, group_check *g, int group, uint64_t at)
{
    if (!g->armed || group == g->group)
        return;
    if (at - g->start != g->claimed)
        dcm_file_warn(r->f, g->start, "group length of group %04X says %llu bytes, the group has %llu",
                      g->group, (unsigned long long)g->claimed, (unsigned long long)(at - g->start));
    g->armed = 0;
}

static void group_check_arm(group_check *g, const dcm_elem *e, uint64_t after)
{
    int64_t v;
    if (DCM_TAG_ELEM(e->tag) != 0 || e->vr != DCM_VR_UL || e->len != 4 || !e->v.bytes)
        return;
    if (dcm_elem_num(e, 0, NULL, &v) != RS_OK)
        return;
    g->group = DCM_TAG_GROUP(e->tag);
    g->armed = 1;
    g->start = after;
    g->claimed = (uint64_t)v;
}

static int parse_ds(rd *r, dcm_ds *ds, uint64_t end, unsigned depth)
{
    int save_explicit = r->explicit_vr;
    int rc = DS_END;
    group_check gc = {0};
    sniff_encoding(r, end);
    for (;;) {
        uint64_t at = r->in->pos;
        if (end != UINT64_MAX && at >= end) {
            if (at > end)
                rc = rs_err_at(r->err, RS_EFORMAT, at, "elements overrun their item by %llu bytes",
                               (unsigned long long)(at - end));
            break;
        }
        int nr = dcm_in_need(r->in, 8);
        if (nr == RS_ETRUNC) {
            if (r->in->avail == 0 && depth == 0)
                break; /* clean end of the top-level dataset */
            if (depth == 0 && r->in->avail < 8) {
                /* trailing padding or a cut-off header: nothing of value can be in it */
                rc = warn_or_fail(r, at, "trailing bytes after the last element ignored");
                dcm_in_advance(r->in, r->in->avail);
                if (rc == RS_OK)
                    rc = DS_END;
                break;
            }
            rc = truncated(r, nr, at, "an element header");
            break;
        }
        if (nr) {
            rc = trunc_err(r, nr, at, "an element header");
            break;
        }
        uint32_t tag = rd_tag(r, r->in->p);
        group_check_step(r, &gc, DCM_TAG_GROUP(tag), at);
        if (tag == DCM_TAG_ITEM_DELIM || tag == DCM_TAG_SEQ_DELIM) {
            dcm_in_advance(r->in, 8);
            if (depth > 0) {
                rc = tag == DCM_TAG_ITEM_DELIM ? DS_ITEM_DELIM : DS_SEQ_DELIM;
                break;
            }
            rc = warn_or_fail(r, at, "stray delimiter at top level ignored");
            if (rc)
                break;
            continue;
        }
        if (depth == 0 && r->o->stop_tag && tag >= r->o->stop_tag) {
            r->stopped = 1;
            break;
        }
        uint16_t vr;
        uint32_t len;
        int explicit_hdr;
        nr = read_header(r, &tag, &vr, &len, &explicit_hdr);
        if (nr == RS_EUNSUPPORTED) {
            dcm_file_warn(r->f, at, "element (%04X,%04X) has an invalid VR; its VR is taken from the dictionary",
                          DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag));
            nr = RS_OK;
        }
        if (nr) {
            rc = truncated(r, nr, at, "an element header");
            break;
        }
        if (DCM_TAG_GROUP(tag) == 0xFFFE) {
            rc = rs_err_at(r->err, RS_EFORMAT, at, "unexpected item tag (%04X,%04X) in a dataset",
                           DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag));
            break;
        }
        if (depth == 0 && DCM_TAG_GROUP(tag) == 0x0002 && ds == r->f->ds) {
            /* meta elements after the meta group: keep reading but say so */
            dcm_file_warn(r->f, at, "file meta element (%04X,%04X) inside the dataset",
                          DCM_TAG_GROUP(tag), DCM_TAG_ELEM(tag));
        }
        rc = parse_elem(r, ds, tag, vr, len, explicit_hdr, at, depth);
        if (rc < 0 || rc == DS_TRUNC)
            break;
        group_check_arm(&gc, dcm_ds_find(ds, tag), r->in->pos);
        rc = DS_END;
    }
    if (rc >= 0 && rc != DS_TRUNC && !r->stopped)
        group_check_step(r, &gc, -1, r->in->pos - (rc == DS_ITEM_DELIM || rc == DS_SEQ_DELIM ? 8 : 0));
    r->explicit_vr = save_explicit;
    return rc;
}

/* ---- ambiguous VRs (implicit VR files) -------------------------------------------------- */

static int is_us_ss_tag(uint32_t t)
{
    static const uint32_t tags[] = {0x00189810, 0x00221452, 0x00280104, 0x00280105, 0x00280106,
                                    0x00280107, 0x00280108, 0x00280109, 0x00280110, 0x00280111,
                                    0x00280120, 0x00280121, 0x00281101, 0x00281102, 0x00281103,
                                    0x00283002, 0x00409211, 0x00409216, 0x00603004, 0x00603006};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++)
        if (tags[i] == t)
            return 1;
    return 0;
}

/* Decide 'US or SS', 'OB or OW', 'US or OW' from the attributes around the element (PS3.5 A.1, PS3.3 C.7.6.3). */
static uint16_t resolve_vr(const dcm_ds *ds, const dcm_elem *e, int implicit_file)
{
    const dcm_dict_entry *d = dcm_dict_lookup(e->tag);
    if (!d || !d->vr[1])
        return e->vr;
    uint32_t t = e->tag;
    if (t == DCM_TAG_PIXEL_DATA) {
        if (e->flags & DCM_EF_UNDEF_LEN)
            return DCM_VR_OB;
        if (implicit_file)
            return DCM_VR_OW;
        int64_t ba = 0;
        dcm_ds_get_i64(ds, DCM_TAG_BITS_ALLOCATED, 0, &ba);
        return ba > 8 ? DCM_VR_OW : DCM_VR_OB;
    }
    if (is_us_ss_tag(t)) {
        const dcm_ds *p = ds;
        while (!dcm_ds_find(p, DCM_TAG_PIXEL_REPRESENTATION) && p->parent)
            p = p->parent;
        int64_t pr = 0;
        int has_pr = dcm_ds_get_i64(p, DCM_TAG_PIXEL_REPRESENTATION, 0, &pr) == RS_OK;
        if ((!has_pr && !dcm_ds_find(p, DCM_TAG_PIXEL_DATA)) || (has_pr && pr == 0))
            return DCM_VR_US;
        return DCM_VR_SS;
    }
    if (t == DCM_TAG_LUT_DATA) {
        int64_t n = 0;
        if (dcm_ds_get_i64(ds, DCM_TAG_LUT_DESCRIPTOR, 0, &n) == RS_OK && n == 1)
            return DCM_VR_US;
        return DCM_VR_OW;
    }
    if ((t & 0xFF00FFFFu) == 0x60003000u || (t >> 16) == 0x5400)
        return DCM_VR_OW;
    return e->vr;
}

static void resolve_ambiguous(dcm_ds *ds, int implicit_file)
{
    for (uint32_t i = 0; i < ds->n; i++) {
        dcm_elem *e = &ds->e[i];
        if (e->vr == DCM_VR_SQ) {
            for (uint32_t k = 0; k < e->v.sq.n; k++)
                resolve_ambiguous(e->v.sq.items[k], implicit_file);
        } else if (e->flags & (DCM_EF_VR_IMPLICIT | DCM_EF_VR_WAS_UN)) {
            uint16_t vr = resolve_vr(ds, e, implicit_file);
            if (vr != e->vr && (e->flags & DCM_EF_SWAPPED) && !(e->flags & (DCM_EF_BULK | DCM_EF_ENCAPS)) &&
                e->v.bytes) {
                /* swapped from big endian for the provisional VR: redo it for the real one */
                dcm_swap_value(e->vr, e->v.bytes, e->len);
                dcm_swap_value(vr, e->v.bytes, e->len);
            }
            e->vr = vr;
        }
    }
}

/* ---- file structure ------------------------------------------------------------------------ */

/* Guess the encoding of a dataset that has no meta group to say it (PS3.10 7.1 allows none). */
static const dcm_ts *guess_ts(dcm_in *in)
{
    if (dcm_in_need(in, 8) != RS_OK)
        return dcm_ts_implicit_le();
    const uint8_t *p = in->p;
    int vr_like = looks_like_vr(p + 4);
    uint16_t g_le = (uint16_t)(p[0] | p[1] << 8), g_be = (uint16_t)(p[0] << 8 | p[1]);
    if (vr_like && g_le > 0x00ff && g_be <= 0x00ff)
        return dcm_ts_explicit_be();
    return vr_like ? dcm_ts_explicit_le() : dcm_ts_implicit_le();
}

/*
 * Without a preamble or meta group there is no signature to check; a dataset still starts with
 * a low group number (command 0000, identifying 0008, patient 0010) in either byte order.
 */
static int looks_like_dataset(dcm_in *in)
{
    if (dcm_in_need(in, 8) != RS_OK)
        return 0;
    const uint8_t *p = in->p;
    uint16_t g_le = (uint16_t)(p[0] | p[1] << 8), g_be = (uint16_t)(p[0] << 8 | p[1]);
    return g_le <= 0x00ff || g_be <= 0x00ff;
}

static int parse_meta(rd *r)
{
    dcm_file *f = r->f;
    uint64_t start = r->in->pos;
    r->explicit_vr = 1;
    r->big_endian = 0;
    /* the meta group is read element by element while the group is 0002: its group length
       is often wrong in the wild, so it is checked, not trusted */
    while (dcm_in_need(r->in, 8) == RS_OK) {
        const uint8_t *p = r->in->p;
        if ((p[0] | p[1] << 8) != 0x0002)
            break;
        uint64_t at = r->in->pos;
        uint32_t tag, len;
        uint16_t vr;
        int explicit_hdr;
        int rc = read_header(r, &tag, &vr, &len, &explicit_hdr);
        if (rc == RS_EUNSUPPORTED)
            rc = RS_OK;
        if (rc)
            return trunc_err(r, rc, at, "the file meta information");
        if (len == DCM_UNDEF_LEN)
            return rs_err_at(r->err, RS_EFORMAT, at, "file meta element (0002,%04X) has an undefined length",
                             DCM_TAG_ELEM(tag));
        rc = parse_elem(r, f->meta, tag, vr, len, explicit_hdr, at, 1);
        if (rc < 0)
            return rc;
    }
    f->has_meta = f->meta->n > 0;
    if (f->has_meta && !dcm_ds_find(f->meta, DCM_TAG_META_GROUP_LENGTH))
        dcm_file_warn(f, start, "file meta information has no group length (0002,0000)");
    int64_t gl;
    if (dcm_ds_get_i64(f->meta, DCM_TAG_META_GROUP_LENGTH, 0, &gl) == RS_OK) {
        dcm_elem *g = dcm_ds_find(f->meta, DCM_TAG_META_GROUP_LENGTH);
        uint64_t after = g->off + g->len;
        if ((uint64_t)gl != r->in->pos - after)
            dcm_file_warn(f, start, "file meta group length says %lld bytes, the group has %llu",
                          (long long)gl, (unsigned long long)(r->in->pos - after));
    }
    return RS_OK;
}

static int choose_ts(rd *r)
{
    dcm_file *f = r->f;
    char uid[68];
    int n = dcm_ds_get_str(f->meta, DCM_TAG_TRANSFER_SYNTAX, 0, uid, sizeof uid);
    const dcm_ts *ts = NULL;
    if (n > 0) {
        snprintf(f->ts_uid, sizeof f->ts_uid, "%s", uid);
        /* n is the value's full length, uid holds at most sizeof uid - 1 of it; a value that
           long is no UID (64 characters at most) and so no known syntax */
        ts = n < (int)sizeof uid ? dcm_ts_find(uid, (size_t)n) : NULL;
        if (!ts) {
            dcm_file_warn(f, r->in->pos, "unknown transfer syntax %s; reading as explicit VR little endian", uid);
            ts = dcm_ts_generic_encapsulated();
        }
    } else {
        ts = guess_ts(r->in);
        if (f->has_meta)
            dcm_file_warn(f, r->in->pos, "file meta has no transfer syntax; the data looks like %s", ts->name);
        snprintf(f->ts_uid, sizeof f->ts_uid, "%s", ts->uid);
    }
    f->ts = ts;
    f->source_ts = ts;
    return RS_OK;
}

int dcm_read_input(dcm_in *in, const dcm_read_opts *o, dcm_file **out, rs_err *err)
{
    static const dcm_read_opts defaults;
    if (!o)
        o = &defaults;
    *out = NULL;
    dcm_file *f = dcm_file_new(o->max_memory ? o->max_memory : DEFAULT_MAX_MEMORY);
    if (!f)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    rd r = {.in = in, .f = f, .o = o, .err = err,
            .max_value = o->max_value ? o->max_value : DEFAULT_MAX_VALUE,
            .max_depth = o->max_depth ? o->max_depth : DEFAULT_MAX_DEPTH,
            .bulk_ok = in->seekable};
    dcm_in inflater;
    int inflating = 0;
    int rc = RS_OK;
    f->source_size = in->size;

    if (dcm_in_need(in, 132) == RS_OK && memcmp(in->p + 128, "DICM", 4) == 0) {
        memcpy(f->preamble, in->p, 128);
        f->has_preamble = 1;
        dcm_in_advance(in, 132);
    } else if (dcm_in_need(in, 4) == RS_OK && memcmp(in->p, "DICM", 4) == 0) {
        dcm_file_warn(f, 0, "no preamble before the DICM prefix");
        dcm_in_advance(in, 4);
    } else if (dcm_in_need(in, 8) != RS_OK) {
        rc = rs_err_at(err, RS_EFORMAT, 0, "too short to be DICOM (%llu bytes)",
                       (unsigned long long)in->avail);
        goto fail;
    }
    if (dcm_in_need(in, 2) == RS_OK && (in->p[0] | in->p[1] << 8) == 0x0002) {
        rc = parse_meta(&r);
        if (rc)
            goto fail;
    } else if (f->has_preamble) {
        dcm_file_warn(f, in->pos, "no file meta information after the DICM prefix");
    }
    if (!f->has_meta && !looks_like_dataset(in)) {
        rc = rs_err_at(err, RS_EFORMAT, in->pos, "not DICOM: no DICM prefix, no file meta group, "
                       "and the data does not start like a dataset");
        goto fail;
    }
    rc = choose_ts(&r);
    if (rc)
        goto fail;
    f->data_offset = in->pos;
    r.explicit_vr = f->ts->explicit_vr;
    r.big_endian = f->ts->big_endian;
    if (f->ts->deflated) {
        rc = dcm_in_inflate(&inflater, in, err);
        if (rc)
            goto fail;
        inflating = 1;
        r.in = &inflater;
        r.bulk_ok = 0;
    }
    rc = parse_ds(&r, f->ds, UINT64_MAX, 0);
    if (rc < 0)
        goto fail;
    rc = RS_OK;
    if (!r.stopped && f->ds->n == 0 && f->meta->n == 0) {
        rc = rs_err_at(err, RS_EFORMAT, 0, "no DICOM elements found");
        goto fail;
    }
    if (!r.explicit_vr || !f->ts->explicit_vr)
        resolve_ambiguous(f->ds, 1);
    else
        resolve_ambiguous(f->ds, 0);
    if (inflating)
        dcm_in_close(&inflater);
    *out = f;
    return RS_OK;
fail:
    if (inflating)
        dcm_in_close(&inflater);
    dcm_file_free(f);
    return rc;
}

int dcm_read_mem(const uint8_t *data, size_t n, const dcm_read_opts *o, dcm_file **out, rs_err *err)
{
    dcm_in in;
    dcm_in_mem(&in, data, n);
    dcm_read_opts copy = o ? *o : (dcm_read_opts){0};
    copy.bulk_min = 0; /* no path to load bulk values from afterwards */
    return dcm_read_input(&in, &copy, out, err);
}

int dcm_read_path(const char *path, const dcm_read_opts *o, dcm_file **out, rs_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rs_err_set(err, RS_EIO, "cannot open: %s", strerror(errno));
    dcm_in in;
    int rc = dcm_in_fd(&in, fd, err);
    if (rc == RS_OK) {
        rc = dcm_read_input(&in, o, out, err);
        dcm_in_close(&in);
    }
    close(fd);
    if (rc == RS_OK && !((*out)->path = strdup(path))) {
        dcm_file_free(*out);
        *out = NULL;
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
    }
    return rc;
}
