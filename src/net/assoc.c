/* assoc.c - DICOM associations over TCP (see assoc.h). */
#include "assoc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <fcntl.h>

#include "../util/fdio.h"
#include "tls.h"

#define ARENA_LIMIT (8u * 1024u * 1024u)

/* ---- socket I/O with timeouts ------------------------------------------------------------- */

static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int r = poll(&p, 1, timeout_ms);
        if (r > 0)
            return RS_OK;
        if (r == 0)
            return RS_ELIMIT; /* timed out */
        if (errno != EINTR)
            return RS_EIO;
    }
}

/* Like wait_fd for reading, but bytes TLS has already decrypted count as readable. */
static int wait_readable(assoc *a, int timeout_ms)
{
    if (a->tls && net_tls_pending(a->tls) > 0)
        return RS_OK;
    return wait_fd(a->fd, POLLIN, timeout_ms);
}

/* Read exactly n bytes. RS_ETRUNC when the peer closed the connection first. */
static int read_full(assoc *a, uint8_t *p, size_t n, rs_err *err)
{
    /* plain TCP: try first, wait only when nothing is there (during a data set the bytes
       usually are: one poll per read would be a syscall for nothing) */
    int waited = a->tls != NULL;
    while (n > 0) {
        if (waited) {
            int rc = wait_readable(a, a->timeout_ms);
            if (rc == RS_ELIMIT)
                return rs_err_set(err, RS_ELIMIT, "%s: no data from the peer for %d ms", a->peer_addr,
                                  a->timeout_ms);
            if (rc)
                return rs_err_set(err, RS_EIO, "%s: %s", a->peer_addr, strerror(errno));
        }
        ssize_t r = a->tls ? net_tls_read(a->tls, p, n) : recv(a->fd, p, n, waited ? 0 : MSG_DONTWAIT);
        if (r == 0)
            return rs_err_set(err, RS_ETRUNC, "%s: connection closed by the peer", a->peer_addr);
        if (r < 0) {
            waited = errno == EAGAIN || errno == EWOULDBLOCK || a->tls;
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return rs_err_set(err, RS_EIO, "%s: %s", a->peer_addr, strerror(errno));
        }
        waited = a->tls != NULL;
        p += r;
        n -= (size_t)r;
    }
    return RS_OK;
}

