/*
 * test_pbjson.c: lib/pbjson.c (JSON <-> protobuf-c from descriptors) and
 * lib/events.c (event type table, strict payload unpacking, field names).
 * No chain needed; the examples come from docs/examples/.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "common.h"
#include "envelope.pb-c.h"
#include "events.h"
#include "pbjson.h"

TestSuite(pbjson, .init = test_init);

static const char *const s_types[] = {
	"referral", "halt_outcome", "rvdk_advice", "om_decision", "jbt_request",
};

static json_t *
s_load_example(const char *name)
{
	char path[1024];
	json_error_t jerr;
	json_t *j;

	snprintf(path, sizeof(path), "%s/docs/examples/%s.json",
	    test_source_dir(), name);
	j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	cr_assert(j != NULL, "%s: %s (line %d)", path, jerr.text, jerr.line);
	return j;
}

static json_t *
s_parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);

	cr_assert(j != NULL, "bad test JSON %s: %s", text, jerr.text);
	return j;
}

/* from_json on text must fail with code and a message containing substr. */
static void
s_expect_fail(const ProtobufCMessageDescriptor *desc, const char *text,
    int code, const char *substr)
{
	ProtobufCMessage *msg = (ProtobufCMessage *)1;
	json_t *j = s_parse(text);
	kp_err_t err;

	kp_err_clear(&err);
	cr_assert_eq(pbjson_from_json(desc, j, &msg, &err), -1, "accepted %s",
	    text);
	cr_assert_null(msg);
	cr_assert_eq(err.code, code, "%s: code %s, want %s (%s)", text,
	    kp_code_name(err.code), kp_code_name(code), err.msg);
	cr_assert(strstr(err.msg, substr) != NULL,
	    "%s: message '%s' lacks '%s'", text, err.msg, substr);
	cr_assert(strchr(err.msg, '\n') == NULL);
	json_decref(j);
}

static void
s_expect_ref(const char *text, const char *substr)
{
	s_expect_fail(&kp__referral__descriptor, text, KP_ERR_INVALID_ARG,
	    substr);
}

/* Pack msg into a malloc'd buffer. */
static uint8_t *
s_pack(const ProtobufCMessage *msg, size_t *len)
{
	uint8_t *buf;

	*len = protobuf_c_message_get_packed_size(msg);
	buf = malloc(*len + 16);
	cr_assert_not_null(buf);
	cr_assert_eq(protobuf_c_message_pack(msg, buf), *len);
	return buf;
}

static void
s_expect_unpack_fail(int type, const uint8_t *buf, size_t len, int code,
    const char *substr)
{
	ProtobufCMessage *msg = (ProtobufCMessage *)1;
	kp_err_t err;

	kp_err_clear(&err);
	cr_assert_eq(events_unpack(type, buf, len, &msg, &err), -1);
	cr_assert_null(msg);
	cr_assert_eq(err.code, code, "code %s (%s)", kp_code_name(err.code),
	    err.msg);
	cr_assert(strstr(err.msg, substr) != NULL, "message '%s' lacks '%s'",
	    err.msg, substr);
}

/* ---- the event type table --------------------------------------------- */

Test(pbjson, event_type_table)
{
	size_t i;

	for (i = 0; i < 5; i++) {
		int t = events_type_from_name(s_types[i]);

		cr_assert_eq(t, (int)i + 1, "%s", s_types[i]);
		cr_assert_str_eq(events_type_name(t), s_types[i]);
		cr_assert_not_null(events_descriptor(t));
	}
	cr_assert_eq(events_descriptor(KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION),
	    &kp__om_decision__descriptor);
	cr_assert_eq(events_type_from_name("REFERRAL"), 0);
	cr_assert_eq(events_type_from_name(""), 0);
	cr_assert_eq(events_type_from_name(NULL), 0);
	cr_assert_eq(events_type_from_name("unspecified"), 0);
	cr_assert_str_eq(events_type_name(0), "unknown");
	cr_assert_str_eq(events_type_name(7), "care_notice");
	cr_assert_str_eq(events_type_name(8), "unknown");
	cr_assert_str_eq(events_type_name(-1), "unknown");
	cr_assert_null(events_descriptor(0));
	cr_assert_null(events_descriptor(8));
}

/* ---- round trips of docs/examples/ ------------------------------------ */

static void
s_round_trip(const char *name)
{
	int type = events_type_from_name(name);
	ProtobufCMessage *msg = NULL, *back = NULL;
	json_t *orig = s_load_example(name), *again;
	uint8_t *buf;
	kp_err_t err;
	size_t len;

	cr_assert_eq(pbjson_from_json(events_descriptor(type), orig, &msg,
	    &err), 0, "%s: %s", name, err.msg);
	cr_assert(protobuf_c_message_check(msg), "%s", name);
	buf = s_pack(msg, &len);
	cr_assert_gt(len, 0);
	cr_assert_eq(events_unpack(type, buf, len, &back, &err), 0, "%s: %s",
	    name, err.msg);
	again = pbjson_to_json(back);
	cr_assert_not_null(again);
	if (!json_equal(orig, again)) {
		char *a = json_dumps(orig, JSON_SORT_KEYS);
		char *b = json_dumps(again, JSON_SORT_KEYS);

		cr_assert_fail("%s: %s != %s", name, a, b);
	}
	json_decref(again);
	again = pbjson_to_json(msg);
	cr_assert(json_equal(orig, again), "%s: direct to_json", name);
	json_decref(again);
	json_decref(orig);
	free(buf);
	pbjson_free(msg);
	protobuf_c_message_free_unpacked(back, NULL);
}

