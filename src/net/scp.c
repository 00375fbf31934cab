/*
 * scp.c - DIMSE services on an accepted association (see scp.h).
 *
 * Each request is answered on the presentation context it came on. C-STORE streams the data
 * set into the store as its fragments arrive (a Part 10 file is built around it: zeroed
 * preamble, meta group from the command) and answers only after the group commit that makes it
 * durable. C-FIND turns the identifier into a store query and sends one pending response per
 * match, checking for C-CANCEL between them. C-MOVE and C-GET look the matches up the same way
 * and send the stored files with C-STORE sub-operations, over a new association to the move
 * destination or on this one.
 */
#include "scp.h"

#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../dicom/reader.h"
#include "../dicom/uid.h"
#include "../dicom/writer.h"
#include "../store/store.h"
#include "../util/log.h"
#include "../util/vec.h"
#include "dimse.h"
#include "scu.h"

#define UID_VERIFICATION "1.2.840.10008.1.1"
#define MAX_IDENTIFIER (1u << 20)

/* Query/Retrieve information models (PS3.4 C.6). */
typedef struct qr_model {
    const char *uid;
    uint16_t command;
    store_model model;
} qr_model;

static const qr_model qr_models[] = {
    {"1.2.840.10008.5.1.4.1.2.1.1", DIMSE_C_FIND_RQ, STORE_PATIENT_ROOT},
    {"1.2.840.10008.5.1.4.1.2.1.2", DIMSE_C_MOVE_RQ, STORE_PATIENT_ROOT},
    {"1.2.840.10008.5.1.4.1.2.1.3", DIMSE_C_GET_RQ, STORE_PATIENT_ROOT},
    {"1.2.840.10008.5.1.4.1.2.2.1", DIMSE_C_FIND_RQ, STORE_STUDY_ROOT},
    {"1.2.840.10008.5.1.4.1.2.2.2", DIMSE_C_MOVE_RQ, STORE_STUDY_ROOT},
    {"1.2.840.10008.5.1.4.1.2.2.3", DIMSE_C_GET_RQ, STORE_STUDY_ROOT},
};

static const qr_model *qr_find(const char *uid)
{
    for (size_t i = 0; i < sizeof qr_models / sizeof qr_models[0]; i++)
        if (!strcmp(qr_models[i].uid, uid))
            return &qr_models[i];
    return NULL;
}

/* ---- negotiation --------------------------------------------------------------------------- */

/* First proposed syntax among the uncompressed little-endian ones (commands and identifiers). */
static const char *pick_plain_ts(const pdu_pc *pc)
{
    for (uint32_t k = 0; k < pc->n_ts; k++)
        if (!strcmp(pc->ts[k], DCM_TS_EXPLICIT_LE) || !strcmp(pc->ts[k], DCM_TS_IMPLICIT_LE))
            return pc->ts[k];
    return NULL;
}

/*
 * Storage: the first proposed syntax radshare can read, in the requestor's order of preference;
 * received data is stored as sent, never transcoded (C-GET/C-MOVE re-encode uncompressed data
 * when the receiver accepts another uncompressed syntax only: see context_for).
 */
static const char *pick_storage_ts(const pdu_pc *pc)
{
    for (uint32_t k = 0; k < pc->n_ts; k++)
        if (dcm_ts_find(pc->ts[k], strlen(pc->ts[k])))
            return pc->ts[k];
    return NULL;
}

static int proposes_scp_role(const pdu_assoc *rq, const char *sop_class)
{
    for (uint32_t r = 0; r < rq->user.n_roles; r++)
        if (!strcmp(rq->user.roles[r].sop_class, sop_class) && rq->user.roles[r].scp)
            return 1;
    return 0;
}

