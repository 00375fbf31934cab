/*
 * test_ljpeg.c - the JPEG lossless decoder (src/codec/ljpeg.c).
 *
 * 1. Fixtures made by DCMTK (tools/make_ljpeg_fixtures.py, tests/data/ljpeg/manifest.txt):
 *    every sample must match, and the header must say what the manifest says.
 * 2. Round trips through a small encoder kept here, for what dcmcjpeg cannot produce:
 *    precisions other than 8 and 16, restart intervals, non-interleaved scans, several and
 *    redefined Huffman tables (including codes longer than the lookup), markers between
 *    scans, point transforms, 4 components.
 * 3. Hostile input: every fixture cut at many points, random byte flips, a broken Huffman
 *    table, a 60000x60000 frame on a few bytes, other SOF types, missing segments, garbage.
 * 4. Speed on a 512x512 16-bit image (printed, not asserted).
 *
 * Run from the repository root.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec/ljpeg.h"
#include "util/buf.h"
#include "t.h"

#define DIR "tests/data/ljpeg/"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *p = NULL;
    long len;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = malloc((size_t)len + 1)) != NULL && fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    if (p)
        *n = (size_t)len;
    fclose(f);
    return p;
}

/* Decodes, and if that worked checks the invariants every successful decode must keep. */
static int decode(const uint8_t *p, size_t n, ljpeg_image *img)
{
    rs_err err;
    int rc = ljpeg_decode(p, n, NULL, img, &err);
    if (rc == RS_OK) {
        size_t count = (size_t)img->width * img->height * (size_t)img->components;
        for (size_t i = 0; i < count; i++)
            if (img->samples[i] >> img->precision) {
                CHECK(!"sample above precision");
                break;
            }
    } else {
        CHECK(img->samples == NULL);
        CHECK(err.code == rc && err.msg[0] != 0);
    }
    return rc;
}

/* ---- 1 and 3: the DCMTK fixtures ----------------------------------------------------- */

/* Cuts the stream at many points: before the end of the last scan, each cut must fail. */
static void check_truncations(const uint8_t *p, size_t n)
{
    size_t eoi = n;
    while (eoi >= 2 && !(p[eoi - 2] == 0xFF && p[eoi - 1] == 0xD9))
        eoi--;
    CHECK(eoi >= 2);
    size_t step = n / 300 + 1;
    for (size_t cut = 0; cut + 2 < eoi; cut += (cut < 400 ? 1 : step)) {
        ljpeg_image img;
        int rc = decode(p, cut, &img);
        if (rc == RS_OK)
            fprintf(stderr, "cut at %zu of %zu decoded\n", cut, n);
        CHECK(rc != RS_OK);
        ljpeg_image_free(&img);
    }
}

static void check_mutations(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n);
    for (int round = 0; round < 200; round++) {
        ljpeg_image img;
        memcpy(q, p, n);
        for (int k = 1 + (int)(rnd() % 4); k > 0; k--)
            q[rnd() % n] = (uint8_t)rnd();
        decode(q, n, &img);
        ljpeg_image_free(&img);
    }
    free(q);
}

static void check_fixture(const char *name, uint32_t w, uint32_t h, int nc, int prec)
{
    char path[256];
    size_t n = 0, rawn = 0;
    ljpeg_info info;
    ljpeg_image img;

    snprintf(path, sizeof path, DIR "%s.jpg", name);
    uint8_t *p = slurp(path, &n);
    snprintf(path, sizeof path, DIR "%s.raw", name);
    uint8_t *raw = slurp(path, &rawn);
    CHECK(p && raw);
    if (!p || !raw)
        goto done;
    CHECK_EQ_INT(ljpeg_read_header(p, n, &info, NULL), RS_OK);
    CHECK(info.width == w && info.height == h && info.components == nc && info.precision == prec);
    CHECK_EQ_INT(decode(p, n, &img), RS_OK);
    CHECK_EQ_INT(rawn, (size_t)w * h * (size_t)nc * 2);
    if (img.samples && rawn == (size_t)img.width * img.height * (size_t)img.components * 2) {
        size_t bad = 0;
        for (size_t i = 0; i < rawn / 2; i++)
            bad += img.samples[i] != (uint16_t)(raw[2 * i] | raw[2 * i + 1] << 8);
        if (bad)
            fprintf(stderr, "%s: %zu samples differ\n", name, bad);
        CHECK_EQ_INT(bad, 0);
    }
    ljpeg_image_free(&img);
    check_truncations(p, n);
    check_mutations(p, n);
done:
    free(p);
    free(raw);
}

