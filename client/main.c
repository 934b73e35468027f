/*
 * main.c: `ketenpost`, the command-line client for officers, integrators
 * and auditors.  Dispatches to one function per subcommand; each parses
 * its own options with getopt_long and prints its own --help.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "cli.h"
#include "labels.h"
#include "events.h"
#include "pbjson.h"
#include "log.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command s_commands[] = {
	{ "send", cmd_send, "hand one event to the daemon for delivery" },
	{ "outbox", cmd_outbox, "delivery state of the events sent" },
	{ "inbox", cmd_inbox, "events received (not yet acknowledged)" },
	{ "fetch", cmd_fetch, "one received event with its payload, as JSON" },
	{ "ack", cmd_ack, "mark received events as handled" },
	{ "status", cmd_status, "who the daemon is and its queue counts" },
	{ "subject", cmd_subject, "everything shared about one case (GDPR art. 15)" },
	{ "cases", cmd_cases, "cases with their open and overdue answers" },
	{ "case", cmd_case, "one case's timeline, expected answers and routes" },
	{ "todo", cmd_todo, "the officer's work list: answers overdue or due soon" },
	{ "remind", cmd_remind, "remind partners of their overdue answers" },
	{ "link", cmd_link, "file a received event under an own case reference" },
	{ "outcome", cmd_outcome, "record whether the absence stopped after the route" },
	{ "report", cmd_report, "evaluation per route: outcomes, lead times" },
	{ "purge", cmd_purge, "destroy payloads whose retention has ended" },
	{ "seal", cmd_seal, "seal one event offline into an envelope file" },
	{ "open", cmd_open, "open an envelope file offline and print it" },
	{ "backup", cmd_backup, "consistent copy of a running daemon's state" },
	{ "audit", cmd_audit, "verify, export, prove and reconcile audit logs" },
	{ "api-key", cmd_api_key, "a CURVE key pair for a tcp:// API client" },
};

static void
s_usage(FILE *to)
{
	size_t i;

	fprintf(to, "usage: ketenpost COMMAND [OPTIONS]\n\ncommands:\n");
	for (i = 0; i < sizeof(s_commands) / sizeof(s_commands[0]); i++)
		fprintf(to, "  %-10s %s\n", s_commands[i].name,
		    s_commands[i].summary);
	fprintf(to, "\n'ketenpost --version' prints the version; "
	    "'ketenpost COMMAND --help' describes one command; "
	    "man ketenpost(1) all of them.\n");
}

int
cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ketenpost: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_REFUSED;
}

int
cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ketenpost %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'ketenpost %s --help')\n", cmd);
	return EXIT_USAGE;
}

json_t *
cli_read_json(const char *path)
{
	json_error_t je;
	json_t *j;
	struct stat st;

	/* name the problem (jansson says ":-1:-1: unable to open") */
	if (strcmp(path, "-") != 0 && stat(path, &st) != 0) {
		cli_error("cannot read the JSON file %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	if (strcmp(path, "-") != 0 && S_ISDIR(st.st_mode)) {
		cli_error("%s is a folder; --json needs a JSON file (or - for "
		    "stdin)", path);
		return NULL;
	}
	if (strcmp(path, "-") == 0)
		j = json_loadf(stdin, JSON_REJECT_DUPLICATES, &je);
	else
		j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL && je.line < 1) {
		cli_error("%s: %s", strcmp(path, "-") == 0 ? "<stdin>" : path,
		    je.text);
		return NULL;
	}
	if (j == NULL) {
		cli_error("%s:%d:%d: %s", strcmp(path, "-") == 0 ? "<stdin>" :
		    path, je.line, je.column, je.text);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		cli_error("%s: the event must be a JSON object", path);
		return NULL;
	}
	return j;
}

int
cli_event_payload(int type, const char *path, ProtobufCBinaryData *out)
{
	ProtobufCMessage *ev = NULL;
	json_t *j = cli_read_json(path);
	kp_err_t e;
	int rc;

	if (j == NULL)
		return EXIT_REFUSED;
	rc = pbjson_from_json(events_descriptor(type), j, &ev, &e);
	json_decref(j);
	if (rc != 0)
		return cli_error("%s: %s", strcmp(path, "-") == 0 ? "<stdin>" :
		    path, e.msg);
	out->len = protobuf_c_message_get_packed_size(ev);
	if ((out->data = malloc(out->len + 1)) != NULL)
		protobuf_c_message_pack(ev, out->data);
	pbjson_free(ev);
	return out->data != NULL ? 0 : cli_error("out of memory");
}

void
cli_print_json(const json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
}

int
main(int argc, char **argv)
{
	size_t i;

	log_init("ketenpost", 0);
	if (labels_init(&argc, argv) != 0)
		return EXIT_USAGE;
	if (sodium_init() < 0) {
		fprintf(stderr, "ketenpost: libsodium failed to initialise\n");
		return EXIT_REFUSED;
	}
	if (argc < 2) {
		s_usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		s_usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("ketenpost %s\n", KP_VERSION);
		return 0;
	}
	for (i = 0; i < sizeof(s_commands) / sizeof(s_commands[0]); i++)
		if (strcmp(argv[1], s_commands[i].name) == 0)
			return s_commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "ketenpost: unknown command '%s'\n", argv[1]);
	s_usage(stderr);
	return EXIT_USAGE;
}