void scp_negotiate(assoc *a, const pdu_assoc *rq)
{
    for (unsigned i = 0; i < rq->n_pcs && i < a->n_pcs; i++) {
        const pdu_pc *pc = &rq->pcs[i];
        assoc_pc *out = &a->pcs[i];
        const char *as = pc->abstract_syntax;
        const char *ts = NULL;
        int known = 1;
        if (!strcmp(as, UID_VERIFICATION) || qr_find(as))
            ts = pick_plain_ts(pc);
        else if (dcm_uid_is_storage(as))
            ts = pick_storage_ts(pc);
        else
            known = 0;
        if (!known) {
            out->result = PDU_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED;
        } else if (!ts) {
            out->result = PDU_PC_TRANSFER_SYNTAXES_NOT_SUPPORTED;
        } else {
            out->result = PDU_PC_ACCEPTANCE;
            snprintf(out->ts, sizeof out->ts, "%s", ts);
            /* a C-GET requestor receives the instances: it must be allowed the SCP role */
            out->scp_role = dcm_uid_is_storage(as) && proposes_scp_role(rq, as);
        }
    }
}

/* ---- responses ------------------------------------------------------------------------------- */

static int respond(assoc *a, uint8_t ctx, const dimse_cmd *rsp, const uint8_t *data, size_t n, rs_err *err)
{
    rs_buf b = RS_BUF_INIT;
    int rc = dimse_encode(rsp, &b, err);
    if (rc == RS_OK)
        rc = assoc_send(a, ctx, &b, data, n, err);
    rs_buf_free(&b);
    return rc;
}

static void rsp_init(dimse_cmd *rsp, const dimse_cmd *rq, uint16_t command, uint16_t status)
{
    memset(rsp, 0, sizeof *rsp);
    rsp->command = command;
    rsp->responded_id = rq->message_id;
    rsp->data_set_type = DIMSE_NO_DATASET;
    rsp->status = status;
    snprintf(rsp->affected_sop_class, sizeof rsp->affected_sop_class, "%s",
             rq->affected_sop_class[0] ? rq->affected_sop_class : "");
}

/* ---- C-STORE ---------------------------------------------------------------------------------- */

typedef struct store_sink {
    store_ingest *in;
    rs_err err;
    int failed;
} store_sink;

/* Keep receiving after a write failure: the peer gets a failure status, not a broken association. */
static int sink_write(void *ctx, const uint8_t *p, size_t n)
{
    store_sink *s = ctx;
    if (!s->failed && store_ingest_write(s->in, p, n, &s->err) != RS_OK)
        s->failed = 1;
    return 0;
}

/* The Part 10 header written before the received data set: zeroed preamble, meta from the command. */
static int write_part10_header(store_ingest *in, const dimse_cmd *rq, const char *ts, rs_err *err)
{
    dcm_file *f = dcm_file_new(1u << 20);
    if (!f)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    int rc = dcm_ds_set_str(f->meta, DCM_TAG_MEDIA_SOP_CLASS, DCM_VR_UI, rq->affected_sop_class);
    if (rc == RS_OK)
        rc = dcm_ds_set_str(f->meta, DCM_TAG_MEDIA_SOP_INSTANCE, DCM_VR_UI, rq->affected_sop_instance);
    const dcm_ts *t = dcm_ts_find(ts, strlen(ts));
    rs_buf b = RS_BUF_INIT;
    if (rc == RS_OK && t) {
        f->ts = t;
        dcm_write_opts wo = {.ts = t};
        rc = dcm_write(f, &wo, &b, err);
    } else if (rc == RS_OK) {
        rc = rs_err_set(err, RS_EUNSUPPORTED, "unknown transfer syntax %s", ts);
    }
    if (rc == RS_OK)
        rc = store_ingest_write(in, b.p, b.len, err);
    rs_buf_free(&b);
    dcm_file_free(f);
    return rc;
}

