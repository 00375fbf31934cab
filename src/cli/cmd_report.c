/*
 * cmd_report.c - `radshare report`: reports and their deliveries from the command line, for
 * operators and tests.
 *
 *   report send     store a report for a study and deliver it (waits up to --wait seconds)
 *   report deliver  run the outbox on what is queued (after a restart, a relay outage...)
 *   report status   the deliveries, as JSON
 *   report cancel   cancel a pending delivery
 *
 * send and deliver print the deliveries as JSON when they end; exit 0 when every delivery
 * concerned was sent, 1 when some are still pending, failed or cancelled, 2 on bad input.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../report/directory.h"
#include "../report/outbox.h"
#include "../report/report.h"
#include "../report/service.h"
#include "../store/store.h"
#include "../util/fdio.h"
#include "../util/log.h"
#include "cli.h"

typedef struct report_opts {
    const char *data, *study, *text_file, *link, *author, *share_id, *access_code, *directory, *referring;
    const char *hl7_default;
    report_recipient to;
    report_study st;
    int needs_code;
    double wait_s;
    int64_t delivery;
    report_outbox_config ob;
} report_opts;

static void report_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare report send --data DIR --study UID --text-file F --link URL --to-name N\n"
            "                            [--to-email E] [--hl7 HOST:PORT] --smtp smtp://HOST:PORT --mail-from ADDR\n"
            "                            [--wait SECONDS] [options]\n"
            "       radshare report deliver --data DIR [--smtp URL --mail-from ADDR] [--wait SECONDS]\n"
            "       radshare report status --data DIR [--study UID]\n"
            "       radshare report cancel --data DIR --delivery ID\n"
            "options of send:\n"
            "  --author NAME  --share-id ID  --needs-code (the link needs an access code sent apart)\n"
            "  --access-code C   refuse the report if C appears in it (never stored nor sent)\n"
            "  --hl7-app APP --hl7-facility FAC   receiving application / facility (MSH-5/6)\n"
            "  --directory FILE  --referring PN   recipient from the recipients directory\n"
            "  --default-hl7 HOST:PORT            HL7 endpoint for recipients without their own\n"
            "  patient data when the study is not in the archive (or to override it):\n"
            "  --patient-name PN --patient-id ID --birth-date YYYYMMDD --sex M|F|O\n"
            "  --accession A --procedure TEXT --study-date YYYYMMDD\n"
            "outbox options (send, deliver):\n"
            "  --smtp-ca FILE  CA certificates for the relay's STARTTLS certificate (default: the system's)\n"
            "  --hl7-sending-app APP --hl7-sending-facility FAC --timeout-ms N\n"
            "  --retry-base-ms N (default 30000) --retry-cap-ms N (default 3600000) --max-attempts N\n");
}

static int copy_to(char *dst, size_t cap, const char *v)
{
    return snprintf(dst, cap, "%s", v) < (int)cap ? RS_OK : RS_ELIMIT;
}

static int parse_num(const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || end == v || d < lo || d > hi)
        return RS_EINVAL;
    *out = d;
    return RS_OK;
}

/* One option by name; RS_ENOTFOUND for an unknown one. */
static int apply(report_opts *o, const char *k, const char *v)
{
    double d;
    struct { const char *name; const char **dst; } strs[] = {
        {"data", &o->data},           {"study", &o->study},         {"text-file", &o->text_file},
        {"link", &o->link},           {"author", &o->author},       {"share-id", &o->share_id},
        {"access-code", &o->access_code}, {"directory", &o->directory}, {"referring", &o->referring},
        {"default-hl7", &o->hl7_default}, {"smtp", &o->ob.smtp_url}, {"mail-from", &o->ob.mail_from},
        {"smtp-ca", &o->ob.smtp_ca_file},
        {"hl7-sending-app", &o->ob.hl7_sending_app}, {"hl7-sending-facility", &o->ob.hl7_sending_facility}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (!strcmp(k, strs[i].name)) {
            *strs[i].dst = v;
            return RS_OK;
        }
    struct { const char *name; char *dst; size_t cap; } bufs[] = {
        {"to-name", o->to.name, sizeof o->to.name},          {"to-email", o->to.email, sizeof o->to.email},
        {"hl7", o->to.hl7, sizeof o->to.hl7},                {"hl7-app", o->to.hl7_app, sizeof o->to.hl7_app},
        {"hl7-facility", o->to.hl7_facility, sizeof o->to.hl7_facility},
        {"patient-name", o->st.patient_name, sizeof o->st.patient_name},
        {"patient-id", o->st.patient_id, sizeof o->st.patient_id},
        {"birth-date", o->st.birth_date, sizeof o->st.birth_date}, {"sex", o->st.sex, sizeof o->st.sex},
        {"accession", o->st.accession, sizeof o->st.accession},
        {"procedure", o->st.procedure, sizeof o->st.procedure},
        {"study-date", o->st.study_date, sizeof o->st.study_date}};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (!strcmp(k, bufs[i].name))
            return copy_to(bufs[i].dst, bufs[i].cap, v);
    struct { const char *name; int *dst; double lo, hi; } ints[] = {
        {"timeout-ms", &o->ob.timeout_ms, 100, 600000},     {"retry-base-ms", &o->ob.retry_base_ms, 1, 86400000},
        {"retry-cap-ms", &o->ob.retry_cap_ms, 1, 86400000}, {"max-attempts", &o->ob.max_attempts, 0, 1000000}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!strcmp(k, ints[i].name)) {
            if (parse_num(v, ints[i].lo, ints[i].hi, &d))
                return RS_EINVAL;
            *ints[i].dst = (int)d;
            return RS_OK;
        }
    if (!strcmp(k, "wait"))
        return parse_num(v, 0, 86400, &o->wait_s);
    if (!strcmp(k, "delivery")) {
        if (parse_num(v, 1, 9e15, &d))
            return RS_EINVAL;
        o->delivery = (int64_t)d;
        return RS_OK;
    }
    return RS_ENOTFOUND;
}

static int parse_opts(int argc, char **argv, report_opts *o)
{
    o->data = "radshare-data";
    o->wait_s = 30;
    o->ob.poll_ms = 200;   /* a CLI run is short: look often */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--needs-code")) {
            o->needs_code = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            report_usage(stdout);
            return 1;
        }
        if (strncmp(a, "--", 2) || i + 1 == argc) {
            fprintf(stderr, "radshare report: unexpected '%s'\n", a);
            return -1;
        }
        int rc = apply(o, a + 2, argv[i + 1]);
        if (rc) {
            fprintf(stderr, "radshare report: %s '%s'\n", rc == RS_ENOTFOUND ? "unknown option" : "bad value for", a);
            return -1;
        }
        i++;
    }
    return 0;
}