static int test_fixtures(void)
{
    FILE *f = fopen(DIR "manifest.txt", "r");
    char name[128];
    unsigned w, h;
    int nc, prec, count = 0;

    CHECK(f != NULL);
    if (!f)
        return 0;
    while (fscanf(f, "%127s %u %u %d %d", name, &w, &h, &nc, &prec) == 5) {
        check_fixture(name, w, h, nc, prec);
        count++;
    }
    fclose(f);
    CHECK(count >= 20);
    return count;
}

/* ---- 2: a small encoder for round trips ------------------------------------------------- */

/* Two code tables for categories 0..16: all 5-bit codes, or lengths 2..16 so that codes
 * beyond the decoder's 9-bit lookup occur. Given as JPEG gives them: counts per length. */
static const uint8_t tab_counts[2][16] = {
    {0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {0, 1, 2, 2, 2, 0, 0, 0, 0, 2, 0, 2, 0, 2, 0, 4},
};
static const uint8_t tab_vals[2][17] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
    {3, 2, 4, 1, 5, 6, 0, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
};

typedef struct enc {
    rs_buf out;
    uint64_t acc;
    int nb;
    uint16_t code[2][17];
    uint8_t len[2][17];
} enc;

static void enc_tables(enc *e)
{
    for (int t = 0; t < 2; t++) {
        int code = 0, k = 0;
        for (int l = 1; l <= 16; l++, code <<= 1)
            for (int i = 0; i < tab_counts[t][l - 1]; i++, code++, k++) {
                e->code[t][tab_vals[t][k]] = (uint16_t)code;
                e->len[t][tab_vals[t][k]] = (uint8_t)l;
            }
    }
}

static void put16(enc *e, int v)
{
    rs_buf_putc(&e->out, v >> 8);
    rs_buf_putc(&e->out, v & 0xFF);
}

static void put_bits(enc *e, uint32_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        e->acc = e->acc << 1 | ((v >> i) & 1);
        if (++e->nb == 8) {
            rs_buf_putc(&e->out, (int)e->acc);
            if ((e->acc & 0xFF) == 0xFF)
                rs_buf_putc(&e->out, 0);
            e->acc = 0;
            e->nb = 0;
        }
    }
}

static void flush_bits(enc *e)
{
    while (e->nb)
        put_bits(e, 1, 1);
}

static void put_dht(enc *e, int id, int t)
{
    put16(e, 0xFFC4);
    put16(e, 2 + 1 + 16 + 17);
    rs_buf_putc(&e->out, id);
    rs_buf_append(&e->out, tab_counts[t], 16);
    rs_buf_append(&e->out, tab_vals[t], 17);
}

static int ref_predict(int sel, int ra, int rb, int rc)
{
    int p[8] = {0, ra, rb, rc, ra + rb - rc, ra + ((rb - rc) >> 1), rb + ((ra - rc) >> 1),
                (ra + rb) >> 1};
    return p[sel];
}

typedef struct rt_case {
    uint32_t w, h;
    int nc, prec, pred, pt, restart_lines, interleaved;
} rt_case;

/* One scan over the components [c0, c1) of v (values already >> pt). Component k is coded
 * with code k & 1, found in table k & 1, or in table 0 when the scan has one component. */
static void enc_scan(enc *e, const rt_case *c, const uint16_t *v, int c0, int c1)
{
    int bits = c->prec - c->pt;
    put16(e, 0xFFDA);
    put16(e, 6 + 2 * (c1 - c0));
    rs_buf_putc(&e->out, c1 - c0);
    for (int k = c0; k < c1; k++) {
        rs_buf_putc(&e->out, 10 + k);
        rs_buf_putc(&e->out, c1 - c0 == 1 ? 0 : (k & 1) << 4);
    }
    rs_buf_putc(&e->out, c->pred);
    rs_buf_putc(&e->out, 0);
    rs_buf_putc(&e->out, c->pt);
    for (uint32_t y = 0, rst = 0; y < c->h; y++) {
        int first = y == 0;
        if (c->restart_lines && y && y % (uint32_t)c->restart_lines == 0) {
            flush_bits(e);
            put16(e, 0xFFD0 + (int)(rst++ & 7));
            first = 1;
        }
        for (uint32_t x = 0; x < c->w; x++)
            for (int k = c0; k < c1; k++) {
                size_t i = ((size_t)y * c->w + x) * (size_t)c->nc + (size_t)k, up = (size_t)c->w * c->nc;
                int pred = first ? (x ? v[i - c->nc] : 1 << (bits - 1))
                           : !x ? v[i - up]
                                : ref_predict(c->pred, v[i - c->nc], v[i - up], v[i - up - c->nc]);
                int d = (v[i] - pred) & 0xFFFF, t = k & 1, s = 0;
                if (d > 32768)
                    d -= 65536;
                for (int a = d < 0 ? -d : d; a; a >>= 1)
                    s++;
                put_bits(e, e->code[t][s], e->len[t][s]);
                if (s && s < 16)
                    put_bits(e, (uint32_t)(d < 0 ? d - 1 : d) & ((1u << s) - 1), s);
            }
    }
    flush_bits(e);
}