static int do_store(const scp_ctx *ctx, assoc *a, uint8_t pcid, const dimse_cmd *rq, rs_err *err)
{
    const assoc_pc *pc = assoc_pc_by_id(a, pcid);
    dimse_cmd rsp;
    rsp_init(&rsp, rq, DIMSE_C_STORE_RSP, DIMSE_SUCCESS);
    snprintf(rsp.affected_sop_instance, sizeof rsp.affected_sop_instance, "%s", rq->affected_sop_instance);
    store_sink sink = {0};
    rs_err_clear(&sink.err);
    int rc = store_ingest_begin(ctx->store, &sink.in, &sink.err);
    if (rc == RS_OK)
        rc = store_ingest_expect(sink.in, rq->affected_sop_class, rq->affected_sop_instance, &sink.err);
    if (rc == RS_OK)
        rc = write_part10_header(sink.in, rq, pc->ts, &sink.err);
    sink.failed = rc != RS_OK;
    rc = assoc_recv_data(a, pcid, sink_write, &sink, err);
    if (rc) {
        if (sink.in)
            store_ingest_abort(sink.in);
        return rc; /* association gone: nothing was acknowledged, nothing is kept */
    }
    if (strcmp(pc->abstract, rq->affected_sop_class) != 0) {
        rsp.status = DIMSE_ERROR_DATASET_MISMATCH;
        snprintf(rsp.error_comment, sizeof rsp.error_comment, "SOP class differs from the presentation context");
        sink.failed = 1;
    }
    store_ingest_result res = {0};
    if (!sink.failed) {
        rc = store_ingest_commit(sink.in, a->calling, &res, &sink.err);
        sink.in = NULL;
        if (rc) {
            sink.failed = 1;
            rsp.status = rc == RS_EINVAL                      ? DIMSE_ERROR_DATASET_MISMATCH
                         : rc == RS_EFORMAT || rc == RS_ETRUNC ? DIMSE_ERROR_CANNOT_UNDERSTAND
                                                               : DIMSE_REFUSED_OUT_OF_RESOURCES;
        }
    } else if (rsp.status == DIMSE_SUCCESS) {
        rsp.status = DIMSE_REFUSED_OUT_OF_RESOURCES;
    }
    if (sink.in)
        store_ingest_abort(sink.in);
    if (sink.failed) {
        if (!rsp.error_comment[0])
            snprintf(rsp.error_comment, sizeof rsp.error_comment, "%.64s", sink.err.msg);
        rs_log(RS_LOG_WARN, "assoc #%llu C-STORE %s from %s failed: %s", ctx->assoc_id, rq->affected_sop_instance,
               a->calling, sink.err.msg[0] ? sink.err.msg : rsp.error_comment);
    } else if (res.duplicate) {
        rs_log(RS_LOG_DEBUG, "assoc #%llu C-STORE %s: already stored", ctx->assoc_id, rq->affected_sop_instance);
    } else if (res.new_version) {
        rs_log(RS_LOG_WARN, "assoc #%llu C-STORE %s from %s: different content for a known SOPInstanceUID, kept as version %d",
               ctx->assoc_id, rq->affected_sop_instance, a->calling, res.version);
    }
    return respond(a, pcid, &rsp, NULL, 0, err);
}

/* ---- identifiers ------------------------------------------------------------------------------ */

/* Receive and parse a C-FIND/MOVE/GET identifier in the context's transfer syntax. */
static int recv_identifier(assoc *a, uint8_t pcid, dcm_file **out, rs_err *err)
{
    rs_buf b = RS_BUF_INIT;
    int rc = assoc_recv_data_buf(a, pcid, &b, MAX_IDENTIFIER, err);
    if (rc == RS_OK) {
        dcm_read_opts ro = {.max_memory = 16u << 20, .max_depth = 16};
        rc = dcm_read_mem(b.p ? b.p : (const uint8_t *)"", b.len, &ro, out, err);
    }
    rs_buf_free(&b);
    return rc;
}

/* Is a C-CANCEL for message id waiting on the association? (Checked between responses.) */
static int cancel_requested(assoc *a, uint16_t id)
{
    struct pollfd p = {.fd = a->fd, .events = POLLIN};
    if (poll(&p, 1, 0) <= 0 && a->cur.type != PDU_P_DATA_TF)
        return 0;
    if (a->cur.type == PDU_P_DATA_TF && a->next_pdv >= a->cur.u.pdata.n && poll(&p, 1, 0) <= 0)
        return 0;
    rs_buf cmd = RS_BUF_INIT;
    uint8_t pcid = 0;
    int cancel = 0;
    if (assoc_recv_command(a, &pcid, &cmd, NULL) == RS_OK) {
        dimse_cmd c;
        cancel = dimse_decode(cmd.p, cmd.len, &c, NULL) == RS_OK && c.command == DIMSE_C_CANCEL_RQ &&
                 c.responded_id == id;
    }
    rs_buf_free(&cmd);
    return cancel;
}

/* ---- C-FIND ----------------------------------------------------------------------------------- */

