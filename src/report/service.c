/*
 * service.c - the report module assembled for `radshare serve` (see service.h), and the lookup
 * of a study's patient data in the archive index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../dicom/vr.h"
#include "../store/store.h"
#include "service.h"

struct report_service {
    report_db *db;
    report_directory *dir;
    report_outbox *outbox;
    char public_url[REPORT_URL_MAX];
    char hl7[262];
};

int report_service_start(const report_service_config *c, report_service **out, rs_err *err)
{
    *out = NULL;
    report_service *s = calloc(1, sizeof *s);
    if (!s)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    snprintf(s->public_url, sizeof s->public_url, "%s", c->public_url ? c->public_url : "");
    snprintf(s->hl7, sizeof s->hl7, "%s", c->hl7 ? c->hl7 : "");
    report_outbox_config oc = c->outbox;
    oc.datadir = c->datadir;
    int rc = report_db_open(c->datadir, &s->db, err);
    if (!rc && c->directory && *c->directory)
        rc = report_dir_load(c->directory, &s->dir, err);
    if (!rc)
        rc = report_outbox_start(&oc, &s->outbox, err);
    if (rc) {
        report_service_stop(s);
        return rc;
    }
    *out = s;
    return RS_OK;
}

void report_service_stop(report_service *s)
{
    if (!s)
        return;
    report_outbox_stop(s->outbox);
    report_dir_free(s->dir);
    report_db_close(s->db);
    free(s);
}

report_db *report_service_db(report_service *s)
{
    return s->db;
}

const char *report_service_public_url(const report_service *s)
{
    return s->public_url;
}

int report_recipient_resolve(const report_directory *dir, const char *default_hl7, const report_recipient *given,
                             const char *referring_pn, report_recipient *out)
{
    memset(out, 0, sizeof *out);
    if (given && (given->email[0] || given->hl7[0]))
        *out = *given;
    else if (report_dir_lookup(dir, referring_pn, out) != RS_OK && given && given->name[0])
        report_dir_lookup(dir, given->name, out);
    if (given && given->name[0] && !out->name[0])
        snprintf(out->name, sizeof out->name, "%s", given->name);
    if (!out->hl7[0] && default_hl7 && *default_hl7)
        snprintf(out->hl7, sizeof out->hl7, "%s", default_hl7);
    return out->email[0] || out->hl7[0] ? RS_OK : RS_ENOTFOUND;
}

int report_service_recipient(const report_service *s, const report_recipient *given, const char *referring_pn,
                             report_recipient *out)
{
    return report_recipient_resolve(s->dir, s->hl7, given, referring_pn, out);
}

int report_service_submit(report_service *s, const report_input *in, int64_t *report_id, rs_err *err)
{
    int rc = report_create(s->db, in, report_id, err);
    if (!rc)
        report_outbox_kick(s->outbox);
    return rc;
}

/* ---- the study's attributes from the index --------------------------------------------------- */

static const struct {
    uint32_t tag;
    size_t off, cap;
} study_keys[] = {
#define K(g, e, f) {DCM_TAG(g, e), offsetof(report_study, f), sizeof((report_study *)0)->f}
    K(0x0010, 0x0020, patient_id), K(0x0010, 0x0010, patient_name), K(0x0010, 0x0030, birth_date),
    K(0x0010, 0x0040, sex),        K(0x0008, 0x0050, accession),    K(0x0008, 0x1030, procedure),
    K(0x0008, 0x0020, study_date), K(0x0008, 0x0090, referring),
#undef K
};

static int take_study(void *ctx, const store_match *m)
{
    report_study *out = ctx;
    for (size_t i = 0; i < sizeof study_keys / sizeof study_keys[0]; i++) {
        char *dst = (char *)out + study_keys[i].off;
        if (dcm_ds_get_str(m->ds, study_keys[i].tag, 0, dst, study_keys[i].cap) < 0)
            dst[0] = 0;
    }
    return 1;   /* one study is all we asked for */
}

int report_study_from_store(store *st, const char *study_uid, report_study *out, rs_err *err)
{
    store_key keys[1 + sizeof study_keys / sizeof study_keys[0]];
    size_t n = 0;
    keys[n++] = (store_key){.tag = DCM_TAG(0x0020, 0x000D), .value = study_uid};
    for (size_t i = 0; i < sizeof study_keys / sizeof study_keys[0]; i++)
        keys[n++] = (store_key){.tag = study_keys[i].tag};
    store_query q = {.level = STORE_LEVEL_STUDY, .model = STORE_STUDY_ROOT, .keys = keys, .n_keys = n, .limit = 1};
    report_study found;
    memset(&found, 0, sizeof found);
    found.patient_id[0] = 1;   /* marks "not found" until the callback runs */
    int rc = store_query_run(st, &q, take_study, &found, err);
    if (rc < 0)
        return rc;
    if (found.patient_id[0] == 1)
        return rs_err_set(err, RS_ENOTFOUND, "study %s is not in the archive", study_uid);
    *out = found;
    return RS_OK;
}
