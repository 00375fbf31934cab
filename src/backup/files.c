/*
 * files.c - see files.h.
 */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <dirent.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/fdio.h"
#include "../util/vec.h"

#define CHUNK (64u << 10) /* under malloc's mmap threshold: objects are mostly small */

static void hex(const unsigned char *d, unsigned n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = 0;
}

void backup_sha256_hex(const void *p, size_t n, char hash[STORE_HASH_HEX + 1])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    EVP_Digest(p, n, d, &dlen, EVP_sha256(), NULL);
    hex(d, dlen, hash);
}

int backup_object_path(const char *dir, const char *hash, char *out, size_t cap, rs_err *err)
{
    if (!store_hash_valid(hash))
        return rs_err_set(err, RS_EFORMAT, "not an object name: %.80s", hash);
    int n = snprintf(out, cap, "%s/objects/%.2s/%.2s/%s", dir, hash, hash + 2, hash);
    return n > 0 && (size_t)n < cap ? RS_OK : rs_err_set(err, RS_EINVAL, "path too long: %s", dir);
}

int backup_mkdirs_for(const char *path, rs_err *err)
{
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p)
        return rs_err_set(err, RS_EINVAL, "path too long");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0750) != 0 && errno != EEXIST)
            return rs_err_set(err, RS_EIO, "cannot create %s: %s", p, strerror(errno));
        *s = '/';
    }
    return RS_OK;
}

