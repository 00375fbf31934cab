/* test_cache.c - util/cache: get/put, notes, replacement, LRU eviction within the capacity,
 * values too large to keep, a cache of capacity 0, the table growing past its first size, and
 * four threads putting and getting at once (every value read back is the one stored under its key). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/cache.h"
#include "util/err.h"

static int get_str(rs_cache *c, const char *key, char *val, size_t cap, char *note)
{
    rs_buf b = RS_BUF_INIT;
    int found = rs_cache_get(c, key, &b, note, RS_CACHE_NOTE_MAX);
    if (found)
        snprintf(val, cap, "%.*s", (int)b.len, (const char *)b.p);
    rs_buf_free(&b);
    return found;
}

static void basics(void)
{
    rs_cache *c = NULL;
    CHECK_EQ_INT(rs_cache_new(800, &c), RS_OK);
    char v[128], note[RS_CACHE_NOTE_MAX];
    CHECK_EQ_INT(get_str(c, "a", v, sizeof v, note), 0);
    rs_cache_put(c, "a", "alpha", 5, "text/plain e1");
    rs_cache_put(c, "b", "beta", 4, "text/plain e2");
    CHECK_EQ_INT(get_str(c, "a", v, sizeof v, note), 1);
    CHECK_EQ_STR(v, "alpha");
    CHECK_EQ_STR(note, "text/plain e1");
    CHECK_EQ_INT(get_str(c, "b", v, sizeof v, note), 1);
    CHECK_EQ_STR(v, "beta");
    rs_cache_put(c, "a", "ALPHA!", 6, "n2"); /* replaces */
    CHECK_EQ_INT(get_str(c, "a", v, sizeof v, note), 1);
    CHECK_EQ_STR(v, "ALPHA!");
    CHECK_EQ_STR(note, "n2");
    rs_cache_stats st;
    rs_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.entries, 2);
    CHECK_EQ_INT(st.bytes, 10);
    CHECK_EQ_INT(st.hits, 3);
    CHECK_EQ_INT(st.misses, 1);
    /* a short note buffer gets a truncated, terminated note */
    rs_buf b = RS_BUF_INIT;
    char small[3];
    CHECK_EQ_INT(rs_cache_get(c, "b", &b, small, sizeof small), 1);
    CHECK_EQ_STR(small, "te");
    rs_buf_free(&b);
    /* over an eighth of the capacity (100 bytes): not kept */
    char big[101];
    memset(big, 'x', sizeof big);
    rs_cache_put(c, "big", big, sizeof big, "");
    CHECK_EQ_INT(get_str(c, "big", v, sizeof v, note), 0);
    rs_cache_put(c, "edge", big, 100, "");
    CHECK_EQ_INT(get_str(c, "edge", v, sizeof v, note), 1);
    rs_cache_free(c);

    CHECK_EQ_INT(rs_cache_new(0, &c), RS_OK); /* keeps nothing */
    rs_cache_put(c, "a", "", 0, "");
    rs_cache_put(c, "b", "x", 1, "");
    CHECK_EQ_INT(get_str(c, "a", v, sizeof v, note), 0);
    CHECK_EQ_INT(get_str(c, "b", v, sizeof v, note), 0);
    rs_cache_free(c);
}

/* 10 values of 100 bytes in a 1000-byte cache; using one keeps it, the oldest unused goes. */
static void eviction(void)
{
    rs_cache *c = NULL;
    CHECK_EQ_INT(rs_cache_new(1000, &c), RS_OK);
    char val[100], key[16], v[128], note[RS_CACHE_NOTE_MAX];
    for (int i = 0; i < 10; i++) {
        memset(val, '0' + i, sizeof val);
        snprintf(key, sizeof key, "k%d", i);
        rs_cache_put(c, key, val, sizeof val, "");
    }
    CHECK_EQ_INT(get_str(c, "k0", v, sizeof v, note), 1); /* k0 now the most recent; k1 the oldest */
    rs_cache_put(c, "k10", val, sizeof val, "");
    CHECK_EQ_INT(get_str(c, "k1", v, sizeof v, note), 0);
    CHECK_EQ_INT(get_str(c, "k0", v, sizeof v, note), 1);
    CHECK_EQ_INT(get_str(c, "k2", v, sizeof v, note), 1);
    CHECK_EQ_INT(v[0], '2');
    rs_cache_stats st;
    rs_cache_get_stats(c, &st);
    CHECK_EQ_INT(st.entries, 10);
    CHECK_EQ_INT(st.bytes, 1000);
    CHECK_EQ_INT(st.evictions, 1);
    /* many small entries: the table grows, every one is found */
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "s%d", i);
        rs_cache_put(c, key, key, strlen(key), key);
    }
    int found = 0;
    for (int i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "s%d", i);
        found += get_str(c, key, v, sizeof v, note) && !strcmp(v, key) && !strcmp(note, key);
    }
    rs_cache_get_stats(c, &st);
    CHECK(st.bytes <= 1000);
    CHECK_EQ_INT(found, st.entries);      /* what is kept is found; the 100-byte values are gone */
    CHECK_EQ_INT(found, 250);             /* the last 250 keys, 4 bytes each */
    snprintf(key, sizeof key, "s%d", 499);
    CHECK_EQ_INT(get_str(c, key, v, sizeof v, note), 1);
    rs_cache_free(c);
}

typedef struct worker {
    rs_cache *c;
    int id, bad, hits;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    char key[32], val[64];
    for (int i = 0; i < 20000; i++) {
        int k = (i * 7 + w->id * 13) % 300;
        snprintf(key, sizeof key, "key-%d", k);
        snprintf(val, sizeof val, "value of key-%d", k);
        rs_buf b = RS_BUF_INIT;
        char note[RS_CACHE_NOTE_MAX];
        if (rs_cache_get(w->c, key, &b, note, sizeof note)) {
            w->hits++;
            if (b.len != strlen(val) || memcmp(b.p, val, b.len) || strcmp(note, key))
                w->bad++;
        } else {
            rs_cache_put(w->c, key, val, strlen(val), key);
        }
        rs_buf_free(&b);
    }
    return NULL;
}

static void threads(void)
{
    rs_cache *c = NULL;
    CHECK_EQ_INT(rs_cache_new(4000, &c), RS_OK); /* ~200 of the 300 values fit: evictions all along */
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){c, i, 0, 0};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    int bad = 0, hits = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        bad += w[i].bad;
        hits += w[i].hits;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(hits > 0);
    rs_cache_stats st;
    rs_cache_get_stats(c, &st);
    CHECK(st.bytes <= 4000);
    CHECK(st.evictions > 0);
    CHECK_EQ_INT(st.hits, (uint64_t)hits);
    rs_cache_free(c);
}

int main(void)
{
    basics();
    eviction();
    threads();
    return t_done();
}