typedef struct find_ctx {
    assoc *a;
    uint8_t pcid;
    const dimse_cmd *rq;
    const dcm_ts *ts;
    const char *level;
    unsigned long matches;
    int cancelled;
    int send_failed;
    rs_err *err;
} find_ctx;

static int find_match(void *vctx, const store_match *m)
{
    find_ctx *fc = vctx;
    if (cancel_requested(fc->a, fc->rq->message_id)) {
        fc->cancelled = 1;
        return 1;
    }
    dcm_file *f = dcm_file_new(16u << 20);
    if (!f)
        return RS_ENOMEM;
    /* the store's answer (valid during the callback) plus the level PS3.4 C.4.1.1.3 wants back */
    int rc = RS_OK;
    for (uint32_t i = 0; i < m->ds->n && rc == RS_OK; i++) {
        dcm_elem *e = dcm_ds_put(f->ds, m->ds->e[i].tag, m->ds->e[i].vr);
        if (e)
            *e = m->ds->e[i];
        else
            rc = RS_ENOMEM;
    }
    if (rc == RS_OK)
        rc = dcm_ds_set_str(f->ds, DCM_TAG(0x0008, 0x0052), DCM_VR_CS, fc->level);
    rs_buf b = RS_BUF_INIT;
    dcm_write_opts wo = {.ts = fc->ts, .no_meta = 1};
    if (rc == RS_OK)
        rc = dcm_write(f, &wo, &b, fc->err);
    dcm_file_free(f);
    if (rc == RS_OK) {
        dimse_cmd rsp;
        rsp_init(&rsp, fc->rq, DIMSE_C_FIND_RSP, DIMSE_PENDING);
        rsp.data_set_type = 0x0000;
        rc = respond(fc->a, fc->pcid, &rsp, b.p, b.len, fc->err);
        if (rc)
            fc->send_failed = 1;
    }
    rs_buf_free(&b);
    fc->matches++;
    return rc;
}

static int do_find(const scp_ctx *ctx, assoc *a, uint8_t pcid, const dimse_cmd *rq, rs_err *err)
{
    const assoc_pc *pc = assoc_pc_by_id(a, pcid);
    const qr_model *qm = qr_find(pc->abstract);
    dcm_file *idf = NULL;
    int rc = recv_identifier(a, pcid, &idf, err);
    if (rc == ASSOC_RELEASED || rc == ASSOC_ABORTED || rc == RS_ETRUNC || rc == RS_EIO)
        return rc;
    dimse_cmd rsp;
    rsp_init(&rsp, rq, DIMSE_C_FIND_RSP, DIMSE_SUCCESS);
    rs_err qerr;
    rs_err_clear(&qerr);
    if (rc || !qm || qm->command != DIMSE_C_FIND_RQ) {
        rsp.status = DIMSE_ERROR_CANNOT_UNDERSTAND;
        snprintf(rsp.error_comment, sizeof rsp.error_comment, "%.64s", rc ? err->msg : "not a C-FIND context");
        dcm_file_free(idf);
        return respond(a, pcid, &rsp, NULL, 0, err);
    }
    store_keyset ks;
    store_keyset_init(&ks);
    store_level level = STORE_LEVEL_STUDY;
    int level_given = dcm_ds_find(idf->ds, DCM_TAG(0x0008, 0x0052)) != NULL;
    rc = store_keyset_from_ds(&ks, idf->ds, &level, &qerr);
    find_ctx fc = {.a = a, .pcid = pcid, .rq = rq, .ts = dcm_ts_find(pc->ts, strlen(pc->ts)), .err = err};
    if (rc == RS_OK && !level_given)
        rc = rs_err_set(&qerr, RS_EINVAL, "QueryRetrieveLevel (0008,0052) is missing");
    if (rc == RS_OK) {
        store_query q = {.level = level, .model = qm->model, .keys = ks.key, .n_keys = ks.n};
        fc.level = store_level_name(level);
        rc = store_query_run(ctx->store, &q, find_match, &fc, &qerr);
    }
    if (fc.send_failed) {
        rc = RS_EIO;
    } else if (fc.cancelled) {
        rsp.status = DIMSE_CANCEL;
        rc = respond(a, pcid, &rsp, NULL, 0, err);
    } else {
        if (rc) {
            rsp.status = rc == RS_EINVAL ? DIMSE_IDENTIFIER_MISMATCH : DIMSE_UNABLE_TO_PROCESS;
            snprintf(rsp.error_comment, sizeof rsp.error_comment, "%.64s", qerr.msg);
            rs_log(RS_LOG_WARN, "assoc #%llu C-FIND failed: %s", ctx->assoc_id, qerr.msg);
        }
        rc = respond(a, pcid, &rsp, NULL, 0, err);
    }
    rs_log(RS_LOG_INFO, "assoc #%llu C-FIND %s level: %lu match(es)%s", ctx->assoc_id, store_level_name(level),
           fc.matches, fc.cancelled ? ", cancelled" : "");
    store_keyset_free(&ks);
    dcm_file_free(idf);
    return rc;
}