Test(pbjson, round_trip_referral) { s_round_trip("referral"); }
Test(pbjson, round_trip_halt_outcome) { s_round_trip("halt_outcome"); }
Test(pbjson, round_trip_rvdk_advice) { s_round_trip("rvdk_advice"); }
Test(pbjson, round_trip_om_decision) { s_round_trip("om_decision"); }
Test(pbjson, round_trip_jbt_request) { s_round_trip("jbt_request"); }

Test(pbjson, referral_example_values)
{
	ProtobufCMessage *msg = NULL;
	json_t *j = s_load_example("referral");
	Kp__Referral *r;
	kp_err_t err;

	cr_assert_eq(pbjson_from_json(&kp__referral__descriptor, j, &msg,
	    &err), 0, "%s", err.msg);
	r = (Kp__Referral *)msg;
	cr_assert(r->has_route && r->route == KP__ROUTE__ROUTE_HALT);
	cr_assert(r->has_referral_kind &&
	    r->referral_kind == KP__REFERRAL_KIND__REFERRAL_KIND_HALT_PV);
	cr_assert(r->has_help_offered &&
	    r->help_offered == KP__HELP_OFFERED__HELP_OFFERED_NOT_OFFERED);
	cr_assert(r->has_absence_hours && r->absence_hours == 32);
	cr_assert(r->has_late_count && r->late_count == 0);
	cr_assert(r->has_prior_halt_leerplicht && !r->prior_halt_leerplicht);
	cr_assert(r->has_culpable && r->culpable);
	cr_assert(!r->has_pv_subject);
	cr_assert_eq(r->n_parallel_routes, 0);
	pbjson_free(msg);
	json_decref(j);
}

Test(pbjson, empty_object_and_empty_array)
{
	ProtobufCMessage *msg = NULL;
	json_t *j = s_parse("{\"parallel_routes\": []}"), *back;
	kp_err_t err;

	cr_assert_eq(pbjson_from_json(&kp__referral__descriptor, j, &msg,
	    &err), 0, "%s", err.msg);
	cr_assert_eq(((Kp__Referral *)msg)->n_parallel_routes, 0);
	back = pbjson_to_json(msg);
	cr_assert_eq(json_object_size(back), 0);
	json_decref(back);
	json_decref(j);
	pbjson_free(msg);
	pbjson_free(NULL);
}

/* ---- refusals --------------------------------------------------------- */

Test(pbjson, refuses_unknown_field)
{
	s_expect_ref("{\"naam\": \"Jan\"}", "referral: unknown field 'naam'");
	s_expect_ref("{\"route\": \"halt\", \"bsn\": 1}",
	    "referral: unknown field 'bsn'");
	s_expect_ref("{\"Route\": \"halt\"}", "unknown field 'Route'");
	s_expect_fail(&kp__halt_outcome__descriptor, "{\"result\": 1}",
	    KP_ERR_INVALID_ARG, "halt_outcome: unknown field 'result'");
}

Test(pbjson, refuses_wrong_json_type)
{
	s_expect_ref("{\"age_years\": \"15\"}",
	    "referral: field 'age_years' must be an integer");
	s_expect_ref("{\"age_years\": 15.5}", "'age_years' must be an integer");
	s_expect_ref("{\"age_years\": true}", "'age_years' must be an integer");
	s_expect_ref("{\"culpable\": 1}",
	    "field 'culpable' must be true or false");
	s_expect_ref("{\"culpable\": \"true\"}", "'culpable' must be true or false");
	s_expect_ref("{\"route\": 2}", "field 'route' must be a string");
	s_expect_ref("{\"parallel_routes\": \"halt\"}",
	    "field 'parallel_routes' must be an array");
	s_expect_ref("{\"parallel_routes\": [\"halt\", 3]}",
	    "field 'parallel_routes[1]' must be a string");
	s_expect_ref("{\"route\": [\"halt\"]}", "'route' must be a string");
	s_expect_ref("{\"late_count\": {}}", "'late_count' must be an integer");
}

Test(pbjson, refuses_null)
{
	s_expect_ref("{\"route\": null}", "referral: field 'route' is null");
	s_expect_ref("{\"parallel_routes\": null}", "'parallel_routes' is null");
	s_expect_ref("{\"parallel_routes\": [\"halt\", null]}",
	    "'parallel_routes[1]' is null");
	s_expect_ref("{\"culpable\": null}", "'culpable' is null");
}

Test(pbjson, refuses_non_object_top_level)
{
	ProtobufCMessage *msg = (ProtobufCMessage *)1;
	kp_err_t err;

	s_expect_ref("[]", "referral: expected a JSON object");
	s_expect_ref("\"halt\"", "referral: expected a JSON object");
	s_expect_ref("null", "referral: expected a JSON object");
	s_expect_ref("42", "expected a JSON object");
	s_expect_fail(&kp__jbt_request__descriptor, "[{}]", KP_ERR_INVALID_ARG,
	    "jbt_request: expected a JSON object");
	cr_assert_eq(pbjson_from_json(&kp__referral__descriptor, NULL, &msg,
	    &err), -1);
	cr_assert_null(msg);
	cr_assert_eq(err.code, KP_ERR_INVALID_ARG);
}

Test(pbjson, refuses_bad_enum_names)
{
	s_expect_ref("{\"route\": \"bus\"}",
	    "referral: field 'route': 'bus' is not a Route (one of: "
	    "vrijwillige_jeugdhulp, halt, dwang_civiel, dwang_strafrechtelijk)");
	s_expect_ref("{\"route\": \"unspecified\"}", "'unspecified' is not a Route");
	s_expect_ref("{\"route\": \"HALT\"}", "'HALT' is not a Route");
	s_expect_ref("{\"route\": \"route_halt\"}", "'route_halt' is not a Route");
	s_expect_ref("{\"route\": \"ROUTE_HALT\"}", "'ROUTE_HALT' is not");
	s_expect_ref("{\"route\": \"\"}", "'' is not a Route");
	s_expect_ref("{\"parallel_routes\": [\"halt\", \"geen_pv\"]}",
	    "field 'parallel_routes[1]': 'geen_pv' is not a Route");
	s_expect_ref("{\"referral_kind\": \"halt\"}",
	    "'halt' is not a ReferralKind (one of: halt_pv, pv, rvdk_consult, ");
	s_expect_fail(&kp__om_decision__descriptor,
	    "{\"decision\": \"sepot\", \"sanctions\": [\"taakstraf\"]}",
	    KP_ERR_INVALID_ARG, "om_decision: field 'sanctions[0]': "
	    "'taakstraf' is not a Sanction (one of: werkstraf, leerstraf, "
	    "jeugdreclassering, boete)");
}