static int read_text(const char *path, rs_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    int rc = RS_EIO;
    if (fd >= 0 && fstat(fd, &sb) == 0) {
        if (sb.st_size > REPORT_TEXT_MAX)
            rc = RS_ELIMIT;
        else if (!(rc = rs_buf_reserve(out, (size_t)sb.st_size + 1)) &&
                 !(rc = rs_pread_all(fd, out->p, (size_t)sb.st_size, 0))) {
            out->len = (size_t)sb.st_size;
            out->p[out->len] = 0;
        }
    }
    if (fd >= 0)
        close(fd);
    if (rc)
        fprintf(stderr, "radshare report: %s: %s\n", path, rc == RS_ELIMIT ? "too long" : strerror(errno));
    return rc;
}

/* Options given win over the archive's values; the archive fills the rest. */
static void merge_study(report_study *into, const report_study *given)
{
    static const size_t sizes[] = {
        sizeof into->patient_id, sizeof into->patient_name, sizeof into->birth_date, sizeof into->sex,
        sizeof into->accession,  sizeof into->procedure,    sizeof into->study_date, sizeof into->referring};
    for (size_t i = 0, off = 0; i < sizeof sizes / sizeof sizes[0]; off += sizes[i++])
        if (((const char *)given)[off])
            memcpy((char *)into + off, (const char *)given + off, sizes[i]);
}