static void encode(enc *e, const rt_case *c, const uint16_t *v)
{
    e->out.len = 0;
    put16(e, 0xFFD8);
    put16(e, 0xFFC3);
    put16(e, 8 + 3 * c->nc);
    rs_buf_putc(&e->out, c->prec);
    put16(e, (int)c->h);
    put16(e, (int)c->w);
    rs_buf_putc(&e->out, c->nc);
    for (int k = 0; k < c->nc; k++) {
        rs_buf_putc(&e->out, 10 + k);
        rs_buf_putc(&e->out, 0x11);
        rs_buf_putc(&e->out, 0);
    }
    put_dht(e, 0, 0);
    put_dht(e, 1, 1);
    if (c->restart_lines) {
        put16(e, 0xFFDD);
        put16(e, 4);
        put16(e, (int)c->w * c->restart_lines);
    }
    if (c->interleaved) {
        enc_scan(e, c, v, 0, c->nc);
    } else {
        for (int k = 0; k < c->nc; k++) {
            /* A comment and table 0 redefined as the other code between scans. */
            put16(e, 0xFFFE);
            put16(e, 5);
            rs_buf_append(&e->out, "hi!", 3);
            put_dht(e, 0, k & 1);
            enc_scan(e, c, v, k, k + 1);
        }
    }
    put16(e, 0xFFD9);
}

/* Smooth stretches, full-range jumps (differences of 32768 when prec is 16), noise. */
static void make_image(uint16_t *v, size_t count, int bits)
{
    unsigned max = (1u << bits) - 1, cur = max / 2;
    for (size_t i = 0; i < count; i++) {
        uint32_t r = rnd();
        if (r % 13 == 0)
            cur = (r >> 8) % 3 == 0 ? 0 : (r >> 8) % 3 == 1 ? max : (cur + 32768u) & max;
        else
            cur = (cur + (r >> 10) % 7 - 3) & max;
        v[i] = (uint16_t)cur;
    }
}

static int round_trip(enc *e, const rt_case *c)
{
    size_t count = (size_t)c->w * c->h * (size_t)c->nc;
    uint16_t *v = malloc(count * sizeof *v);
    ljpeg_image img;
    int ok;

    make_image(v, count, c->prec - c->pt);
    encode(e, c, v);
    ok = decode(e->out.p, e->out.len, &img) == RS_OK && img.width == c->w && img.height == c->h &&
         img.components == c->nc && img.precision == c->prec;
    for (size_t i = 0; ok && i < count; i++)
        ok = img.samples[i] == (uint16_t)(v[i] << c->pt);
    if (!ok)
        fprintf(stderr, "round trip failed: %ux%u nc %d P%d pred %d pt %d rst %d il %d\n", c->w, c->h,
                c->nc, c->prec, c->pred, c->pt, c->restart_lines, c->interleaved);
    ljpeg_image_free(&img);
    free(v);
    return ok;
}

static void test_round_trips(enc *e)
{
    static const int precs[] = {2, 3, 5, 8, 11, 12, 15, 16};
    int runs = 0, fails = 0;
    for (size_t pi = 0; pi < sizeof precs / sizeof *precs; pi++)
        for (int pred = 1; pred <= 7; pred++)
            for (int nc = 1; nc <= 4; nc += (nc == 1 ? 2 : 1))
                for (int mode = 0; mode < 4; mode++) {
                    rt_case c = {13 + (uint32_t)(rnd() % 9), 1 + (uint32_t)(rnd() % 12), nc,
                                 precs[pi], pred, mode & 1 ? (int)(rnd() % (unsigned)precs[pi]) : 0,
                                 mode & 2 ? 1 + (int)(rnd() % 3) : 0, (int)(rnd() & 1)};
                    fails += !round_trip(e, &c);
                    runs++;
                }
    fprintf(stderr, "round trips: %d, failed %d\n", runs, fails);
    CHECK_EQ_INT(fails, 0);
}

