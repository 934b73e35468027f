/*
 * labels.c: the language of the client's human output and the labels of
 * every protocol code, in English (the message ids) and, through the
 * gettext catalogue po/nl.po, in Dutch (the default).
 *
 * Owns: choosing the language (--lang, then the locale variables), binding
 * the catalogue found beside the binary, the code -> label tables, and the
 * date forms people read.  Must never be used for JSON output: JSON keeps
 * the stable codes and ISO 8601 times (design.md §8).
 *
 * Why LANGUAGE and C.UTF-8: the machines this runs on often have no
 * nl_NL locale generated; gettext still translates when LC_MESSAGES is any
 * locale other than "C", with LANGUAGE naming the catalogue, and
 * bind_textdomain_codeset keeps the output UTF-8 whatever LC_CTYPE is.
 * Only LC_MESSAGES is set: numbers keep their C form (a point, not a
 * comma), so output meant for programs never changes with the language.
 */
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.pb-c.h"
#include "envelope.pb-c.h"
#include "events.pb-c.h"
#include "labels.h"
#include "pbjson.h"

#ifndef KP_LOCALEDIR_REL
#define KP_LOCALEDIR_REL "share/locale"
#endif

#define S_N(a) (sizeof(a) / sizeof((a)[0]))

static char s_lang[3] = "nl";
static char s_dir[PATH_MAX + 64];

/* One enum's labels, indexed by value (the enums are dense from 0). */
struct s_labels {
	const ProtobufCEnumDescriptor *desc;
	const char *const *labels;
	size_t n;
};

