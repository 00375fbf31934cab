/* dump.c - see dump.h. Output is for people; tools should use the JSON form. */
#include "dump.h"

#include <stdio.h>
#include <string.h>

#include "dict.h"

typedef struct dumper {
    const dcm_dump_opts *o;
    rs_buf *out;
    rs_buf line;
    rs_buf text;
} dumper;

static const char *keyword_of(const dcm_ds *ds, uint32_t tag)
{
    const dcm_dict_entry *d = NULL;
    if (dcm_tag_is_private(tag)) {
        uint16_t el = DCM_TAG_ELEM(tag);
        if (el >= 0x10 && el <= 0xff)
            return "PrivateCreator";
        const dcm_elem *c = (el & 0xff00) ? dcm_ds_find(ds, (tag & 0xffff0000u) | (el >> 8)) : NULL;
        if (c && c->v.bytes && c->vr != DCM_VR_SQ && !(c->flags & DCM_EF_BULK)) {
            char creator[80];
            size_t n = c->len < sizeof creator - 1 ? c->len : sizeof creator - 1;
            memcpy(creator, c->v.bytes, n);
            creator[n] = 0;
            d = dcm_dict_lookup_private(creator, tag);
        }
        if (!d)
            return "PrivateTag";
        return d->keyword && d->keyword[0] ? d->keyword : d->name;
    }
    d = dcm_dict_lookup(tag);
    return d ? d->keyword : "Unknown Tag & Data";
}

/* Append at most max characters (UTF-8 aware) of s, then "..." if cut. */
static void put_cut(rs_buf *b, const uint8_t *s, size_t n, unsigned max)
{
    unsigned chars = 0;
    size_t i = 0;
    while (i < n && chars < max) {
        size_t k = 1;
        while (i + k < n && (s[i + k] & 0xC0) == 0x80)
            k++;
        for (size_t j = 0; j < k; j++) {
            uint8_t c = s[i + j];
            rs_buf_putc(b, (c < 0x20 && k == 1) ? '.' : c);
        }
        i += k;
        chars++;
    }
    if (i < n)
        rs_buf_puts(b, "...");
}

static void value_text(dumper *d, const dcm_ds *ds, const dcm_elem *e)
{
    rs_buf *b = &d->line;
    unsigned max = d->o->max_value_chars ? d->o->max_value_chars : 64;
    const dcm_vr_info *vi = dcm_vr_info_get(e->vr);
    if (e->flags & DCM_EF_ENCAPS) {
        rs_buf_printf(b, "(PixelSequence #=%u)", e->v.px.n);
        return;
    }
    if (e->flags & DCM_EF_BULK) {
        rs_buf_printf(b, "(not loaded: %u bytes at offset %llu)", e->len, (unsigned long long)e->off);
        return;
    }
    if (e->len == 0) {
        rs_buf_puts(b, "(no value available)");
        return;
    }
    if (!vi || vi->kind == DCM_VK_BINARY) {
        unsigned w = (e->vr == DCM_VR_OW) ? 2 : 1;
        rs_buf_reset(&d->text);
        for (uint32_t i = 0; i + w <= e->len && d->text.len < max + 8; i += w) {
            if (i)
                rs_buf_putc(&d->text, '\\');
            if (w == 2)
                rs_buf_printf(&d->text, "%04x", e->v.bytes[i] | e->v.bytes[i + 1] << 8);
            else
                rs_buf_printf(&d->text, "%02x", e->v.bytes[i]);
        }
        put_cut(b, d->text.p, d->text.len, max);
        return;
    }
    if (vi->kind == DCM_VK_NUMBER || vi->kind == DCM_VK_AT) {
        rs_buf_reset(&d->text);
        unsigned vm = dcm_elem_vm(e);
        for (unsigned i = 0; i < vm && d->text.len < max + 8; i++) {
            double v;
            int64_t iv;
            dcm_elem_num(e, i, &v, &iv);
            if (i)
                rs_buf_putc(&d->text, '\\');
            if (e->vr == DCM_VR_AT)
                rs_buf_printf(&d->text, "(%04x,%04x)", (unsigned)((uint64_t)iv >> 16), (unsigned)(iv & 0xffff));
            else if (e->vr == DCM_VR_FL || e->vr == DCM_VR_FD)
                rs_buf_printf(&d->text, "%.8g", v);
            else
                rs_buf_printf(&d->text, "%lld", (long long)iv);
        }
        put_cut(b, d->text.p, d->text.len, max);
        return;
    }
    const uint8_t *s = e->v.bytes;
    size_t n = e->len;
    if (vi->charset) {
        dcm_charset cs;
        dcm_ds_charset(ds, &cs);
        rs_buf_reset(&d->text);
        dcm_charset_decode(&cs, e->vr, e->v.bytes, e->len, &d->text, NULL);
        s = d->text.p ? d->text.p : (const uint8_t *)"";
        n = d->text.len;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == 0))
        n--;
    rs_buf_putc(b, '[');
    put_cut(b, s, n, max);
    rs_buf_putc(b, ']');
}

