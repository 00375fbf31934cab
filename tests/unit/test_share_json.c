/*
 * test_share_json.c - the request-body reader of the share API (src/share/jsonin): flattening,
 * escapes to UTF-8 (surrogate pairs included), arrays, and refusals of malformed or hostile input.
 */
#include <stdlib.h>
#include <string.h>

#include "share/jsonin.h"
#include "t.h"

static int parse(const char *s, jsonin *j)
{
    return jsonin_parse(s, strlen(s), j, NULL);
}

int main(void)
{
    jsonin j;
    const char *doc = " {\"study\":\"1.2.3\",\"recipient\":{\"name\":\"M\\u00fcller \\\"Jo\\\"\",\"kind\":\"patient\"},"
                      "\"series\":[\"1.1\",\"1.2\"],\"expires_in_days\":7,\"download\":true,\"x\":null,"
                      "\"emoji\":\"\\ud83d\\ude00\",\"deep\":{\"a\":{\"b\":[1,2.5e3]}}} ";
    CHECK_EQ_INT(parse(doc, &j), RS_OK);
    CHECK_EQ_STR(jsonin_str(&j, "study"), "1.2.3");
    CHECK_EQ_STR(jsonin_str(&j, "recipient.name"), "M\xc3\xbcller \"Jo\"");
    CHECK_EQ_STR(jsonin_str(&j, "recipient.kind"), "patient");
    CHECK_EQ_STR(jsonin_str(&j, "emoji"), "\xf0\x9f\x98\x80");
    int ns = 0;
    for (size_t i = 0; i < j.n; i++)
        ns += !strcmp(j.items[i].path, "series");
    CHECK_EQ_INT(ns, 2);
    CHECK_EQ_STR(jsonin_get(&j, "series")->value, "1.1");
    CHECK_EQ_INT(jsonin_get(&j, "expires_in_days")->type, JSONIN_NUMBER);
    CHECK_EQ_STR(jsonin_get(&j, "expires_in_days")->value, "7");
    CHECK_EQ_INT(jsonin_get(&j, "download")->type, JSONIN_BOOL);
    CHECK_EQ_INT(jsonin_get(&j, "x")->type, JSONIN_NULL);
    CHECK(jsonin_true(&j, "download"));
    CHECK(!jsonin_true(&j, "x") && !jsonin_true(&j, "study") && !jsonin_true(&j, "absent"));
    CHECK(jsonin_str(&j, "x") == NULL);
    CHECK(jsonin_str(&j, "expires_in_days") == NULL);
    CHECK_EQ_STR(jsonin_get(&j, "deep.a.b")->value, "1");
    CHECK(jsonin_get(&j, "nope") == NULL);
    jsonin_free(&j);

    CHECK_EQ_INT(parse("{}", &j), RS_OK);
    CHECK_EQ_INT(j.n, 0);
    jsonin_free(&j);

    static const char *const bad[] = {
        "",  "[1]", "\"s\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{\"a\":1} x", "{\"a\":\"\\x\"}",
        "{\"a\":\"\\ud800\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"line\nbreak\"}", "{\"a\":tru}", "{\"a\":1.2.3}",
        "{\"a\":\"unterminated}", "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}", "{a:1}", "{\"a\":--1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(bad[i], &j);
        CHECK(rc == RS_EFORMAT || rc == RS_ELIMIT);
        if (rc == RS_OK)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
    }
    /* a raw NUL is neither whitespace nor part of a number (found by fuzz/fuzz_json: strchr
       matched the terminator, so both took it) */
    static const char nul_ws[] = "{\"a\":1,\0\"b\":2}", nul_num[] = "{\"a\":1\0}";
    CHECK_EQ_INT(jsonin_parse(nul_ws, sizeof nul_ws - 1, &j, NULL), RS_EFORMAT);
    CHECK_EQ_INT(jsonin_parse(nul_num, sizeof nul_num - 1, &j, NULL), RS_EFORMAT);
    /* a bounded number of values */
    size_t cap = 16 + 4 * (JSONIN_MAX_ITEMS + 10);
    char *big = malloc(cap);
    size_t k = (size_t)snprintf(big, cap, "{\"a\":[");
    for (int i = 0; i < JSONIN_MAX_ITEMS + 5; i++)
        k += (size_t)snprintf(big + k, cap - k, "%s1", i ? "," : "");
    snprintf(big + k, cap - k, "]}");
    CHECK_EQ_INT(parse(big, &j), RS_ELIMIT);
    free(big);
    return t_done();
}
