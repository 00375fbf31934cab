/*
 * test_store.c - the storage engine (src/store/), end to end on a scratch data directory:
 *   - value normal forms (PN folding, DA/TM ranges);
 *   - ingest of a real file: hash, object path, index row, header JSON without pixels;
 *   - identity: a resent file is a duplicate, other bytes under the same SOPInstanceUID are a
 *     new version (logged), bad files are refused and leave nothing behind;
 *   - bare datasets (C-STORE) get a deterministic meta header, and store_open_instance finds
 *     the dataset in the file again;
 *   - 8 threads ingesting at once: every ingest acknowledged, counts right, and the group commit
 *     really batches (ingests per commit is printed);
 *   - queries at the four levels: wildcards, ranges, combined date-time, UID lists, universal
 *     matching, case-insensitive names, derived counts and lists, paging, cancel, errors;
 *   - recovery from a crash simulated in tmp/, and from a child SIGKILLed while ingesting: every
 *     acknowledged instance is there and intact, nothing unacknowledged is half there;
 *   - reindex rebuilds the same index from objects/ alone.
 * Instances are made from pydicom's CT_small.dcm with changed attributes. Prints TAP lines.
 */
#include "dicom/reader.h"
#include "dicom/writer.h"
#include "store/blobstore.h"
#include "store/norm.h"
#include "store/store.h"
#include "t.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_FILES "/usr/lib/python3/dist-packages/pydicom/data/test_files/"
#define TEMPLATE TEST_FILES "CT_small.dcm"
#define UID_ROOT "1.2.826.0.1.3680043.10.1449.77."
#define CT_CLASS "1.2.840.10008.5.1.4.1.1.2"
#define SR_CLASS "1.2.840.10008.5.1.4.1.1.88.22"
#define TAG_PATIENT_NAME DCM_TAG(0x0010, 0x0010)
#define TAG_PATIENT_ID DCM_TAG(0x0010, 0x0020)
#define TAG_STUDY_DATE DCM_TAG(0x0008, 0x0020)
#define TAG_STUDY_TIME DCM_TAG(0x0008, 0x0030)
#define TAG_ACCESSION DCM_TAG(0x0008, 0x0050)
#define TAG_MODALITY DCM_TAG(0x0008, 0x0060)
#define TAG_MODALITIES DCM_TAG(0x0008, 0x0061)
#define TAG_SOP_CLASSES DCM_TAG(0x0008, 0x0062)
#define TAG_REFERRING DCM_TAG(0x0008, 0x0090)
#define TAG_INSTANCE_NUMBER DCM_TAG(0x0020, 0x0013)
#define TAG_SERIES_NUMBER DCM_TAG(0x0020, 0x0011)

static char g_root[256];      /* scratch directory of this run */
static uint8_t *g_template;   /* CT_small.dcm */
static size_t g_template_len;

/* ---- helpers --------------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void rm_tree(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void datadir(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", g_root, name);
    rm_tree(out);
}

static int load_template(void)
{
    FILE *f = fopen(TEMPLATE, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    g_template_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g_template = malloc(g_template_len);
    size_t got = fread(g_template, 1, g_template_len, f);
    fclose(f);
    return got == g_template_len ? 0 : -1;
}

/* What makes a generated instance; NULL fields keep the template's value. */
typedef struct spec {
    const char *patient_id, *patient_name, *birth_date, *sex;
    const char *study_uid, *study_date, *study_time, *accession, *referring, *study_desc;
    const char *series_uid, *modality, *series_number;
    const char *sop_uid, *sop_class, *instance_number;
    const char *extra;  /* a value for ImageComments, to make otherwise equal files differ */
} spec;

static void set(dcm_ds *ds, uint32_t tag, uint16_t vr, const char *v)
{
    if (v)
        dcm_ds_set_str(ds, tag, vr, v);
}

/* A Part 10 file (or the bare dataset, bare=1) for sp, from the template. */
static int build(const spec *sp, int bare, rs_buf *out)
{
    dcm_file *f;
    rs_err err = {0};
    if (dcm_read_mem(g_template, g_template_len, NULL, &f, &err))
        return -1;
    dcm_ds *ds = f->ds;
    dcm_ds_set_str(ds, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 192");
    set(ds, TAG_PATIENT_ID, DCM_VR_LO, sp->patient_id);
    set(ds, TAG_PATIENT_NAME, DCM_VR_PN, sp->patient_name);
    set(ds, DCM_TAG(0x0010, 0x0030), DCM_VR_DA, sp->birth_date);
    set(ds, DCM_TAG(0x0010, 0x0040), DCM_VR_CS, sp->sex);
    set(ds, DCM_TAG_STUDY_UID, DCM_VR_UI, sp->study_uid);
    set(ds, TAG_STUDY_DATE, DCM_VR_DA, sp->study_date);
    set(ds, TAG_STUDY_TIME, DCM_VR_TM, sp->study_time);
    set(ds, TAG_ACCESSION, DCM_VR_SH, sp->accession);
    set(ds, TAG_REFERRING, DCM_VR_PN, sp->referring);
    set(ds, DCM_TAG(0x0008, 0x1030), DCM_VR_LO, sp->study_desc);
    set(ds, DCM_TAG_SERIES_UID, DCM_VR_UI, sp->series_uid);
    set(ds, TAG_MODALITY, DCM_VR_CS, sp->modality);
    set(ds, TAG_SERIES_NUMBER, DCM_VR_IS, sp->series_number);
    set(ds, DCM_TAG_SOP_INSTANCE_UID, DCM_VR_UI, sp->sop_uid);
    set(ds, DCM_TAG_SOP_CLASS_UID, DCM_VR_UI, sp->sop_class);
    set(ds, TAG_INSTANCE_NUMBER, DCM_VR_IS, sp->instance_number);
    set(ds, DCM_TAG(0x0020, 0x4000), DCM_VR_LT, sp->extra);
    set(f->meta, DCM_TAG_MEDIA_SOP_INSTANCE, DCM_VR_UI, sp->sop_uid);
    set(f->meta, DCM_TAG_MEDIA_SOP_CLASS, DCM_VR_UI, sp->sop_class);
    dcm_write_opts wo = {.no_meta = bare};
    int rc = dcm_write(f, &wo, out, &err);
    dcm_file_free(f);
    return rc;
}

static int put_spec(store *s, const spec *sp, store_ingest_result *res, rs_err *err)
{
    rs_buf b = RS_BUF_INIT;
    int rc = build(sp, 0, &b);
    if (rc == RS_OK)
        rc = store_put_mem(s, b.p, b.len, res, err);
    rs_buf_free(&b);
    return rc;
}

/*
 * What tmp/ holds besides the pool's unused slots (empty *.part files, made ahead of time so
 * that an ingest needs no directory fsync): received bytes not yet moved, leftovers.
 */
static int tmp_entries(const char *dir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/tmp", dir);
    DIR *d = opendir(p);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        struct stat st;
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.')
            continue;
        int slot = len > 5 && !strcmp(de->d_name + len - 5, ".part") &&
                   fstatat(dirfd(d), de->d_name, &st, 0) == 0 && st.st_size == 0;
        n += !slot;
    }
    if (d)
        closedir(d);
    return d ? n : -1;
}

/*
 * tmp_entries once the syncer has had its turn: a stored file keeps its tmp/ slot name (beside
 * its objects/ name) until the objects/ directory is fsync'ed, a moment after the answer.
 */
static int tmp_entries_settled(const char *dir)
{
    int n = tmp_entries(dir);
    for (int i = 0; i < 200 && n > 0; i++) {
        usleep(10000);
        n = tmp_entries(dir);
    }
    return n;
}

static int file_exists(const char *p)
{
    return access(p, F_OK) == 0;
}

static void object_path(const char *dir, const char *hash, char *out, size_t cap)
{
    snprintf(out, cap, "%s/objects/%.2s/%.2s/%s", dir, hash, hash + 2, hash);
}

/* SHA-256 of a file by path ("" when unreadable). */
static void hash_path(const char *path, char out[STORE_HASH_HEX + 1])
{
    out[0] = 0;
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        if (store_blob_hash_fd(fd, out, NULL, NULL))
            out[0] = 0;
        close(fd);
    }
}

/* Log lines captured from the store (the committer thread writes them too). */
typedef struct logcap {
    pthread_mutex_t mu;
    rs_buf text;
    int lines;
} logcap;

static void log_capture(void *ctx, int level, const char *msg)
{
    logcap *l = ctx;
    pthread_mutex_lock(&l->mu);
    rs_buf_printf(&l->text, "%d %s\n", level, msg);
    l->lines++;
    pthread_mutex_unlock(&l->mu);
}

/* ---- queries: collecting answers ------------------------------------------------------------- */

#define MAX_ROWS 64

typedef struct answers {
    int n;
    char v[MAX_ROWS][4][200];   /* the values of up to 4 tags of interest, per match */
    uint32_t tags[4];
    char hash[MAX_ROWS][65];
    int charset_utf8[MAX_ROWS];
    int stop_after;             /* answer 1 (stop) after this many */
    int with_json;
} answers;