/* ---- C-MOVE / C-GET ----------------------------------------------------------------------------- */

typedef net_scu_item pending_inst;

typedef struct collect_ctx {
    pending_inst *v;
    size_t n, cap;
} collect_ctx;

static int collect(void *vctx, const store_match *m)
{
    collect_ctx *c = vctx;
    if (rs_grow((void **)&c->v, &c->cap, c->n, sizeof *c->v, 64))
        return RS_ENOMEM;
    pending_inst *p = &c->v[c->n++];
    char cls[65] = "";
    dcm_ds_get_str(m->ds, DCM_TAG_SOP_CLASS_UID, 0, cls, sizeof cls);
    snprintf(p->sop_uid, sizeof p->sop_uid, "%s", m->sop_uid ? m->sop_uid : "");
    snprintf(p->sop_class, sizeof p->sop_class, "%s", cls);
    snprintf(p->ts, sizeof p->ts, "%s", m->ts_uid ? m->ts_uid : "");
    snprintf(p->hash, sizeof p->hash, "%s", m->hash ? m->hash : "");
    return 0;
}

/*
 * Send one stored instance as a C-STORE sub-operation; returns the peer's status or -1.
 * For C-GET (is_get) the context must be one on which the requestor took the SCP role: without
 * it the requestor never agreed to receive C-STORE-RQs for that class (PS3.4 C.4.3.1).
 */
static int is_uncompressed(const char *ts)
{
    return !strcmp(ts, DCM_TS_IMPLICIT_LE) || !strcmp(ts, DCM_TS_EXPLICIT_LE) || !strcmp(ts, DCM_TS_EXPLICIT_BE);
}

/*
 * A context to send p on: one that accepted its stored syntax, else (stored uncompressed) one
 * that accepted another uncompressed syntax, the data set then being re-encoded losslessly.
 */
static const assoc_pc *context_for(const assoc *dst, const pending_inst *p, int is_get)
{
    const assoc_pc *pc = assoc_find_pc(dst, p->sop_class, p->ts);
    if (pc && (!is_get || pc->scp_role))
        return pc;
    if (!is_uncompressed(p->ts))
        return NULL;
    static const char *const plain[] = {DCM_TS_EXPLICIT_LE, DCM_TS_IMPLICIT_LE, DCM_TS_EXPLICIT_BE};
    for (size_t i = 0; i < 3; i++) {
        pc = assoc_find_pc(dst, p->sop_class, plain[i]);
        if (pc && (!is_get || pc->scp_role))
            return pc;
    }
    return NULL;
}

/* The data set of a stored instance re-encoded in transfer syntax ts, into out. */
static int transcode(const scp_ctx *ctx, const pending_inst *p, const char *ts, rs_buf *out, rs_err *err)
{
    char path[4096];
    int rc = store_get_instance_path(ctx->store, p->sop_uid, path, sizeof path, err);
    dcm_file *f = NULL;
    if (rc == RS_OK)
        rc = dcm_read_path(path, NULL, &f, err);
    if (rc == RS_OK) {
        dcm_write_opts wo = {.ts = dcm_ts_find(ts, strlen(ts)), .no_meta = 1};
        rc = dcm_write(f, &wo, out, err);
    }
    dcm_file_free(f);
    return rc;
}