static const char *const s_event_type[] = {
	N_("not given"),
	N_("referral"),
	N_("Halt outcome"),
	N_("RvdK advice"),
	N_("OM decision"),
	N_("JBT request"),
	N_("reminder"),
	N_("care notice"),
};
static const char *const s_route[] = {
	N_("not given"),
	N_("voluntary youth care"),
	N_("Halt"),
	N_("coercion, civil law"),
	N_("coercion, criminal law"),
};
static const char *const s_referral_kind[] = {
	N_("not given"),
	N_("Halt pv"),
	N_("pv (official report)"),
	N_("RvdK consultation"),
	N_("screening request"),
	N_("referral to the wijkteam"),
	N_("care report"),
	N_("Veilig Thuis report"),
};
static const char *const s_pv_subject[] = {
	N_("not given"),
	N_("the young person"),
	N_("the parent"),
	N_("both"),
};
static const char *const s_absence_kind[] = {
	N_("not given"),
	N_("statutory absence"),
	N_("other absence"),
	N_("long-term relative absence"),
	N_("absolute absence"),
};
static const char *const s_duty_kind[] = {
	N_("not given"),
	N_("compulsory education"),
	N_("qualification duty"),
};
static const char *const s_help_offered[] = {
	N_("not given"),
	N_("not offered"),
	N_("accepted"),
	N_("refused"),
};
static const char *const s_halt_result[] = {
	N_("not given"),
	N_("positive"),
	N_("negative"),
	N_("did not take place"),
};
static const char *const s_halt_reason[] = {
	N_("not given"),
	N_("agreements not kept"),
	N_("absence did not stop"),
	N_("another approach chosen"),
	N_("other"),
};
static const char *const s_halt_component[] = {
	N_("not given"),
	N_("learning assignment"),
	N_("reflection assignment"),
	N_("follow-up assignment"),
	N_("talk with the young person"),
	N_("talk with the school"),
	N_("talk with Leerplicht"),
};
static const char *const s_expected_next[] = {
	N_("not given"),
	N_("nothing"),
	N_("pv by Leerplicht"),
};
static const char *const s_advice_kind[] = {
	N_("not given"),
	N_("route consultation"),
	N_("screening advice"),
	N_("sentencing advice"),
	N_("investigation status"),
};
static const char *const s_recommended_route[] = {
	N_("not given"),
	N_("voluntary youth care"),
	N_("Halt"),
	N_("coercion, civil law"),
	N_("coercion, criminal law"),
	N_("no pv"),
};
static const char *const s_investigation[] = {
	N_("not given"),
	N_("started"),
	N_("completed"),
	N_("not started"),
	N_("passed on to a child protection investigation"),
};
static const char *const s_strafadvies[] = {
	N_("not given"),
	N_("community service"),
	N_("monetary fine"),
	N_("youth care"),
	N_("youth probation order"),
};
static const char *const s_civil_measure[] = {
	N_("not given"),
	N_("none"),
	N_("family supervision order (OTS)"),
	N_("request to the juvenile judge"),
	N_("pressure (drang)"),
};
static const char *const s_om_decision_kind[] = {
	N_("not given"),
	N_("OM settlement (OM-afdoening)"),
	N_("summons before the cantonal judge"),
	N_("dismissal"),
	N_("conditional dismissal"),
	N_("civil investigation"),
	N_("pv sent back"),
};
static const char *const s_sanction[] = {
	N_("not given"),
	N_("community service"),
	N_("learning sentence"),
	N_("youth probation"),
	N_("fine"),
};
static const char *const s_decided_by[] = {
	N_("not given"),
	N_("public prosecutor (OvJ)"),
	N_("cantonal judge"),
	N_("court"),
};
static const char *const s_return_reason[] = {
	N_("not given"),
	N_("statements incomplete"),
	N_("other"),
};
static const char *const s_jbt_phase[] = {
	N_("not given"),
	N_("requested"),
	N_("scheduled"),
	N_("decided"),
};
static const char *const s_jbt_request_kind[] = {
	N_("not given"),
	N_("VTB"),
	N_("care report"),
};
static const char *const s_filed_by[] = {
	N_("not given"),
	N_("Leerplicht"),
	N_("the school"),
	N_("the wijkteam"),
	N_("Veilig Thuis"),
};
static const char *const s_jbt_indication[] = {
	N_("not given"),
	N_("no willingness or ability"),
	N_("serious problems of the young person"),
	N_("serious parenting problems"),
	N_("signs of domestic violence"),
};
static const char *const s_jbt_decision[] = {
	N_("not given"),
	N_("RvdK investigation"),
	N_("no investigation"),
	N_("back to the voluntary route"),
};
static const char *const s_care_phase[] = {
	N_("not given"),
	N_("care started"),
	N_("care ended"),
	N_("no contact"),
};
static const char *const s_delivery_state[] = {
	N_("not given"),
	N_("pending"),
	N_("delivered"),
	N_("refused"),
	N_("undeliverable"),
};
static const char *const s_expectation_state[] = {
	N_("not given"),
	N_("open"),
	N_("overdue"),
	N_("answered"),
	N_("answered late"),
};
static const char *const s_absence_after[] = {
	N_("not recorded"),
	N_("stopped"),
	N_("reduced"),
	N_("continued"),
};
static const char *const s_next_step[] = {
	N_("not given"),
	N_("wait"),
	N_("remind"),
	N_("escalate"),
	N_("follow up"),
};
static const char *const s_receipt_status[] = {
	N_("not given"),
	N_("accepted"),
	N_("refused"),
};
static const char *const s_reason[] = {
	N_("none"),
	N_("malformed"),
	N_("unsupported schema version"),
	N_("too large"),
	N_("wrong recipient"),
	N_("unknown sender"),
	N_("bad signature"),
	N_("ciphertext corrupt"),
	N_("decryption failed"),
	N_("sender mismatch"),
	N_("replay or outside the time window"),
	N_("expired"),
	N_("chain policy differs"),
	N_("not allowed by the chain policy"),
	N_("sender may not send events"),
	N_("internal error"),
	N_("unknown case"),
	N_("event id conflict"),
	N_("batch proof invalid"),
};

