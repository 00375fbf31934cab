/*
 * addr.h - what the DICOM and HTTP servers both ask of a peer's socket address. Loopback peers
 * get the out-of-the-box treatment (any AE title, staff while no account exists, no
 * per-address limits), so both must agree on what loopback is.
 */
#ifndef RS_ADDR_H
#define RS_ADDR_H

struct sockaddr;

/* 127.0.0.0/8, ::1, or ::ffff:127.x.y.z (an IPv4 peer on a dual-stack socket); 0 for NULL. */
int rs_addr_is_loopback(const struct sockaddr *sa);

#endif