static int send_instance(const scp_ctx *ctx, assoc *dst, const pending_inst *p, uint16_t msg_id, int is_get,
                         const char *orig_ae, uint16_t orig_id, rs_err *err)
{
    const assoc_pc *pc = context_for(dst, p, is_get);
    if (!pc)
        return -2; /* no context for this class/syntax: counted as failed */
    int fd = -1;
    uint64_t off = 0, len = 0;
    rs_buf converted = RS_BUF_INIT;
    int same_ts = !strcmp(pc->ts, p->ts);
    int rc = same_ts ? store_open_instance(ctx->store, p->hash, &fd, &off, &len, err)
                     : transcode(ctx, p, pc->ts, &converted, err);
    if (rc) {
        rs_buf_free(&converted);
        return -1;
    }
    rc = net_scu_store(dst, pc, p, msg_id, orig_ae, orig_id, fd, off, same_ts ? NULL : converted.p,
                       same_ts ? len : converted.len, err);
    if (fd >= 0)
        close(fd);
    rs_buf_free(&converted);
    return rc;
}

static int do_retrieve(const scp_ctx *ctx, assoc *a, uint8_t pcid, const dimse_cmd *rq, rs_err *err)
{
    const assoc_pc *pc = assoc_pc_by_id(a, pcid);
    const qr_model *qm = qr_find(pc->abstract);
    int is_get = rq->command == DIMSE_C_GET_RQ;
    uint16_t rsp_cmd = is_get ? DIMSE_C_GET_RSP : DIMSE_C_MOVE_RSP;
    dcm_file *idf = NULL;
    int rc = recv_identifier(a, pcid, &idf, err);
    if (rc == ASSOC_RELEASED || rc == ASSOC_ABORTED || rc == RS_ETRUNC || rc == RS_EIO)
        return rc;
    dimse_cmd rsp;
    rsp_init(&rsp, rq, rsp_cmd, DIMSE_SUCCESS);
    if (rc || !qm || qm->command != rq->command) {
        rsp.status = DIMSE_ERROR_CANNOT_UNDERSTAND;
        dcm_file_free(idf);
        return respond(a, pcid, &rsp, NULL, 0, err);
    }
    /* where the instances go */
    const net_peer *dest = NULL;
    if (!is_get) {
        dest = net_config_peer(ctx->cfg, rq->move_destination);
        if (!dest) {
            rsp.status = DIMSE_REFUSED_MOVE_DESTINATION;
            snprintf(rsp.error_comment, sizeof rsp.error_comment, "unknown move destination");
            rs_log(RS_LOG_WARN, "assoc #%llu C-MOVE to unknown destination '%s' refused", ctx->assoc_id,
                   rq->move_destination);
            dcm_file_free(idf);
            return respond(a, pcid, &rsp, NULL, 0, err);
        }
    }
    /* which instances: the identifier as an IMAGE-level query below its level */
    store_keyset ks;
    store_keyset_init(&ks);
    store_level level = STORE_LEVEL_STUDY;
    rs_err qerr;
    rs_err_clear(&qerr);
    collect_ctx cc = {0};
    rc = store_keyset_from_ds(&ks, idf->ds, &level, &qerr);
    /* the sub-operations need each instance's SOP class: ask for it as a return key */
    if (rc == RS_OK && !dcm_ds_find(idf->ds, DCM_TAG_SOP_CLASS_UID))
        rc = store_keyset_add(&ks, DCM_TAG_SOP_CLASS_UID, DCM_VR_UI, NULL, &qerr);
    if (rc == RS_OK) {
        store_query q = {.level = STORE_LEVEL_IMAGE, .model = qm->model, .keys = ks.key, .n_keys = ks.n};
        rc = store_query_run(ctx->store, &q, collect, &cc, &qerr);
    }
    store_keyset_free(&ks);
    dcm_file_free(idf);
    if (rc) {
        rsp.status = DIMSE_IDENTIFIER_MISMATCH;
        snprintf(rsp.error_comment, sizeof rsp.error_comment, "%.64s", qerr.msg);
        free(cc.v);
        return respond(a, pcid, &rsp, NULL, 0, err);
    }
    /* open the sub-association for C-MOVE: one context per class+syntax needed */
    assoc sub;
    assoc *dst = a;
    int sub_open = 0;
    if (!is_get && cc.n) {
        rs_err serr;
        rs_err_clear(&serr);
        if (net_scu_open(&sub, dest->host, dest->port, ctx->cfg->aet, dest->aet, cc.v, cc.n, ctx->cfg->timeout_ms,
                         &serr) != RS_OK) {
            rs_log(RS_LOG_WARN, "assoc #%llu C-MOVE: cannot reach %s at %s:%d: %s", ctx->assoc_id, dest->aet,
                   dest->host, dest->port, serr.msg);
            assoc_close(&sub);
            rsp.status = DIMSE_MOVE_OUT_OF_RESOURCES_SUBOPS;
            rsp.has_counts = 1;
            rsp.failed = (uint16_t)(cc.n > 0xFFFF ? 0xFFFF : cc.n);
            free(cc.v);
            return respond(a, pcid, &rsp, NULL, 0, err);
        }
        sub_open = 1;
        dst = &sub;
    }
    unsigned completed = 0, failed = 0, warning = 0;
    int cancelled = 0;
    uint16_t next_id = 1;
    for (size_t i = 0; i < cc.n; i++) {
        if (cancel_requested(a, rq->message_id)) {
            cancelled = 1;
            break;
        }
        rs_err serr;
        rs_err_clear(&serr);
        int st = send_instance(ctx, dst, &cc.v[i], next_id++, is_get, is_get ? NULL : a->calling, rq->message_id,
                               &serr);
        if (st == DIMSE_SUCCESS)
            completed++;
        else if (st >= 0 && !strcmp(dimse_status_class((uint16_t)st), "warning"))
            warning++;
        else
            failed++;
        if (st == -1 && dst->closed)
            break;
        if (i + 1 < cc.n) {
            dimse_cmd pend;
            rsp_init(&pend, rq, rsp_cmd, DIMSE_PENDING);
            pend.has_counts = 1;
            pend.remaining = (uint16_t)(cc.n - i - 1);
            pend.completed = (uint16_t)completed;
            pend.failed = (uint16_t)failed;
            pend.warning = (uint16_t)warning;
            rc = respond(a, pcid, &pend, NULL, 0, err);
            if (rc)
                break;
        }
    }
    if (sub_open)
        net_scu_close(&sub);
    rs_log(RS_LOG_INFO, "assoc #%llu %s: %zu instance(s), %u completed, %u failed, %u warning%s", ctx->assoc_id,
           is_get ? "C-GET" : "C-MOVE", cc.n, completed, failed, warning, cancelled ? ", cancelled" : "");
    size_t total = cc.n;
    free(cc.v);
    if (rc)
        return rc;
    rsp.has_counts = 1;
    rsp.completed = (uint16_t)completed;
    rsp.failed = (uint16_t)failed;
    rsp.warning = (uint16_t)warning;
    rsp.remaining = cancelled ? (uint16_t)(total - completed - failed - warning) : 0;
    rsp.status = cancelled ? DIMSE_CANCEL : (failed || warning) ? DIMSE_WARNING_SUBOPS : DIMSE_SUCCESS;
    if (!cancelled && failed && !completed && !warning)
        rsp.status = DIMSE_MOVE_OUT_OF_RESOURCES_SUBOPS;
    return respond(a, pcid, &rsp, NULL, 0, err);
}

