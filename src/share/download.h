/*
 * download.h - GET /s/{token}/download: the shared study (only the share's series) as a ZIP
 * made while it is sent: the DICOM files stored (not deflated: they hardly compress and the
 * recipient's tools read them straight), a DICOMDIR for them, and README.TXT in French, Dutch,
 * German and English. Same layout as `radshare export` (DICOM/ST000001/SE00000n/IM00000n, zeroed
 * preambles). Nothing bigger than one file chunk is held in memory.
 *
 * The share routes call share_download_reply once the token is resolved and unlocked; it
 * answers 403 (a page for a browser) when the share does not allow downloads, and records
 * share.downloaded or access.refused in the audit trail.
 */
#ifndef RS_SHARE_DOWNLOAD_H
#define RS_SHARE_DOWNLOAD_H

#include "../audit/audit.h"
#include "../http/http.h"
#include "share.h"

#define SHARE_DOWNLOAD_MAX_INSTANCES 100000

int share_download_reply(http_req *rq, const char *datadir, audit_log *audit, const share *sh);

#endif
