/*
 * query.c - C-FIND keys -> a plan over the attribute catalog, and rows -> answer datasets
 * (see query.h). Backend-neutral: SQL is the backend's business (index_sqlite.c).
 */
#include "query.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dicom/dict.h"
#include "norm.h"
#include "record.h"

static const char MIN_TIME[] = "000000.000000";
static const char MAX_TIME[] = "235959.999999";

/* ---- key sets ------------------------------------------------------------------------------- */

void store_keyset_init(store_keyset *ks)
{
    memset(ks, 0, sizeof *ks);
    rs_arena_init(&ks->arena, 0);
}

void store_keyset_free(store_keyset *ks)
{
    rs_arena_free(&ks->arena);
    memset(ks, 0, sizeof *ks);
}

int store_keyset_add(store_keyset *ks, uint32_t tag, uint16_t vr, const char *value, rs_err *err)
{
    if (ks->n == STORE_MAX_KEYS)
        return rs_err_set(err, RS_ELIMIT, "more than %d query keys", STORE_MAX_KEYS);
    const char *v = NULL;
    if (value && !(v = rs_arena_strndup(&ks->arena, value, strlen(value))))
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    ks->key[ks->n++] = (store_key){tag, vr, v};
    return RS_OK;
}

static int parse_level(const dcm_ds *ds, store_level *level, rs_err *err)
{
    char v[17];
    if (dcm_ds_get_str(ds, DCM_TAG(0x0008, 0x0052), 0, v, sizeof v) < 0)
        return RS_OK;
    for (int i = 0; i < STORE_N_LEVELS; i++)
        if (strcmp(v, store_level_name((store_level)i)) == 0) {
            *level = (store_level)i;
            return RS_OK;
        }
    return rs_err_set(err, RS_EINVAL, "unknown QueryRetrieveLevel \"%s\"", v);
}

int store_keyset_from_ds(store_keyset *ks, const dcm_ds *identifier, store_level *level, rs_err *err)
{
    int rc = parse_level(identifier, level, err);
    rs_buf text = RS_BUF_INIT;
    for (uint32_t i = 0; i < identifier->n && rc == RS_OK; i++) {
        dcm_elem *e = &identifier->e[i];
        uint16_t g = DCM_TAG_GROUP(e->tag);
        if (g == 0x0000 || g == 0x0002 || e->tag == DCM_TAG_SPECIFIC_CHARSET || e->tag == DCM_TAG(0x0008, 0x0052))
            continue;
        rs_buf_reset(&text);
        rc = store_elem_text(identifier, e, &text, err);
        if (rc == RS_OK)
            rc = store_keyset_add(ks, e->tag, e->vr, text.p ? (const char *)text.p : "", err);
    }
    rs_buf_free(&text);
    return rc;
}

/* ---- compiling keys to conditions ----------------------------------------------------------- */

static char *pdup(store_plan *p, const char *s, size_t n)
{
    return rs_arena_strndup(&p->arena, s, n);
}

static int has_wildcard(const char *s)
{
    return strpbrk(s, "*?") != NULL;
}

static int bad_key(const store_attr *a, const char *v, rs_err *err)
{
    return rs_err_set(err, RS_EINVAL, "invalid value \"%.64s\" for (%04X,%04X)", v,
                      DCM_TAG_GROUP(a->tag), DCM_TAG_ELEM(a->tag));
}

/* One bound of a DA/TM range in normal form; NULL for an open end. */
static int range_bound(store_plan *p, const store_attr *a, const char *s, int upper, const char **out)
{
    char da[STORE_DA_LEN + 1], tm[STORE_TM_LEN + 1];
    *out = NULL;
    if (!*s)
        return RS_OK;
    int bad = a->kind == STORE_AK_DA ? store_norm_da(s, da) : store_norm_tm(s, upper, tm);
    if (bad)
        return RS_EINVAL;
    const char *n = a->kind == STORE_AK_DA ? da : tm;
    *out = pdup(p, n, strlen(n));
    return *out ? RS_OK : RS_ENOMEM;
}