/* Stream fd to out (when >= 0) through SHA-256. */
static int hash_copy_fd(int in, int out, char hash[STORE_HASH_HEX + 1], uint64_t *size, rs_err *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(CHUNK);
    int rc = md && buf && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? RS_OK
                                                                          : rs_err_set(err, RS_ENOMEM, "out of memory");
    uint64_t total = 0;
    while (rc == RS_OK) {
        ssize_t r = read(in, buf, CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = rs_err_set(err, RS_EIO, "read: %s", strerror(errno));
        if (r <= 0)
            break;
        EVP_DigestUpdate(md, buf, (size_t)r);
        if (out >= 0 && rs_write_all(out, buf, (size_t)r) != RS_OK)
            rc = rs_err_set(err, RS_EIO, "write: %s", strerror(errno));
        total += (uint64_t)r;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    if (rc == RS_OK && EVP_DigestFinal_ex(md, d, &dlen) == 1) {
        if (hash)
            hex(d, dlen, hash);
        if (size)
            *size = total;
    }
    EVP_MD_CTX_free(md);
    free(buf);
    return rc;
}

int backup_hash_file(const char *path, char hash[STORE_HASH_HEX + 1], uint64_t *size, rs_err *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return rs_err_set(err, errno == ENOENT ? RS_ENOTFOUND : RS_EIO, "cannot open %s: %s", path, strerror(errno));
    int rc = hash_copy_fd(fd, -1, hash, size, err);
    close(fd);
    return rc;
}

/* backup_copy_file (direct = 0: through dst.part-PID and link) and backup_copy_new (direct = 1). */
static int copy_file(const char *src, const char *dst, int direct, int64_t mtime_ns, const char *expect,
                     char hash[STORE_HASH_HEX + 1], uint64_t *size, rs_err *err)
{
    char part[PATH_MAX], got[STORE_HASH_HEX + 1];
    if (!hash)
        hash = got;
    int n = direct ? snprintf(part, sizeof part, "%s", dst)
                   : snprintf(part, sizeof part, "%s.part-%ld", dst, (long)getpid());
    if (n < 0 || n >= (int)sizeof part)
        return rs_err_set(err, RS_EINVAL, "path too long: %s", dst);
    int rc = RS_OK;
    int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return rs_err_set(err, errno == ENOENT ? RS_ENOTFOUND : RS_EIO, "cannot open %s: %s", src, strerror(errno));
    /* directories only when missing: a mkdir per path component and file cost a third of a restore */
    int flags = O_WRONLY | O_CREAT | (direct ? O_EXCL : O_TRUNC) | O_NOFOLLOW | O_CLOEXEC;
    int out = open(part, flags, 0640);
    if (out < 0 && errno == ENOENT && (rc = backup_mkdirs_for(dst, err)) == RS_OK)
        out = open(part, flags, 0640);
    if (rc == RS_OK && out < 0)
        rc = rs_err_set(err, errno == EEXIST ? RS_EINVAL : RS_EIO, "cannot create %s: %s", part, strerror(errno));
    if (rc == RS_OK)
        rc = hash_copy_fd(in, out, hash, size, err);
    if (rc == RS_OK && expect && strcmp(hash, expect) != 0)
        rc = rs_err_set(err, RS_EFORMAT, "%s: content hashes to %.16s..., expected %.16s...", src, hash, expect);
    if (rc == RS_OK && mtime_ns > 0) {
        struct timespec ts[2] = {{mtime_ns / 1000000000, mtime_ns % 1000000000},
                                 {mtime_ns / 1000000000, mtime_ns % 1000000000}};
        if (futimens(out, ts) != 0)
            rc = rs_err_set(err, RS_EIO, "cannot set the time of %s: %s", part, strerror(errno));
    }
    close(in);
    if (out >= 0)
        close(out);
    /* link, not rename: it refuses to replace an existing name (write-once media keep theirs) */
    if (!direct && rc == RS_OK && link(part, dst) != 0)
        rc = rs_err_set(err, errno == EEXIST ? RS_EINVAL : RS_EIO, "cannot create %s: %s", dst, strerror(errno));
    if (out >= 0 && (!direct || rc))
        unlink(part);
    return rc;
}

int backup_copy_file(const char *src, const char *dst, int64_t mtime_ns, const char *expect,
                     char hash[STORE_HASH_HEX + 1], uint64_t *size, rs_err *err)
{
    return copy_file(src, dst, 0, mtime_ns, expect, hash, size, err);
}

int backup_copy_new(const char *src, const char *dst, int64_t mtime_ns, const char *expect, uint64_t *size,
                    rs_err *err)
{
    return copy_file(src, dst, 1, mtime_ns, expect, NULL, size, err);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int backup_sync_fs(const char *path, rs_err *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && syncfs(fd) == 0 ? RS_OK : rs_err_set(err, RS_EIO, "cannot sync %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

int backup_remove_tree(const char *path)
{
    return nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int backup_dir_empty(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT;
    struct dirent *de;
    int empty = 1;
    while (empty && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            empty = 0;
    closedir(d);
    return empty;
}

int backup_write_file(const char *path, const void *p, size_t n, int mode, rs_err *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return rs_err_set(err, RS_EINVAL, "path too long: %s", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return rs_err_set(err, RS_EIO, "cannot create %s: %s", tmp, strerror(errno));
    int rc = rs_write_all(fd, p, n) == RS_OK && fsync(fd) == 0
                 ? RS_OK
                 : rs_err_set(err, RS_EIO, "cannot write %s: %s", tmp, strerror(errno));
    close(fd);
    if (rc == RS_OK && rename(tmp, path) != 0)
        rc = rs_err_set(err, RS_EIO, "cannot rename %s: %s", tmp, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}

int backup_read_file(const char *path, size_t cap, uint8_t **out, size_t *n, rs_err *err)
{
    *out = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return rs_err_set(err, errno == ENOENT ? RS_ENOTFOUND : RS_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    int rc = RS_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = rs_err_set(err, RS_EFORMAT, "%s is not a regular file", path);
    else if ((uint64_t)st.st_size > cap)
        rc = rs_err_set(err, RS_ELIMIT, "%s is larger than %zu bytes", path, cap);
    uint8_t *buf = rc ? NULL : malloc((size_t)st.st_size + 1);
    if (rc == RS_OK && !buf)
        rc = rs_err_set(err, RS_ENOMEM, "out of memory");
    if (rc == RS_OK && st.st_size && rs_pread_all(fd, buf, (size_t)st.st_size, 0) != RS_OK)
        rc = rs_err_set(err, RS_EIO, "cannot read %s", path);
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[st.st_size] = 0;
    *out = buf;
    *n = (size_t)st.st_size;
    return RS_OK;
}

/* ---- object lists ------------------------------------------------------------------------------ */

int backup_objs_push(backup_objs *l, const store_blob_info *info)
{
    if (rs_grow((void **)&l->v, &l->cap, l->n, sizeof *l->v, 1024))
        return RS_ENOMEM;
    l->v[l->n++] = *info;
    return RS_OK;
}

int backup_objs_collect(void *ctx, const store_blob_info *info)
{
    return backup_objs_push(ctx, info);
}

int backup_objs_cmp(const void *a, const void *b)
{
    return strcmp(((const store_blob_info *)a)->hash, ((const store_blob_info *)b)->hash);
}