static int collect(void *ctx, const store_match *m)
{
    answers *a = ctx;
    if (a->n >= MAX_ROWS)
        return 1;
    for (int k = 0; k < 4 && a->tags[k]; k++) {
        a->v[a->n][k][0] = 0;
        dcm_elem *e = dcm_ds_find(m->ds, a->tags[k]);
        const dcm_vr_info *vi = e ? dcm_vr_info_get(e->vr) : NULL;
        if (vi && vi->kind == DCM_VK_NUMBER) {
            /* binary numbers (US Rows...) are answered as binary values: compare their text */
            rs_buf t = RS_BUF_INIT;
            store_elem_text(m->ds, e, &t, NULL);
            snprintf(a->v[a->n][k], sizeof a->v[0][0], "%s", t.p ? (const char *)t.p : "");
            rs_buf_free(&t);
        } else if (e && e->vr != DCM_VR_SQ && e->v.bytes)
            snprintf(a->v[a->n][k], sizeof a->v[0][0], "%.*s", (int)e->len, (const char *)e->v.bytes);
        else if (!e)
            snprintf(a->v[a->n][k], sizeof a->v[0][0], "(absent)");
    }
    snprintf(a->hash[a->n], 65, "%s", m->hash ? m->hash : "");
    char cs[32] = "";
    dcm_ds_get_str(m->ds, DCM_TAG_SPECIFIC_CHARSET, 0, cs, sizeof cs);
    a->charset_utf8[a->n] = strcmp(cs, "ISO_IR 192") == 0;
    if (a->with_json && (!m->metadata || !strstr(m->metadata, m->sop_uid)))
        a->hash[a->n][0] = 0; /* flags a missing or wrong JSON */
    a->n++;
    return a->stop_after && a->n >= a->stop_after ? 1 : 0;
}

/* Run a query; keys are given as tag/value pairs ending with 0. */
static int query(store *s, store_model model, store_level level, answers *a, const uint32_t *want,
                 int combine, const store_key *keys, size_t n_keys, rs_err *err)
{
    memset(a->v, 0, sizeof a->v);
    a->n = 0;
    memcpy(a->tags, want, sizeof a->tags);
    store_query q = {.level = level, .model = model, .keys = keys, .n_keys = n_keys, .combine_datetime = combine,
                     .with_metadata = a->with_json};
    return store_query_run(s, &q, collect, a, err);
}

/* Does some answer have value v for the k-th tag of interest? */
static int has_value(const answers *a, int k, const char *v)
{
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->v[i][k], v) == 0)
            return 1;
    return 0;
}

/* ---- sections ----------------------------------------------------------------------------------- */

static void test_norm(void)
{
    rs_buf b = RS_BUF_INIT;
    store_norm_pn("Doe^John^^^", &b);
    CHECK_EQ_STR((char *)b.p, "DOE^JOHN");
    rs_buf_reset(&b);
    store_norm_pn(" müller ^ jürgen =山田^太郎==", &b);
    CHECK_EQ_STR((char *)b.p, "MÜLLER ^ JÜRGEN=山田^太郎");
    rs_buf_reset(&b);
    store_norm_upper("ßåéøñ άσς ёж", strlen("ßåéøñ άσς ёж"), &b);
    CHECK_EQ_STR((char *)b.p, "ßÅÉØÑ ΆΣΣ ЁЖ");
    rs_buf_free(&b);
    char tm[STORE_TM_LEN + 1], da[STORE_DA_LEN + 1];
    CHECK(store_norm_tm("10", 0, tm) == 0 && strcmp(tm, "100000.000000") == 0);
    CHECK(store_norm_tm("10", 1, tm) == 0 && strcmp(tm, "105959.999999") == 0);
    CHECK(store_norm_tm("1015", 1, tm) == 0 && strcmp(tm, "101559.999999") == 0);
    CHECK(store_norm_tm("101530.5", 0, tm) == 0 && strcmp(tm, "101530.500000") == 0);
    CHECK(store_norm_tm("101530.5", 1, tm) == 0 && strcmp(tm, "101530.599999") == 0);
    CHECK(store_norm_tm("10:15:30", 0, tm) == 0 && strcmp(tm, "101530.000000") == 0);
    CHECK(store_norm_tm("1", 0, tm) != 0);
    CHECK(store_norm_tm("10a0", 0, tm) != 0);
    CHECK(store_norm_da("2020.01.05", da) == 0 && strcmp(da, "20200105") == 0);
    CHECK(store_norm_da("20200105", da) == 0);
    CHECK(store_norm_da("2020-01-05", da) != 0);
}

/* Ingest the template itself; check every place it must be. */
static void write_file(const char *path, const void *p, size_t n);

static void test_ingest(void)
{
    char dir[300], obj[512], h[65];
    datadir("ingest", dir, sizeof dir);
    store *s;
    rs_err err = {0};
    CHECK_EQ_INT(store_open(dir, NULL, &s, &err), RS_OK);
    if (!s)
        return;
    store_ingest_result r;
    CHECK_EQ_INT(store_put_file(s, TEMPLATE, &r, &err), RS_OK);
    CHECK_EQ_INT(r.outcome, STORE_NEW);
    CHECK_EQ_INT(r.version, 1);
    CHECK(r.current && !r.duplicate && !r.new_version);
    /* what is stored is the file with its preamble zeroed (test_preamble) */
    char zeroed[400];
    snprintf(zeroed, sizeof zeroed, "%s/template-zeroed.dcm", g_root);
    uint8_t *z = malloc(g_template_len);
    CHECK(z != NULL);
    if (z) {
        memcpy(z, g_template, g_template_len);
        memset(z, 0, 128);
        write_file(zeroed, z, g_template_len);
        free(z);
    }
    hash_path(zeroed, h);
    CHECK_EQ_STR(r.hash, h);
    CHECK_EQ_INT(r.size, g_template_len);
    CHECK_EQ_STR(r.sop_uid, "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322");
    object_path(dir, r.hash, obj, sizeof obj);
    CHECK(file_exists(obj));
    CHECK_EQ_INT(tmp_entries_settled(dir), 0);
    struct stat st;
    CHECK(stat(obj, &st) == 0 && (st.st_mode & 0777) == 0640);

    store_instance_info info;
    CHECK_EQ_INT(store_find_instance(s, r.sop_uid, &info, &err), RS_OK);
    CHECK_EQ_STR(info.hash, r.hash);
    CHECK_EQ_STR(info.study_uid, "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322");
    CHECK_EQ_STR(info.ts_uid, "1.2.840.10008.1.2.1");
    CHECK_EQ_INT(info.version, 1);
    CHECK_EQ_INT(info.n_versions, 1);
    CHECK_EQ_INT(info.received_ns, (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
    char path[512];
    CHECK_EQ_INT(store_get_instance_path(s, r.sop_uid, path, sizeof path, &err), RS_OK);
    CHECK_EQ_STR(path, obj);
    int fd;
    CHECK_EQ_INT(store_open_current(s, r.sop_uid, &fd, NULL, &err), RS_OK);
    char h2[65] = "";
    store_blob_hash_fd(fd, h2, NULL, NULL);
    close(fd);
    CHECK_EQ_STR(h2, r.hash);
    CHECK_EQ_INT(store_find_instance(s, "1.2.3.4", &info, &err), RS_ENOTFOUND);

    rs_buf json = RS_BUF_INIT;
    CHECK_EQ_INT(store_get_metadata(s, r.sop_uid, &json, &err), RS_OK);
    const char *j = json.p ? (const char *)json.p : "";
    CHECK(strstr(j, "\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\"CompressedSamples^CT1\"}]}") != NULL);
    CHECK(strstr(j, "\"00080018\"") != NULL);
    CHECK(strstr(j, "7FE00010") == NULL); /* pixels are never read */
    rs_buf_free(&json);

    store_stats stats;
    CHECK_EQ_INT(store_get_stats(s, &stats, &err), RS_OK);
    CHECK_EQ_INT(stats.index.instances, 1);
    CHECK_EQ_INT(stats.index.studies, 1);
    CHECK_EQ_INT(stats.index.bytes, g_template_len);
    CHECK_EQ_INT(stats.commit.batches, 1);
    store_close(s);
}

/* Duplicates, versions and refusals. */
static void test_identity(void)
{
    char dir[300], obj[512];
    datadir("identity", dir, sizeof dir);
    logcap lc = {.mu = PTHREAD_MUTEX_INITIALIZER};
    store_opts o = {.log = log_capture, .log_ctx = &lc, .max_object_size = 1u << 20};
    store *s;
    rs_err err = {0};
    CHECK_EQ_INT(store_open(dir, &o, &s, &err), RS_OK);
    if (!s)
        return;
    spec v1 = {.sop_uid = UID_ROOT "1.1", .extra = "first"}, v2 = v1;
    v2.extra = "second";
    store_ingest_result r1, r2, r3, r4;
    CHECK_EQ_INT(put_spec(s, &v1, &r1, &err), RS_OK);
    CHECK_EQ_INT(put_spec(s, &v1, &r2, &err), RS_OK);
    CHECK_EQ_INT(r1.outcome, STORE_NEW);
    CHECK_EQ_INT(r2.outcome, STORE_DUPLICATE);
    CHECK(r2.duplicate);
    CHECK_EQ_INT(r2.version, 1);
    CHECK_EQ_STR(r2.hash, r1.hash);
    CHECK_EQ_INT(lc.lines, 0);

    CHECK_EQ_INT(put_spec(s, &v2, &r3, &err), RS_OK);
    CHECK_EQ_INT(r3.outcome, STORE_NEW_VERSION);
    CHECK(r3.new_version && r3.current);
    CHECK_EQ_INT(r3.version, 2);
    CHECK(strcmp(r3.hash, r1.hash) != 0);
    CHECK_EQ_INT(lc.lines, 1);
    CHECK(lc.text.p && strstr((char *)lc.text.p, UID_ROOT "1.1") && strstr((char *)lc.text.p, r1.hash) &&
          strstr((char *)lc.text.p, "version 2"));
    object_path(dir, r1.hash, obj, sizeof obj);
    CHECK(file_exists(obj)); /* nothing overwritten */
    object_path(dir, r3.hash, obj, sizeof obj);
    CHECK(file_exists(obj));

    store_instance_info info;
    CHECK_EQ_INT(store_find_instance(s, UID_ROOT "1.1", &info, &err), RS_OK);
    CHECK_EQ_STR(info.hash, r3.hash);
    CHECK_EQ_INT(info.version, 2);
    CHECK_EQ_INT(info.n_versions, 2);
    /* the first version again: known bytes, so a duplicate; the current one stays */
    CHECK_EQ_INT(put_spec(s, &v1, &r4, &err), RS_OK);
    CHECK_EQ_INT(r4.outcome, STORE_DUPLICATE);
    CHECK_EQ_INT(r4.version, 1);
    CHECK_EQ_INT(store_find_instance(s, UID_ROOT "1.1", &info, &err), RS_OK);
    CHECK_EQ_STR(info.hash, r3.hash);

    store_stats st;
    store_get_stats(s, &st, &err);
    CHECK_EQ_INT(st.index.instances, 1);
    CHECK_EQ_INT(st.index.versions, 2);
    CHECK_EQ_INT(st.index.object_bytes, r1.size + r3.size);
    CHECK_EQ_INT(st.index.bytes, r3.size);

    /* an IMAGE-level query sees the current version only */
    answers a = {0};
    static const uint32_t want[4] = {DCM_TAG_SOP_INSTANCE_UID};
    store_key k[] = {{DCM_TAG_SOP_INSTANCE_UID, 0, UID_ROOT "1.1"}};
    CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_IMAGE, &a, want, 0, k, 1, &err), RS_OK);
    CHECK_EQ_INT(a.n, 1);
    CHECK_EQ_STR(a.hash[0], r3.hash);

    /* refusals leave nothing behind */
    spec nouid = {.sop_uid = ""};
    err.msg[0] = 0;
    CHECK_EQ_INT(put_spec(s, &nouid, &r1, &err), RS_EFORMAT);
    CHECK(strstr(err.msg, "SOPInstanceUID") != NULL);
    spec noseries = {.sop_uid = UID_ROOT "1.2", .series_uid = ""};
    CHECK_EQ_INT(put_spec(s, &noseries, &r1, &err), RS_EFORMAT);
    CHECK(strstr(err.msg, "SeriesInstanceUID") != NULL);
    CHECK(store_put_mem(s, "hello, not dicom", 16, &r1, &err) < 0);
    CHECK_EQ_INT(store_put_mem(s, g_template, 1000, &r1, &err), RS_ETRUNC);
    CHECK(strstr(err.msg, "truncated") != NULL);
    uint8_t *big = calloc(1, (1u << 20) + 1);
    CHECK_EQ_INT(store_put_mem(s, big, (1u << 20) + 1, &r1, &err), RS_ELIMIT);
    free(big);
    CHECK_EQ_INT(tmp_entries_settled(dir), 0);
    store_close(s);
    rs_buf_free(&lc.text);
}