/* The study in the archive of this data directory, when it is there and not locked by a server. */
static void study_from_archive(const char *data, const char *uid, report_study *out)
{
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/index.sqlite", data);
    if (stat(path, &sb) != 0)
        return;
    store *st = NULL;
    rs_err err;
    rs_err_clear(&err);
    if (store_open(data, NULL, &st, &err) != RS_OK) {
        rs_log(RS_LOG_WARN, "report: archive not readable (%s): patient data from the options only", err.msg);
        return;
    }
    if (report_study_from_store(st, uid, out, &err) != RS_OK)
        rs_log(RS_LOG_WARN, "report: %s: patient data from the options only", err.msg);
    store_close(st);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run the outbox until nothing of report_id (0: anything) is pending or the wait is over. */
static int run_outbox(report_opts *o, report_db *db, int64_t report_id)
{
    rs_err err;
    rs_err_clear(&err);
    int64_t pending = 0;
    if (report_pending_count(db, report_id, &pending, &err) || pending == 0 || o->wait_s <= 0)
        return RS_OK;
    report_outbox *ob = NULL;
    o->ob.datadir = o->data;
    if (report_outbox_start(&o->ob, &ob, &err)) {
        fprintf(stderr, "radshare report: %s\n", err.msg);
        return RS_EIO;
    }
    long long end = mono_ms() + (long long)(o->wait_s * 1000);
    while (mono_ms() < end && report_pending_count(db, report_id, &pending, &err) == RS_OK && pending > 0)
        usleep(50 * 1000);
    report_outbox_stop(ob);
    return RS_OK;
}

/* Print the deliveries; the exit status says whether all of them were sent. */
static int print_deliveries(report_db *db, const char *study, int64_t report_id, int strict)
{
    rs_buf json = RS_BUF_INIT;
    rs_err err;
    rs_err_clear(&err);
    int status = RS_EXIT_OK;
    if (report_delivery_list(db, study, report_id, &json, &err)) {
        fprintf(stderr, "radshare report: %s\n", err.msg);
        status = RS_EXIT_ERROR;
    } else {
        printf("%s\n", (const char *)json.p);
        if (strict && (strstr((const char *)json.p, "\"status\":\"pending\"") ||
                       strstr((const char *)json.p, "\"status\":\"failed\"") ||
                       strstr((const char *)json.p, "\"status\":\"cancelled\"")))
            status = RS_EXIT_PROBLEMS;
    }
    rs_buf_free(&json);
    return status;
}

static int do_send(report_opts *o, report_db *db)
{
    if (!o->study || !o->text_file || !o->link) {
        fprintf(stderr, "radshare report send: --study, --text-file and --link are required\n");
        return RS_EXIT_ERROR;
    }
    rs_buf text = RS_BUF_INIT;
    report_directory *dir = NULL;
    rs_err err;
    rs_err_clear(&err);
    int status = RS_EXIT_ERROR;
    report_input in = {.study_uid = o->study, .author = o->author, .share_id = o->share_id, .link_url = o->link,
                       .link_needs_code = o->needs_code, .access_code = o->access_code};
    study_from_archive(o->data, o->study, &in.study);
    merge_study(&in.study, &o->st);
    if (o->referring)
        copy_to(in.study.referring, sizeof in.study.referring, o->referring);
    if (read_text(o->text_file, &text))
        goto out;
    in.text = (const char *)text.p;
    if (o->directory && report_dir_load(o->directory, &dir, &err)) {
        fprintf(stderr, "radshare report: %s\n", err.msg);
        goto out;
    }
    if (report_recipient_resolve(dir, o->hl7_default, &o->to, in.study.referring, &in.recipient)) {
        fprintf(stderr, "radshare report send: no recipient: give --to-email or --hl7, or a --directory entry\n");
        goto out;
    }
    int64_t id = 0;
    if (report_create(db, &in, &id, &err)) {
        fprintf(stderr, "radshare report send: %s\n", err.msg);
        goto out;
    }
    fprintf(stderr, "radshare report send: report %lld stored\n", (long long)id);
    if (run_outbox(o, db, id) == RS_OK)
        status = print_deliveries(db, NULL, id, 1);
out:
    report_dir_free(dir);
    rs_buf_free(&text);
    return status;
}

int cmd_report(int argc, char **argv)
{
    if (argc < 2) {
        report_usage(stderr);
        return RS_EXIT_ERROR;
    }
    const char *sub = argv[1];
    report_opts *o = calloc(1, sizeof *o);
    if (!o)
        return RS_EXIT_ERROR;
    int status = RS_EXIT_ERROR, p = parse_opts(argc - 1, argv + 1, o);
    report_db *db = NULL;
    rs_err err;
    rs_err_clear(&err);
    if (p) {
        status = p > 0 ? RS_EXIT_OK : RS_EXIT_ERROR;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    if (report_db_open(o->data, &db, &err)) {
        fprintf(stderr, "radshare report: %s\n", err.msg);
        goto out;
    }
    if (!strcmp(sub, "send")) {
        status = do_send(o, db);
    } else if (!strcmp(sub, "deliver")) {
        if (run_outbox(o, db, 0) == RS_OK)
            status = print_deliveries(db, o->study, 0, 1);
    } else if (!strcmp(sub, "status")) {
        status = print_deliveries(db, o->study, 0, 0);
    } else if (!strcmp(sub, "cancel")) {
        if (!o->delivery)
            fprintf(stderr, "radshare report cancel: --delivery ID is required\n");
        else if (report_delivery_cancel(db, o->delivery, &err))
            fprintf(stderr, "radshare report cancel: %s\n", err.msg);
        else
            status = print_deliveries(db, NULL, 0, 0);
    } else {
        fprintf(stderr, "radshare report: unknown subcommand '%s'\n", sub);
        report_usage(stderr);
    }
out:
    report_db_close(db);
    free(o);
    return status;
}
