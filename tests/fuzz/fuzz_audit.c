/*
 * fuzz_audit: the audit log's two readers of untrusted input: one line of
 * an audit export as `ketenpost audit` reads it (client/audit.c: a JSON
 * object, "type" entry or tree_head, audit_entry_from_json /
 * audit_head_from_json), and an entry's canonical bytes as stored or
 * proven (audit_entry_decode).  What parses must survive its own round
 * trip: decode(encode(e)) encodes to the same bytes.
 *   input: selector (1 byte: even = export line, odd = entry bytes) || data
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auditlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
s_round_trip(const audit_entry_t *e)
{
	uint8_t a[AUDIT_ENTRY_MAX], b[AUDIT_ENTRY_MAX];
	size_t na = 0, nb = 0;
	audit_entry_t again;
	json_t *j;
	kp_err_t err;

	if (audit_entry_encode(e, a, sizeof(a), &na, &err) != 0)
		return;
	if (audit_entry_decode(a, na, &again, &err) != 0 ||
	    audit_entry_encode(&again, b, sizeof(b), &nb, &err) != 0 ||
	    na != nb || memcmp(a, b, na) != 0)
		abort();
	if ((j = audit_entry_to_json(e)) != NULL)
		json_decref(j);
}

static void
s_line(const char *text, size_t len)
{
	const char *type;
	audit_entry_t e;
	audit_head_t h;
	json_t *j;
	kp_err_t err;

	if ((j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return;
	type = json_string_value(json_object_get(j, "type"));
	if (type != NULL && strcmp(type, "tree_head") == 0) {
		if (audit_head_from_json(j, &h, &err) == 0)
			json_decref(audit_head_to_json(&h));
	} else if (audit_entry_from_json(j, &e, &err) == 0) {
		s_round_trip(&e);
	}
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	audit_entry_t e;
	kp_err_t err;

	if (size < 1)
		return 0;
	if (data[0] % 2 == 0) {
		s_line((const char *)data + 1, size - 1);
	} else if (audit_entry_decode(data + 1, size - 1, &e, &err) == 0) {
		s_round_trip(&e);
	}
	return 0;
}