Test(pbjson, refuses_out_of_range_integers)
{
	s_expect_ref("{\"age_years\": -1}",
	    "referral: field 'age_years' out of range (0..4294967295)");
	s_expect_ref("{\"absence_hours\": 4294967296}",
	    "field 'absence_hours' out of range (0..4294967295)");
	s_expect_ref("{\"feedback_due_days\": -9223372036854775807}",
	    "'feedback_due_days' out of range");
	s_expect_fail(&kp__om_decision__descriptor, "{\"hearing_at\": -1}",
	    KP_ERR_INVALID_ARG,
	    "om_decision: field 'hearing_at' out of range (0..18446744073709551615)");
	s_expect_fail(&kp__om_decision__descriptor, "{\"hearing_at\": \"12x\"}",
	    KP_ERR_INVALID_ARG, "field 'hearing_at' must be an integer");
	s_expect_fail(&kp__om_decision__descriptor,
	    "{\"hearing_at\": \"18446744073709551616\"}", KP_ERR_INVALID_ARG,
	    "field 'hearing_at' out of range");
	s_expect_fail(&kp__om_decision__descriptor, "{\"decided_on\": \"1\"}",
	    KP_ERR_INVALID_ARG, "field 'decided_on' must be an integer");
}

Test(pbjson, integer_bounds_accepted)
{
	ProtobufCMessage *msg = NULL;
	json_t *j = s_parse("{\"age_years\": 4294967295, \"late_count\": 0}");
	kp_err_t err;

	cr_assert_eq(pbjson_from_json(&kp__referral__descriptor, j, &msg,
	    &err), 0, "%s", err.msg);
	cr_assert_eq(((Kp__Referral *)msg)->age_years, 4294967295u);
	pbjson_free(msg);
	json_decref(j);
}

Test(pbjson, uint64_above_int64_max_round_trips_as_string)
{
	ProtobufCMessage *msg = NULL;
	Kp__OmDecision d = KP__OM_DECISION__INIT;
	json_t *j, *v;
	kp_err_t err;

	d.has_hearing_at = 1;
	d.hearing_at = UINT64_MAX;
	j = pbjson_to_json(&d.base);
	v = json_object_get(j, "hearing_at");
	cr_assert(json_is_string(v));
	cr_assert_str_eq(json_string_value(v), "18446744073709551615");
	cr_assert_eq(pbjson_from_json(&kp__om_decision__descriptor, j, &msg,
	    &err), 0, "%s", err.msg);
	cr_assert_eq(((Kp__OmDecision *)msg)->hearing_at, UINT64_MAX);
	pbjson_free(msg);
	json_decref(j);

	d.hearing_at = 1800000000;
	j = pbjson_to_json(&d.base);
	cr_assert(json_is_integer(json_object_get(j, "hearing_at")));
	json_decref(j);
}

/* ---- enum names --------------------------------------------------------- */

struct s_enum_case {
	const ProtobufCEnumDescriptor *desc;
	const char *prefix;   /* written out by hand, not derived */
};

static const struct s_enum_case s_enums[] = {
	{ &kp__event_type__descriptor, "EVENT_TYPE_" },
	{ &kp__route__descriptor, "ROUTE_" },
	{ &kp__referral_kind__descriptor, "REFERRAL_KIND_" },
	{ &kp__pv_subject__descriptor, "PV_SUBJECT_" },
	{ &kp__absence_kind__descriptor, "ABSENCE_KIND_" },
	{ &kp__duty_kind__descriptor, "DUTY_KIND_" },
	{ &kp__help_offered__descriptor, "HELP_OFFERED_" },
	{ &kp__halt_result__descriptor, "HALT_RESULT_" },
	{ &kp__halt_reason__descriptor, "HALT_REASON_" },
	{ &kp__halt_component__descriptor, "HALT_COMPONENT_" },
	{ &kp__expected_next__descriptor, "EXPECTED_NEXT_" },
	{ &kp__advice_kind__descriptor, "ADVICE_KIND_" },
	{ &kp__recommended_route__descriptor, "RECOMMENDED_ROUTE_" },
	{ &kp__investigation__descriptor, "INVESTIGATION_" },
	{ &kp__strafadvies__descriptor, "STRAFADVIES_" },
	{ &kp__civil_measure__descriptor, "CIVIL_MEASURE_" },
	{ &kp__om_decision_kind__descriptor, "OM_DECISION_KIND_" },
	{ &kp__sanction__descriptor, "SANCTION_" },
	{ &kp__decided_by__descriptor, "DECIDED_BY_" },
	{ &kp__return_reason__descriptor, "RETURN_REASON_" },
	{ &kp__jbt_phase__descriptor, "JBT_PHASE_" },
	{ &kp__jbt_request_kind__descriptor, "JBT_REQUEST_KIND_" },
	{ &kp__filed_by__descriptor, "FILED_BY_" },
	{ &kp__jbt_indication__descriptor, "JBT_INDICATION_" },
	{ &kp__jbt_decision__descriptor, "JBT_DECISION_" },
	{ &kp__receipt_status__descriptor, "RECEIPT_STATUS_" },
	{ &kp__reason__descriptor, "REASON_" },
};