/* A preamble is stored zeroed, whatever it held (a PE header: the CVE-2019-11687 polyglot). */
static void test_preamble(void)
{
    char dir[300], obj[512];
    datadir("preamble", dir, sizeof dir);
    store *s;
    rs_err err = {0};
    CHECK_EQ_INT(store_open(dir, NULL, &s, &err), RS_OK);
    if (!s)
        return;
    spec sp = {.sop_uid = UID_ROOT "7.1"};
    rs_buf b = RS_BUF_INIT;
    CHECK_EQ_INT(build(&sp, 0, &b), RS_OK);
    CHECK(b.len > 132 && !memcmp(b.p + 128, "DICM", 4));
    store_ingest_result clean, evil;
    memset(b.p, 0, 128);
    CHECK_EQ_INT(store_put_mem(s, b.p, b.len, &clean, &err), RS_OK);
    memcpy(b.p, "MZ\x90\x00\x03\x00\x00\x00\x04\x00", 10); /* the start of a Windows executable */
    for (int i = 10; i < 128; i++)
        b.p[i] = (uint8_t)(i * 7);
    /* fed in small pieces, so the held-back head is assembled across writes */
    store_ingest *in = NULL;
    CHECK_EQ_INT(store_ingest_begin(s, &in, &err), RS_OK);
    for (size_t off = 0; in && off < b.len; off += 50)
        CHECK_EQ_INT(store_ingest_write(in, b.p + off, b.len - off < 50 ? b.len - off : 50, &err), RS_OK);
    CHECK_EQ_INT(store_ingest_commit(in, "test", &evil, &err), RS_OK);
    CHECK_EQ_INT(evil.outcome, STORE_DUPLICATE); /* same file once the preamble is zeroed */
    CHECK_EQ_STR(evil.hash, clean.hash);
    object_path(dir, clean.hash, obj, sizeof obj);
    FILE *f = fopen(obj, "rb");
    uint8_t head[132] = {1};
    CHECK(f && fread(head, 1, sizeof head, f) == sizeof head);
    if (f)
        fclose(f);
    int zero = 1;
    for (int i = 0; i < 128; i++)
        zero &= head[i] == 0;
    CHECK(zero && !memcmp(head + 128, "DICM", 4));
    char h[STORE_HASH_HEX + 1];
    hash_path(obj, h);
    CHECK_EQ_STR(h, clean.hash); /* the name is the hash of what is stored */
    rs_buf_free(&b);
    store_close(s);
}

/* A bare dataset as C-STORE delivers it. */
static void test_bare_dataset(void)
{
    char dir[300];
    datadir("bare", dir, sizeof dir);
    store *s;
    rs_err err = {0};
    CHECK_EQ_INT(store_open(dir, NULL, &s, &err), RS_OK);
    if (!s)
        return;
    spec sp = {.sop_uid = UID_ROOT "2.1"};
    rs_buf ds = RS_BUF_INIT;
    CHECK_EQ_INT(build(&sp, 1, &ds), RS_OK);
    store_ingest_result r[2];
    for (int i = 0; i < 2; i++) {
        store_ingest *in;
        CHECK_EQ_INT(store_ingest_begin(s, &in, &err), RS_OK);
        CHECK_EQ_INT(store_ingest_write_meta(in, CT_CLASS, UID_ROOT "2.1", "1.2.840.10008.1.2.1", &err), RS_OK);
        for (size_t off = 0; off < ds.len; off += 1000) /* in PDV-sized pieces */
            store_ingest_write(in, ds.p + off, ds.len - off < 1000 ? ds.len - off : 1000, &err);
        CHECK_EQ_INT(store_ingest_commit(in, "MODALITY1", &r[i], &err), RS_OK);
    }
    CHECK_EQ_INT(r[0].outcome, STORE_NEW);
    CHECK_EQ_INT(r[1].outcome, STORE_DUPLICATE);
    /* the dataset can be found again in the file, byte for byte */
    int fd;
    uint64_t off = 0, len = 0;
    CHECK_EQ_INT(store_open_instance(s, r[0].hash, &fd, &off, &len, &err), RS_OK);
    CHECK_EQ_INT(len, ds.len);
    uint8_t *back = malloc(ds.len);
    CHECK(pread(fd, back, ds.len, (off_t)off) == (ssize_t)ds.len && memcmp(back, ds.p, ds.len) == 0);
    free(back);
    close(fd);
    /* meta must come first */
    store_ingest *in;
    CHECK_EQ_INT(store_ingest_begin(s, &in, &err), RS_OK);
    store_ingest_write(in, "x", 1, &err);
    CHECK_EQ_INT(store_ingest_write_meta(in, CT_CLASS, UID_ROOT "2.2", "1.2.840.10008.1.2.1", &err), RS_EINVAL);
    store_ingest_abort(in);
    CHECK_EQ_INT(store_open_instance(s, "../../etc/passwd", &fd, NULL, NULL, &err), RS_EINVAL);
    CHECK_EQ_INT(tmp_entries_settled(dir), 0);
    rs_buf_free(&ds);
    store_close(s);
}

/* ---- concurrency ----------------------------------------------------------------------------------- */

#define THREADS 8
#define PER_THREAD 40

typedef struct worker {
    store *s;
    int id;
    int ok, news, dups, fails;
    uint8_t *shared;     /* the same file, sent by every thread once */
    size_t shared_len;
} worker;

static void *ingest_worker(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char uid[96], series[96];
        snprintf(uid, sizeof uid, UID_ROOT "3.%d.%d", w->id, i);
        snprintf(series, sizeof series, UID_ROOT "3.%d", w->id);
        spec sp = {.sop_uid = uid, .series_uid = series, .study_uid = UID_ROOT "3"};
        store_ingest_result r;
        rs_err err = {0};
        int rc = put_spec(w->s, &sp, &r, &err);
        w->ok += rc == RS_OK;
        w->fails += rc != RS_OK;
        w->news += rc == RS_OK && r.outcome == STORE_NEW;
        if (i == PER_THREAD / 2) {
            store_ingest_result d;
            if (store_put_mem(w->s, w->shared, w->shared_len, &d, &err) == RS_OK)
                w->dups += d.outcome == STORE_DUPLICATE ? 1 : 0, w->news += d.outcome == STORE_NEW;
            else
                w->fails++;
        }
    }
    return NULL;
}

static double g_ingests_per_commit;