/* A DA or TM alternative: "a-b", "a-", "-b", or one value (for TM, the span its precision covers). */
static int parse_range(store_plan *p, const store_attr *a, const char *alt, store_term *t)
{
    const char *dash = strchr(alt, '-');
    t->kind = STORE_TERM_RANGE;
    if (!dash && a->kind == STORE_AK_DA) {
        t->kind = STORE_TERM_EQ;
        return range_bound(p, a, alt, 0, &t->value);
    }
    char *lo = pdup(p, alt, dash ? (size_t)(dash - alt) : strlen(alt));
    if (!lo)
        return RS_ENOMEM;
    int rc = range_bound(p, a, lo, 0, &t->lo);
    if (rc == RS_OK)
        rc = range_bound(p, a, dash ? dash + 1 : lo, 1, &t->hi);
    return rc;
}

/* Translate one alternative of a key; *universal when it matches everything. */
static int parse_term(store_plan *p, const store_attr *a, const char *alt, store_term *t, int *universal)
{
    *universal = !*alt || strcmp(alt, "*") == 0;
    if (*universal)
        return RS_OK;
    memset(t, 0, sizeof *t);
    switch (a->kind) {
    case STORE_AK_DA:
    case STORE_AK_TM:
        if (has_wildcard(alt))
            return RS_EINVAL;
        if (strcmp(alt, "-") == 0) {
            *universal = 1;
            return RS_OK;
        }
        return parse_range(p, a, alt, t);
    case STORE_AK_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(alt, &end, 10);
        if (end == alt || *end || errno)
            return RS_EINVAL;
        char num[24];
        snprintf(num, sizeof num, "%lld", v);
        t->kind = STORE_TERM_EQ;
        t->value = pdup(p, num, strlen(num));
        return t->value ? RS_OK : RS_ENOMEM;
    }
    case STORE_AK_PN: {
        rs_buf b = RS_BUF_INIT;
        int rc = store_norm_pn(alt, &b);
        t->value = rc ? NULL : pdup(p, b.p ? (const char *)b.p : "", b.len);
        rs_buf_free(&b);
        if (!t->value)
            return RS_ENOMEM;
        *universal = !*t->value || strcmp(t->value, "*") == 0;
        t->kind = has_wildcard(t->value) ? STORE_TERM_WILDCARD : STORE_TERM_EQ;
        return RS_OK;
    }
    default:
        t->kind = has_wildcard(alt) ? STORE_TERM_WILDCARD : STORE_TERM_EQ;
        t->value = alt;
        return RS_OK;
    }
}

/* The conditions of one key: its backslash-separated alternatives, OR'ed. */
static int add_cond(store_plan *p, const store_attr *a, const char *value, rs_err *err)
{
    size_t n = 1;
    for (const char *s = value; *s; s++)
        n += *s == '\\';
    store_term *terms = rs_arena_zalloc(&p->arena, n * sizeof *terms);
    char *copy = pdup(p, value, strlen(value));
    if (!terms || !copy)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    size_t k = 0;
    for (char *alt = copy, *next; alt; alt = next) {
        next = strchr(alt, '\\');
        if (next)
            *next++ = 0;
        int universal, rc = parse_term(p, a, alt, &terms[k], &universal);
        if (rc == RS_EINVAL)
            return bad_key(a, value, err);
        if (rc)
            return rs_err_set(err, rc, "out of memory");
        if (universal)
            return RS_OK; /* one alternative matches everything: so does the key */
        k++;
    }
    p->cond[p->n_cond++] = (store_cond){a, NULL, terms, k};
    return RS_OK;
}

static store_cond *find_cond(store_plan *p, uint32_t tag)
{
    for (size_t i = 0; i < p->n_cond; i++)
        if (p->cond[i].attr->tag == tag)
            return &p->cond[i];
    return NULL;
}

/* "YYYYMMDD" + time, or NULL when the date end is open. */
static const char *join_dt(store_plan *p, const char *date, const char *time, const char *dflt)
{
    if (!date)
        return NULL;
    char buf[STORE_DA_LEN + STORE_TM_LEN + 1];
    snprintf(buf, sizeof buf, "%s%s", date, time ? time : dflt);
    return pdup(p, buf, strlen(buf));
}

