/*
 * fuzz_event: a decrypted event payload, as the receiving daemon (and the
 * API, for a send) handles it: events_unpack of one event type, then the
 * chain policy's check between two roles, the field names for the audit
 * log and the JSON form for the client.
 *   input: type (1 byte) || sender role (1) || recipient role (1) || payload
 */
#include <jansson.h>

#include "events.h"
#include "fuzzcommon.h"
#include "pbjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCMessage *ev = NULL;
	char names[1024];
	json_t *j;
	kp_err_t e;
	int type;

	if (size < 3)
		return 0;
	type = data[0] % 16;
	if (events_unpack(type, data + 3, size - 3, &ev, &e) != 0)
		return 0;
	(void)policy_check(fz_policy(), type, data[1] % 8, data[2] % 8, ev,
	    &e);
	(void)events_field_names(ev, names, sizeof(names));
	if ((j = pbjson_to_json(ev)) != NULL)
		json_decref(j);
	pbjson_free(ev);
	return 0;
}
