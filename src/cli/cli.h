/*
 * cli.h - the radshare command line: one binary, one subcommand per job.
 * Each command is `int cmd_X(int argc, char **argv)` returning the process exit status:
 * 0 success, 1 the job found problems (e.g. verify), 2 bad input or usage.
 */
#ifndef RS_CLI_H
#define RS_CLI_H

#define RS_EXIT_OK 0
#define RS_EXIT_PROBLEMS 1
#define RS_EXIT_ERROR 2

int cmd_dump(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_reindex(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* Print "radshare: <path>: at byte N: <message>" (offset part only when known). */
struct rs_err;
void cli_report(const char *path, const struct rs_err *err);

#endif
