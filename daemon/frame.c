/*
 * frame.c: the transport frame between daemons (PROTOCOL.md §13): one type
 * byte, then an envelope or a receipt, with this daemon's latest signed
 * audit-log head attached for the partner to witness (docs/AUDIT.md).
 */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "envelope.h"

uint8_t *
kpd_frame_build(kpd_t *d, const char *to_oin, uint8_t type,
    const uint8_t *msg, size_t len, size_t *frame_len)
{
	uint8_t *body, *frame = NULL, *head = NULL;
	size_t blen = len, hlen = 0;

	if ((body = malloc(len > 0 ? len : 1)) == NULL)
		return NULL;
	memcpy(body, msg, len);
	if (ledger_head_for(d, to_oin, &head, &hlen) != 0)
		goto out;
	if (head != NULL && envelope_attach_head(&body, &blen,
	    type == KPD_FRAME_RECEIPT, head, hlen) != 0)
		goto out;
	if ((frame = malloc(blen + 1)) == NULL)
		goto out;
	frame[0] = type;
	memcpy(frame + 1, body, blen);
	*frame_len = blen + 1;
out:
	free(head);
	free(body);
	return frame;
}
