/*
 * fuzz_pbjson: JSON from the client (`ketenpost send --json`) made into a
 * protobuf message (pbjson_from_json) of an event type or of the API
 * request, then packed and turned back into JSON.
 *   input: selector (1 byte) || JSON text
 */
#include <stdlib.h>

#include <jansson.h>

#include "api.pb-c.h"
#include "events.h"
#include "pbjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *desc;
	ProtobufCMessage *msg = NULL;
	json_t *obj, *back;
	uint8_t *buf;
	kp_err_t e;
	size_t n;

	if (size < 1)
		return 0;
	desc = data[0] % 8 == 7 ? &kp__request__descriptor :
	    events_descriptor(data[0] % 8);
	if (desc == NULL)
		return 0;
	if ((obj = json_loadb((const char *)data + 1, size - 1,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return 0;
	if (pbjson_from_json(desc, obj, &msg, &e) == 0) {
		n = protobuf_c_message_get_packed_size(msg);
		if ((buf = malloc(n ? n : 1)) != NULL) {
			(void)protobuf_c_message_pack(msg, buf);
			free(buf);
		}
		if ((back = pbjson_to_json(msg)) != NULL)
			json_decref(back);
		pbjson_free(msg);
	}
	json_decref(obj);
	return 0;
}