static void test_concurrent(void)
{
    char dir[300];
    datadir("concurrent", dir, sizeof dir);
    store *s;
    rs_err err = {0};
    CHECK_EQ_INT(store_open(dir, NULL, &s, &err), RS_OK);
    if (!s)
        return;
    rs_buf shared = RS_BUF_INIT;
    spec sp = {.sop_uid = UID_ROOT "3.shared", .study_uid = UID_ROOT "3", .series_uid = UID_ROOT "3.shared"};
    build(&sp, 0, &shared);
    worker w[THREADS];
    pthread_t th[THREADS];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.s = s, .id = i, .shared = shared.p, .shared_len = shared.len};
        pthread_create(&th[i], NULL, ingest_worker, &w[i]);
    }
    int ok = 0, news = 0, dups = 0, fails = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        news += w[i].news;
        dups += w[i].dups;
        fails += w[i].fails;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK_EQ_INT(fails, 0);
    CHECK_EQ_INT(ok, THREADS * PER_THREAD);
    CHECK_EQ_INT(news, THREADS * PER_THREAD + 1); /* the shared file is new exactly once */
    CHECK_EQ_INT(dups, THREADS - 1);
    store_stats st;
    CHECK_EQ_INT(store_get_stats(s, &st, &err), RS_OK);
    CHECK_EQ_INT(st.index.instances, THREADS * PER_THREAD + 1);
    CHECK_EQ_INT(st.index.studies, 1);
    CHECK_EQ_INT(st.index.series, THREADS + 1);
    CHECK_EQ_INT(st.commit.submitted, THREADS * PER_THREAD + THREADS);
    CHECK(st.commit.batches < st.commit.submitted / 2); /* the syncs really are shared */
    g_ingests_per_commit = (double)st.commit.submitted / (double)st.commit.batches;
    printf("# group commit: %d threads, %llu ingests in %llu commits (%.1f per commit, largest %llu), "
           "%.0f ingests/s\n", THREADS, (unsigned long long)st.commit.submitted,
           (unsigned long long)st.commit.batches, g_ingests_per_commit, (unsigned long long)st.commit.max_batch,
           (double)st.commit.submitted / secs);
    /* counts maintained per batch agree with a query */
    answers a = {0};
    static const uint32_t want[4] = {DCM_TAG(0x0020, 0x1208), DCM_TAG(0x0020, 0x1206)};
    store_key k[] = {{DCM_TAG(0x0020, 0x1208), 0, NULL}, {DCM_TAG(0x0020, 0x1206), 0, NULL}};
    CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_STUDY, &a, want, 0, k, 2, &err), RS_OK);
    CHECK_EQ_INT(a.n, 1);
    CHECK_EQ_STR(a.v[0][0], "321");
    CHECK_EQ_STR(a.v[0][1], "9");
    rs_buf_free(&shared);
    store_close(s);
}

/* ---- queries --------------------------------------------------------------------------------------- */

#define S1 UID_ROOT "4.1"
#define S2 UID_ROOT "4.2"
#define S3 UID_ROOT "4.3"
#define S4 UID_ROOT "4.4"

static int load_query_data(store *s)
{
    static const spec data[] = {
        /* patient 1, study 1: CT series of 3, SR series of 1 */
        {"PID1", "Doe^John", "19700101", "M", S1, "20200105", "101500", "ACC1", "Smith^Anna", "CT HEAD",
         S1 ".1", "CT", "1", S1 ".1.1", CT_CLASS, "1", NULL},
        {"PID1", "Doe^John", "19700101", "M", S1, "20200105", "101500", "ACC1", "Smith^Anna", "CT HEAD",
         S1 ".1", "CT", "1", S1 ".1.2", CT_CLASS, "2", NULL},
        {"PID1", "Doe^John", "19700101", "M", S1, "20200105", "101500", "ACC1", "Smith^Anna", "CT HEAD",
         S1 ".1", "CT", "1", S1 ".1.3", CT_CLASS, "3", NULL},
        {"PID1", "Doe^John", "19700101", "M", S1, "20200105", "101500", "ACC1", "Smith^Anna", "CT HEAD",
         S1 ".2", "SR", "2", S1 ".2.1", SR_CLASS, "1", NULL},
        /* patient 1, study 2: MR */
        {"PID1", "Doe^John", "19700101", "M", S2, "20200110", "235900", "ACC2", "Jones^Bob", "MR KNEE",
         S2 ".1", "MR", "1", S2 ".1.1", CT_CLASS, "1", NULL},
        {"PID1", "Doe^John", "19700101", "M", S2, "20200110", "235900", "ACC2", "Jones^Bob", "MR KNEE",
         S2 ".1", "MR", "1", S2 ".1.2", CT_CLASS, "2", NULL},
        /* patient 2 (non-ASCII name), study 3 */
        {"PID2", "Müller^Jürgen", "19851231", "F", S3, "20191231", "080000", "ACC3", "", "CT CHEST",
         S3 ".1", "CT", "7", S3 ".1.1", CT_CLASS, "1", NULL},
        {"PID2", "Müller^Jürgen", "19851231", "F", S3, "20191231", "080000", "ACC3", "", "CT CHEST",
         S3 ".1", "CT", "7", S3 ".1.2", CT_CLASS, "2", NULL},
        /* patient 3, study 4: GLOB specials in the accession number */
        {"PID3", "Doe^Jane", "19900615", "F", S4, "20200105", "0900", "X[1]*", "", "PET",
         S4 ".1", "PT", "1", S4 ".1.1", CT_CLASS, "1", NULL},
    };
    for (size_t i = 0; i < sizeof data / sizeof data[0]; i++) {
        store_ingest_result r;
        rs_err err = {0};
        if (put_spec(s, &data[i], &r, &err) != RS_OK || r.outcome != STORE_NEW) {
            fprintf(stderr, "loading %s: %s\n", data[i].sop_uid, err.msg);
            return -1;
        }
    }
    return 0;
}