/* ---- the message loop -------------------------------------------------------------------------- */

static unsigned service_of(uint16_t command)
{
    switch (command) {
    case DIMSE_C_STORE_RQ: return NET_SVC_STORE;
    case DIMSE_C_FIND_RQ: return NET_SVC_FIND;
    case DIMSE_C_MOVE_RQ: return NET_SVC_MOVE;
    case DIMSE_C_GET_RQ: return NET_SVC_GET;
    default: return 0;
    }
}

static int discard(void *ctx, const uint8_t *p, size_t n) { return 0; }

/* A service the peer is not configured for: its data set is read and dropped, the answer is
 * "Refused: Not Authorized" (PS3.7 C.4), and the association goes on. */
static int refuse(const scp_ctx *ctx, assoc *a, uint8_t pcid, const dimse_cmd *rq, rs_err *err)
{
    char want[32], allowed[32];
    net_services_str(service_of(rq->command), want, sizeof want);
    net_services_str(ctx->services, allowed, sizeof allowed);
    rs_log(RS_LOG_WARN, "assoc #%llu: %s refused: %s may not %s (allowed: %s)", ctx->assoc_id,
           dimse_command_str(rq->command), a->calling, want, allowed[0] ? allowed : "echo only");
    if (dimse_has_dataset(rq)) {
        int rc = assoc_recv_data(a, pcid, discard, NULL, err);
        if (rc)
            return rc;
    }
    dimse_cmd rsp;
    rsp_init(&rsp, rq, (uint16_t)(rq->command | 0x8000), DIMSE_REFUSED_NOT_AUTHORIZED);
    snprintf(rsp.affected_sop_instance, sizeof rsp.affected_sop_instance, "%s", rq->affected_sop_instance);
    return respond(a, pcid, &rsp, NULL, 0, err);
}

