/*
 * test_store_corpus.c - every file of pydicom's corpus (test_files/, charset_files/) through the
 * store, with pydicom as the oracle for text:
 *   - each file is stored, or refused with RS_EFORMAT/RS_ETRUNC and a message (no other error);
 *   - for a stored file, the index answers every catalogued text attribute exactly as pydicom
 *     decodes it (tests/data/charset_vectors.tsv): Specific Character Set applied, UTF-8 kept;
 *   - the dataset offset store_open_instance gives is where the reader finds the dataset;
 *   - the header JSON kept for /metadata has no pixel data and refers to big values by URI;
 *   - person names in Greek, Cyrillic and accented Latin match case-insensitively.
 * Files sharing a SOPInstanceUID (MR_small in seven encodings...) become versions of each other;
 * each is checked right after its ingest, while it is the current version.
 * Runs from the repository root. Prints TAP lines.
 */
#include "dicom/reader.h"
#include "store/store.h"
#include "t.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PYDICOM "/usr/lib/python3/dist-packages/pydicom/data/"
#define VECTORS "tests/data/charset_vectors.tsv"
#define MAX_VECTORS 4096

typedef struct vector {
    char file[96];   /* "charset_files/chrRuss.dcm" */
    uint32_t tag;
    char expect[512];
} vector;

static vector g_vec[MAX_VECTORS];
static size_t g_nvec;

static int unhex(const char *h, char *out, size_t cap)
{
    size_t n = 0;
    for (; h[0] && h[1] && n + 1 < cap; h += 2) {
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1)
            return -1;
        out[n++] = (char)v;
    }
    out[n] = 0;
    return 0;
}

/* The rows for top-level catalogued attributes (tag path of one tag) that pydicom decoded. */
static void load_vectors(void)
{
    FILE *f = fopen(VECTORS, "r");
    char line[8192];
    while (f && fgets(line, sizeof line, f) && g_nvec < MAX_VECTORS) {
        char file[96], path[64], cs[256], vr[4], raw[4096], exp[4096], note[32];
        if (line[0] == '#' ||
            sscanf(line, "%95s %63s %255s %3s %4095s %4095s %31s", file, path, cs, vr, raw, exp, note) != 7)
            continue;
        unsigned tag;
        if (strlen(path) != 8 || sscanf(path, "%8x", &tag) != 1 || strcmp(note, "ok") != 0)
            continue;
        const store_attr *a = store_attr_find(tag);
        if (!a || !store_attr_from_dataset(a) || a->kind == STORE_AK_INT || a->kind == STORE_AK_DA)
            continue;
        vector *v = &g_vec[g_nvec];
        snprintf(v->file, sizeof v->file, "%s", file);
        v->tag = tag;
        if (unhex(exp, v->expect, sizeof v->expect) == 0)
            g_nvec++;
    }
    if (f)
        fclose(f);
}

typedef struct one_answer {
    int n;
    char value[512];
    uint32_t tag;
} one_answer;

static int take_value(void *ctx, const store_match *m)
{
    one_answer *a = ctx;
    a->n++;
    const dcm_elem *e = dcm_ds_find(m->ds, a->tag);
    int has = e && e->v.bytes;
    snprintf(a->value, sizeof a->value, "%.*s", has ? (int)e->len : 0, has ? (char *)e->v.bytes : "");
    return 0;
}

/* The index's answer for tag of the current version of sop_uid. */
static int index_value(store *s, const char *sop_uid, uint32_t tag, char *out, size_t cap)
{
    store_key k[] = {{DCM_TAG_SOP_INSTANCE_UID, 0, sop_uid}, {tag, 0, NULL}};
    store_query q = {.level = STORE_LEVEL_IMAGE, .model = STORE_STUDY_ROOT, .keys = k, .n_keys = 2};
    one_answer a = {.tag = tag};
    rs_err err = {0};
    if (store_query_run(s, &q, take_value, &a, &err) != RS_OK || a.n != 1)
        return -1;
    snprintf(out, cap, "%s", a.value);
    return 0;
}

typedef struct counts {
    int files, stored, versions, dups, refused, vectors, bulk_uris;
} counts;

/* pydicom strips trailing spaces (and NULs) of the whole value; we strip per value. */
static void rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == 0))
        s[--n] = 0;
}

static void check_vectors(store *s, const char *rel, const store_ingest_result *r, counts *c)
{
    for (size_t i = 0; i < g_nvec; i++) {
        if (strcmp(g_vec[i].file, rel) != 0)
            continue;
        char got[512], want[512];
        snprintf(want, sizeof want, "%s", g_vec[i].expect);
        rstrip(want);
        CHECK_EQ_INT(index_value(s, r->sop_uid, g_vec[i].tag, got, sizeof got), 0);
        if (strcmp(got, want) != 0)
            fprintf(stderr, "%s (%04X,%04X):\n", rel, DCM_TAG_GROUP(g_vec[i].tag), DCM_TAG_ELEM(g_vec[i].tag));
        CHECK_EQ_STR(got, want);
        c->vectors++;
    }
}

static void check_dataset_span(store *s, const char *path, const store_ingest_result *r)
{
    dcm_file *f;
    if (dcm_read_path(path, &(dcm_read_opts){.stop_tag = 1}, &f, NULL) != RS_OK)
        return;
    int fd;
    uint64_t off = 0, len = 0;
    rs_err err = {0};
    CHECK_EQ_INT(store_open_instance(s, r->hash, &fd, &off, &len, &err), RS_OK);
    CHECK_EQ_INT(off, f->data_offset);
    CHECK_EQ_INT(off + len, r->size);
    close(fd);
    dcm_file_free(f);
}

