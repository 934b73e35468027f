/*
 * fuzz_api: one local API request as ketenpostd unpacks it (apisrv.c:
 * kp.Request, at most API_REQUEST_MAX bytes) and, for a send, checks it
 * as the municipality's daemon does (recipient in the directory, case
 * reference, event payload, chain policy).  A request that unpacks is
 * packed again: the same size, or protobuf-c lost or made up a field.
 */
#include <stdlib.h>

#include "api.pb-c.h"
#include "envelope.h"
#include "events.h"
#include "fuzzcommon.h"
#include "pseudonym.h"

#define API_REQUEST_MAX (KP_MAX_PAYLOAD + 4096)   /* as in apisrv.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
s_send(const fz_org_t *lp, const Kp__SendRequest *s)
{
	const partner_t *me = identity_public(lp->id);
	ProtobufCMessage *ev = NULL;
	const peer_t *to;
	kp_err_t e;

	if (!s->has_event_type || events_descriptor(s->event_type) == NULL ||
	    s->to_oin == NULL ||
	    (to = directory_find(lp->dir, s->to_oin)) == NULL ||
	    !pseudonym_ref_valid(s->case_ref) || !s->has_payload)
		return;
	if (events_unpack(s->event_type, s->payload.data, s->payload.len, &ev,
	    &e) != 0)
		return;
	(void)policy_check(fz_policy(), s->event_type, partner_role(me),
	    partner_role(peer_partner(to)), ev, &e);
	protobuf_c_message_free_unpacked(ev, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static fz_org_t lp;
	Kp__Request *req;
	uint8_t *buf;
	size_t n;

	if (lp.dir == NULL)
		fz_org_load(FZ_OIN_LEERPLICHT, &lp);
	if (size > API_REQUEST_MAX ||
	    (req = kp__request__unpack(NULL, size, data)) == NULL)
		return 0;
	if (req->op_case == KP__REQUEST__OP_SEND && req->send != NULL)
		s_send(&lp, req->send);
	n = kp__request__get_packed_size(req);
	if ((buf = malloc(n ? n : 1)) != NULL) {
		if (kp__request__pack(req, buf) != n)
			abort();
		free(buf);
	}
	kp__request__free_unpacked(req, NULL);
	return 0;
}