/* Study-level matching on dates, times, names, lists and specials. */
static void test_query_study(store *s)
{
    rs_err err = {0};
    answers a = {0};
    static const uint32_t want[4] = {DCM_TAG_STUDY_UID, TAG_PATIENT_NAME, TAG_STUDY_DATE, TAG_ACCESSION};
#define Q(keys, combine) query(s, STORE_STUDY_ROOT, STORE_LEVEL_STUDY, &a, want, combine, keys, \
                               sizeof keys / sizeof keys[0], &err)
    {
        store_key k[] = {{TAG_PATIENT_NAME, 0, "DOE^*"}, {TAG_STUDY_DATE, 0, ""}, {TAG_ACCESSION, 0, ""}};
        CHECK_EQ_INT(Q(k, 0), RS_OK);
        CHECK_EQ_INT(a.n, 3);
        CHECK(has_value(&a, 0, S1) && has_value(&a, 0, S2) && has_value(&a, 0, S4));
        CHECK(has_value(&a, 1, "Doe^John") && has_value(&a, 1, "Doe^Jane"));
        CHECK(has_value(&a, 2, "20200105") && has_value(&a, 2, "20200110"));
        CHECK(has_value(&a, 3, "X[1]*"));
    }
    {
        store_key k[] = {{TAG_PATIENT_NAME, 0, "doe^john"}};
        CHECK_EQ_INT(Q(k, 0), RS_OK);
        CHECK_EQ_INT(a.n, 2);
        CHECK(has_value(&a, 0, S1) && has_value(&a, 0, S2));
        CHECK_EQ_STR(a.v[0][1], "Doe^John"); /* answered as stored, not folded */
    }
    {
        store_key k[] = {{TAG_PATIENT_NAME, 0, "D?E^J*"}};
        CHECK_EQ_INT(Q(k, 0), RS_OK);
        CHECK_EQ_INT(a.n, 3); /* John and Jane */
    }
    {
        store_key k[] = {{TAG_PATIENT_NAME, 0, "*ürg*"}};
        CHECK_EQ_INT(Q(k, 0), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK_EQ_STR(a.v[0][1], "Müller^Jürgen");
        CHECK(a.charset_utf8[0]);
    }
    static const struct { const char *date; int n; const char *uids[3]; } ranges[] = {
        {"20200101-20200106", 2, {S1, S4}},
        {"-20191231", 1, {S3}},
        {"20200106-", 1, {S2}},
        {"20200105", 2, {S1, S4}},
        {"20200105\\20191231", 3, {S1, S4, S3}},
        {"19000101-19991231", 0, {0}},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        store_key k[] = {{TAG_STUDY_DATE, 0, ranges[i].date}};
        CHECK_EQ_INT(Q(k, 0), RS_OK);
        CHECK_EQ_INT(a.n, ranges[i].n);
        for (int j = 0; j < ranges[i].n; j++)
            CHECK(has_value(&a, 0, ranges[i].uids[j]));
    }
    {
        store_key k[] = {{TAG_STUDY_TIME, 0, "1000-1200"}};
        CHECK_EQ_INT(Q(k, 0), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK(has_value(&a, 0, S1));
        store_key k2[] = {{TAG_STUDY_TIME, 0, "09"}}; /* the hour 09:00-09:59 */
        CHECK_EQ_INT(Q(k2, 0), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK(has_value(&a, 0, S4));
    }
    {
        /* separately: 12:00-23:59 on any day from Jan 1st to 10th -> study 2 only;
           combined (PS3.4 C.2.2.2.5.1): from Jan 1st 12:00 to Jan 10th 23:59 -> 1, 2 and 4 */
        store_key k[] = {{TAG_STUDY_DATE, 0, "20200101-20200110"}, {TAG_STUDY_TIME, 0, "1200-2359"}};
        CHECK_EQ_INT(Q(k, 0), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK(has_value(&a, 0, S2));
        CHECK_EQ_INT(Q(k, 1), RS_OK);
        CHECK_EQ_INT(a.n, 3);
        CHECK(has_value(&a, 0, S1) && has_value(&a, 0, S2) && has_value(&a, 0, S4));
        store_key k2[] = {{TAG_STUDY_DATE, 0, "20200105"}, {TAG_STUDY_TIME, 0, "0930-"}};
        CHECK_EQ_INT(Q(k2, 1), RS_OK); /* Jan 5th from 09:30 on */
        CHECK_EQ_INT(a.n, 1);
        CHECK(has_value(&a, 0, S1));
    }
    {
        store_key k[] = {{DCM_TAG_STUDY_UID, 0, S1 "\\" S3 "\\1.2.3"}};
        CHECK_EQ_INT(Q(k, 0), RS_OK);
        CHECK_EQ_INT(a.n, 2);
        CHECK(has_value(&a, 0, S1) && has_value(&a, 0, S3));
    }
    static const struct { const char *acc; int n; const char *uid; } accs[] = {
        {"X[1]*", 1, S4}, {"ACC?", 3, S1}, {"ACC1", 1, S1}, {"X[1]", 0, NULL}, {"*", 4, S3}, {"acc1", 0, NULL}};
    for (size_t i = 0; i < sizeof accs / sizeof accs[0]; i++) {
        store_key k[] = {{TAG_ACCESSION, 0, accs[i].acc}};
        CHECK_EQ_INT(Q(k, 0), RS_OK);
        CHECK_EQ_INT(a.n, accs[i].n);
        if (accs[i].uid)
            CHECK(has_value(&a, 0, accs[i].uid));
    }
    {
        store_key k[] = {{TAG_REFERRING, 0, "smith^anna"}};
        CHECK_EQ_INT(Q(k, 0), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK(has_value(&a, 0, S1));
    }
    /* derived attributes, and matching on them */
    {
        static const uint32_t w2[4] = {DCM_TAG_STUDY_UID, TAG_MODALITIES, DCM_TAG(0x0020, 0x1206), DCM_TAG(0x0020, 0x1208)};
        store_key k[] = {{DCM_TAG_STUDY_UID, 0, S1}, {TAG_MODALITIES, 0, ""}, {DCM_TAG(0x0020, 0x1206), 0, ""},
                         {DCM_TAG(0x0020, 0x1208), 0, ""}, {TAG_SOP_CLASSES, 0, ""}, {DCM_TAG(0x0008, 0x0056), 0, ""}};
        CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_STUDY, &a, w2, 0, k, 6, &err), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK_EQ_STR(a.v[0][1], "CT\\SR");
        CHECK_EQ_STR(a.v[0][2], "2");
        CHECK_EQ_STR(a.v[0][3], "4");
        static const uint32_t w3[4] = {TAG_SOP_CLASSES, DCM_TAG(0x0008, 0x0056)};
        CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_STUDY, &a, w3, 0, k, 6, &err), RS_OK);
        CHECK_EQ_STR(a.v[0][0], CT_CLASS "\\" SR_CLASS);
        CHECK_EQ_STR(a.v[0][1], "ONLINE");
        store_key k2[] = {{TAG_MODALITIES, 0, "MR"}};
        CHECK_EQ_INT(Q(k2, 0), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK(has_value(&a, 0, S2));
        store_key k3[] = {{TAG_MODALITIES, 0, "SR\\PT"}};
        CHECK_EQ_INT(Q(k3, 0), RS_OK);
        CHECK_EQ_INT(a.n, 2);
        CHECK(has_value(&a, 0, S1) && has_value(&a, 0, S4));
        store_key k4[] = {{TAG_SOP_CLASSES, 0, SR_CLASS}};
        CHECK_EQ_INT(Q(k4, 0), RS_OK);
        CHECK_EQ_INT(a.n, 1);
    }
    {
        /* a key the index does not keep: no constraint, answered empty */
        store_key k[] = {{DCM_TAG_STUDY_UID, 0, S3}, {DCM_TAG(0x0010, 0x2160), 0, "EXOTIC"}};
        static const uint32_t w4[4] = {DCM_TAG_STUDY_UID, DCM_TAG(0x0010, 0x2160)};
        CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_STUDY, &a, w4, 0, k, 2, &err), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK_EQ_STR(a.v[0][1], "");
    }
    {
        store_key k[] = {{TAG_STUDY_DATE, 0, "2020-01-05"}};
        CHECK_EQ_INT(Q(k, 0), RS_EINVAL);
        CHECK(strstr(err.msg, "0008,0020") != NULL);
        store_key k2[] = {{TAG_SERIES_NUMBER, 0, "x"}}; /* a series key at study level: ignored */
        CHECK_EQ_INT(Q(k2, 0), RS_OK);
        CHECK_EQ_INT(a.n, 4);
    }
    {
        /* universal matching, paging and cancel */
        store_key k[] = {{DCM_TAG_STUDY_UID, 0, ""}};
        CHECK_EQ_INT(Q(k, 0), RS_OK);
        CHECK_EQ_INT(a.n, 4);
        char all[4][200];
        for (int i = 0; i < 4; i++)
            memcpy(all[i], a.v[i][0], sizeof all[i]);
        store_query q = {.level = STORE_LEVEL_STUDY, .model = STORE_STUDY_ROOT, .keys = k, .n_keys = 1,
                         .limit = 2, .offset = 1};
        a.n = 0;
        CHECK_EQ_INT(store_query_run(s, &q, collect, &a, &err), RS_OK);
        CHECK_EQ_INT(a.n, 2);
        CHECK_EQ_STR(a.v[0][0], all[1]);
        CHECK_EQ_STR(a.v[1][0], all[2]);
        a.stop_after = 1;
        CHECK_EQ_INT(Q(k, 0), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        a.stop_after = 0;
    }
#undef Q
}

static void test_query_levels(store *s)
{
    rs_err err = {0};
    answers a = {0};
    {
        static const uint32_t want[4] = {TAG_PATIENT_ID, DCM_TAG(0x0020, 0x1200), DCM_TAG(0x0020, 0x1202), DCM_TAG(0x0020, 0x1204)};
        store_key k[] = {{TAG_PATIENT_ID, 0, "PID1"}, {DCM_TAG(0x0020, 0x1200), 0, ""}, {DCM_TAG(0x0020, 0x1202), 0, ""},
                         {DCM_TAG(0x0020, 0x1204), 0, ""}};
        CHECK_EQ_INT(query(s, STORE_PATIENT_ROOT, STORE_LEVEL_PATIENT, &a, want, 0, k, 4, &err), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK_EQ_STR(a.v[0][1], "2");
        CHECK_EQ_STR(a.v[0][2], "3");
        CHECK_EQ_STR(a.v[0][3], "6");
        store_key k2[] = {{TAG_PATIENT_NAME, 0, "MÜLLER*"}, {DCM_TAG(0x0010, 0x0030), 0, "19800101-"}};
        CHECK_EQ_INT(query(s, STORE_PATIENT_ROOT, STORE_LEVEL_PATIENT, &a, want, 0, k2, 2, &err), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK_EQ_STR(a.v[0][0], "PID2");
        store_key k3[] = {{TAG_PATIENT_NAME, 0, ""}};
        CHECK_EQ_INT(query(s, STORE_PATIENT_ROOT, STORE_LEVEL_PATIENT, &a, want, 0, k3, 1, &err), RS_OK);
        CHECK_EQ_INT(a.n, 3);
        CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_PATIENT, &a, want, 0, k3, 1, &err), RS_EINVAL);
        /* Patient Root, study level: answers carry the patient's ID */
        static const uint32_t w2[4] = {TAG_PATIENT_ID, DCM_TAG_STUDY_UID};
        store_key k4[] = {{TAG_PATIENT_ID, 0, "PID1"}};
        CHECK_EQ_INT(query(s, STORE_PATIENT_ROOT, STORE_LEVEL_STUDY, &a, w2, 0, k4, 1, &err), RS_OK);
        CHECK_EQ_INT(a.n, 2);
        CHECK(has_value(&a, 0, "PID1") && has_value(&a, 1, S1) && has_value(&a, 1, S2));
    }
    {
        static const uint32_t want[4] = {DCM_TAG_SERIES_UID, TAG_MODALITY, TAG_SERIES_NUMBER, DCM_TAG(0x0020, 0x1209)};
        store_key k[] = {{DCM_TAG_STUDY_UID, 0, S1}, {TAG_MODALITY, 0, ""}, {TAG_SERIES_NUMBER, 0, ""},
                         {DCM_TAG(0x0020, 0x1209), 0, ""}};
        CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_SERIES, &a, want, 0, k, 4, &err), RS_OK);
        CHECK_EQ_INT(a.n, 2);
        CHECK_EQ_STR(a.v[0][0], S1 ".1");
        CHECK_EQ_STR(a.v[0][1], "CT");
        CHECK_EQ_STR(a.v[0][2], "1");
        CHECK_EQ_STR(a.v[0][3], "3");
        CHECK_EQ_STR(a.v[1][1], "SR");
        CHECK_EQ_STR(a.v[1][3], "1");
        store_key k2[] = {{TAG_SERIES_NUMBER, 0, "7"}};
        CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_SERIES, &a, want, 0, k2, 1, &err), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK_EQ_STR(a.v[0][0], S3 ".1");
        store_key k3[] = {{TAG_MODALITY, 0, "CT"}, {TAG_PATIENT_NAME, 0, "Doe^John"}};
        CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_SERIES, &a, want, 0, k3, 2, &err), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK_EQ_STR(a.v[0][0], S1 ".1");
    }
    {
        static const uint32_t want[4] = {DCM_TAG_SOP_INSTANCE_UID, TAG_INSTANCE_NUMBER, DCM_TAG_SERIES_UID,
                                         DCM_TAG(0x0028, 0x0010)};
        store_key k[] = {{DCM_TAG_SERIES_UID, 0, S1 ".1"}, {TAG_INSTANCE_NUMBER, 0, ""}, {DCM_TAG(0x0028, 0x0010), 0, ""}};
        a.with_json = 1;
        CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_IMAGE, &a, want, 0, k, 3, &err), RS_OK);
        a.with_json = 0;
        CHECK_EQ_INT(a.n, 3);
        for (int i = 0; i < a.n; i++) {
            char n[16];
            snprintf(n, sizeof n, "%d", i + 1);
            CHECK_EQ_STR(a.v[i][1], n);
            CHECK_EQ_STR(a.v[i][2], S1 ".1"); /* unique keys of the levels above are included */
            CHECK_EQ_STR(a.v[i][3], "128");
            CHECK_EQ_INT(strlen(a.hash[i]), 64); /* and the metadata JSON was there */
        }
        store_key k2[] = {{DCM_TAG_SERIES_UID, 0, S1 ".1"}, {TAG_INSTANCE_NUMBER, 0, "2"}};
        CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_IMAGE, &a, want, 0, k2, 2, &err), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK_EQ_STR(a.v[0][0], S1 ".1.2");
        store_key k3[] = {{DCM_TAG_SOP_INSTANCE_UID, 0, S1 ".1.3\\" S3 ".1.1"}};
        CHECK_EQ_INT(query(s, STORE_PATIENT_ROOT, STORE_LEVEL_IMAGE, &a, want, 0, k3, 1, &err), RS_OK);
        CHECK_EQ_INT(a.n, 2);
        store_key k4[] = {{DCM_TAG_SOP_CLASS_UID, 0, SR_CLASS}};
        CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_IMAGE, &a, want, 0, k4, 1, &err), RS_OK);
        CHECK_EQ_INT(a.n, 1);
        CHECK_EQ_STR(a.v[0][0], S1 ".2.1");
        store_key k5[] = {{TAG_INSTANCE_NUMBER, 0, "two"}};
        CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_IMAGE, &a, want, 0, k5, 1, &err), RS_EINVAL);
    }
}