Test(pbjson, enum_names_every_enum)
{
	char name[PBJSON_ENUM_NAME_MAX], want[PBJSON_ENUM_NAME_MAX];
	size_t i, k, plen;
	unsigned v;
	int back;

	for (i = 0; i < sizeof(s_enums) / sizeof(s_enums[0]); i++) {
		const ProtobufCEnumDescriptor *d = s_enums[i].desc;

		plen = strlen(s_enums[i].prefix);
		for (v = 0; v < d->n_values; v++) {
			const ProtobufCEnumValue *ev = &d->values[v];

			cr_assert(strncmp(ev->name, s_enums[i].prefix, plen) == 0,
			    "%s does not follow the naming rule", ev->name);
			for (k = 0; ev->name[plen + k] != '\0'; k++)
				want[k] = (char)(ev->name[plen + k] |
				    (ev->name[plen + k] >= 'A' &&
				    ev->name[plen + k] <= 'Z' ? 0x20 : 0));
			want[k] = '\0';
			cr_assert_not_null(pbjson_enum_name(d, ev->value, name,
			    sizeof(name)), "%s", ev->name);
			cr_assert_str_eq(name, want, "%s", ev->name);
			if (strcmp(want, "unspecified") == 0) {
				cr_assert_eq(pbjson_enum_value(d, name, &back), -1);
				continue;
			}
			cr_assert_eq(pbjson_enum_value(d, name, &back), 0,
			    "%s", name);
			cr_assert_eq(back, ev->value, "%s", name);
		}
	}
}

Test(pbjson, enum_names_multiword_prefixes)
{
	static const struct {
		const ProtobufCEnumDescriptor *d;
		int value;
		const char *name;
	} c[] = {
		{ &kp__recommended_route__descriptor,
		    KP__RECOMMENDED_ROUTE__RECOMMENDED_ROUTE_GEEN_PV, "geen_pv" },
		{ &kp__recommended_route__descriptor,
		    KP__RECOMMENDED_ROUTE__RECOMMENDED_ROUTE_HALT, "halt" },
		{ &kp__om_decision_kind__descriptor,
		    KP__OM_DECISION_KIND__OM_DECISION_KIND_VOORWAARDELIJK_SEPOT,
		    "voorwaardelijk_sepot" },
		{ &kp__jbt_request_kind__descriptor,
		    KP__JBT_REQUEST_KIND__JBT_REQUEST_KIND_VTB, "vtb" },
		{ &kp__halt_result__descriptor,
		    KP__HALT_RESULT__HALT_RESULT_POSITIEF, "positief" },
		{ &kp__help_offered__descriptor,
		    KP__HELP_OFFERED__HELP_OFFERED_NOT_OFFERED, "not_offered" },
		{ &kp__referral_kind__descriptor,
		    KP__REFERRAL_KIND__REFERRAL_KIND_VEILIG_THUIS_MELDING,
		    "veilig_thuis_melding" },
		{ &kp__jbt_indication__descriptor,
		    KP__JBT_INDICATION__JBT_INDICATION_SIGNALEN_HUISELIJK_GEWELD,
		    "signalen_huiselijk_geweld" },
		{ &kp__event_type__descriptor,
		    KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME, "halt_outcome" },
		{ &kp__reason__descriptor, KP__REASON__REASON_NONE, "none" },
	};
	char buf[PBJSON_ENUM_NAME_MAX], tiny[4];
	size_t i;
	int v;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		cr_assert_str_eq(pbjson_enum_name(c[i].d, c[i].value, buf,
		    sizeof(buf)), c[i].name);
		cr_assert_eq(pbjson_enum_value(c[i].d, c[i].name, &v), 0,
		    "%s", c[i].name);
		cr_assert_eq(v, c[i].value);
	}
	cr_assert_null(pbjson_enum_name(&kp__route__descriptor, 42, buf,
	    sizeof(buf)));
	cr_assert_null(pbjson_enum_name(&kp__route__descriptor, -1, buf,
	    sizeof(buf)));
	cr_assert_null(pbjson_enum_name(&kp__om_decision_kind__descriptor,
	    KP__OM_DECISION_KIND__OM_DECISION_KIND_SEPOT, tiny, sizeof(tiny)));
	cr_assert_str_eq(pbjson_enum_name(&kp__route__descriptor, 0, buf,
	    sizeof(buf)), "unspecified");
	cr_assert_eq(pbjson_enum_value(&kp__route__descriptor, "unspecified",
	    &v), -1);
	cr_assert_eq(pbjson_enum_value(&kp__route__descriptor, "Halt", &v), -1);
	cr_assert_eq(pbjson_enum_value(&kp__recommended_route__descriptor,
	    "route_halt", &v), -1);
	cr_assert_eq(pbjson_enum_value(&kp__om_decision_kind__descriptor,
	    "decision_kind_sepot", &v), -1);
}

Test(pbjson, snake_names)
{
	char buf[64];

	cr_assert_str_eq(pbjson_snake_name("HaltOutcome", buf, sizeof(buf)),
	    "halt_outcome");
	cr_assert_str_eq(pbjson_snake_name("OmDecisionKind", buf, sizeof(buf)),
	    "om_decision_kind");
	cr_assert_str_eq(pbjson_snake_name("Referral", buf, sizeof(buf)),
	    "referral");
	cr_assert_str_eq(pbjson_snake_name("HTTPServer", buf, sizeof(buf)),
	    "http_server");
	/* truncated at a word boundary, never with a dangling "_" */
	cr_assert_str_eq(pbjson_snake_name("HaltOutcome", buf, 6), "halt");
	cr_assert_str_eq(pbjson_snake_name("HaltOutcome", buf, 8), "halt_ou");
}