void scp_serve(const scp_ctx *ctx, assoc *a)
{
    rs_buf cmdbuf = RS_BUF_INIT;
    unsigned long n_msgs = 0;
    for (;;) {
        rs_err err;
        rs_err_clear(&err);
        uint8_t pcid = 0;
        int rc = assoc_recv_command(a, &pcid, &cmdbuf, &err);
        if (rc == ASSOC_RELEASED) {
            rs_log(RS_LOG_INFO, "assoc #%llu released after %lu message(s)", ctx->assoc_id, n_msgs);
            break;
        }
        if (rc == ASSOC_ABORTED) {
            rs_log(RS_LOG_INFO, "assoc #%llu aborted by the peer after %lu message(s)", ctx->assoc_id, n_msgs);
            break;
        }
        if (rc == ASSOC_STOPPED) {
            rs_log(RS_LOG_INFO, "assoc #%llu idle at shutdown: aborted after %lu message(s)", ctx->assoc_id, n_msgs);
            break;
        }
        if (rc) {
            rs_log(RS_LOG_WARN, "assoc #%llu: %s", ctx->assoc_id, err.msg);
            break;
        }
        dimse_cmd rq;
        if (dimse_decode(cmdbuf.p, cmdbuf.len, &rq, &err) != RS_OK) {
            rs_log(RS_LOG_WARN, "assoc #%llu: bad command set: %s", ctx->assoc_id, err.msg);
            assoc_abort(a, PDU_ABORT_SOURCE_PROVIDER, PDU_ABORT_INVALID_PARAM);
            break;
        }
        n_msgs++;
        unsigned need = service_of(rq.command);
        if (need && !(ctx->services & need)) {
            rc = refuse(ctx, a, pcid, &rq, &err);
            if (rc) {
                rs_log(RS_LOG_WARN, "assoc #%llu: %s", ctx->assoc_id, err.msg);
                break;
            }
            continue;
        }
        switch (rq.command) {
        case DIMSE_C_ECHO_RQ: {
            dimse_cmd rsp;
            rsp_init(&rsp, &rq, DIMSE_C_ECHO_RSP, DIMSE_SUCCESS);
            rc = respond(a, pcid, &rsp, NULL, 0, &err);
            break;
        }
        case DIMSE_C_STORE_RQ: rc = do_store(ctx, a, pcid, &rq, &err); break;
        case DIMSE_C_FIND_RQ: rc = do_find(ctx, a, pcid, &rq, &err); break;
        case DIMSE_C_MOVE_RQ:
        case DIMSE_C_GET_RQ: rc = do_retrieve(ctx, a, pcid, &rq, &err); break;
        case DIMSE_C_CANCEL_RQ: rc = RS_OK; break; /* nothing in progress to cancel */
        default:
            rs_log(RS_LOG_WARN, "assoc #%llu: unsupported %s (0x%04x)", ctx->assoc_id, dimse_command_str(rq.command),
                   rq.command);
            assoc_abort(a, PDU_ABORT_SOURCE_PROVIDER, PDU_ABORT_UNRECOGNIZED_PARAM);
            rc = RS_EUNSUPPORTED;
        }
        if (rc) {
            if (err.msg[0])
                rs_log(RS_LOG_WARN, "assoc #%llu: %s", ctx->assoc_id, err.msg);
            break;
        }
    }
    rs_buf_free(&cmdbuf);
}