/* A C-FIND identifier in Latin-1 becomes UTF-8 keys. */
static void test_keyset(store *s)
{
    dcm_file *f = dcm_file_new(0);
    dcm_ds_set_str(f->ds, DCM_TAG_SPECIFIC_CHARSET, DCM_VR_CS, "ISO_IR 100");
    dcm_ds_set_str(f->ds, DCM_TAG(0x0008, 0x0052), DCM_VR_CS, "PATIENT");
    dcm_ds_set_str(f->ds, TAG_PATIENT_NAME, DCM_VR_PN, "m\xfcller^*");
    dcm_ds_set_str(f->ds, TAG_PATIENT_ID, DCM_VR_LO, "");
    dcm_ds_put(f->ds, DCM_TAG(0x0008, 0x1110), DCM_VR_SQ); /* a sequence return key */
    store_keyset ks;
    store_keyset_init(&ks);
    store_level level = STORE_LEVEL_STUDY;
    rs_err err = {0};
    CHECK_EQ_INT(store_keyset_from_ds(&ks, f->ds, &level, &err), RS_OK);
    CHECK_EQ_INT(level, STORE_LEVEL_PATIENT);
    CHECK_EQ_INT(ks.n, 3);
    answers a = {0};
    static const uint32_t want[4] = {TAG_PATIENT_ID, TAG_PATIENT_NAME, DCM_TAG(0x0008, 0x1110)};
    CHECK_EQ_INT(query(s, STORE_PATIENT_ROOT, level, &a, want, 0, ks.key, ks.n, &err), RS_OK);
    CHECK_EQ_INT(a.n, 1);
    CHECK_EQ_STR(a.v[0][0], "PID2");
    CHECK_EQ_STR(a.v[0][1], "Müller^Jürgen");
    CHECK_EQ_STR(a.v[0][2], ""); /* present, as an empty sequence */
    CHECK(a.charset_utf8[0]);
    store_keyset_free(&ks);
    dcm_ds_set_str(f->ds, DCM_TAG(0x0008, 0x0052), DCM_VR_CS, "FRAME");
    store_keyset_init(&ks);
    CHECK_EQ_INT(store_keyset_from_ds(&ks, f->ds, &level, &err), RS_EINVAL);
    store_keyset_free(&ks);
    dcm_file_free(f);
}

/* Trash: a marked study is hidden at STUDY level and below, kept, and restored. */
static void test_trash(store *s)
{
    rs_err err = {0};
    answers a = {0};
    static const uint32_t want[4] = {DCM_TAG_STUDY_UID, TAG_PATIENT_NAME, TAG_STUDY_DATE, TAG_ACCESSION};
    store_key img_key = {DCM_TAG_STUDY_UID, 0, S2};
    int yes = -1;
    CHECK_EQ_INT(store_trash_study(s, "1.2/../x", 1, &err), RS_EINVAL);
    CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_STUDY, &a, want, 0, NULL, 0, &err), RS_OK);
    int before = a.n;
    CHECK_EQ_INT(store_trash_study(s, S2, 1, &err), RS_OK);
    CHECK_EQ_INT(store_is_trashed(s, S2, &yes, &err), RS_OK);
    CHECK_EQ_INT(yes, 1);
    CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_STUDY, &a, want, 0, NULL, 0, &err), RS_OK);
    CHECK_EQ_INT(a.n, before - 1);
    CHECK(!has_value(&a, 0, S2));
    CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_IMAGE, &a, want, 0, &img_key, 1, &err), RS_OK);
    CHECK_EQ_INT(a.n, 0);
    CHECK_EQ_INT(store_trash_study(s, S2, 0, &err), RS_OK);
    CHECK_EQ_INT(store_is_trashed(s, S2, &yes, &err), RS_OK);
    CHECK_EQ_INT(yes, 0);
    CHECK_EQ_INT(query(s, STORE_STUDY_ROOT, STORE_LEVEL_IMAGE, &a, want, 0, &img_key, 1, &err), RS_OK);
    CHECK_EQ_INT(a.n, 2);
    /* PATIENT level: a patient whose only study is trashed is hidden; one with another study is not */
    static const uint32_t pid[4] = {TAG_PATIENT_ID};
    store_key p3 = {TAG_PATIENT_ID, 0, "PID3"}, p1 = {TAG_PATIENT_ID, 0, "PID1"};
    CHECK_EQ_INT(query(s, STORE_PATIENT_ROOT, STORE_LEVEL_PATIENT, &a, pid, 0, &p3, 1, &err), RS_OK);
    CHECK_EQ_INT(a.n, 1);
    CHECK_EQ_INT(store_trash_study(s, S4, 1, &err), RS_OK);
    CHECK_EQ_INT(store_trash_study(s, S2, 1, &err), RS_OK);
    CHECK_EQ_INT(query(s, STORE_PATIENT_ROOT, STORE_LEVEL_PATIENT, &a, pid, 0, &p3, 1, &err), RS_OK);
    CHECK_EQ_INT(a.n, 0);
    CHECK_EQ_INT(query(s, STORE_PATIENT_ROOT, STORE_LEVEL_PATIENT, &a, pid, 0, &p1, 1, &err), RS_OK);
    CHECK_EQ_INT(a.n, 1);
    CHECK_EQ_INT(store_trash_study(s, S4, 0, &err), RS_OK);
    CHECK_EQ_INT(store_trash_study(s, S2, 0, &err), RS_OK);
    CHECK_EQ_INT(query(s, STORE_PATIENT_ROOT, STORE_LEVEL_PATIENT, &a, pid, 0, &p3, 1, &err), RS_OK);
    CHECK_EQ_INT(a.n, 1);
}

static void test_queries(void)
{
    char dir[300];
    datadir("query", dir, sizeof dir);
    store *s;
    rs_err err = {0};
    CHECK_EQ_INT(store_open(dir, NULL, &s, &err), RS_OK);
    if (!s)
        return;
    CHECK_EQ_INT(load_query_data(s), 0);
    test_query_study(s);
    test_query_levels(s);
    test_keyset(s);
    test_trash(s);
    store_close(s);
}

/* ---- recovery ----------------------------------------------------------------------------------- */

static void write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd >= 0) {
        if (write(fd, p, n) != (ssize_t)n)
            perror(path);
        close(fd);
    }
}

/* Leave tmp/ as a crash would, reopen, see it sorted out. */
static void test_recovery(void)
{
    char dir[300], p[600], obj[512];
    datadir("recovery", dir, sizeof dir);
    store *s;
    rs_err err = {0};
    CHECK_EQ_INT(store_open(dir, NULL, &s, &err), RS_OK);
    if (!s)
        return;
    spec a = {.sop_uid = UID_ROOT "5.1"};
    store_ingest_result ra;
    CHECK_EQ_INT(put_spec(s, &a, &ra, &err), RS_OK);
    CHECK_EQ_INT(store_open(dir, NULL, &(store *){NULL}, &err), RS_EINVAL); /* one process per directory */
    CHECK(strstr(err.msg, "in use") != NULL);
    store_close(s);

    /* committed but not moved: the index row is there, the file is still tmp/<hash>.ready */
    object_path(dir, ra.hash, obj, sizeof obj);
    snprintf(p, sizeof p, "%s/tmp/%s.ready", dir, ra.hash);
    CHECK(rename(obj, p) == 0);
    /* complete but never committed (so never acknowledged) */
    spec b = {.sop_uid = UID_ROOT "5.2"};
    rs_buf bb = RS_BUF_INIT;
    build(&b, 0, &bb);
    char hb[65];
    snprintf(p, sizeof p, "%s/tmp/unhashed", dir);
    write_file(p, bb.p, bb.len);
    hash_path(p, hb);
    unlink(p);
    snprintf(p, sizeof p, "%s/tmp/%s.ready", dir, hb);
    write_file(p, bb.p, bb.len);
    /* interrupted reception */
    snprintf(p, sizeof p, "%s/tmp/0123456789abcdef.part", dir);
    write_file(p, bb.p, bb.len / 2);
    rs_buf_free(&bb);
    CHECK_EQ_INT(tmp_entries(dir), 3);

    logcap lc = {.mu = PTHREAD_MUTEX_INITIALIZER};
    store_opts o = {.log = log_capture, .log_ctx = &lc};
    CHECK_EQ_INT(store_open(dir, &o, &s, &err), RS_OK);
    if (!s)
        return;
    CHECK_EQ_INT(tmp_entries(dir), 0);
    CHECK(file_exists(obj));
    object_path(dir, hb, p, sizeof p);
    CHECK(!file_exists(p));
    CHECK(lc.text.p && strstr((char *)lc.text.p, "1 interrupted receptions removed, 1 committed objects moved") != NULL);
    int fd;
    CHECK_EQ_INT(store_open_current(s, UID_ROOT "5.1", &fd, NULL, &err), RS_OK);
    close(fd);
    CHECK_EQ_INT(store_find_instance(s, UID_ROOT "5.2", &(store_instance_info){0}, &err), RS_ENOTFOUND);
    store_close(s);
    rs_buf_free(&lc.text);
}