Test(pbjson, unknown_enum_number_to_json_as_integer)
{
	Kp__Referral r = KP__REFERRAL__INIT;
	Kp__Route routes[2] = { KP__ROUTE__ROUTE_HALT, (Kp__Route)42 };
	json_t *j;

	r.has_route = 1;
	r.route = (Kp__Route)7;
	r.n_parallel_routes = 2;
	r.parallel_routes = routes;
	j = pbjson_to_json(&r.base);
	cr_assert_not_null(j);
	cr_assert_eq(json_integer_value(json_object_get(j, "route")), 7);
	cr_assert_str_eq(json_string_value(json_array_get(
	    json_object_get(j, "parallel_routes"), 0)), "halt");
	cr_assert_eq(json_integer_value(json_array_get(
	    json_object_get(j, "parallel_routes"), 1)), 42);
	json_decref(j);
}

/* ---- strings and bytes (envelope.proto Header) ------------------------ */

Test(pbjson, bytes_and_strings)
{
	const char *text = "{\"schema_major\": 1, "
	    "\"event_id\": \"00112233445566778899aabbccddeeff\", "
	    "\"event_type\": \"om_decision\", "
	    "\"sender_oin\": \"" OIN_OM "\", \"purpose\": \"\", "
	    "\"nonce\": \"\", \"created_at_ms\": 1800000000000}";
	ProtobufCMessage *msg = NULL, *back;
	json_t *j = s_parse(text), *again;
	Kp__Header *h;
	uint8_t *buf;
	kp_err_t err;
	size_t len;

	cr_assert_eq(pbjson_from_json(&kp__header__descriptor, j, &msg, &err),
	    0, "%s", err.msg);
	h = (Kp__Header *)msg;
	cr_assert(h->has_event_id && h->event_id.len == 16);
	cr_assert_eq(h->event_id.data[0], 0x00);
	cr_assert_eq(h->event_id.data[15], 0xff);
	cr_assert_str_eq(h->sender_oin, OIN_OM);
	cr_assert(h->has_nonce && h->nonce.len == 0);
	cr_assert_eq(h->event_type, KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION);
	buf = s_pack(msg, &len);
	back = protobuf_c_message_unpack(&kp__header__descriptor, NULL, len, buf);
	cr_assert_not_null(back);
	again = pbjson_to_json(back);
	cr_assert(json_equal(j, again), "%s", json_dumps(again, 0));
	json_decref(again);
	protobuf_c_message_free_unpacked(back, NULL);
	free(buf);
	pbjson_free(msg);
	json_decref(j);
}

Test(pbjson, refuses_bad_bytes_and_strings)
{
	const ProtobufCMessageDescriptor *h = &kp__header__descriptor;

	s_expect_fail(h, "{\"event_id\": \"00AB\"}", KP_ERR_INVALID_ARG,
	    "header: field 'event_id' must be a lowercase hex string");
	s_expect_fail(h, "{\"event_id\": \"abc\"}", KP_ERR_INVALID_ARG,
	    "'event_id' must be a lowercase hex string");
	s_expect_fail(h, "{\"event_id\": \"zz\"}", KP_ERR_INVALID_ARG,
	    "'event_id' must be a lowercase hex string");
	s_expect_fail(h, "{\"event_id\": 12}", KP_ERR_INVALID_ARG,
	    "'event_id' must be a lowercase hex string");
	s_expect_fail(h, "{\"sender_oin\": 12}", KP_ERR_INVALID_ARG,
	    "header: field 'sender_oin' must be a string");
	s_expect_fail(h, "{\"sender_oin\": \"a\\u0000b\"}", KP_ERR_INVALID_ARG,
	    "'sender_oin' must be a string without NUL");
	s_expect_fail(h, "{\"sender_oin\": null}", KP_ERR_INVALID_ARG,
	    "'sender_oin' is null");
	/* a later error frees what was already allocated (ASan checks) */
	s_expect_fail(h, "{\"sender_oin\": \"x\", \"event_id\": \"00\", "
	    "\"purpose\": \"p\", \"nonce\": \"0\"}", KP_ERR_INVALID_ARG,
	    "'nonce' must be a lowercase hex string");
}

/* ---- nested messages, repeated messages, oneof (hand-made schema) ----- */

typedef struct {
	ProtobufCMessage base;
	protobuf_c_boolean has_n;
	uint32_t n;
} S_Inner;

typedef struct {
	ProtobufCMessage base;
	S_Inner *one;
	size_t n_many;
	S_Inner **many;
	char *label;
	uint32_t choice_case;
	union {
		uint32_t a;
		char *b;
	};
} S_Outer;

extern const ProtobufCMessageDescriptor s_inner_desc, s_outer_desc;

static void
s_inner_init(ProtobufCMessage *m)
{
	static const S_Inner init = { PROTOBUF_C_MESSAGE_INIT(&s_inner_desc),
	    0, 0 };

	*(S_Inner *)m = init;
}

static void
s_outer_init(ProtobufCMessage *m)
{
	memset(m, 0, sizeof(S_Outer));
	m->descriptor = &s_outer_desc;
}

static const ProtobufCFieldDescriptor s_inner_fields[] = {
	{ "n", 1, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_UINT32,
	    offsetof(S_Inner, has_n), offsetof(S_Inner, n), NULL, NULL, 0, 0,
	    NULL, NULL },
};
static const unsigned s_inner_by_name[] = { 0 };
static const ProtobufCIntRange s_inner_ranges[] = { { 1, 0 }, { 0, 1 } };
const ProtobufCMessageDescriptor s_inner_desc = {
	PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "t.Inner", "Inner", "S_Inner",
	"t", sizeof(S_Inner), 1, s_inner_fields, s_inner_by_name, 1,
	s_inner_ranges, (ProtobufCMessageInit)s_inner_init, NULL, NULL, NULL
};

