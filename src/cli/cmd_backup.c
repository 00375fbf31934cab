/*
 * cmd_backup.c - `radshare backup` and `radshare restore` (backup/backup.h).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../backup/backup.h"
#include "../backup/replica.h"
#include "cli.h"

static void backup_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare backup --data DIR --to BACKUPDIR [--no-index-snapshot] [--quiet]\n"
            "       radshare backup --data DIR --peer AET=HOST:PORT [--aet OURS] [--follow [--interval S]]\n"
            "                       [--resend] [--timeout S] [--quiet]\n"
            "Copies new objects, DIR/state.sqlite and DIR/audit/* into BACKUPDIR and writes a manifest signed with\n"
            "the ed25519 key in DIR/backup-key.pem (made on the first run). Nothing already in BACKUPDIR is\n"
            "modified or deleted. Prints the key's fingerprint: keep it apart from the backup, restore needs it.\n"
            "Runs while `radshare serve` uses DIR (no lock taken). Each run holds a snapshot of the index, so\n"
            "that restore need not rebuild it; --no-index-snapshot saves its space (restore then reindexes).\n"
            "With --peer: a live replica over DICOM. Every indexed instance the peer (another radshare, or any\n"
            "Storage SCP) has not acknowledged yet is sent with C-STORE, calling as OURS (default RADSHARE);\n"
            "DIR/replica.sqlite remembers what it acknowledged. --follow keeps running (SIGTERM stops it) and\n"
            "sends new instances every S seconds (default 5); --resend sends everything again.\n");
}

static void restore_usage(FILE *to)
{
    fprintf(to,
            "usage: radshare restore --from BACKUPDIR --data NEWDIR (--fingerprint HEX | --trust KEY.pub) "
            "[--run RUN] [--quiet]\n"
            "Checks the run's signature against the key you trust, every object against its hash and every file\n"
            "against the manifest, and rebuilds the index. NEWDIR must not exist or be empty; on any mismatch\n"
            "nothing is left behind. Default run: the latest complete one.\n");
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Follow mode's pause: SIGINT/SIGTERM (blocked by the caller) end it, and the replica. */
static int wait_signal(void *ctx, int seconds)
{
    const sigset_t *set = ctx;
    struct timespec ts = {seconds, 0};
    int sig;
    while ((sig = sigtimedwait(set, NULL, &ts)) < 0 && errno == EINTR)
        ;
    return sig > 0;
}