/* Reopen dir with a log capture: the store, or NULL. */
static store *reopen_logged(const char *dir, logcap *lc)
{
    store *s = NULL;
    rs_err err = {0};
    store_opts o = {.log = log_capture, .log_ctx = lc};
    CHECK_EQ_INT(store_open(dir, &o, &s, &err), RS_OK);
    return s;
}

/* Put sp as the last ingest of a store's life (its row stays unsettled), then close. */
static void put_last(const char *dir, const spec *sp, store_ingest_result *r)
{
    store *s;
    rs_err err = {0};
    CHECK_EQ_INT(store_open(dir, NULL, &s, &err), RS_OK);
    if (!s)
        return;
    CHECK_EQ_INT(put_spec(s, sp, r, &err), RS_OK);
    store_close(s);
}

/*
 * The rows a crash can leave unsettled: the file fsync of an ingest runs beside the COMMIT of its
 * row and its move into objects/, and a row is marked settled only by a later batch, so after
 * a crash the last rows can have a file cut short or missing (never acknowledged). Reopening
 * removes such rows (and what is left of the file), keeps the others, and moves a committed
 * file that was still in its tmp/ pool slot into objects/.
 */
static void test_unsettled(void)
{
    char dir[300], p[600], obj[512];
    datadir("unsettled", dir, sizeof dir);
    rs_err err = {0};
    store_ingest_result ra, rb, rc1, rc2, rd;
    spec a = {.sop_uid = UID_ROOT "7.1"}, b = {.sop_uid = UID_ROOT "7.2"};
    spec c1 = {.sop_uid = UID_ROOT "7.3"}, c2 = {.sop_uid = UID_ROOT "7.3", .extra = "v2"};
    spec d = {.sop_uid = UID_ROOT "7.4"};
    put_last(dir, &a, &ra);
    put_last(dir, &c1, &rc1);
    /* a file cut short */
    put_last(dir, &b, &rb);
    object_path(dir, rb.hash, obj, sizeof obj);
    CHECK(truncate(obj, (off_t)(rb.size / 2)) == 0);
    logcap lc = {.mu = PTHREAD_MUTEX_INITIALIZER};
    store *s = reopen_logged(dir, &lc);
    if (!s)
        return;
    CHECK(lc.text.p && strstr((char *)lc.text.p, "1 index rows without a durable file removed") != NULL);
    store_instance_info info;
    CHECK_EQ_INT(store_find_instance(s, UID_ROOT "7.2", &info, &err), RS_ENOTFOUND);
    CHECK(!file_exists(obj));
    store_close(s);
    rs_buf_free(&lc.text);
    /* a new version whose file never got written: the old one is current again */
    put_last(dir, &c2, &rc2);
    CHECK(rc2.new_version && rc2.current);
    object_path(dir, rc2.hash, obj, sizeof obj);
    CHECK(unlink(obj) == 0);
    lc = (logcap){.mu = PTHREAD_MUTEX_INITIALIZER};
    if (!(s = reopen_logged(dir, &lc)))
        return;
    CHECK(lc.text.p && strstr((char *)lc.text.p, "1 index rows without a durable file removed") != NULL);
    CHECK_EQ_INT(store_find_instance(s, UID_ROOT "7.3", &info, &err), RS_OK);
    CHECK_EQ_STR(info.hash, rc1.hash);
    CHECK_EQ_INT(info.n_versions, 1);
    CHECK_EQ_INT(info.version, 1);
    store_close(s);
    rs_buf_free(&lc.text);
    /* committed, file whole but still in its pool slot: moved, kept */
    put_last(dir, &d, &rd);
    object_path(dir, rd.hash, obj, sizeof obj);
    snprintf(p, sizeof p, "%s/tmp/00112233445566778899aabbccddeeff.part", dir);
    CHECK(rename(obj, p) == 0);
    lc = (logcap){.mu = PTHREAD_MUTEX_INITIALIZER};
    if (!(s = reopen_logged(dir, &lc)))
        return;
    CHECK(lc.text.p && strstr((char *)lc.text.p, "1 committed objects moved into objects/") != NULL);
    CHECK(lc.text.p && !strstr((char *)lc.text.p, "without a durable file"));
    CHECK_EQ_INT(store_find_instance(s, UID_ROOT "7.4", &info, &err), RS_OK);
    CHECK(file_exists(obj));
    CHECK_EQ_INT(tmp_entries(dir), 0);
    int fd;
    CHECK_EQ_INT(store_open_current(s, UID_ROOT "7.1", &fd, NULL, &err), RS_OK);
    close(fd);
    store_stats st;
    CHECK_EQ_INT(store_get_stats(s, &st, &err), RS_OK);
    CHECK_EQ_INT(st.index.instances, 3);
    CHECK_EQ_INT(st.index.versions, 3);
    CHECK_EQ_INT(st.index.studies, 1);
    store_close(s);
    rs_buf_free(&lc.text);
}

/* ---- crash: a child ingests until SIGKILL ---------------------------------------------------------- */

#define CHILD_THREADS 4

typedef struct child_worker {
    store *s;
    int round, id;
    int fd;  /* pipe: one line per acknowledged instance */
} child_worker;

static void *child_ingest(void *arg)
{
    child_worker *w = arg;
    for (int i = 0;; i++) {
        char uid[96];
        snprintf(uid, sizeof uid, UID_ROOT "6.%d.%d.%d", w->round, w->id, i);
        /* every 7th is a new version of the previous one, every 11th a resend */
        const char *extra = i % 7 == 6 ? "v2" : NULL;
        if (extra)
            snprintf(uid, sizeof uid, UID_ROOT "6.%d.%d.%d", w->round, w->id, i - 1);
        spec sp = {.sop_uid = uid, .study_uid = UID_ROOT "6", .series_uid = UID_ROOT "6.1", .extra = extra};
        store_ingest_result r;
        rs_err err = {0};
        if (put_spec(w->s, &sp, &r, &err) != RS_OK)
            continue;
        char line[200];
        int n = snprintf(line, sizeof line, "%s %s\n", r.hash, r.sop_uid);
        if (write(w->fd, line, (size_t)n) != n) /* one write: atomic below PIPE_BUF */
            _exit(3);
    }
    return NULL;
}

static void child_main(const char *dir, int round, int fd)
{
    store *s;
    logcap lc = {.mu = PTHREAD_MUTEX_INITIALIZER};
    store_opts o = {.log = log_capture, .log_ctx = &lc};
    if (store_open(dir, &o, &s, NULL) != RS_OK)
        _exit(2);
    pthread_t th[CHILD_THREADS];
    child_worker w[CHILD_THREADS];
    for (int i = 0; i < CHILD_THREADS; i++) {
        w[i] = (child_worker){s, round, i, fd};
        pthread_create(&th[i], NULL, child_ingest, &w[i]);
    }
    for (;;)
        pause();
}

typedef struct acked {
    char (*hash)[65];
    char (*sop)[96];
    size_t n, cap;
} acked;

static void parse_acks(acked *a, char *text)
{
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (a->n == a->cap) {
            a->cap = a->cap ? a->cap * 2 : 256;
            a->hash = realloc(a->hash, a->cap * sizeof *a->hash);
            a->sop = realloc(a->sop, a->cap * sizeof *a->sop);
        }
        if (sscanf(line, "%64s %95s", a->hash[a->n], a->sop[a->n]) == 2)
            a->n++;
    }
}

/* Every object must be indexed and intact; collects the indexed hashes of all versions. */
typedef struct verify_ctx {
    store *s;
    int objects, bad_name, not_indexed;
} verify_ctx;

static int index_has(store *s, const char *hash);

static void verify_objects(const char *dir, verify_ctx *v)
{
    char top[512];
    snprintf(top, sizeof top, "%s/objects", dir);
    DIR *d1 = opendir(top);
    struct dirent *a, *b, *c;
    while (d1 && (a = readdir(d1))) {
        if (a->d_name[0] == '.')
            continue;
        char p1[600];
        snprintf(p1, sizeof p1, "%s/%.8s", top, a->d_name);
        DIR *d2 = opendir(p1);
        while (d2 && (b = readdir(d2))) {
            if (b->d_name[0] == '.')
                continue;
            char p2[700];
            snprintf(p2, sizeof p2, "%s/%.8s", p1, b->d_name);
            DIR *d3 = opendir(p2);
            while (d3 && (c = readdir(d3))) {
                if (c->d_name[0] == '.')
                    continue;
                char p3[800], h[65];
                snprintf(p3, sizeof p3, "%s/%.64s", p2, c->d_name);
                hash_path(p3, h);
                v->objects++;
                v->bad_name += strncmp(h, c->d_name, 65) != 0;
                v->not_indexed += !index_has(v->s, c->d_name);
            }
            if (d3)
                closedir(d3);
        }
        if (d2)
            closedir(d2);
    }
    if (d1)
        closedir(d1);
}

