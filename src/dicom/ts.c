/* ts.c - the table of transfer syntaxes radshare knows by name (PS3.6 table A-1). */
#include "ts.h"

#include <string.h>

static const dcm_ts ts_table[] = {
    {"1.2.840.10008.1.2", "Implicit VR Little Endian", 0, 0, 0, 0, 0},
    {"1.2.840.10008.1.2.1", "Explicit VR Little Endian", 1, 0, 0, 0, 0},
    {"1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", 1, 0, 1, 0, 0},
    {"1.2.840.10008.1.2.2", "Explicit VR Big Endian", 1, 1, 0, 0, 1},
    {"1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-Hierarchical, First-Order Prediction (SV1)", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.91", "JPEG 2000", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component Lossless", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Lossless", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options Lossless", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000", 1, 0, 0, 1, 0},
    {"1.2.840.10008.1.2.5", "RLE Lossless", 1, 0, 0, 1, 0},
};

static const dcm_ts ts_generic = {"", "Unknown (encapsulated explicit VR little endian)", 1, 0, 0, 1, 0};

const dcm_ts *dcm_ts_find(const char *uid, size_t n)
{
    while (n > 0 && (uid[n - 1] == '\0' || uid[n - 1] == ' '))
        n--;
    for (size_t i = 0; i < sizeof ts_table / sizeof ts_table[0]; i++)
        if (strlen(ts_table[i].uid) == n && memcmp(ts_table[i].uid, uid, n) == 0)
            return &ts_table[i];
    return NULL;
}

const dcm_ts *dcm_ts_implicit_le(void) { return &ts_table[0]; }
const dcm_ts *dcm_ts_explicit_le(void) { return &ts_table[1]; }
const dcm_ts *dcm_ts_explicit_be(void) { return &ts_table[4]; }
const dcm_ts *dcm_ts_generic_encapsulated(void) { return &ts_generic; }