/* ---- 3: hand-made hostile streams --------------------------------------------------- */

static int decode_rc(const uint8_t *p, size_t n)
{
    ljpeg_image img;
    int rc = decode(p, n, &img);
    ljpeg_image_free(&img);
    return rc;
}

static void test_hostile(enc *e)
{
    rt_case c = {16, 8, 1, 12, 1, 0, 0, 1};
    uint16_t v[16 * 8];
    rs_err err;
    ljpeg_info info;
    ljpeg_image img;

    make_image(v, 128, 12);
    encode(e, &c, v);
    uint8_t *p = e->out.p;
    size_t n = e->out.len;
    CHECK_EQ_INT(decode_rc(p, n), RS_OK);

    /* SOF3 at 4..; frame header fields: P at 6, Y at 7, X at 9. */
    CHECK(p[2] == 0xFF && p[3] == 0xC3);
    uint8_t save[4];
    memcpy(save, p + 7, 4);
    p[7] = 60000 >> 8, p[8] = 60000 & 0xFF, p[9] = 60000 >> 8, p[10] = 60000 & 0xFF;
    CHECK_EQ_INT(ljpeg_read_header(p, n, &info, NULL), RS_OK);
    CHECK(info.width == 60000 && info.height == 60000);
    CHECK_EQ_INT(ljpeg_decode(p, n, NULL, &img, &err), RS_ELIMIT); /* 3.6e9 > 1 GiB samples */
    ljpeg_limits big = {65535, 65535, (uint64_t)1 << 40};
    CHECK_EQ_INT(ljpeg_decode(p, n, &big, &img, &err), RS_ETRUNC); /* cannot fit in n bytes */
    p[7] = 0, p[8] = 200, p[9] = 0, p[10] = 200;                    /* 40000 samples, ~100 bytes */
    CHECK_EQ_INT(ljpeg_decode(p, n, &big, &img, &err), RS_ETRUNC);
    ljpeg_limits small = {15, 100, 1000};
    memcpy(p + 7, save, 4);
    CHECK_EQ_INT(ljpeg_decode(p, n, &small, &img, &err), RS_ELIMIT);
    p[9] = 0, p[10] = 0;
    CHECK_EQ_INT(decode_rc(p, n), RS_EFORMAT); /* width 0 */
    p[7] = 0, p[8] = 0, p[10] = 16;
    CHECK_EQ_INT(decode_rc(p, n), RS_EUNSUPPORTED); /* height 0: DNL */
    memcpy(p + 7, save, 4);
    p[6] = 17;
    CHECK_EQ_INT(decode_rc(p, n), RS_EFORMAT); /* precision */
    p[6] = 1;
    CHECK_EQ_INT(decode_rc(p, n), RS_EFORMAT);
    p[6] = 12;

    /* Other processes are refused by name. */
    p[3] = 0xC0;
    CHECK_EQ_INT(ljpeg_decode(p, n, NULL, &img, &err), RS_EUNSUPPORTED);
    CHECK(strstr(err.msg, "SOF0") != NULL);
    CHECK_EQ_INT(ljpeg_read_header(p, n, &info, NULL), RS_EUNSUPPORTED);
    p[3] = 0xC1;
    CHECK_EQ_INT(decode_rc(p, n), RS_EUNSUPPORTED);
    p[3] = 0xCB;
    CHECK_EQ_INT(decode_rc(p, n), RS_EUNSUPPORTED);
    p[3] = 0xC3;

    /* The first DHT follows SOI and SOF3 (2 + 2 + 11 bytes): counts overflowing length 1. */
    size_t dht = 2 + 2 + 11;
    CHECK(p[dht] == 0xFF && p[dht + 1] == 0xC4);
    p[dht + 5] = 3;
    CHECK_EQ_INT(decode_rc(p, n), RS_EFORMAT);
    p[dht + 5] = 0;
    p[dht + 4] = 0x05; /* table id 5 */
    CHECK_EQ_INT(decode_rc(p, n), RS_EFORMAT);
    p[dht + 4] = 0x01; /* table 0 never defined (scan uses it) */
    CHECK_EQ_INT(decode_rc(p, n), RS_EFORMAT);
    p[dht + 4] = 0x00;
    /* A category that is no category, then a bit pattern that is no code (11111). */
    p[dht + 21] = 200;
    CHECK_EQ_INT(decode_rc(p, n), RS_EFORMAT);
    p[dht + 21] = 0;
    CHECK_EQ_INT(decode_rc(p, n), RS_OK);
    size_t data = 0;
    for (size_t i = 2; i + 1 < n && !data; i++)
        if (p[i] == 0xFF && p[i + 1] == 0xDA)
            data = i + 2 + (size_t)(p[i + 2] << 8 | p[i + 3]);
    uint8_t keep[2] = {p[data], p[data + 1]};
    p[data] = 0xFF, p[data + 1] = 0x00;
    CHECK_EQ_INT(ljpeg_decode(p, n, NULL, &img, &err), RS_EFORMAT);
    CHECK(strstr(err.msg, "Huffman") != NULL);
    p[data] = keep[0], p[data + 1] = keep[1];

    /* Missing pieces. */
    static const uint8_t soi_eoi[] = {0xFF, 0xD8, 0xFF, 0xD9};
    CHECK_EQ_INT(decode_rc(soi_eoi, 4), RS_EFORMAT);
    CHECK_EQ_INT(ljpeg_read_header(soi_eoi, 4, &info, NULL), RS_EFORMAT);
    CHECK_EQ_INT(decode_rc(p + 2, n - 2), RS_EFORMAT); /* no SOI */
    CHECK_EQ_INT(decode_rc(p, 0), RS_EFORMAT);
    size_t sos = 0;
    for (size_t i = 2; i + 1 < n && !sos; i++)
        if (p[i] == 0xFF && p[i + 1] == 0xDA)
            sos = i;
    uint8_t *cut = malloc(n);
    memcpy(cut, p, sos);
    memcpy(cut + sos, "\xFF\xD9", 2);
    CHECK(decode_rc(cut, sos + 2) != RS_OK); /* no SOS (and so no room for the samples) */
    memcpy(cut, p, dht);
    memcpy(cut + dht, p + sos, n - sos);              /* no DHT at all */
    CHECK_EQ_INT(decode_rc(cut, dht + n - sos), RS_EFORMAT);
    memcpy(cut, p, 2);
    memcpy(cut + 2, p + dht, n - dht);                /* no SOF3 */
    CHECK_EQ_INT(decode_rc(cut, 2 + n - dht), RS_EFORMAT);
    free(cut);

    /* A restart interval that is not whole lines. */
    rt_case r = {16, 8, 1, 12, 1, 0, 2, 1};
    encode(e, &r, v);
    p = e->out.p;
    for (size_t i = 2; i + 5 < e->out.len; i++)
        if (p[i] == 0xFF && p[i + 1] == 0xDD) {
            p[i + 5] = 17;
            break;
        }
    CHECK_EQ_INT(decode_rc(p, e->out.len), RS_EUNSUPPORTED);

    /* Garbage. */
    uint8_t junk[4096];
    for (int round = 0; round < 2000; round++) {
        size_t len = rnd() % sizeof junk;
        for (size_t i = 0; i < len; i++)
            junk[i] = (uint8_t)rnd();
        if (round & 1 && len > 2)
            junk[0] = 0xFF, junk[1] = 0xD8;
        CHECK(decode_rc(junk, len) != RS_OK);
    }
}

