/*
 * mllp.c - MLLP client (see mllp.h). Non-blocking socket and poll() in short slices, so both the
 * deadline and the stop flag are honoured without signals.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mllp.h"

#define SLICE_MS 200

int report_hostport_parse(const char *s, char *host, size_t cap, char *port, size_t pcap)
{
    const char *colon, *h = s, *he;
    if (*s == '[') {
        he = strchr(s, ']');
        if (!he || he[1] != ':')
            return RS_EINVAL;
        h = s + 1;
        colon = he + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return RS_EINVAL;
        he = colon;
    }
    size_t hn = (size_t)(he - h), pn = strlen(colon + 1);
    if (hn == 0 || hn >= cap || pn == 0 || pn >= pcap || strspn(colon + 1, "0123456789") != pn)
        return RS_EINVAL;
    memcpy(host, h, hn);
    host[hn] = 0;
    memcpy(port, colon + 1, pn + 1);
    return RS_OK;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until the deadline or stop: 1 ready, 0 timeout, -1 stopped/error. */
static int wait_fd(int fd, short events, long long deadline, atomic_int *stop)
{
    for (;;) {
        if (stop && atomic_load(stop))
            return -1;
        long long left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left < SLICE_MS ? (int)left : SLICE_MS);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int connect_to(const char *hostport, long long deadline, atomic_int *stop, int *out, rs_err *err)
{
    char host[256], port[16];
    if (report_hostport_parse(hostport, host, sizeof host, port, sizeof port))
        return rs_err_set(err, RS_EINVAL, "bad HL7 destination '%s' (HOST:PORT)", hostport);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *ai = NULL;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g)
        return rs_err_set(err, RS_EIO, "%s: %s", hostport, gai_strerror(g));
    int rc = rs_err_set(err, RS_EIO, "%s: no address", hostport);
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        int r = connect(fd, a->ai_addr, a->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, deadline, stop);
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                r = 0;
            else
                errno = w == 1 ? soerr : w == 0 ? ETIMEDOUT : ECANCELED;
        }
        if (r == 0) {
            *out = fd;
            rc = RS_OK;
            break;
        }
        rc = rs_err_set(err, RS_EIO, "connect to %s: %s", hostport, strerror(errno));
        close(fd);
    }
    freeaddrinfo(ai);
    return rc;
}

static int send_all(int fd, const uint8_t *p, size_t n, long long deadline, atomic_int *stop, rs_err *err)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline, stop) != 1)
                return rs_err_set(err, RS_EIO, "sending the HL7 message: timed out or stopped");
        } else {
            return rs_err_set(err, RS_EIO, "sending the HL7 message: %s", strerror(errno));
        }
    }
    return RS_OK;
}

/* Read until the end of frame 0x1C 0x0D; answer gets what lies between 0x0B and 0x1C. */
static int read_frame(int fd, long long deadline, atomic_int *stop, rs_buf *answer, rs_err *err)
{
    rs_buf raw = RS_BUF_INIT;
    int rc = RS_OK;
    for (;;) {
        if (raw.len >= 2 && raw.p[raw.len - 2] == 0x1C && raw.p[raw.len - 1] == 0x0D)
            break;
        if (raw.len > REPORT_MLLP_MAX_ANSWER) {
            rc = rs_err_set(err, RS_ELIMIT, "HL7 answer longer than %d bytes", REPORT_MLLP_MAX_ANSWER);
            goto out;
        }
        int w = wait_fd(fd, POLLIN, deadline, stop);
        if (w != 1) {
            rc = rs_err_set(err, RS_EIO, w == 0 ? "no HL7 acknowledgment before the timeout" : "stopped");
            goto out;
        }
        uint8_t tmp[4096];
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r == 0) {
            rc = rs_err_set(err, RS_EIO, "the HL7 peer closed the connection without acknowledging");
            goto out;
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            rc = rs_err_set(err, RS_EIO, "reading the HL7 acknowledgment: %s", strerror(errno));
            goto out;
        }
        if (rs_buf_append(&raw, tmp, (size_t)r)) {
            rc = rs_err_set(err, RS_ENOMEM, "out of memory");
            goto out;
        }
    }
    const uint8_t *sb = memchr(raw.p, 0x0B, raw.len);
    if (!sb) {
        rc = rs_err_set(err, RS_EFORMAT, "HL7 answer without an MLLP start block");
        goto out;
    }
    rc = rs_buf_append(answer, sb + 1, (size_t)(raw.p + raw.len - 2 - (sb + 1))) ? RS_ENOMEM : RS_OK;
out:
    rs_buf_free(&raw);
    return rc;
}

int report_mllp_exchange(const char *hostport, const void *msg, size_t n, int timeout_ms, atomic_int *stop,
                         rs_buf *answer, rs_err *err)
{
    long long deadline = mono_ms() + timeout_ms;
    int fd = -1;
    int rc = connect_to(hostport, deadline, stop, &fd, err);
    if (rc)
        return rc;
    static const uint8_t sb = 0x0B, eb[2] = {0x1C, 0x0D};
    if (!(rc = send_all(fd, &sb, 1, deadline, stop, err)) && !(rc = send_all(fd, msg, n, deadline, stop, err)) &&
        !(rc = send_all(fd, eb, 2, deadline, stop, err)))
        rc = read_frame(fd, deadline, stop, answer, err);
    close(fd);
    return rc;
}
