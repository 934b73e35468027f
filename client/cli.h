/*
 * cli.h: what the subcommands of `ketenpost` share.
 *
 * Conventions (design.md §8): errors are one line on stderr naming what,
 * where and what to do, and a non-zero exit status: 1 for a refusal or
 * failure, 2 for a usage error.  Output for programs is JSON (--json).
 */
#ifndef KP_CLI_H
#define KP_CLI_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#define EXIT_REFUSED 1
#define EXIT_USAGE 2

/* Print "ketenpost: <msg>" to stderr; returns EXIT_REFUSED. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "ketenpost <cmd>: <msg>" plus a --help hint; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Read a JSON object from path, or stdin for "-". NULL after cli_error. */
json_t *cli_read_json(const char *path);
/* Read the JSON event of type `type` from path ("-": stdin) and pack it.
 * OUT: out->data (malloc'd), out->len.  0, or an exit status after
 * printing the error (naming the file and field). */
int cli_event_payload(int type, const char *path, ProtobufCBinaryData *out);
/* Write j to stdout, indented, with a newline. */
void cli_print_json(const json_t *j);

int cmd_seal(int argc, char **argv);
int cmd_open(int argc, char **argv);
int cmd_subject(int argc, char **argv);
int cmd_purge(int argc, char **argv);
/* backup.c: a consistent copy of a running daemon's state. */
int cmd_backup(int argc, char **argv);
/* commands.c: through the daemon's local API (api.c). */
int cmd_send(int argc, char **argv);
int cmd_outbox(int argc, char **argv);
int cmd_inbox(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_ack(int argc, char **argv);
int cmd_status(int argc, char **argv);
/* feedback.c: the officer's case tracking and evaluation (API). */
int cmd_case(int argc, char **argv);
int cmd_cases(int argc, char **argv);
int cmd_remind(int argc, char **argv);
int cmd_link(int argc, char **argv);
int cmd_outcome(int argc, char **argv);
int cmd_report(int argc, char **argv);
/* todo.c: the officer's work list and reminding the whole of it. */
int cmd_todo(int argc, char **argv);
/* apikey.c: a CURVE key pair for a tcp:// API client. */
int cmd_api_key(int argc, char **argv);
/* audit.c: the auditor's offline tools (docs/AUDIT.md). */
int cmd_audit(int argc, char **argv);

#endif
