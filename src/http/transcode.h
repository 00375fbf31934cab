/*
 * transcode.h - the transfer syntax of a WADO-RS answer: negotiation of the Accept header
 * against the stored syntax (PS3.18 8.7.3) and the conversions radshare can make. Decoding
 * goes through src/codec (every syntax it reads); the only syntaxes produced other than the
 * stored one are uncompressed: Explicit VR Little Endian (frames, bulk data, instances) and
 * Implicit VR Little Endian (instances). There is no encoder: asking for a compressed syntax
 * other than the stored one is a 406 naming what can be sent.
 */
#ifndef HTTP_TRANSCODE_H
#define HTTP_TRANSCODE_H

#include <stddef.h>
#include <stdint.h>

#include "../codec/codec.h"
#include "../codec/encode.h"
#include "../dicom/dataset.h"
#include "../util/buf.h"
#include "../util/err.h"

/* Largest decompressed pixel data built for one answer (an instance, a bulk value). */
#define DW_TC_MAX_PIXELS ((uint64_t)512 << 20)
/* Largest decompressed frame. */
#define DW_TC_MAX_FRAME ((uint64_t)256 << 20)

typedef enum dw_tc_what {
    DW_TC_FRAMES,   /* pixel data: /frames, /bulk/7FE00010; parts are frame or pixel bytes */
    DW_TC_OBJECTS,  /* Part 10 instances: parts are application/dicom */
} dw_tc_what;

enum {
    DW_TC_STORED = 0,     /* the stored bytes */
    DW_TC_DECODE = 1,     /* decompressed, or rewritten in another uncompressed syntax */
    DW_TC_ENCODE = 2,     /* decoded, then encoded in another compressed syntax */
};

typedef struct dw_tc {
    char ts[65];          /* transfer syntax of what is sent */
    char part_type[40];   /* media type of each part (application/octet-stream, image/jpeg, ...) */
    int convert;          /* DW_TC_STORED, DW_TC_DECODE or DW_TC_ENCODE */
} dw_tc;

/*
 * Choose the answer's syntax for an object stored in stored_ts from Accept (NULL or empty:
 * the default). Media ranges are tried by decreasing q, in order. For frames the default of
 * application/octet-stream is Explicit VR Little Endian (decompressed); "transfer-syntax=*"
 * keeps the stored syntax, as does a compressed media type whose syntaxes include it; another
 * compressed type is encoded (its first syntax radshare encodes, lossless before lossy, unless
 * one is named). For objects no transfer-syntax means the stored one (what the archive
 * received, unchanged). img is the stored image (codec_get_desc), so that an encoder that
 * cannot take it is not chosen; NULL when not known yet (objects negotiated from the index:
 * dw_tc_refine once the file is read). RS_EUNSUPPORTED with a message in msg (listing what can
 * be sent) when nothing fits.
 */
int dw_tc_choose(const char *accept, dw_tc_what what, const char *stored_ts, const codec_desc *img, dw_tc *out,
                 char *msg, size_t cap);

/* The choice made without the image (img NULL) made again with f's image: an Accept whose
 * first producible range needs an encoder that cannot take this image falls to the next one.
 * RS_EUNSUPPORTED (message in msg and err) when no range fits; other codes: f's pixel data
 * cannot be opened. No pixel data: out is kept. */
int dw_tc_refine(const char *accept, dw_tc_what what, const char *stored_ts, dcm_file *f, dw_tc *out, char *msg,
                 size_t cap, rs_err *err);

/* Frame `index` of img decoded and appended to out as native little-endian samples (the pixel
 * data of that frame in Explicit VR Little Endian). RS_ELIMIT above DW_TC_MAX_FRAME. */
int dw_tc_frame_native(codec_image *img, uint32_t index, rs_buf *out, rs_err *err);

/* Frame `index` of img decoded and encoded in ts (codec_enc_check first), appended to out. */
int dw_tc_frame_encoded(codec_image *img, uint32_t index, const char *ts, rs_buf *out, rs_err *err);

/*
 * The instance f (read with its bulk values left on disk) encoded as a Part 10 file in ts_uid
 * into out. Compressed pixel data is decompressed for an uncompressed syntax (Photometric
 * Interpretation and Planar Configuration set to what the decoder gives, lossy compression
 * attributes kept or added); for another compressed syntax every frame is decoded and encoded
 * (one fragment per frame after a Basic Offset Table; Photometric Interpretation what the
 * encoder stores; a lossy target sets Lossy Image Compression 01 and appends its ratio and
 * method, PS3.3 C.7.6.1.1.5). The meta group is rewritten (transfer syntax, radshare as the
 * implementation), the preamble zeroed. f is changed on the way: free it afterwards.
 * RS_EUNSUPPORTED when no encoder takes this image (codec_enc_check's reason).
 */
int dw_tc_instance(dcm_file *f, const char *ts_uid, rs_buf *out, rs_err *err);
/* The same with encoder options (JPEG-LS NEAR, JPEG quality); eo NULL: the defaults. */
int dw_tc_instance_opts(dcm_file *f, const char *ts_uid, const codec_enc_opts *eo, rs_buf *out, rs_err *err);

#endif