static const struct s_labels s_tables[] = {
	{ &kp__event_type__descriptor, s_event_type, S_N(s_event_type) },
	{ &kp__route__descriptor, s_route, S_N(s_route) },
	{ &kp__referral_kind__descriptor, s_referral_kind, S_N(s_referral_kind) },
	{ &kp__pv_subject__descriptor, s_pv_subject, S_N(s_pv_subject) },
	{ &kp__absence_kind__descriptor, s_absence_kind, S_N(s_absence_kind) },
	{ &kp__duty_kind__descriptor, s_duty_kind, S_N(s_duty_kind) },
	{ &kp__help_offered__descriptor, s_help_offered, S_N(s_help_offered) },
	{ &kp__halt_result__descriptor, s_halt_result, S_N(s_halt_result) },
	{ &kp__halt_reason__descriptor, s_halt_reason, S_N(s_halt_reason) },
	{ &kp__halt_component__descriptor, s_halt_component, S_N(s_halt_component) },
	{ &kp__expected_next__descriptor, s_expected_next, S_N(s_expected_next) },
	{ &kp__advice_kind__descriptor, s_advice_kind, S_N(s_advice_kind) },
	{ &kp__recommended_route__descriptor, s_recommended_route, S_N(s_recommended_route) },
	{ &kp__investigation__descriptor, s_investigation, S_N(s_investigation) },
	{ &kp__strafadvies__descriptor, s_strafadvies, S_N(s_strafadvies) },
	{ &kp__civil_measure__descriptor, s_civil_measure, S_N(s_civil_measure) },
	{ &kp__om_decision_kind__descriptor, s_om_decision_kind, S_N(s_om_decision_kind) },
	{ &kp__sanction__descriptor, s_sanction, S_N(s_sanction) },
	{ &kp__decided_by__descriptor, s_decided_by, S_N(s_decided_by) },
	{ &kp__return_reason__descriptor, s_return_reason, S_N(s_return_reason) },
	{ &kp__jbt_phase__descriptor, s_jbt_phase, S_N(s_jbt_phase) },
	{ &kp__jbt_request_kind__descriptor, s_jbt_request_kind, S_N(s_jbt_request_kind) },
	{ &kp__filed_by__descriptor, s_filed_by, S_N(s_filed_by) },
	{ &kp__jbt_indication__descriptor, s_jbt_indication, S_N(s_jbt_indication) },
	{ &kp__jbt_decision__descriptor, s_jbt_decision, S_N(s_jbt_decision) },
	{ &kp__care_phase__descriptor, s_care_phase, S_N(s_care_phase) },
	{ &kp__delivery_state__descriptor, s_delivery_state, S_N(s_delivery_state) },
	{ &kp__expectation_state__descriptor, s_expectation_state, S_N(s_expectation_state) },
	{ &kp__absence_after__descriptor, s_absence_after, S_N(s_absence_after) },
	{ &kp__next_step__descriptor, s_next_step, S_N(s_next_step) },
	{ &kp__receipt_status__descriptor, s_receipt_status, S_N(s_receipt_status) },
	{ &kp__reason__descriptor, s_reason, S_N(s_reason) },
};

/* ---- the language ---- */

/* "nl" or "en" for a locale value or --lang ("en_GB.UTF-8" -> "en"). */
static const char *
s_lang_of(const char *v)
{
	return strncmp(v, "en", 2) == 0 ? "en" : "nl";
}

/* Take --lang X / --lang=X out of argv; *out is X or NULL. */
static int
s_take_lang(int *argc, char **argv, const char **out)
{
	int i, j, skip;

	*out = NULL;
	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strncmp(argv[i], "--lang=", 7) == 0) {
			*out = argv[i] + 7;
			skip = 1;
		} else if (strcmp(argv[i], "--lang") == 0) {
			if (i + 1 >= *argc) {
				fprintf(stderr, "ketenpost: --lang needs nl or "
				    "en\n");
				return -1;
			}
			*out = argv[i + 1];
			skip = 2;
		} else
			continue;
		for (j = i; j + skip <= *argc; j++)
			argv[j] = argv[j + skip];
		*argc -= skip;
		i--;
	}
	if (*out != NULL && strcmp(*out, "nl") != 0 && strcmp(*out, "en")) {
		fprintf(stderr, "ketenpost: --lang '%s' is not nl or en\n",
		    *out);
		return -1;
	}
	return 0;
}

/* The catalogue folder: KP_LOCALEDIR_REL beside the binary's bin/. */
static void
s_find_dir(void)
{
	char exe[PATH_MAX - 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0) {
		snprintf(s_dir, sizeof(s_dir), "/usr/%s", KP_LOCALEDIR_REL);
		return;
	}
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) != NULL)
		*slash = '\0';       /* .../bin */
	snprintf(s_dir, sizeof(s_dir), "%s/../%s", exe, KP_LOCALEDIR_REL);
}

