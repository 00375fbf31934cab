/* uid.c - lookups in the generated UID table (see uid.h). */
#include "uid.h"

#include <string.h>

const dcm_uid_entry *dcm_uid_find(const char *uid)
{
    size_t n = strlen(uid);
    while (n && (uid[n - 1] == ' ' || uid[n - 1] == '\0'))
        n--;
    unsigned lo = 0, hi = dcm_uid_n;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        int c = strncmp(dcm_uid_tab[mid].uid, uid, n);
        if (c == 0 && dcm_uid_tab[mid].uid[n])
            c = 1;
        if (c == 0)
            return &dcm_uid_tab[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int dcm_uid_is_storage(const char *uid)
{
    const dcm_uid_entry *e = dcm_uid_find(uid);
    return e && e->storage;
}

int dcm_uid_valid(const char *uid)
{
    size_t n = strlen(uid);
    if (n == 0 || n > 64)
        return 0;
    int comp_len = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = uid[i];
        if (c == '.' || c == '\0') {
            if (comp_len == 0)
                return 0;
            comp_len = 0;
            continue;
        }
        if (c < '0' || c > '9')
            return 0;
        if (comp_len == 0 && c == '0' && uid[i + 1] != '.' && uid[i + 1] != '\0')
            return 0;
        comp_len++;
    }
    return 1;
}