/* The header JSON kept for /metadata: no pixel data, big binary values as relative bulk URIs. */
static void check_metadata(store *s, const store_ingest_result *r, counts *c)
{
    rs_buf j = RS_BUF_INIT;
    rs_err err = {0};
    CHECK_EQ_INT(store_get_metadata(s, r->sop_uid, &j, &err), RS_OK);
    const char *t = j.p ? (const char *)j.p : "";
    CHECK(t[0] == '{' && t[j.len - 1] == '}');
    CHECK(strstr(t, "\"7FE00010\"") == NULL);
    CHECK(strstr(t, r->sop_uid) != NULL);
    for (const char *p = t; (p = strstr(p, "\"BulkDataURI\":\"bulk/")) != NULL; p++)
        c->bulk_uris++;
    rs_buf_free(&j);
}

static void ingest_dir(store *s, const char *sub, counts *c)
{
    char dir[256];
    snprintf(dir, sizeof dir, PYDICOM "%s", sub);
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        size_t len = strlen(name);
        if (len < 5 || strcmp(name + len - 4, ".dcm") != 0) {
            free(names[i]);
            continue;
        }
        char path[768], rel[400];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        snprintf(rel, sizeof rel, "%s/%s", sub, name);
        store_ingest_result r;
        rs_err err = {0};
        int rc = store_put_file(s, path, &r, &err);
        c->files++;
        if (rc == RS_OK) {
            c->stored++;
            c->versions += r.outcome == STORE_NEW_VERSION;
            c->dups += r.outcome == STORE_DUPLICATE;
            if (r.outcome != STORE_DUPLICATE) {
                check_vectors(s, rel, &r, c);
                check_dataset_span(s, path, &r);
                check_metadata(s, &r, c);
            }
        } else {
            CHECK(rc == RS_EFORMAT || rc == RS_ETRUNC);
            CHECK(err.msg[0] != 0);
            c->refused++;
            printf("# refused %s: %s\n", rel, err.msg);
        }
        free(names[i]);
    }
    free(names);
}

static int count_matches(store *s, uint32_t tag, const char *value)
{
    store_key k[] = {{tag, 0, value}};
    store_query q = {.level = STORE_LEVEL_PATIENT, .model = STORE_PATIENT_ROOT, .keys = k, .n_keys = 1};
    one_answer a = {.tag = tag};
    rs_err err = {0};
    return store_query_run(s, &q, take_value, &a, &err) == RS_OK ? a.n : -1;
}

/* The corpus holds many files sharing a SOPInstanceUID: their version lines are expected. */
static void quiet(void *ctx, int level, const char *msg)
{
    if (level <= RS_LOG_ERROR)
        fprintf(stderr, "store: %s\n", msg);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

int main(void)
{
    char root[256];
    snprintf(root, sizeof root, "%s/radshare-test-corpus-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root))
        return 1;
    load_vectors();
    CHECK(g_nvec > 50);
    store *s;
    rs_err err = {0};
    store_opts o = {.log = quiet};
    CHECK_EQ_INT(store_open(root, &o, &s, &err), RS_OK);
    if (!s)
        return t_done();
    counts c = {0};
    int before = t_failures;
    ingest_dir(s, "test_files", &c);
    ingest_dir(s, "charset_files", &c);
    printf("# %d files: %d stored (%d new versions, %d duplicates), %d refused; %d text values checked, "
           "%d bulk data URIs in the metadata\n", c.files, c.stored, c.versions, c.dups, c.refused, c.vectors,
           c.bulk_uris);
    CHECK(c.stored > 60);
    CHECK(c.vectors > 100);
    CHECK(c.bulk_uris > 0);
    printf("%sok 1 - corpus stored, text as pydicom decodes it\n", t_failures == before ? "" : "not ");

    before = t_failures;
    static const uint32_t name = DCM_TAG(0x0010, 0x0010);
    CHECK_EQ_INT(count_matches(s, name, "ΔΙΟΝΥΣΙΟΣ"), 1);  /* stored Διονυσιος, final sigma */
    CHECK_EQ_INT(count_matches(s, name, "люкceмбypг"), 1); /* stored Люкceмбypг (mixed scripts) */
    CHECK_EQ_INT(count_matches(s, name, "buc^jérôme"), 1);
    CHECK_EQ_INT(count_matches(s, name, "ÄNEAS^*"), 1);
    CHECK_EQ_INT(count_matches(s, name, "yamada^tarou"), 1);  /* H31: the alphabetic group alone */
    CHECK_EQ_INT(count_matches(s, name, "ﾔﾏﾀﾞ^ﾀﾛｳ"), 1);     /* H32: its alphabetic group is katakana */
    CHECK_EQ_INT(count_matches(s, name, "*^太郎"), 2);        /* both, by their ideographic group */
    CHECK_EQ_INT(count_matches(s, name, "wang^xiaodong"), 2); /* X1 and X2 */
    CHECK_EQ_INT(count_matches(s, name, "wang^xiaodong=王^小東"), 1); /* with groups: X1 only */
    CHECK_EQ_INT(count_matches(s, name, "hong^gildong=*=홍^길동"), 1);
    printf("%sok 2 - names in other scripts match case-insensitively\n", t_failures == before ? "" : "not ");
    store_close(s);
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("1..2\n");
    return t_done();
}