/* ---- 4: speed ----------------------------------------------------------------------- */

static void test_speed(enc *e)
{
    rt_case c = {512, 512, 1, 16, 1, 0, 0, 1};
    size_t count = 512 * 512;
    uint16_t *v = malloc(count * sizeof *v);
    for (size_t y = 0; y < 512; y++) /* a CT-like slice: smooth, with noise of a few units */
        for (size_t x = 0; x < 512; x++)
            v[y * 512 + x] = (uint16_t)(1000 + ((x - 256) * (x - 256) + (y - 256) * (y - 256) < 40000 ? 1040 : 0)
                                        + x + rnd() % 16);
    encode(e, &c, v);
    int reps = 20;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < reps; i++) {
        ljpeg_image img;
        CHECK_EQ_INT(ljpeg_decode(e->out.p, e->out.len, NULL, &img, NULL), RS_OK);
        CHECK(img.samples && memcmp(img.samples, v, count * 2) == 0);
        ljpeg_image_free(&img);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) / reps;
    fprintf(stderr, "speed: 512x512 16-bit (%zu bytes compressed): %.2f ms per image, %.0f Msamples/s\n",
            e->out.len, ms, (double)count / ms / 1e3);
    free(v);
}

int main(void)
{
    enc e = {RS_BUF_INIT, 0, 0, {{0}}, {{0}}};
    enc_tables(&e);
    fprintf(stderr, "fixtures: %d\n", test_fixtures());
    test_round_trips(&e);
    test_hostile(&e);
    test_speed(&e);
    rs_buf_free(&e.out);
    return t_done();
}
