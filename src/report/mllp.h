/*
 * mllp.h - one HL7 exchange over MLLP (Minimal Lower Layer Protocol, HL7 v2 transport):
 * connect, send 0x0B <message> 0x1C 0x0D, read the answer framed the same way, close.
 * Every step has a deadline; *stop (may be NULL) is polled so a shutdown ends a slow exchange.
 */
#ifndef REPORT_MLLP_H
#define REPORT_MLLP_H

#include <stdatomic.h>
#include <stddef.h>

#include "../util/buf.h"
#include "../util/err.h"

#define REPORT_MLLP_MAX_ANSWER (64 * 1024)

/* host:port ("[v6addr]:port" too) into host and port. RS_EINVAL when malformed. */
int report_hostport_parse(const char *s, char *host, size_t cap, char *port, size_t pcap);

/*
 * Send msg and put the answer's payload (without framing) into answer. RS_EIO on connection
 * problems and timeouts, RS_EFORMAT on bad framing, RS_ELIMIT on an answer too long.
 */
int report_mllp_exchange(const char *hostport, const void *msg, size_t n, int timeout_ms, atomic_int *stop,
                         rs_buf *answer, rs_err *err);

#endif