static int index_has(store *s, const char *hash)
{
    int yes = 0;
    return store_has_object(s, hash, &yes, NULL) == RS_OK && yes;
}

static void test_crash(void)
{
    char dir[300];
    datadir("crash", dir, sizeof dir);
    acked acks = {0};
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int rounds = 8;
    for (int round = 0; round < rounds; round++) {
        int pfd[2];
        if (pipe(pfd) != 0)
            return;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            child_main(dir, round, pfd[1]);
        }
        close(pfd[1]);
        /* a random moment: some land in store_open's recovery, most in steady ingest */
        usleep((useconds_t)(1000 + rand() % 400000));
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            fprintf(stderr, "child status %#x\n", status);
        rs_buf text = RS_BUF_INIT;
        char buf[4096];
        ssize_t r;
        while ((r = read(pfd[0], buf, sizeof buf)) > 0)
            rs_buf_append(&text, buf, (size_t)r);
        close(pfd[0]);
        size_t before = acks.n;
        if (text.p)
            parse_acks(&acks, (char *)text.p);
        rs_buf_free(&text);

        /* reopen: recovery runs; then check the promises */
        store *s;
        rs_err err = {0};
        logcap lc = {.mu = PTHREAD_MUTEX_INITIALIZER};
        store_opts o = {.log = log_capture, .log_ctx = &lc};
        CHECK_EQ_INT(store_open(dir, &o, &s, &err), RS_OK);
        if (!s)
            break;
        CHECK_EQ_INT(tmp_entries(dir), 0);
        int missing = 0, corrupt = 0;
        for (size_t i = 0; i < acks.n; i++) {
            int fd;
            char h[65] = "";
            if (store_open_instance(s, acks.hash[i], &fd, NULL, NULL, &err) != RS_OK) {
                missing++;
                continue;
            }
            store_blob_hash_fd(fd, h, NULL, NULL);
            close(fd);
            corrupt += strcmp(h, acks.hash[i]) != 0;
            store_instance_info info;
            missing += store_find_instance(s, acks.sop[i], &info, &err) != RS_OK;
        }
        CHECK_EQ_INT(missing, 0);
        CHECK_EQ_INT(corrupt, 0);
        verify_ctx v = {.s = s};
        verify_objects(dir, &v);
        CHECK_EQ_INT(v.bad_name, 0);
        CHECK_EQ_INT(v.not_indexed, 0);
        store_stats st;
        store_get_stats(s, &st, &err);
        CHECK_EQ_INT(st.index.versions, (uint64_t)v.objects); /* every row has its file, every file its row */
        printf("# crash round %d: %zu acknowledged before SIGKILL (%zu in all), %d objects, %llu instances\n",
               round, acks.n - before, acks.n, v.objects, (unsigned long long)st.index.instances);
        store_close(s);
        rs_buf_free(&lc.text);
    }
    CHECK(acks.n > 0);
    free(acks.hash);
    free(acks.sop);
}

/* ---- reindex ------------------------------------------------------------------------------------- */

/* A fingerprint of everything queryable: every level, every catalogued attribute. */
static int fingerprint_row(void *ctx, const store_match *m)
{
    rs_buf *b = ctx;
    for (uint32_t i = 0; i < m->ds->n; i++) {
        const dcm_elem *e = &m->ds->e[i];
        rs_buf_printf(b, "%08X=%.*s|", e->tag, e->vr == DCM_VR_SQ ? 0 : (int)e->len,
                      e->vr == DCM_VR_SQ || !e->v.bytes ? "" : (const char *)e->v.bytes);
    }
    rs_buf_printf(b, "%s\n", m->hash ? m->hash : "");
    return 0;
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Answer order is insertion order, which a rebuild need not keep: compare sorted lines. */
static void sort_lines(rs_buf *b)
{
    size_t n = 0, k = 0;
    for (size_t i = 0; i < b->len; i++)
        n += b->p[i] == '\n';
    char **lines = malloc((n + 1) * sizeof *lines);
    rs_buf out = RS_BUF_INIT;
    for (char *l = strtok((char *)b->p, "\n"); l; l = strtok(NULL, "\n"))
        lines[k++] = l;
    qsort(lines, k, sizeof *lines, cmp_line);
    for (size_t i = 0; i < k; i++)
        rs_buf_printf(&out, "%s\n", lines[i]);
    free(lines);
    rs_buf_free(b);
    *b = out;
}

static void fingerprint(store *s, rs_buf *out)
{
    for (int level = STORE_LEVEL_PATIENT; level <= STORE_LEVEL_IMAGE; level++) {
        store_key keys[STORE_MAX_ATTRS];
        size_t n = 0;
        for (size_t i = 0; i < store_n_attrs; i++)
            if (store_attrs[i].level <= level)
                keys[n++] = (store_key){store_attrs[i].tag, 0, NULL};
        store_query q = {.level = (store_level)level, .model = STORE_PATIENT_ROOT, .keys = keys, .n_keys = n};
        rs_err err = {0};
        if (store_query_run(s, &q, fingerprint_row, out, &err))
            rs_buf_printf(out, "error %s\n", err.msg);
    }
    sort_lines(out);
}

static void test_reindex(const char *name, int expect_min)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/%s", g_root, name);
    store *s;
    rs_err err = {0};
    rs_buf before = RS_BUF_INIT, after = RS_BUF_INIT;
    store_stats st1, st2;
    CHECK_EQ_INT(store_open(dir, NULL, &s, &err), RS_OK);
    if (!s)
        return;
    fingerprint(s, &before);
    store_get_stats(s, &st1, &err);
    store_close(s);
    /* what a rebuild killed half-way leaves (its file is only renamed in once complete):
       the old index stays the one opened, and the next rebuild starts afresh */
    char rebuilt[sizeof dir + 24];
    snprintf(rebuilt, sizeof rebuilt, "%s/index.sqlite.rebuild", dir);
    write_file(rebuilt, "SQLite format 3\0half a rebuild", 31);
    rs_buf unfinished = RS_BUF_INIT;
    CHECK_EQ_INT(store_open(dir, NULL, &s, &err), RS_OK);
    if (!s)
        return;
    fingerprint(s, &unfinished);
    store_close(s);
    CHECK(unfinished.len == before.len && memcmp(unfinished.p, before.p, before.len) == 0);
    rs_buf_free(&unfinished);
    store_reindex_report rep;
    CHECK_EQ_INT(store_reindex(dir, NULL, 1, &rep, &err), RS_OK);
    CHECK(access(rebuilt, F_OK) != 0);
    CHECK_EQ_INT(rep.objects, st1.index.versions);
    CHECK_EQ_INT(rep.indexed, st1.index.versions);
    CHECK_EQ_INT(rep.corrupt + rep.unreadable, 0);
    CHECK(rep.objects >= (uint64_t)expect_min);
    CHECK_EQ_INT(store_open(dir, NULL, &s, &err), RS_OK);
    if (!s)
        return;
    fingerprint(s, &after);
    store_get_stats(s, &st2, &err);
    CHECK_EQ_INT(st2.index.versions, st1.index.versions);
    CHECK_EQ_INT(st2.index.instances, st1.index.instances);
    CHECK_EQ_INT(st2.index.bytes, st1.index.bytes);
    CHECK(before.len > 0 && before.len == after.len && memcmp(before.p, after.p, before.len) == 0);
    if (getenv("STORE_TEST_DUMP")) {
        char p[400];
        snprintf(p, sizeof p, "/tmp/fp-%s-before", name);
        write_file(p, before.p, before.len);
        snprintf(p, sizeof p, "/tmp/fp-%s-after", name);
        write_file(p, after.p, after.len);
    }
    store_instance_info info;
    if (strcmp(name, "identity") == 0) { /* versions come back in the same order */
        CHECK_EQ_INT(store_find_instance(s, UID_ROOT "1.1", &info, &err), RS_OK);
        CHECK_EQ_INT(info.version, 2);
        CHECK_EQ_INT(info.n_versions, 2);
    }
    store_close(s);
    rs_buf_free(&before);
    rs_buf_free(&after);
}

/* ---- main ------------------------------------------------------------------------------------------- */

static int g_tap;

static void section(const char *name, void (*fn)(void))
{
    int before = t_failures;
    fn();
    printf("%sok %d - %s\n", t_failures == before ? "" : "not ", ++g_tap, name);
    fflush(stdout);
}

static void reindex_identity(void) { test_reindex("identity", 2); }
static void reindex_queries(void) { test_reindex("query", 9); }
static void reindex_crash(void) { test_reindex("crash", 1); }

int main(void)
{
    if (load_template()) {
        fprintf(stderr, "cannot read %s\n", TEMPLATE);
        return 1;
    }
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_root, sizeof g_root, "%s/radshare-test-store-XXXXXX", base);
    if (!mkdtemp(g_root)) {
        perror("mkdtemp");
        return 1;
    }
    section("normal forms", test_norm);
    section("ingest", test_ingest);
    section("duplicates, versions, refusals", test_identity);
    section("preamble zeroed on ingest", test_preamble);
    section("bare dataset (C-STORE)", test_bare_dataset);
    section("concurrent ingest, group commit", test_concurrent);
    section("queries", test_queries);
    section("recovery of tmp/", test_recovery);
    section("recovery of unsettled rows", test_unsettled);
    section("SIGKILL while ingesting", test_crash);
    section("reindex: versions", reindex_identity);
    section("reindex: query data", reindex_queries);
    section("reindex: after crashes", reindex_crash);
    printf("1..%d\n", g_tap);
    rm_tree(g_root);
    free(g_template);
    return t_done();
}
