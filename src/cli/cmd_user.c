/*
 * cmd_user.c - `radshare user add|list|disable|enable|check`: staff accounts in DATA/state.sqlite.
 * Passwords come from stdin (one line), never from the command line where `ps` would show them.
 * Works while `serve` runs on the same data directory.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../auth/users.h"
#include "cli.h"

#define DEFAULT_DATA "./radshare-data"

static void user_usage(FILE *to)
{
    fprintf(to, "usage: radshare user add NAME --role radiologist|admin [--data DIR]   (password on stdin)\n"
                "       radshare user list [--data DIR]\n"
                "       radshare user disable|enable NAME [--data DIR]\n"
                "       radshare user check NAME [--data DIR]   (password on stdin; exit 0 if it is right)\n");
}

/* One line from stdin without its line end. */
static int read_password(char *out, size_t cap)
{
    if (!fgets(out, (int)cap, stdin))
        return RS_EINVAL;
    size_t n = strlen(out);
    if (n == cap - 1 && out[n - 1] != '\n')
        return RS_ELIMIT;
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = 0;
    return RS_OK;
}

static int print_user(const auth_user *u, void *ctx)
{
    char t[32];
    time_t c = (time_t)u->created;
    struct tm tm;
    gmtime_r(&c, &tm);
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-24s %-12s %-9s %s\n", u->name, auth_role_name(u->role), u->disabled ? "disabled" : "active", t);
    return 0;
}

static int run(const char *verb, const char *name, const char *role, const char *data)
{
    rs_err err = {0};
    auth_db *db = NULL;
    char pw[AUTH_MAX_PASSWORD + 2];
    auth_role r = AUTH_RADIOLOGIST;
    int status = RS_EXIT_ERROR;
    if (!strcmp(verb, "add") && auth_role_parse(role, &r)) {
        fprintf(stderr, "radshare user add: --role radiologist|admin is required\n");
        return RS_EXIT_ERROR;
    }
    if ((!strcmp(verb, "add") || !strcmp(verb, "check")) && read_password(pw, sizeof pw)) {
        fprintf(stderr, "radshare user %s: give the password on stdin (one line, at most %d bytes)\n", verb,
                AUTH_MAX_PASSWORD);
        return RS_EXIT_ERROR;
    }
    if (auth_open(data, &db, &err)) {
        cli_report(data, &err);
        return RS_EXIT_ERROR;
    }
    int64_t now = (int64_t)time(NULL);
    if (!strcmp(verb, "add")) {
        if (auth_user_add(db, name, r, pw, now, &err) == RS_OK) {
            printf("user %s added (%s)\n", name, auth_role_name(r));
            status = RS_EXIT_OK;
        }
    } else if (!strcmp(verb, "list")) {
        if (auth_user_list(db, print_user, NULL, &err) == RS_OK)
            status = RS_EXIT_OK;
    } else if (!strcmp(verb, "disable") || !strcmp(verb, "enable")) {
        if (auth_user_set_disabled(db, name, verb[0] == 'd', &err) == RS_OK) {
            printf("user %s %sd\n", name, verb);
            status = RS_EXIT_OK;
        }
    } else {
        auth_user u;
        int rc = auth_check_basic(db, name, pw, &u, &err);
        status = rc == RS_OK ? RS_EXIT_OK : rc == RS_ENOTFOUND ? RS_EXIT_PROBLEMS : RS_EXIT_ERROR;
        if (rc == RS_OK)
            printf("ok %s %s\n", u.name, auth_role_name(u.role));
    }
    if (status != RS_EXIT_OK)
        fprintf(stderr, "radshare user %s: %s\n", verb, err.msg[0] ? err.msg : rs_strerror(err.code));
    memset(pw, 0, sizeof pw);
    auth_close(db);
    return status;
}

int cmd_user(int argc, char **argv)
{
    static const struct option longs[] = {
        {"data", required_argument, NULL, 'd'}, {"role", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0}};
    const char *data = DEFAULT_DATA, *role = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'r')
            role = optarg;
        else {
            user_usage(c == 'h' ? stdout : stderr);
            return c == 'h' ? RS_EXIT_OK : RS_EXIT_ERROR;
        }
    }
    const char *verb = optind < argc ? argv[optind] : "";
    const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    int needs_name = strcmp(verb, "list") != 0;
    static const char *const verbs[] = {"add", "list", "disable", "enable", "check"};
    int known = 0;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        known |= !strcmp(verb, verbs[i]);
    if (!known || (needs_name && !name) || optind + 1 + needs_name < argc) {
        user_usage(stderr);
        return RS_EXIT_ERROR;
    }
    return run(verb, name, role, data);
}
