/*
 * encode.h - the reverse of codec.h: a decoded frame (codec_frame: interleaved samples, masked
 * to BitsStored) encoded into one frame of a compressed transfer syntax. This is what WADO-RS
 * transcoding and `radshare convert --ts` use to send or write a syntax other than the stored
 * one; codec.h's decoders give the frames.
 *
 * Produced: RLE Lossless (own encoder, PS3.5 Annex G), JPEG-LS lossless and near-lossless
 * (CharLS), JPEG 2000 lossless (OpenJPEG, J2K codestream) and JPEG baseline 8-bit (libjpeg-turbo,
 * lossy). codec_enc_check says before any decoding whether frames of a given description can be
 * encoded in a syntax, so a caller can refuse (WADO-RS: 406) instead of failing halfway.
 */
#ifndef RS_CODEC_ENCODE_H
#define RS_CODEC_ENCODE_H

#include "../util/buf.h"
#include "codec.h"

#define CODEC_TS_RLE "1.2.840.10008.1.2.5"
#define CODEC_TS_JPEG_BASELINE "1.2.840.10008.1.2.4.50"
#define CODEC_TS_JLS "1.2.840.10008.1.2.4.80"
#define CODEC_TS_JLS_NEAR "1.2.840.10008.1.2.4.81"
#define CODEC_TS_J2K "1.2.840.10008.1.2.4.90"

typedef struct codec_enc_opts {
    int near;     /* JPEG-LS near-lossless (.81 only): the largest error per sample, 1..255 */
    int quality;  /* JPEG baseline: libjpeg quality 1..100 */
} codec_enc_opts;

#define CODEC_ENC_OPTS_DEFAULT {2, 90}

/* Is there an encoder for ts_uid at all? */
int codec_enc_known(const char *ts_uid);

/*
 * Can frames of d (the stored description: BitsAllocated, BitsStored, SamplesPerPixel,
 * PixelRepresentation, PhotometricInterpretation) be encoded in ts_uid? RS_OK, or
 * RS_EUNSUPPORTED with the reason (e.g. JPEG baseline from 16-bit data), or RS_ELIMIT when an
 * encoded frame could not be described by the syntax's 32-bit offsets.
 */
int codec_enc_check(const char *ts_uid, const codec_desc *d, rs_err *err);

/* The Photometric Interpretation of frames encoded in ts_uid from frames whose samples are
 * `decoded` (JPEG baseline stores RGB as YBR_FULL_422, JPEG 2000 with the reversible colour
 * transform as YBR_RCT; otherwise unchanged). */
const char *codec_enc_photometric(const char *ts_uid, const char *decoded);

/* Lossy syntax: its Lossy Image Compression Method (PS3.3 C.7.6.1.1.5); NULL when lossless. */
const char *codec_enc_lossy_method(const char *ts_uid);

/* Encodes fr (checked with codec_enc_check for its instance) in ts_uid and appends the frame's
 * bytes to out (odd lengths are left to the writer's padding). opts may be NULL. */
int codec_encode_frame(const char *ts_uid, const codec_frame *fr, const codec_enc_opts *opts, rs_buf *out,
                       rs_err *err);

/* Worst-case size of an RLE Lossless frame (header and padding included) of rows x cols pixels
 * of `segments` byte planes; 0 when it does not fit 32-bit offsets. */
uint64_t codec_rle_bound(uint32_t rows, uint32_t cols, int segments);

#endif