/*
 * PS3.4 C.2.2.2.5.1: with combined date-time matching, a date key and a time range on the
 * same entity form one range: 20060705-20060707 with 1000-1800 means from July 5th 10:00 to
 * July 7th 18:00, not "10:00 to 18:00 on each of those days".
 */
static int combine_datetime(store_plan *p, store_cond *d, rs_err *err)
{
    store_cond *t = find_cond(p, d->attr->pair);
    if (!t || d->n_terms != 1 || t->n_terms != 1 || t->terms[0].kind != STORE_TERM_RANGE)
        return RS_OK;
    const store_term *dt = &d->terms[0], *tt = &t->terms[0];
    const char *dlo = dt->kind == STORE_TERM_EQ ? dt->value : dt->lo;
    const char *dhi = dt->kind == STORE_TERM_EQ ? dt->value : dt->hi;
    store_term *m = rs_arena_zalloc(&p->arena, sizeof *m);
    if (!m)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    m->kind = STORE_TERM_RANGE;
    m->lo = join_dt(p, dlo, tt->lo, MIN_TIME);
    m->hi = join_dt(p, dhi, tt->hi, MAX_TIME);
    if ((dlo && !m->lo) || (dhi && !m->hi))
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    *d = (store_cond){d->attr, t->attr, m, 1};
    *t = p->cond[--p->n_cond]; /* drop the time condition (order of conditions is free) */
    return RS_OK;
}

static int add_ret(store_plan *p, const store_attr *a)
{
    for (size_t i = 0; i < p->n_ret; i++)
        if (p->ret[i] == a)
            return RS_OK;
    p->ret[p->n_ret++] = a;
    return RS_OK;
}

static store_level root_level(const store_query *q)
{
    return q->model == STORE_STUDY_ROOT ? STORE_LEVEL_STUDY : STORE_LEVEL_PATIENT;
}

int store_plan_build(const store_query *q, store_plan *p, rs_err *err)
{
    memset(p, 0, sizeof *p);
    rs_arena_init(&p->arena, 0);
    p->q = q;
    p->level = q->level;
    if ((unsigned)q->level >= STORE_N_LEVELS || (q->model == STORE_STUDY_ROOT && q->level == STORE_LEVEL_PATIENT))
        return rs_err_set(err, RS_EINVAL, "query level not in the information model");
    if (q->n_keys > STORE_MAX_KEYS)
        return rs_err_set(err, RS_ELIMIT, "more than %d query keys", STORE_MAX_KEYS);
    for (int l = root_level(q); l <= (int)q->level; l++)
        add_ret(p, store_attr_unique((store_level)l));
    int rc = RS_OK;
    for (size_t i = 0; i < q->n_keys && rc == RS_OK; i++) {
        const store_attr *a = store_attr_find(q->keys[i].tag);
        if (!a || a->level > q->level)
            continue; /* not kept, or below the level: answered empty */
        if (a->kind != STORE_AK_CONST)
            add_ret(p, a);
        if (q->keys[i].value && a->kind != STORE_AK_COUNT && a->kind != STORE_AK_CONST && !find_cond(p, a->tag))
            rc = add_cond(p, a, q->keys[i].value, err);
    }
    for (size_t i = 0; q->combine_datetime && rc == RS_OK && i < p->n_cond; i++)
        if (p->cond[i].attr->kind == STORE_AK_DA && p->cond[i].attr->pair)
            rc = combine_datetime(p, &p->cond[i], err);
    return rc;
}

void store_plan_free(store_plan *p)
{
    rs_arena_free(&p->arena);
}

/* ---- answers -------------------------------------------------------------------------------- */

static const char *ret_value(const store_plan *p, const char *const *vals, const store_attr *a)
{
    for (size_t i = 0; i < p->n_ret; i++)
        if (p->ret[i] == a)
            return vals[i] ? vals[i] : "";
    return NULL;
}

static uint16_t key_vr(uint32_t tag, uint16_t vr, const store_attr *a)
{
    if (vr)
        return vr;
    if (a)
        return a->vr;
    const dcm_dict_entry *d = dcm_dict_lookup(tag);
    return d && d->vr[0] ? d->vr[0] : DCM_VR_UN;
}