int
labels_init(int *argc, char **argv)
{
	static const char *const vars[] = { "LANGUAGE", "LC_ALL",
	    "LC_MESSAGES", "LANG" };
	const char *opt, *v;
	size_t i;

	if (s_take_lang(argc, argv, &opt) != 0)
		return -1;
	for (i = 0; opt == NULL && i < S_N(vars); i++)
		if ((v = getenv(vars[i])) != NULL && *v != '\0')
			opt = v;
	snprintf(s_lang, sizeof(s_lang), "%s", s_lang_of(opt ? opt : "nl"));
	/* English is the message ids themselves: no catalogue needed */
	setenv("LANGUAGE", s_lang, 1);
	if (setlocale(LC_MESSAGES, "") == NULL ||
	    strcmp(setlocale(LC_MESSAGES, NULL), "C") == 0 ||
	    strcmp(setlocale(LC_MESSAGES, NULL), "POSIX") == 0)
		(void)setlocale(LC_MESSAGES, "C.UTF-8");
	s_find_dir();
	bindtextdomain("ketenpost", s_dir);
	bind_textdomain_codeset("ketenpost", "UTF-8");
	textdomain("ketenpost");
	return 0;
}

const char *
labels_lang(void)
{
	return s_lang;
}

const char *
labels_dir(void)
{
	return s_dir;
}

/* ---- codes ---- */

static const struct s_labels *
s_table(const ProtobufCEnumDescriptor *desc)
{
	size_t i;

	for (i = 0; i < S_N(s_tables); i++)
		if (s_tables[i].desc == desc)
			return &s_tables[i];
	return NULL;
}

const char *
label_msgid(const ProtobufCEnumDescriptor *desc, int value)
{
	const struct s_labels *t = s_table(desc);

	if (t == NULL || value < 0 || (size_t)value >= t->n)
		return NULL;
	return t->labels[value];
}

const char *
label_enum(const ProtobufCEnumDescriptor *desc, int value)
{
	const char *id = label_msgid(desc, value);
	const ProtobufCEnumValue *v;

	if (id != NULL)
		return _(id);
	v = protobuf_c_enum_descriptor_get_value(desc, value);
	return v != NULL ? v->name : "?";
}

const char *
label_code(const ProtobufCEnumDescriptor *desc, const char *code)
{
	int v;

	if (code == NULL || pbjson_enum_value(desc, code, &v) != 0)
		return code != NULL ? code : "-";
	return label_enum(desc, v);
}

const ProtobufCEnumDescriptor *const *
labels_enums(size_t *n)
{
	static const ProtobufCEnumDescriptor *all[S_N(s_tables)];
	size_t i;

	for (i = 0; i < S_N(s_tables); i++)
		all[i] = s_tables[i].desc;
	*n = S_N(s_tables);
	return all;
}

/* The enums an answer's outcome is a value of, the route outcomes first. */
static const ProtobufCEnumDescriptor *const s_outcome_enums[] = {
	&kp__halt_result__descriptor, &kp__om_decision_kind__descriptor,
	&kp__jbt_decision__descriptor, &kp__care_phase__descriptor,
	&kp__advice_kind__descriptor, &kp__investigation__descriptor,
	&kp__jbt_phase__descriptor,
};

const char *
label_outcome(const char *outcome, char *buf, size_t len)
{
	static const char *const fixed[] = {
		N_("awaited"), N_("no answer (overdue)"),
		N_("no final answer (overdue)"),
		N_("answered (payload destroyed)"),
	};
	const char *v = outcome;
	size_t i;
	int n;
	bool interim = strncmp(outcome, "interim: ", 9) == 0;

	for (i = 0; i < S_N(fixed); i++)
		if (strcmp(outcome, fixed[i]) == 0)
			return _(fixed[i]);
	if (interim)
		v = outcome + 9;
	for (i = 0; i < S_N(s_outcome_enums); i++)
		if (pbjson_enum_value(s_outcome_enums[i], v, &n) == 0) {
			v = label_enum(s_outcome_enums[i], n);
			break;
		}
	if (interim)
		snprintf(buf, len, _("interim: %s"), v);
	else
		snprintf(buf, len, "%s", v);
	return buf;
}

/* ---- dates ---- */

static const char *
s_time(uint64_t ms, const char *fmt, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms == 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, fmt, &tm) == 0)
		snprintf(buf, len, "-");
	return buf;
}

const char *
label_date(uint64_t ms, char *buf, size_t len)
{
	return s_time(ms, "%d-%m-%Y", buf, len);
}

const char *
label_datetime(uint64_t ms, char *buf, size_t len)
{
	return s_time(ms, "%d-%m-%Y %H:%M", buf, len);
}
