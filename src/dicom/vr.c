/* vr.c - the VR property table (PS3.5 table 6.2-1 and 7.1-1). */
#include "vr.h"

#include <stddef.h>

#define V(a, b) DCM_VR(a, b)
/* vr, kind, long_len, swap, charset, pad, max_len, fixed_size; kept sorted by vr for bsearch */
static const dcm_vr_info vr_table[] = {
    {V('A', 'E'), DCM_VK_STRING, 0, 0, 0, ' ', 16, 0},
    {V('A', 'S'), DCM_VK_STRING, 0, 0, 0, ' ', 4, 0},
    {V('A', 'T'), DCM_VK_AT, 0, 2, 0, 0, 4, 4},
    {V('C', 'S'), DCM_VK_STRING, 0, 0, 0, ' ', 16, 0},
    {V('D', 'A'), DCM_VK_STRING, 0, 0, 0, ' ', 18, 0},
    {V('D', 'S'), DCM_VK_STRING, 0, 0, 0, ' ', 16, 0},
    {V('D', 'T'), DCM_VK_STRING, 0, 0, 0, ' ', 54, 0},
    {V('F', 'D'), DCM_VK_NUMBER, 0, 8, 0, 0, 8, 8},
    {V('F', 'L'), DCM_VK_NUMBER, 0, 4, 0, 0, 4, 4},
    {V('I', 'S'), DCM_VK_STRING, 0, 0, 0, ' ', 12, 0},
    {V('L', 'O'), DCM_VK_STRING, 0, 0, 1, ' ', 64, 0},
    {V('L', 'T'), DCM_VK_TEXT, 0, 0, 1, ' ', 10240, 0},
    {V('O', 'B'), DCM_VK_BINARY, 1, 0, 0, 0, 0, 0},
    {V('O', 'D'), DCM_VK_BINARY, 1, 8, 0, 0, 0, 0},
    {V('O', 'F'), DCM_VK_BINARY, 1, 4, 0, 0, 0, 0},
    {V('O', 'L'), DCM_VK_BINARY, 1, 4, 0, 0, 0, 0},
    {V('O', 'V'), DCM_VK_BINARY, 1, 8, 0, 0, 0, 0},
    {V('O', 'W'), DCM_VK_BINARY, 1, 2, 0, 0, 0, 0},
    {V('P', 'N'), DCM_VK_STRING, 0, 0, 1, ' ', 0, 0},
    {V('S', 'H'), DCM_VK_STRING, 0, 0, 1, ' ', 16, 0},
    {V('S', 'L'), DCM_VK_NUMBER, 0, 4, 0, 0, 4, 4},
    {V('S', 'Q'), DCM_VK_SQ, 1, 0, 0, 0, 0, 0},
    {V('S', 'S'), DCM_VK_NUMBER, 0, 2, 0, 0, 2, 2},
    {V('S', 'T'), DCM_VK_TEXT, 0, 0, 1, ' ', 1024, 0},
    {V('S', 'V'), DCM_VK_NUMBER, 1, 8, 0, 0, 8, 8},
    {V('T', 'M'), DCM_VK_STRING, 0, 0, 0, ' ', 28, 0},
    {V('U', 'C'), DCM_VK_STRING, 1, 0, 1, ' ', 0, 0},
    {V('U', 'I'), DCM_VK_STRING, 0, 0, 0, '\0', 64, 0},
    {V('U', 'L'), DCM_VK_NUMBER, 0, 4, 0, 0, 4, 4},
    {V('U', 'N'), DCM_VK_BINARY, 1, 0, 0, 0, 0, 0},
    {V('U', 'R'), DCM_VK_TEXT, 1, 0, 0, ' ', 0, 0},
    {V('U', 'S'), DCM_VK_NUMBER, 0, 2, 0, 0, 2, 2},
    {V('U', 'T'), DCM_VK_TEXT, 1, 0, 1, ' ', 0, 0},
    {V('U', 'V'), DCM_VK_NUMBER, 1, 8, 0, 0, 8, 8},
};
#undef V

const dcm_vr_info *dcm_vr_info_get(uint16_t vr)
{
    size_t lo = 0, hi = sizeof vr_table / sizeof vr_table[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (vr_table[mid].vr == vr)
            return &vr_table[mid];
        if (vr_table[mid].vr < vr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int dcm_vr_is_valid(uint16_t vr)
{
    return dcm_vr_info_get(vr) != NULL;
}

void dcm_vr_str(uint16_t vr, char out[3])
{
    char a = (char)(vr >> 8), b = (char)(vr & 0xff);
    out[0] = (a >= 0x20 && a < 0x7f) ? a : '?';
    out[1] = (b >= 0x20 && b < 0x7f) ? b : '?';
    out[2] = 0;
}

uint16_t dcm_vr_from_str(const char *s)
{
    if (!s || !s[0] || !s[1])
        return DCM_VR_NONE;
    return DCM_VR((unsigned char)s[0], (unsigned char)s[1]);
}