/* TLS has no writev: the pieces of one PDU go out as one record, not one per piece. */
static int write_tls(assoc *a, const struct iovec *iov, int cnt, rs_err *err)
{
    rs_buf_reset(&a->wbuf);
    for (int i = 0; i < cnt; i++)
        if (rs_buf_append(&a->wbuf, iov[i].iov_base, iov[i].iov_len))
            return rs_err_set(err, RS_ENOMEM, "out of memory");
    const uint8_t *p = a->wbuf.p;
    size_t n = a->wbuf.len;
    while (n > 0) {
        ssize_t w = net_tls_write(a->tls, p, n);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return rs_err_set(err, errno == EAGAIN ? RS_ELIMIT : RS_EIO, "%s: cannot send: %s", a->peer_addr,
                              errno == EAGAIN ? "peer not reading" : strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return RS_OK;
}

static int writev_full(assoc *a, struct iovec *iov, int cnt, rs_err *err)
{
    if (a->tls)
        return write_tls(a, iov, cnt, err);
    while (cnt > 0) {
        int rc = wait_fd(a->fd, POLLOUT, a->timeout_ms);
        if (rc)
            return rs_err_set(err, rc == RS_ELIMIT ? RS_ELIMIT : RS_EIO, "%s: cannot send: %s", a->peer_addr,
                              rc == RS_ELIMIT ? "peer not reading" : strerror(errno));
        ssize_t w = writev(a->fd, iov, cnt);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return rs_err_set(err, RS_EIO, "%s: %s", a->peer_addr, strerror(errno));
        }
        while (cnt > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return RS_OK;
}

static int send_buf(assoc *a, const rs_buf *b, rs_err *err)
{
    struct iovec iov = {.iov_base = b->p, .iov_len = b->len};
    return writev_full(a, &iov, 1, err);
}

static int send_pdu(assoc *a, const pdu *p, rs_err *err)
{
    rs_buf b = RS_BUF_INIT;
    int rc = pdu_encode(p, &b, err);
    if (rc == RS_OK)
        rc = send_buf(a, &b, err);
    rs_buf_free(&b);
    return rc;
}

static void set_socket_options(int fd)
{
    int one = 1;
    /* without it DCMTK's tools wait ~40 ms per message on Nagle + delayed ACKs */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void peer_name(assoc *a)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?";
    if (getpeername(a->fd, (struct sockaddr *)&ss, &sl) == 0)
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(a->peer_addr, sizeof a->peer_addr, "%.48s:%.8s", host, serv);
}

static void assoc_init(assoc *a, int fd, int timeout_ms)
{
    memset(a, 0, sizeof *a);
    a->fd = fd;
    a->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    rs_arena_init(&a->arena, ARENA_LIMIT);
}

/* ---- reading PDUs ------------------------------------------------------------------------- */

/* Tell the peer why its PDU was refused, as the codec says PS3.8 wants it. */
static void answer_fault(assoc *a, const pdu_fault *f)
{
    if (f->reply == PDU_ABORT) {
        assoc_abort(a, f->source, f->reason);
    } else if (f->reply == PDU_ASSOCIATE_RJ) {
        pdu rj = {.type = PDU_ASSOCIATE_RJ, .u.reject = {f->result, f->source, f->reason}};
        send_pdu(a, &rj, NULL);
        a->closed = 1;
    }
}

/* Read one whole PDU into a->cur (body in a->rbuf, structures in a->arena). */
static int read_pdu(assoc *a, uint32_t max_pdata, rs_err *err)
{
    uint8_t hdr[PDU_HEADER_LEN];
    int rc = read_full(a, hdr, sizeof hdr, err);
    if (rc)
        return rc;
    uint8_t type;
    uint32_t len;
    pdu_fault fault = {0};
    rc = pdu_read_header(hdr, max_pdata, &type, &len, &fault, err);
    if (rc) {
        answer_fault(a, &fault);
        return rc;
    }
    if (len > a->rcap) {
        uint8_t *nb = realloc(a->rbuf, len ? len : 1);
        if (!nb)
            return rs_err_set(err, RS_ENOMEM, "out of memory for a %u-byte PDU", len);
        a->rbuf = nb;
        a->rcap = len;
    }
    rc = read_full(a, a->rbuf, len, err);
    if (rc)
        return rc;
    rs_arena_free(&a->arena);
    rs_arena_init(&a->arena, ARENA_LIMIT);
    rc = pdu_decode(type, a->rbuf, len, &a->cur, &a->arena, &fault, err);
    if (rc)
        answer_fault(a, &fault);
    a->next_pdv = 0;
    return rc;
}

/*
 * The next PDV of the message stream. Release and abort requests surface as ASSOC_RELEASED /
 * ASSOC_ABORTED; any other PDU here is a protocol error (PS3.8 state machine: answered by
 * A-ABORT).
 */
static int next_pdv(assoc *a, const pdu_pdv **out, rs_err *err)
{
    while (a->cur.type != PDU_P_DATA_TF || a->next_pdv >= a->cur.u.pdata.n) {
        a->cur.type = 0;
        int rc = read_pdu(a, ASSOC_OUR_MAX_PDU, err);
        if (rc == RS_ETRUNC)
            return ASSOC_ABORTED;
        if (rc)
            return rc;
        switch (a->cur.type) {
        case PDU_P_DATA_TF:
            break;
        case PDU_RELEASE_RQ: {
            pdu rp = {.type = PDU_RELEASE_RP};
            send_pdu(a, &rp, NULL);
            return ASSOC_RELEASED;
        }
        case PDU_ABORT:
            return ASSOC_ABORTED;
        default:
            assoc_abort(a, PDU_ABORT_SOURCE_PROVIDER, PDU_ABORT_UNEXPECTED_PDU);
            return rs_err_set(err, RS_EFORMAT, "%s: unexpected %s during data transfer", a->peer_addr,
                              pdu_type_str(a->cur.type));
        }
    }
    *out = &a->cur.u.pdata.pdvs[a->next_pdv++];
    return RS_OK;
}

/*
 * Wait for the peer's next bytes in short slices, so a shutdown does not have to wait for an
 * idle peer's timeout. ASSOC_STOPPED (nothing sent) once a->stop is set.
 */
static int wait_or_stop(assoc *a, rs_err *err)
{
    for (int waited = 0; waited < a->timeout_ms; waited += 200) {
        if (atomic_load(a->stop))
            return ASSOC_STOPPED;
        if (wait_readable(a, 200) != RS_ELIMIT)
            return RS_OK; /* data, or an error the read will report */
    }
    return rs_err_set(err, RS_ELIMIT, "%s: no message from the peer for %d ms", a->peer_addr, a->timeout_ms);
}

/* Between messages: in-flight messages finish, idle associations are aborted at shutdown. */
static int wait_next_message(assoc *a, rs_err *err)
{
    if (!a->stop || (a->cur.type == PDU_P_DATA_TF && a->next_pdv < a->cur.u.pdata.n))
        return RS_OK;
    int rc = wait_or_stop(a, err);
    if (rc == ASSOC_STOPPED)
        assoc_abort(a, PDU_ABORT_SOURCE_PROVIDER, PDU_ABORT_NOT_SPECIFIED);
    return rc;
}

int assoc_recv_command(assoc *a, uint8_t *ctx_id, rs_buf *cmd, rs_err *err)
{
    rs_buf_reset(cmd);
    int wrc = wait_next_message(a, err);
    if (wrc)
        return wrc;
    for (;;) {
        const pdu_pdv *v;
        int rc = next_pdv(a, &v, err);
        if (rc)
            return rc;
        if (!v->is_command || (cmd->len && v->ctx_id != *ctx_id) || !assoc_pc_by_id(a, v->ctx_id)) {
            assoc_abort(a, PDU_ABORT_SOURCE_PROVIDER, PDU_ABORT_UNEXPECTED_PARAM);
            return rs_err_set(err, RS_EFORMAT, "%s: %s where a command was expected", a->peer_addr,
                              v->is_command ? "a fragment on an unknown presentation context" : "a data fragment");
        }
        *ctx_id = v->ctx_id;
        if (cmd->len + v->len > 64u * 1024u) {
            assoc_abort(a, PDU_ABORT_SOURCE_PROVIDER, PDU_ABORT_INVALID_PARAM);
            return rs_err_set(err, RS_ELIMIT, "%s: command set larger than 64 KiB", a->peer_addr);
        }
        rc = rs_buf_append(cmd, v->data, v->len);
        if (rc)
            return rs_err_set(err, rc, "out of memory");
        if (v->is_last)
            return RS_OK;
    }
}

int assoc_recv_data(assoc *a, uint8_t ctx_id, assoc_sink_fn sink, void *sink_ctx, rs_err *err)
{
    for (;;) {
        const pdu_pdv *v;
        int rc = next_pdv(a, &v, err);
        if (rc == ASSOC_RELEASED || rc == ASSOC_ABORTED)
            return rs_err_set(err, RS_ETRUNC, "%s: association ended in the middle of a data set", a->peer_addr);
        if (rc)
            return rc;
        if (v->is_command || v->ctx_id != ctx_id) {
            assoc_abort(a, PDU_ABORT_SOURCE_PROVIDER, PDU_ABORT_UNEXPECTED_PARAM);
            return rs_err_set(err, RS_EFORMAT, "%s: unexpected %s inside a data set", a->peer_addr,
                              v->is_command ? "command fragment" : "presentation context");
        }
        if (v->len && sink(sink_ctx, v->data, v->len) != 0) {
            assoc_abort(a, PDU_ABORT_SOURCE_PROVIDER, PDU_ABORT_NOT_SPECIFIED);
            return rs_err_set(err, RS_EIO, "%s: data set refused by the receiver", a->peer_addr);
        }
        if (v->is_last)
            return RS_OK;
    }
}

typedef struct buf_sink {
    rs_buf *b;
    size_t cap;
} buf_sink;

static int to_buf(void *ctx, const uint8_t *p, size_t n)
{
    buf_sink *s = ctx;
    if (s->b->len + n > s->cap)
        return 1;
    return rs_buf_append(s->b, p, n) != RS_OK;
}

int assoc_recv_data_buf(assoc *a, uint8_t ctx_id, rs_buf *out, size_t cap, rs_err *err)
{
    buf_sink s = {out, cap};
    rs_buf_reset(out);
    return assoc_recv_data(a, ctx_id, to_buf, &s, err);
}

/* ---- sending messages ---------------------------------------------------------------------- */

int assoc_send(assoc *a, uint8_t ctx_id, const rs_buf *cmd, const uint8_t *data, size_t n, rs_err *err)
{
    rs_buf b = RS_BUF_INIT;
    int rc = pdu_encode_message(&b, a->peer_max, ctx_id, 1, cmd->p, cmd->len, err);
    if (rc == RS_OK && data)
        rc = pdu_encode_message(&b, a->peer_max, ctx_id, 0, data, n, err);
    if (rc == RS_OK)
        rc = send_buf(a, &b, err);
    rs_buf_free(&b);
    return rc;
}

int assoc_send_fd(assoc *a, uint8_t ctx_id, const rs_buf *cmd, int fd, uint64_t off, uint64_t n, rs_err *err)
{
    int rc = assoc_send(a, ctx_id, cmd, NULL, 0, err);
    if (rc)
        return rc;
    pdu_frag f;
    rc = pdu_frag_init(&f, a->peer_max, ctx_id, 0, n);
    if (rc)
        return rs_err_set(err, rc, "%s: peer's maximum PDU length is too small", a->peer_addr);
    uint8_t *chunk = malloc(f.chunk ? f.chunk : 1);
    if (!chunk)
        return rs_err_set(err, RS_ENOMEM, "out of memory");
    while (rc == RS_OK && !pdu_frag_done(&f)) {
        uint8_t hdr[PDU_PDATA_HEADER_LEN];
        uint32_t k = pdu_frag_next(&f, hdr);
        if (rs_pread_all(fd, chunk, k, off) != RS_OK) {
            rc = rs_err_set(err, RS_EIO, "cannot read the instance to send");
            break;
        }
        off += k;
        struct iovec iov[2] = {{hdr, sizeof hdr}, {chunk, k}};
        rc = writev_full(a, iov, 2, err);
    }
    free(chunk);
    return rc;
}

/* ---- establishment ----------------------------------------------------------------------- */

const assoc_pc *assoc_pc_by_id(const assoc *a, uint8_t id)
{
    for (unsigned i = 0; i < a->n_pcs; i++)
        if (a->pcs[i].id == id && a->pcs[i].result == PDU_PC_ACCEPTANCE)
            return &a->pcs[i];
    return NULL;
}

const assoc_pc *assoc_find_pc(const assoc *a, const char *abstract, const char *ts)
{
    for (unsigned i = 0; i < a->n_pcs; i++) {
        const assoc_pc *pc = &a->pcs[i];
        if (pc->result == PDU_PC_ACCEPTANCE && !strcmp(pc->abstract, abstract) && (!ts || !strcmp(pc->ts, ts)))
            return pc;
    }
    return NULL;
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* Build our A-ASSOCIATE-AC from the decisions in a->pcs. */
static int send_accept(assoc *a, const pdu_assoc *rq, rs_err *err)
{
    pdu ac = {.type = PDU_ASSOCIATE_AC};
    pdu_assoc *x = &ac.u.assoc;
    copy_str(x->called_ae, sizeof x->called_ae, rq->called_ae);
    copy_str(x->calling_ae, sizeof x->calling_ae, rq->calling_ae);
    x->app_context = PDU_APP_CONTEXT;
    pdu_pc pcs[PDU_MAX_CONTEXTS];
    const char *tss[PDU_MAX_CONTEXTS];
    pdu_role roles[PDU_MAX_CONTEXTS];
    unsigned nroles = 0;
    for (unsigned i = 0; i < a->n_pcs; i++) {
        tss[i] = a->pcs[i].ts;
        pcs[i] = (pdu_pc){.id = a->pcs[i].id, .result = a->pcs[i].result, .ts = &tss[i], .n_ts = a->pcs[i].ts[0] ? 1 : 0};
        if (a->pcs[i].scp_role && a->pcs[i].result == PDU_PC_ACCEPTANCE) {
            int seen = 0;
            for (unsigned k = 0; k < nroles; k++)
                seen |= !strcmp(roles[k].sop_class, a->pcs[i].abstract);
            if (!seen)
                roles[nroles++] = (pdu_role){.sop_class = a->pcs[i].abstract, .scu = 0, .scp = 1};
        }
    }
    x->pcs = pcs;
    x->n_pcs = a->n_pcs;
    x->user.max_length = ASSOC_OUR_MAX_PDU;
    x->user.impl_class_uid = "1.2.826.0.1.3680043.10.1449.1";
    x->user.impl_version = "RADSHARE_010";
    x->user.roles = roles;
    x->user.n_roles = nroles;
    return send_pdu(a, &ac, err);
}

int assoc_accept(assoc *a, int fd, struct net_tls *tls, int timeout_ms, const atomic_int *stop,
                 assoc_policy_fn policy, void *ctx, rs_err *err)
{
    assoc_init(a, fd, timeout_ms);
    a->tls = tls;
    a->stop = stop;
    set_socket_options(fd);
    peer_name(a);
    /* a connection that has not sent its request is no work in flight: a shutdown must not wait
       the whole ARTIM timeout for it (a load balancer's TCP check, a port scan) */
    int rc = stop ? wait_or_stop(a, err) : RS_OK;
    if (rc == ASSOC_STOPPED)
        return rs_err_set(err, RS_EIO, "%s: closed before its A-ASSOCIATE-RQ: the server is stopping", a->peer_addr);
    if (rc == RS_OK)
        rc = read_pdu(a, 0, err);
    if (rc) {
        /* a bad request still gets the answer PS3.8 wants, when the codec could tell it */
        return rc;
    }
    if (a->cur.type != PDU_ASSOCIATE_RQ) {
        assoc_abort(a, PDU_ABORT_SOURCE_PROVIDER, PDU_ABORT_UNEXPECTED_PDU);
        return rs_err_set(err, RS_EFORMAT, "%s: expected A-ASSOCIATE-RQ, got %s", a->peer_addr,
                          pdu_type_str(a->cur.type));
    }
    const pdu_assoc *rq = &a->cur.u.assoc;
    copy_str(a->calling, sizeof a->calling, rq->calling_ae);
    copy_str(a->called, sizeof a->called, rq->called_ae);
    copy_str(a->peer_impl_class, sizeof a->peer_impl_class, rq->user.impl_class_uid);
    copy_str(a->peer_impl_version, sizeof a->peer_impl_version, rq->user.impl_version);
    a->peer_max = rq->user.max_length;
    a->n_pcs = rq->n_pcs;
    for (unsigned i = 0; i < rq->n_pcs; i++) {
        a->pcs[i] = (assoc_pc){.id = rq->pcs[i].id, .result = PDU_PC_ABSTRACT_SYNTAX_NOT_SUPPORTED};
        copy_str(a->pcs[i].abstract, sizeof a->pcs[i].abstract, rq->pcs[i].abstract_syntax);
    }
    assoc_decision d = {0};
    policy(ctx, a, rq, &d);
    if (d.reject) {
        pdu rj = {.type = PDU_ASSOCIATE_RJ, .u.reject = {d.result, d.source, d.reason}};
        send_pdu(a, &rj, NULL);
        return rs_err_set(err, RS_EINVAL, "%s: association from %s to %s rejected: %s", a->peer_addr, a->calling,
                          a->called, pdu_rj_reason_str(d.source, d.reason));
    }
    return send_accept(a, rq, err);
}

/*
 * One connect attempt, bounded by timeout_ms: a C-MOVE destination that is switched off (no
 * RST, packets dropped) must fail the sub-operation in our time, not the kernel's ~2 minutes.
 */
static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, timeout_ms) != RS_OK ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
            int e = soerr ? soerr : errno == EINPROGRESS ? ETIMEDOUT : errno;
            close(fd);
            errno = e;
            return -1;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_to(const char *host, int port, int timeout_ms, rs_err *err)
{
    char serv[16];
    snprintf(serv, sizeof serv, "%d", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int gr = getaddrinfo(host, serv, &hints, &res);
    if (gr)
        return rs_err_set(err, RS_EIO, "%s: %s", host, gai_strerror(gr));
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, timeout_ms);
    freeaddrinfo(res);
    if (fd < 0)
        return rs_err_set(err, RS_EIO, "cannot connect to %s:%d: %s", host, port, strerror(errno));
    set_socket_options(fd);
    return fd;
}

int assoc_request(assoc *a, const char *host, int port, const char *calling, const char *called,
                  const assoc_proposal *props, unsigned n_props, int timeout_ms, rs_err *err)
{
    /* initialised first: the caller closes the association whatever happens */
    assoc_init(a, -1, timeout_ms);
    if (n_props == 0 || n_props > PDU_MAX_CONTEXTS)
        return rs_err_set(err, RS_EINVAL, "between 1 and %d presentation contexts", PDU_MAX_CONTEXTS);
    int fd = connect_to(host, port, timeout_ms, err);
    if (fd < 0)
        return fd;
    a->fd = fd;
    peer_name(a);
    copy_str(a->calling, sizeof a->calling, calling);
    copy_str(a->called, sizeof a->called, called);
    pdu rq = {.type = PDU_ASSOCIATE_RQ};
    pdu_assoc *x = &rq.u.assoc;
    copy_str(x->called_ae, sizeof x->called_ae, called);
    copy_str(x->calling_ae, sizeof x->calling_ae, calling);
    x->app_context = PDU_APP_CONTEXT;
    pdu_pc pcs[PDU_MAX_CONTEXTS];
    pdu_role roles[PDU_MAX_CONTEXTS];
    unsigned nroles = 0;
    for (unsigned i = 0; i < n_props; i++) {
        pcs[i] = (pdu_pc){.id = (uint8_t)(2 * i + 1), .abstract_syntax = props[i].abstract, .ts = props[i].ts,
                          .n_ts = props[i].n_ts};
        a->pcs[i] = (assoc_pc){.id = pcs[i].id, .result = PDU_PC_NO_REASON};
        copy_str(a->pcs[i].abstract, sizeof a->pcs[i].abstract, props[i].abstract);
        if (props[i].want_scp_role)
            roles[nroles++] = (pdu_role){.sop_class = props[i].abstract, .scu = 1, .scp = 1};
    }
    a->n_pcs = n_props;
    x->pcs = pcs;
    x->n_pcs = n_props;
    x->user.max_length = ASSOC_OUR_MAX_PDU;
    x->user.impl_class_uid = "1.2.826.0.1.3680043.10.1449.1";
    x->user.impl_version = "RADSHARE_010";
    x->user.roles = roles;
    x->user.n_roles = nroles;
    int rc = send_pdu(a, &rq, err);
    if (rc == RS_OK)
        rc = read_pdu(a, 0, err);
    if (rc)
        return rc;
    if (a->cur.type == PDU_ASSOCIATE_RJ) {
        const pdu_reject *rj = &a->cur.u.reject;
        return rs_err_set(err, RS_EINVAL, "%s rejected the association: %s (%s)", a->peer_addr,
                          pdu_rj_reason_str(rj->source, rj->reason), pdu_rj_source_str(rj->source));
    }
    if (a->cur.type != PDU_ASSOCIATE_AC) {
        assoc_abort(a, PDU_ABORT_SOURCE_PROVIDER, PDU_ABORT_UNEXPECTED_PDU);
        return rs_err_set(err, RS_EFORMAT, "%s answered %s to A-ASSOCIATE-RQ", a->peer_addr, pdu_type_str(a->cur.type));
    }
    const pdu_assoc *ac = &a->cur.u.assoc;
    a->peer_max = ac->user.max_length;
    for (unsigned i = 0; i < ac->n_pcs; i++)
        for (unsigned k = 0; k < a->n_pcs; k++)
            if (a->pcs[k].id == ac->pcs[i].id) {
                a->pcs[k].result = ac->pcs[i].result;
                if (ac->pcs[i].n_ts)
                    copy_str(a->pcs[k].ts, sizeof a->pcs[k].ts, ac->pcs[i].ts[0]);
            }
    for (unsigned r = 0; r < ac->user.n_roles; r++)
        for (unsigned k = 0; k < a->n_pcs; k++)
            if (!strcmp(a->pcs[k].abstract, ac->user.roles[r].sop_class))
                a->pcs[k].scp_role = ac->user.roles[r].scp;
    a->cur.type = 0;
    return RS_OK;
}

/* ---- release, abort ------------------------------------------------------------------------- */

int assoc_release(assoc *a, rs_err *err)
{
    pdu rq = {.type = PDU_RELEASE_RQ};
    int rc = send_pdu(a, &rq, err);
    while (rc == RS_OK) {
        rc = read_pdu(a, ASSOC_OUR_MAX_PDU, err);
        if (rc)
            break;
        if (a->cur.type == PDU_RELEASE_RP)
            return RS_OK;
        if (a->cur.type == PDU_ABORT)
            return rs_err_set(err, RS_EIO, "%s aborted instead of releasing", a->peer_addr);
        /* P-DATA still in flight (a late response) is dropped; release collisions are not
           worth more than waiting for the RP */
    }
    return rc;
}

void assoc_abort(assoc *a, uint8_t source, uint8_t reason)
{
    if (a->closed || a->fd < 0)
        return;
    pdu ab = {.type = PDU_ABORT, .u.abort = {source, reason}};
    send_pdu(a, &ab, NULL);
    a->closed = 1;
}

void assoc_close(assoc *a)
{
    net_tls_close(a->tls);
    a->tls = NULL;
    rs_buf_free(&a->wbuf);
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    free(a->rbuf);
    a->rbuf = NULL;
    rs_arena_free(&a->arena);
}
