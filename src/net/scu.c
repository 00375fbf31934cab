/*
 * scu.c - see scu.h.
 */
#include "scu.h"

#include <stdio.h>
#include <string.h>

#include "dimse.h"

int net_scu_open(assoc *a, const char *host, int port, const char *calling, const char *called,
                 const net_scu_item *items, size_t n, int timeout_ms, rs_err *err)
{
    assoc_proposal props[PDU_MAX_CONTEXTS];
    const char *tss[PDU_MAX_CONTEXTS];
    unsigned np = 0;
    for (size_t i = 0; i < n && np < PDU_MAX_CONTEXTS; i++) {
        int seen = 0;
        for (unsigned k = 0; k < np && !seen; k++)
            seen = !strcmp(props[k].abstract, items[i].sop_class) && !strcmp(tss[k], items[i].ts);
        if (seen)
            continue;
        tss[np] = items[i].ts;
        props[np] = (assoc_proposal){.abstract = items[i].sop_class, .ts = &tss[np], .n_ts = 1};
        np++;
    }
    return assoc_request(a, host, port, calling, called, props, np, timeout_ms, err);
}

const assoc_pc *net_scu_context(const assoc *a, const net_scu_item *it)
{
    return assoc_find_pc(a, it->sop_class, it->ts);
}

int net_scu_store(assoc *a, const assoc_pc *pc, const net_scu_item *it, uint16_t msg_id, const char *orig_ae,
                  uint16_t orig_id, int fd, uint64_t off, const uint8_t *data, uint64_t len, rs_err *err)
{
    dimse_cmd rq = {.command = DIMSE_C_STORE_RQ, .message_id = msg_id, .data_set_type = 0x0000, .priority = 0};
    snprintf(rq.affected_sop_class, sizeof rq.affected_sop_class, "%s", it->sop_class);
    snprintf(rq.affected_sop_instance, sizeof rq.affected_sop_instance, "%s", it->sop_uid);
    if (orig_ae) {
        rq.has_move_originator = 1;
        snprintf(rq.move_originator_ae, sizeof rq.move_originator_ae, "%s", orig_ae);
        rq.move_originator_id = orig_id;
    }
    rs_buf cmd = RS_BUF_INIT;
    int rc = dimse_encode(&rq, &cmd, err);
    if (rc == RS_OK)
        rc = fd >= 0 ? assoc_send_fd(a, pc->id, &cmd, fd, off, len, err)
                     : assoc_send(a, pc->id, &cmd, data ? data : (const uint8_t *)"", (size_t)len, err);
    int status = -1;
    if (rc == RS_OK) {
        uint8_t rpc;
        dimse_cmd rsp;
        rc = assoc_recv_command(a, &rpc, &cmd, err);
        if (rc == RS_OK && dimse_decode(cmd.p, cmd.len, &rsp, err) == RS_OK) {
            if (rsp.command == DIMSE_C_STORE_RSP)
                status = rsp.status;
            else
                rs_err_set(err, RS_EFORMAT, "expected a C-STORE-RSP, got command %04x", rsp.command);
        } else if (rc > 0) {
            rs_err_set(err, RS_EIO, "the peer %s the association", rc == ASSOC_RELEASED ? "released" : "aborted");
        }
    }
    rs_buf_free(&cmd);
    return status;
}

void net_scu_close(assoc *a)
{
    rs_err e;
    rs_err_clear(&e);
    if (!a->closed && assoc_release(a, &e) != RS_OK)
        assoc_abort(a, PDU_ABORT_SOURCE_USER, PDU_ABORT_NOT_SPECIFIED);
    assoc_close(a);
}
