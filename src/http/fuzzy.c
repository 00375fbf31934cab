/*
 * fuzzy.c - person name fuzzy matching for QIDO-RS (see fuzzy.h). Both sides are folded the
 * same way: ASCII letters upper-cased, Latin-1 and Latin Extended-A letters reduced to their
 * base letter (É -> E, ł -> L, ß -> S), other characters through store_norm_upper (Greek,
 * Cyrillic upper-cased; the rest unchanged); then cut into words.
 */
#include "fuzzy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../store/norm.h"
#include "../util/buf.h"
#include "../util/err.h"

#define MAX_WORDS 32

/* Base letters of U+00C0..U+00FF and U+0100..U+017F; ' ' for the two signs (multiply, divide). */
static const char latin1[] = "AAAAAAACEEEEIIIIDNOOOOO OUUUUYTSAAAAAAACEEEEIIIIDNOOOOO OUUUUYTY";
static const char latin_ext_a[] = "AAAAAACCCCCCCCDDDDEEEEEEEEEEGGGGGGGGHHHHIIIIIIIIIIIIJJKKKLLLLLLLLLLNNNNNNNNNOOOOOOOORRRRRRSSSSSSSSTTTTTTUUUUUUUUUUUUWWYYYZZZZZZS";

static int is_sep(int c)
{
    return c == '^' || c == '=' || c == ' ' || c == ',' || c == '-' || c == '.' || c == '\'' || c == '\t';
}

/* s folded into out; words are separated by single spaces. */
static int fold(const char *s, rs_buf *out)
{
    rs_buf tmp = RS_BUF_INIT;
    int rc = RS_OK;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && rc == RS_OK) {
        unsigned cp = 0;
        size_t n = 1;
        if (p[0] == 0xC3 && (p[1] & 0xC0) == 0x80)
            cp = 0xC0 + (p[1] & 0x3F), n = 2; /* U+00C0..U+00FF */
        else if ((p[0] == 0xC4 || p[0] == 0xC5) && (p[1] & 0xC0) == 0x80)
            cp = 0x100 + (unsigned)((p[0] - 0xC4) << 6) + (p[1] & 0x3F), n = 2; /* U+0100..U+017F */
        char c = 0;
        if (cp >= 0xC0 && cp <= 0xFF)
            c = latin1[cp - 0xC0];
        else if (cp >= 0x100 && cp <= 0x17F)
            c = latin_ext_a[cp - 0x100];
        else if (p[0] < 0x80)
            c = is_sep(p[0]) ? ' ' : (char)(p[0] >= 'a' && p[0] <= 'z' ? p[0] - 32 : p[0]);
        if (c) {
            rc = rs_buf_putc(&tmp, c);
            p += n;
            continue;
        }
        size_t k = 1; /* another multi-byte character: copy it whole */
        while (p[k] && (p[k] & 0xC0) == 0x80)
            k++;
        rc = rs_buf_append(&tmp, p, k);
        p += k;
    }
    rc = rc ? rc : store_norm_upper(tmp.p ? (const char *)tmp.p : "", tmp.len, out);
    rs_buf_free(&tmp);
    return rc;
}

/* Cut folded text into words (in place). */
static size_t words(char *s, char **w, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(s, " ", &save); t && n < max; t = strtok_r(NULL, " ", &save))
        w[n++] = t;
    return n;
}

/* Is the pattern (with * and ?) a prefix match of word? A * matches the rest. */
static int prefix(const char *pat, const char *word)
{
    for (; *pat; pat++, word++) {
        if (*pat == '*')
            return 1; /* prefix matching: whatever follows matches too */
        if (!*word || (*pat != '?' && *pat != *word))
            return 0;
    }
    return 1;
}

int dw_fuzzy_match(const char *key, const char *name)
{
    rs_buf k = RS_BUF_INIT, v = RS_BUF_INIT;
    char *kw[MAX_WORDS], *vw[MAX_WORDS];
    int ok = 0;
    if (fold(key, &k) == RS_OK && fold(name, &v) == RS_OK && rs_buf_putc(&k, 0) == RS_OK && rs_buf_putc(&v, 0) == RS_OK) {
        size_t nk = words((char *)k.p, kw, MAX_WORDS), nv = words((char *)v.p, vw, MAX_WORDS);
        ok = 1;
        for (size_t i = 0; i < nk && ok; i++) {
            if (!strcmp(kw[i], "*"))
                continue;
            ok = 0;
            for (size_t j = 0; j < nv && !ok; j++)
                ok = prefix(kw[i], vw[j]);
        }
    }
    rs_buf_free(&k);
    rs_buf_free(&v);
    return ok;
}