static const ProtobufCFieldDescriptor s_outer_fields[] = {
	{ "one", 1, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_MESSAGE, 0,
	    offsetof(S_Outer, one), &s_inner_desc, NULL, 0, 0, NULL, NULL },
	{ "many", 2, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_MESSAGE,
	    offsetof(S_Outer, n_many), offsetof(S_Outer, many), &s_inner_desc,
	    NULL, 0, 0, NULL, NULL },
	{ "label", 3, PROTOBUF_C_LABEL_REQUIRED, PROTOBUF_C_TYPE_STRING, 0,
	    offsetof(S_Outer, label), NULL, NULL, 0, 0, NULL, NULL },
	{ "a", 4, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_UINT32,
	    offsetof(S_Outer, choice_case), offsetof(S_Outer, a), NULL, NULL,
	    PROTOBUF_C_FIELD_FLAG_ONEOF, 0, NULL, NULL },
	{ "b", 5, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_STRING,
	    offsetof(S_Outer, choice_case), offsetof(S_Outer, b), NULL, NULL,
	    PROTOBUF_C_FIELD_FLAG_ONEOF, 0, NULL, NULL },
};
static const unsigned s_outer_by_name[] = { 3, 4, 2, 1, 0 };
static const ProtobufCIntRange s_outer_ranges[] = { { 1, 0 }, { 0, 5 } };
const ProtobufCMessageDescriptor s_outer_desc = {
	PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "t.Outer", "Outer", "S_Outer",
	"t", sizeof(S_Outer), 5, s_outer_fields, s_outer_by_name, 1,
	s_outer_ranges, (ProtobufCMessageInit)s_outer_init, NULL, NULL, NULL
};

Test(pbjson, nested_messages_round_trip)
{
	const char *text = "{\"one\": {\"n\": 7}, \"many\": [{\"n\": 1}, {}, "
	    "{\"n\": 3}], \"label\": \"x\", \"b\": \"chosen\"}";
	ProtobufCMessage *msg = NULL, *back;
	json_t *j = s_parse(text), *again;
	S_Outer *o;
	uint8_t *buf;
	kp_err_t err;
	size_t len;

	cr_assert_eq(pbjson_from_json(&s_outer_desc, j, &msg, &err), 0, "%s",
	    err.msg);
	o = (S_Outer *)msg;
	cr_assert(o->one != NULL && o->one->has_n && o->one->n == 7);
	cr_assert_eq(o->n_many, 3);
	cr_assert(!o->many[1]->has_n);
	cr_assert_eq(o->many[2]->n, 3);
	cr_assert_eq(o->choice_case, 5);
	cr_assert_str_eq(o->b, "chosen");
	buf = s_pack(msg, &len);
	back = protobuf_c_message_unpack(&s_outer_desc, NULL, len, buf);
	cr_assert_not_null(back);
	again = pbjson_to_json(back);
	cr_assert(json_equal(j, again), "%s", json_dumps(again, 0));
	json_decref(again);
	protobuf_c_message_free_unpacked(back, NULL);
	free(buf);
	pbjson_free(msg);
	json_decref(j);
}

Test(pbjson, nested_message_refusals)
{
	const ProtobufCMessageDescriptor *d = &s_outer_desc;

	s_expect_fail(d, "{\"label\": \"x\", \"one\": {\"m\": 1}}",
	    KP_ERR_INVALID_ARG, "outer: unknown field 'one.m'");
	s_expect_fail(d, "{\"label\": \"x\", \"many\": [{\"n\": 1}, {\"n\": -2}]}",
	    KP_ERR_INVALID_ARG, "outer: field 'many[1].n' out of range");
	s_expect_fail(d, "{\"label\": \"x\", \"one\": 3}", KP_ERR_INVALID_ARG,
	    "field 'one' must be an object");
	s_expect_fail(d, "{\"label\": \"x\", \"many\": [null]}",
	    KP_ERR_INVALID_ARG, "field 'many[0]' is null");
	s_expect_fail(d, "{\"one\": {}}", KP_ERR_INVALID_ARG,
	    "outer: missing required field 'label'");
	s_expect_fail(d, "{\"label\": \"x\", \"b\": \"s\", \"a\": 1}",
	    KP_ERR_INVALID_ARG, "field 'a' excludes 'b' (oneof)");
	s_expect_fail(d, "{\"label\": \"x\", \"a\": 1, \"b\": \"s\"}",
	    KP_ERR_INVALID_ARG, "field 'b' excludes 'a' (oneof)");
}

/* ---- events_unpack ---------------------------------------------------- */

static uint8_t *
s_pack_example(const char *name, size_t *len)
{
	ProtobufCMessage *msg = NULL;
	json_t *j = s_load_example(name);
	uint8_t *buf;
	kp_err_t err;

	cr_assert_eq(pbjson_from_json(events_descriptor(
	    events_type_from_name(name)), j, &msg, &err), 0, "%s", err.msg);
	buf = s_pack(msg, len);
	pbjson_free(msg);
	json_decref(j);
	return buf;
}

Test(pbjson, unpack_refuses_unknown_field_and_trailing_garbage)
{
	int t = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	size_t len;
	uint8_t *buf = s_pack_example("referral", &len);

	/* field 99, varint 1: tag (99 << 3 | 0) = 792 = 0x98 0x06 */
	memcpy(buf + len, "\x98\x06\x01", 3);
	s_expect_unpack_fail(t, buf, len + 3, KP_ERR_MALFORMED_PAYLOAD,
	    "referral: unknown field number 99");
	/* garbage that is no field at all */
	memcpy(buf + len, "\xff\xff\xff", 3);
	s_expect_unpack_fail(t, buf, len + 3, KP_ERR_MALFORMED_PAYLOAD,
	    "referral: payload is not a valid Referral message");
	buf[len] = 0x00;   /* field number 0 */
	s_expect_unpack_fail(t, buf, len + 1, KP_ERR_MALFORMED_PAYLOAD,
	    "not a valid Referral");
	free(buf);
}

