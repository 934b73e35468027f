/*
 * labels.h: the language of the client's human output (Dutch by default,
 * English on request) and the labels for people of every code the
 * protocol has.  Owns the gettext setup of the client; never changes
 * what a --json output says (JSON keeps the stable codes and ISO 8601).
 */
#ifndef KP_CLIENT_LABELS_H
#define KP_CLIENT_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include <libintl.h>
#include <protobuf-c/protobuf-c.h>

#define _(s) gettext(s)
#define N_(s) (s)

/*
 * Choose the language and bind the message catalogue: --lang (taken out of
 * argv, anywhere; "nl" or "en") wins, then LANGUAGE, LC_ALL, LC_MESSAGES
 * and LANG (the first set); "en..." gives English, anything else Dutch.
 * The catalogues are looked for beside the binary (../share/locale), so
 * the build tree and an installed copy both find theirs.  0, or -1 after
 * a message (a bad --lang value).
 */
int labels_init(int *argc, char **argv);
/* "nl" or "en". */
const char *labels_lang(void);
/* The folder the catalogues are bound to (for tests and --version). */
const char *labels_dir(void);

/* The label for people of value `value` of enum `desc` in the chosen
 * language; the code itself when it has none. */
const char *label_enum(const ProtobufCEnumDescriptor *desc, int value);
/* The same for a code in its JSON form ("route_consult"). */
const char *label_code(const ProtobufCEnumDescriptor *desc, const char *code);
/* The English label (the message id), NULL if the value has none. */
const char *label_msgid(const ProtobufCEnumDescriptor *desc, int value);
/* Every enum that has labels (for the completeness test); *n of them. */
const ProtobufCEnumDescriptor *const *labels_enums(size_t *n);

/* An outcome of the daemon's report ("positief", "awaited", "interim:
 * scheduled", "no answer (overdue)") for people. */
const char *label_outcome(const char *outcome, char *buf, size_t len);

/* A date as people read it (29-11-2026), a date and time (29-11-2026
 * 14:05), UTC; "-" for 0. */
const char *label_date(uint64_t ms, char *buf, size_t len);
const char *label_datetime(uint64_t ms, char *buf, size_t len);

#endif
