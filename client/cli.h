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

#define EXIT_REFUSED 1
#define EXIT_USAGE 2

/* Print "ketenpost: <msg>" to stderr; returns EXIT_REFUSED. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "ketenpost <cmd>: <msg>" plus a --help hint; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Read a JSON object from path, or stdin for "-". NULL after cli_error. */
json_t *cli_read_json(const char *path);
/* Write j to stdout, indented, with a newline. */
void cli_print_json(const json_t *j);

int cmd_seal(int argc, char **argv);
int cmd_open(int argc, char **argv);

#endif