Test(pbjson, unpack_refuses_truncated_buffer)
{
	int t = KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME;
	size_t len;
	uint8_t *buf = s_pack_example("halt_outcome", &len);
	/* completed_on 20261204 is a 4-byte varint: cut inside it */
	static const uint8_t cut[] = { 0x08, 0x01, 0x28, 0xcc, 0xe1 };

	s_expect_unpack_fail(t, buf, len - 1, KP_ERR_MALFORMED_PAYLOAD,
	    "halt_outcome: payload is not a valid HaltOutcome");
	s_expect_unpack_fail(t, cut, sizeof(cut), KP_ERR_MALFORMED_PAYLOAD,
	    "not a valid HaltOutcome");
	s_expect_unpack_fail(t, (const uint8_t *)"\x08", 1,
	    KP_ERR_MALFORMED_PAYLOAD, "not a valid HaltOutcome");
	free(buf);
}

Test(pbjson, unpack_refuses_out_of_range_enum)
{
	int t = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;

	/* route (1) = 42 */
	s_expect_unpack_fail(t, (const uint8_t *)"\x08\x2a", 2,
	    KP_ERR_MALFORMED_PAYLOAD,
	    "referral: field 'route' has value 42, not a valid Route");
	/* route (1) = 0: *_UNSPECIFIED */
	s_expect_unpack_fail(t, (const uint8_t *)"\x08\x00", 2,
	    KP_ERR_MALFORMED_PAYLOAD, "field 'route' has value 0");
	/* parallel_routes (2) = [halt, 9] */
	s_expect_unpack_fail(t, (const uint8_t *)"\x10\x02\x10\x09", 4,
	    KP_ERR_MALFORMED_PAYLOAD,
	    "field 'parallel_routes[1]' has value 9, not a valid Route");
	/* parallel_routes packed [2, 5] */
	s_expect_unpack_fail(t, (const uint8_t *)"\x12\x02\x02\x05", 4,
	    KP_ERR_MALFORMED_PAYLOAD, "field 'parallel_routes[1]' has value 5");
	/* jbt_request indications (4) = -1 (10-byte varint) */
	s_expect_unpack_fail(KP__EVENT_TYPE__EVENT_TYPE_JBT_REQUEST,
	    (const uint8_t *)"\x20\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11,
	    KP_ERR_MALFORMED_PAYLOAD,
	    "jbt_request: field 'indications[0]' has value -1, not a valid "
	    "JbtIndication");
}

/*
 * Repeated enums are written packed (PROTOCOL.md §10), and a payload of a
 * sender from before that, with one tagged field per value, reads the same.
 */
Test(pbjson, repeated_enums_written_packed_and_read_in_either_form)
{
	int t = KP__EVENT_TYPE__EVENT_TYPE_HALT_OUTCOME;
	size_t len, ulen = 0, i, at, alen;
	uint8_t *buf = s_pack_example("halt_outcome", &len), old[256], *again;
	ProtobufCMessage *a = NULL, *b = NULL;
	Kp__HaltOutcome *pa, *pb;
	kp_err_t err;

	/* outcome (field 1) first, then components (field 3) packed: tag
	 * 3 << 3 | 2, length 4, four one-byte values */
	at = 2;
	cr_assert(len > at + 6 && buf[0] == 0x08 && buf[at] == 0x1a &&
	    buf[at + 1] == 4, "components are not written packed");
	/* the same event as an older sender wrote it: 3 << 3 | 0 per value */
	memcpy(old, buf, at);
	ulen = at;
	for (i = 0; i < 4; i++) {
		old[ulen++] = 0x18;
		old[ulen++] = buf[at + 2 + i];
	}
	memcpy(old + ulen, buf + at + 6, len - at - 6);
	ulen += len - at - 6;
	cr_assert_eq(ulen, len + 2);   /* 8 bytes unpacked, 6 packed */
	/* and that is what events_pack_unpacked makes of the packed form */
	cr_assert_eq(events_pack_unpacked(t, buf, len, &again, &alen, &err), 0,
	    "%s", err.msg);
	cr_assert_eq(alen, ulen);
	cr_assert_eq(memcmp(again, old, ulen), 0);
	free(again);
	cr_assert_eq(events_pack_unpacked(t, buf, len - 1, &again, &alen,
	    &err), -1, "a payload that does not unpack");
	cr_assert_null(again);
	cr_assert_eq(events_unpack(t, buf, len, &a, &err), 0, "%s", err.msg);
	cr_assert_eq(events_unpack(t, old, ulen, &b, &err), 0, "%s", err.msg);
	pa = (Kp__HaltOutcome *)a;
	pb = (Kp__HaltOutcome *)b;
	cr_assert_eq(pa->n_components, 4);
	cr_assert_eq(pb->n_components, 4);
	for (i = 0; i < 4; i++)
		cr_assert_eq(pa->components[i], pb->components[i]);
	cr_assert_eq(pa->components[0], KP__HALT_COMPONENT__HALT_COMPONENT_LEEROPDRACHT);
	cr_assert_eq(pa->outcome, pb->outcome);
	cr_assert_eq(pa->completed_on, pb->completed_on);
	protobuf_c_message_free_unpacked(a, NULL);
	protobuf_c_message_free_unpacked(b, NULL);
	free(buf);
}

/*
 * Every repeated enum of every event is declared packed; and a daemon of
 * the schema before that (the same descriptor without the flag) reads the
 * packed form a new sender writes: a chain upgrades in any order.
 */