/* Finish a line: pad the value column, then "# len, vm keyword". */
static int end_line(dumper *d, size_t col0, const char *len, unsigned vm, const char *kw)
{
    static const char spaces[41] = "                                        ";
    size_t w = d->line.len - col0;
    if (w < 40)
        rs_buf_append(&d->line, spaces, 40 - w);
    /* " # %4s, %u %s\n" without printf: this runs once per element of every file dumped */
    char tail[32];
    size_t ln = strlen(len), k = 0;
    tail[k++] = ' ';
    tail[k++] = '#';
    tail[k++] = ' ';
    for (size_t pad = ln; pad < 4; pad++)
        tail[k++] = ' ';
    memcpy(tail + k, len, ln);
    k += ln;
    tail[k++] = ',';
    tail[k++] = ' ';
    char digits[12];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + vm % 10);
        vm /= 10;
    } while (vm);
    while (nd)
        tail[k++] = digits[--nd];
    tail[k++] = ' ';
    rs_buf_append(&d->line, tail, k);
    rs_buf_puts(&d->line, kw);
    rs_buf_putc(&d->line, '\n');
    int rc = rs_buf_append(d->out, d->line.p, d->line.len);
    rs_buf_reset(&d->line);
    return rc;
}

static int dump_ds(dumper *d, const dcm_ds *ds, int depth);

static int dump_elem(dumper *d, const dcm_ds *ds, const dcm_elem *e, int depth)
{
    char vr[3], lenbuf[16];
    dcm_vr_str(e->vr, vr);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < depth; i++)
        rs_buf_puts(&d->line, "  ");
    char head[16] = "(gggg,eeee) VR ";
    for (int k = 0; k < 4; k++) {
        head[1 + k] = hex[(e->tag >> (28 - 4 * k)) & 15];
        head[6 + k] = hex[(e->tag >> (12 - 4 * k)) & 15];
    }
    head[12] = vr[0];
    head[13] = vr[1];
    rs_buf_append(&d->line, head, 15);
    size_t col0 = d->line.len;
    if (e->flags & DCM_EF_UNDEF_LEN)
        snprintf(lenbuf, sizeof lenbuf, "u/l");
    else
        snprintf(lenbuf, sizeof lenbuf, "%u", e->len);
    int rc;
    if (e->vr == DCM_VR_SQ) {
        rs_buf_printf(&d->line, "(Sequence with %s length #=%u)",
                      (e->flags & DCM_EF_UNDEF_LEN) ? "undefined" : "explicit", e->v.sq.n);
        rc = end_line(d, col0, lenbuf, 1, keyword_of(ds, e->tag));
        for (uint32_t k = 0; k < e->v.sq.n && rc == RS_OK; k++) {
            const dcm_ds *it = e->v.sq.items[k];
            for (int i = 0; i <= depth; i++)
                rs_buf_puts(&d->line, "  ");
            rs_buf_puts(&d->line, "(fffe,e000) na ");
            size_t c0 = d->line.len;
            char il[16];
            if (it->item_len == DCM_UNDEF_LEN)
                snprintf(il, sizeof il, "u/l");
            else
                snprintf(il, sizeof il, "%u", it->item_len);
            rs_buf_printf(&d->line, "(Item with %s length #=%u)",
                          it->item_len == DCM_UNDEF_LEN ? "undefined" : "explicit", it->n);
            rc = end_line(d, c0, il, 1, "Item");
            if (rc == RS_OK)
                rc = dump_ds(d, it, depth + 2);
        }
        return rc;
    }
    value_text(d, ds, e);
    rc = end_line(d, col0, lenbuf, dcm_elem_vm(e), keyword_of(ds, e->tag));
    for (uint32_t k = 0; rc == RS_OK && (e->flags & DCM_EF_ENCAPS) && k < e->v.px.n; k++) {
        for (int i = 0; i <= depth; i++)
            rs_buf_puts(&d->line, "  ");
        rs_buf_puts(&d->line, "(fffe,e000) pi ");
        size_t c0 = d->line.len;
        rs_buf_printf(&d->line, "(%s, offset %llu)", k == 0 ? "basic offset table" : "fragment",
                      (unsigned long long)e->v.px.frags[k].off);
        snprintf(lenbuf, sizeof lenbuf, "%u", e->v.px.frags[k].len);
        rc = end_line(d, c0, lenbuf, 1, "Item");
    }
    return rc;
}

static int dump_ds(dumper *d, const dcm_ds *ds, int depth)
{
    int rc = RS_OK;
    for (uint32_t i = 0; i < ds->n && rc == RS_OK; i++)
        rc = dump_elem(d, ds, &ds->e[i], depth);
    return rc;
}

int dcm_dump(const dcm_file *f, const dcm_dump_opts *o, rs_buf *out)
{
    static const dcm_dump_opts defaults;
    dumper d = {.o = o ? o : &defaults, .out = out, .line = RS_BUF_INIT, .text = RS_BUF_INIT};
    int rc = rs_buf_puts(out, f->has_preamble ? "# Dicom-File-Format\n" : "# Dicom-Data-Set (no preamble)\n");
    if (rc == RS_OK && !d.o->no_meta && f->meta->n) {
        rs_buf_puts(out, "\n# Dicom-Meta-Information-Header\n# Used TransferSyntax: Little Endian Explicit\n");
        rc = dump_ds(&d, f->meta, 0);
    }
    if (rc == RS_OK) {
        rs_buf_printf(out, "\n# Dicom-Data-Set\n# Used TransferSyntax: %s\n", f->ts->name);
        rc = dump_ds(&d, f->ds, 0);
    }
    rs_buf_free(&d.line);
    rs_buf_free(&d.text);
    return rc;
}