static int run_replica(const char *data, const char *peer_spec, replica_opts *o)
{
    net_peer peer;
    if (net_peer_parse(peer_spec, &peer) != RS_OK) {
        fprintf(stderr, "radshare backup: --peer %s: expected AET=HOST:PORT\n", peer_spec);
        return RS_EXIT_ERROR;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (o->follow) {
        sigprocmask(SIG_BLOCK, &set, NULL);
        o->wait = wait_signal;
        o->wait_ctx = &set;
    }
    replica_report rep;
    rs_err err = {0};
    int rc = replica_run(data, &peer, o, &rep, &err);
    printf("replica %s at %s:%d: %llu indexed, %llu sent, %llu failed\n", peer.aet, peer.host, peer.port,
           (unsigned long long)rep.indexed, (unsigned long long)rep.sent, (unsigned long long)rep.failed);
    if (rc) {
        cli_report(data, &err);
        return RS_EXIT_ERROR;
    }
    return rep.failed ? RS_EXIT_PROBLEMS : RS_EXIT_OK;
}

int cmd_backup(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, 0, 'd'},     {"to", required_argument, 0, 't'},
        {"peer", required_argument, 0, 'p'},     {"aet", required_argument, 0, 'a'},
        {"follow", no_argument, 0, 'f'},         {"interval", required_argument, 0, 'i'},
        {"resend", no_argument, 0, 'r'},         {"timeout", required_argument, 0, 'T'},
        {"quiet", no_argument, 0, 'q'},          {"help", no_argument, 0, 'h'},
        {"no-index-snapshot", no_argument, 0, 'n'},
        {0, 0, 0, 0}};
    const char *data = NULL, *to = NULL, *peer = NULL;
    backup_opts o = {0};
    replica_opts ro = {0};
    int c, bad = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 't': to = optarg; break;
        case 'p': peer = optarg; break;
        case 'a': ro.aet = optarg; bad |= strlen(optarg) < 1 || strlen(optarg) > 16; break;
        case 'f': ro.follow = 1; break;
        case 'i': ro.interval_s = atoi(optarg); bad |= ro.interval_s < 1; break;
        case 'r': ro.resend = 1; break;
        case 'T': ro.timeout_ms = atoi(optarg) * 1000; bad |= ro.timeout_ms < 1000; break;
        case 'q': o.quiet = ro.quiet = 1; break;
        case 'n': o.no_index = 1; break;
        case 'h': backup_usage(stdout); return RS_EXIT_OK;
        default: backup_usage(stderr); return RS_EXIT_ERROR;
        }
    }
    if (!data || !to == !peer || bad || optind != argc || (!peer && (ro.follow || ro.aet || ro.resend)) ||
        (peer && o.no_index)) {
        backup_usage(stderr);
        return RS_EXIT_ERROR;
    }
    if (!is_dir(data)) {
        fprintf(stderr, "radshare backup: %s is not a data directory\n", data);
        return RS_EXIT_ERROR;
    }
    if (peer)
        return run_replica(data, peer, &ro);
    backup_report rep;
    rs_err err = {0};
    int rc = backup_run(data, to, &o, &rep, &err);
    if (rc) {
        cli_report(to, &err);
        return RS_EXIT_ERROR;
    }
    if (rep.key_created)
        fprintf(stderr, "backup: new signing key %s/backup-key.pem (public: %s/backup-key.pub)\n", data, data);
    printf("run %s\nfingerprint %s\nobjects %llu (new %llu, %llu bytes)\nfiles %llu\nindex snapshot %s\n", rep.run,
           rep.fingerprint, (unsigned long long)rep.objects, (unsigned long long)rep.copied,
           (unsigned long long)rep.bytes_copied, (unsigned long long)rep.files,
           rep.index_snapshot ? "yes" : "no (restore will rebuild the index)");
    if (rep.corrupt)
        fprintf(stderr, "backup: %llu objects no longer match their name and were not backed up: run radshare verify\n",
                (unsigned long long)rep.corrupt);
    return rep.corrupt ? RS_EXIT_PROBLEMS : RS_EXIT_OK;
}

int cmd_restore(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"from", required_argument, 0, 'f'},  {"data", required_argument, 0, 'd'},
        {"trust", required_argument, 0, 't'}, {"fingerprint", required_argument, 0, 'p'},
        {"run", required_argument, 0, 'r'},   {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *from = NULL, *data = NULL;
    restore_opts o = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': from = optarg; break;
        case 'd': data = optarg; break;
        case 't': o.trust_file = optarg; break;
        case 'p': o.fingerprint = optarg; break;
        case 'r': o.run = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'h': restore_usage(stdout); return RS_EXIT_OK;
        default: restore_usage(stderr); return RS_EXIT_ERROR;
        }
    }
    if (!from || !data || optind != argc) {
        restore_usage(stderr);
        return RS_EXIT_ERROR;
    }
    restore_report rep;
    rs_err err = {0};
    int rc = backup_restore(from, data, &o, &rep, &err);
    if (rc) {
        cli_report(from, &err);
        fprintf(stderr, "radshare restore: refused; %s was not created\n", data);
        return RS_EXIT_ERROR;
    }
    printf("restored run %s into %s: %llu objects (%llu bytes), %llu files, %llu indexed (%s)\n", rep.run, data,
           (unsigned long long)rep.objects, (unsigned long long)rep.bytes, (unsigned long long)rep.files,
           (unsigned long long)rep.indexed,
           rep.index_from_snapshot ? "index from the backup's signed snapshot" : "index rebuilt from the objects");
    return RS_EXIT_OK;
}