/* Binary numbers (US, UL, SS, SL, FL, FD...) are answered as binary values, not text. */
static int put_binary_numbers(dcm_ds *ds, uint32_t tag, uint16_t vr, const dcm_vr_info *vi, const char *value)
{
    uint8_t buf[8 * 64];
    size_t n = 0;
    const char *p = value;
    while (*p && n + vi->fixed_size <= sizeof buf) {
        char *end;
        double d = strtod(p, &end);
        if (end == p)
            break;
        uint64_t u = 0;
        if (vr == DCM_VR_FL) {
            float f = (float)d;
            uint32_t w;
            memcpy(&w, &f, 4);
            u = w;
        } else if (vr == DCM_VR_FD) {
            memcpy(&u, &d, 8);
        } else {
            u = (uint64_t)(int64_t)d;
        }
        for (unsigned k = 0; k < vi->fixed_size; k++)
            buf[n++] = (uint8_t)(u >> (8 * k));
        p = *end == '\\' ? end + 1 : end;
        if (*end != '\\')
            break;
    }
    return dcm_ds_set_bytes(ds, tag, vr, buf, n);
}

/* Put one answer element; a requested sequence is answered as an empty one. */
static int put_answer(dcm_ds *ds, uint32_t tag, uint16_t vr, const char *value)
{
    if (vr == DCM_VR_SQ) {
        dcm_elem *e = dcm_ds_put(ds, tag, DCM_VR_SQ);
        return e ? RS_OK : RS_ENOMEM;
    }
    const dcm_vr_info *vi = dcm_vr_info_get(vr);
    if (vi && vi->kind == DCM_VK_NUMBER)
        return put_binary_numbers(ds, tag, vr, vi, value ? value : "");
    return dcm_ds_set_str(ds, tag, vr, value ? value : "");
}

static int is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return 0;
    return 1;
}

static int build_answer(const store_plan *p, const char *const *vals, dcm_ds *ds)
{
    int rc = RS_OK, ascii = 1;
    for (size_t i = 0; i < p->q->n_keys && rc == RS_OK; i++) {
        const store_key *k = &p->q->keys[i];
        const store_attr *a = store_attr_find(k->tag);
        const char *v = NULL;
        if (a && a->level <= p->level)
            v = a->kind == STORE_AK_CONST ? a->value : ret_value(p, vals, a);
        ascii &= !v || is_ascii(v);
        rc = put_answer(ds, k->tag, key_vr(k->tag, k->vr, a), v);
    }
    for (size_t i = 0; i < p->n_ret && rc == RS_OK; i++)
        if (!dcm_ds_find(ds, p->ret[i]->tag)) { /* the unique keys nobody asked for */
            ascii &= !vals[i] || is_ascii(vals[i]);
            rc = put_answer(ds, p->ret[i]->tag, p->ret[i]->vr, vals[i]);
        }
    if (rc == RS_OK && !ascii)
        rc = dcm_ds_set_str(ds, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 192");
    return rc;
}

int store_plan_emit(const store_plan *p, const char *const *vals, const store_row_extra *extra,
                    store_match_fn fn, void *ctx)
{
    dcm_file *f = dcm_file_new(0);
    if (!f)
        return RS_ENOMEM;
    int rc = build_answer(p, vals, f->ds);
    if (rc == RS_OK) {
        store_match m = {.ds = f->ds};
        if (p->level >= STORE_LEVEL_STUDY)
            m.study_uid = ret_value(p, vals, store_attr_unique(STORE_LEVEL_STUDY));
        if (p->level >= STORE_LEVEL_SERIES)
            m.series_uid = ret_value(p, vals, store_attr_unique(STORE_LEVEL_SERIES));
        if (p->level == STORE_LEVEL_IMAGE && extra) {
            m.sop_uid = ret_value(p, vals, store_attr_unique(STORE_LEVEL_IMAGE));
            m.sop_class = extra->sop_class;
            m.hash = extra->hash;
            m.size = extra->size;
            m.ts_uid = extra->ts_uid;
            m.metadata = extra->metadata;
            m.metadata_len = extra->metadata_len;
        }
        rc = fn(ctx, &m);
    }
    dcm_file_free(f);
    return rc;
}