Test(pbjson, every_repeated_enum_is_packed_and_the_old_schema_reads_it)
{
	static const int types[] = { 1, 2, 3, 4, 5, 6, 7 };
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessageDescriptor old;
	ProtobufCFieldDescriptor fields[64];
	Kp__HaltOutcome *h;
	size_t len, i, k, n = 0;
	uint8_t *buf = s_pack_example("halt_outcome", &len);

	for (k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		cr_assert_not_null(d = events_descriptor(types[k]));
		for (i = 0; i < d->n_fields; i++) {
			if (d->fields[i].label != PROTOBUF_C_LABEL_REPEATED ||
			    d->fields[i].type != PROTOBUF_C_TYPE_ENUM)
				continue;
			n++;
			cr_assert(d->fields[i].flags &
			    PROTOBUF_C_FIELD_FLAG_PACKED, "%s.%s is not packed",
			    d->name, d->fields[i].name);
		}
	}
	cr_assert_eq(n, 5, "the five repeated enums of PROTOCOL.md §10");
	d = &kp__halt_outcome__descriptor;
	cr_assert_leq(d->n_fields, 64);
	old = *d;
	for (i = 0; i < d->n_fields; i++) {
		fields[i] = d->fields[i];
		fields[i].flags &= ~(uint32_t)PROTOBUF_C_FIELD_FLAG_PACKED;
	}
	old.fields = fields;
	h = (Kp__HaltOutcome *)protobuf_c_message_unpack(&old, NULL, len, buf);
	cr_assert_not_null(h);
	cr_assert_eq(h->base.n_unknown_fields, 0);
	cr_assert_eq(h->n_components, 4);
	cr_assert_eq(h->components[0],
	    KP__HALT_COMPONENT__HALT_COMPONENT_LEEROPDRACHT);
	/* freed under the descriptor it was made with */
	h->base.descriptor = d;
	protobuf_c_message_free_unpacked(&h->base, NULL);
	free(buf);
}

Test(pbjson, unpack_other_cases)
{
	ProtobufCMessage *msg = (ProtobufCMessage *)1;
	kp_err_t err;

	s_expect_unpack_fail(0, (const uint8_t *)"", 0, KP_ERR_INVALID_ARG,
	    "unknown event type 0");
	s_expect_unpack_fail(8, (const uint8_t *)"\x08\x01", 2,
	    KP_ERR_INVALID_ARG, "unknown event type 8");
	s_expect_unpack_fail(1, NULL, 3, KP_ERR_INVALID_ARG, "no payload");
	/* an empty payload is an event without fields */
	cr_assert_eq(events_unpack(KP__EVENT_TYPE__EVENT_TYPE_OM_DECISION, NULL,
	    0, &msg, &err), 0, "%s", err.msg);
	cr_assert_eq(msg->descriptor, &kp__om_decision__descriptor);
	protobuf_c_message_free_unpacked(msg, NULL);
	/* a valid hand-packed Referral: route halt, age 15 */
	cr_assert_eq(events_unpack(KP__EVENT_TYPE__EVENT_TYPE_REFERRAL,
	    (const uint8_t *)"\x08\x02\x40\x0f", 4, &msg, &err), 0, "%s",
	    err.msg);
	cr_assert_eq(((Kp__Referral *)msg)->route, KP__ROUTE__ROUTE_HALT);
	cr_assert_eq(((Kp__Referral *)msg)->age_years, 15);
	protobuf_c_message_free_unpacked(msg, NULL);
}

/* ---- events_field_names ------------------------------------------------ */

Test(pbjson, field_names)
{
	static const struct { const char *type, *names; } c[] = {
		{ "referral", "route,referral_kind,absence_kind,absence_hours,"
		    "late_count,age_years,duty_kind,culpable,help_offered,"
		    "prior_halt_leerplicht,consent_halt,feedback_due_days" },
		{ "halt_outcome", "outcome,components,intervention_hours,"
		    "completed_on,expected_next" },
		{ "rvdk_advice", "advice_kind,recommended_route,investigation,"
		    "strafadvies,care_needed,civil_measure" },
		{ "om_decision", "decision,sanctions,conditional,decided_by,"
		    "decided_on" },
		{ "jbt_request", "phase,request_kind,filed_by,indications,"
		    "officer_attend_request" },
	};
	ProtobufCMessage *msg;
	char out[512];
	uint8_t *buf;
	kp_err_t err;
	size_t i, len;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		buf = s_pack_example(c[i].type, &len);
		cr_assert_eq(events_unpack(events_type_from_name(c[i].type), buf,
		    len, &msg, &err), 0, "%s", err.msg);
		cr_assert_eq(events_field_names(msg, out, sizeof(out)), 0);
		cr_assert_str_eq(out, c[i].names);
		/* exactly the needed size fits; one less does not */
		cr_assert_eq(events_field_names(msg, out, strlen(c[i].names) + 1),
		    0);
		cr_assert_eq(events_field_names(msg, out, strlen(c[i].names)), -1);
		cr_assert_str_eq(out, "");
		cr_assert_eq(events_field_names(msg, out, 0), -1);
		protobuf_c_message_free_unpacked(msg, NULL);
		free(buf);
	}
}

Test(pbjson, field_names_sparse_and_empty)
{
	Kp__Referral r = KP__REFERRAL__INIT;
	Kp__Route routes[1] = { KP__ROUTE__ROUTE_DWANG_CIVIEL };
	char out[128] = "x";

	cr_assert_eq(events_field_names(&r.base, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "");
	r.n_parallel_routes = 1;
	r.parallel_routes = routes;
	r.has_age_years = 1;
	r.age_years = 0;          /* present even though zero */
	r.late_count = 5;         /* has_late_count unset: not present */
	cr_assert_eq(events_field_names(&r.base, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "parallel_routes,age_years");
}
