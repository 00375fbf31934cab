/*
 * jsonin.h - reading the small JSON request bodies of the share API ({"study": ..., "recipient":
 * {...}, "series": [...]}) into a flat list of (path, value) pairs: "study", "recipient.name",
 * "series" (once per array element). Strings are unescaped to UTF-8; numbers, true/false/null keep
 * their text. Bounded: at most JSONIN_MAX_ITEMS values, depth 4, the caller caps the body size.
 */
#ifndef RS_JSONIN_H
#define RS_JSONIN_H

#include <stddef.h>

#include "../util/err.h"

#define JSONIN_MAX_ITEMS 1100

typedef enum jsonin_type { JSONIN_STRING, JSONIN_NUMBER, JSONIN_BOOL, JSONIN_NULL } jsonin_type;

typedef struct jsonin_item {
    char *path;
    char *value;
    jsonin_type type;
} jsonin_item;

typedef struct jsonin {
    jsonin_item *items;
    size_t n;
} jsonin;

/* Parse text (n bytes, not necessarily NUL-terminated); the top level must be an object. */
int jsonin_parse(const char *text, size_t n, jsonin *out, rs_err *err);
void jsonin_free(jsonin *j);
/* The first value at path, NULL if absent. */
const jsonin_item *jsonin_get(const jsonin *j, const char *path);
/* A string value at path (NULL if absent or not a string). */
const char *jsonin_str(const jsonin *j, const char *path);
/* 1 when the value at path is the literal true (absent, false or any other type: 0). */
int jsonin_true(const jsonin *j, const char *path);

#endif
