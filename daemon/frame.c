/*
 * frame.c: the transport frame between daemons (PROTOCOL.md §13): one type
 * byte, then an envelope or a receipt, with this daemon's latest signed
 * audit-log head attached for the partner to witness (docs/AUDIT.md); or
 * several such bodies in one pack frame (§13.1, lib/pack.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "daemon.h"
#include "envelope.h"

/* At most what a tree head with its proof adds to a message (a receipt
 * with its head stays within KP_MAX_RECEIPT: ledger.c). */
#define KPD_HEAD_ROOM KP_MAX_RECEIPT

/* The body of a frame to to_oin: msg with our latest tree head attached
 * (malloc'd, *blen); NULL: out of memory. */
static uint8_t *
s_frame_body(kpd_t *d, const char *to_oin, bool is_receipt,
    const uint8_t *msg, size_t len, size_t *blen)
{
	uint8_t *body, *head = NULL;
	size_t hlen = 0;

	if ((body = malloc(len > 0 ? len : 1)) == NULL)
		return NULL;
	memcpy(body, msg, len);
	*blen = len;
	if (ledger_head_for(d, to_oin, &head, &hlen) != 0 ||
	    (head != NULL && envelope_attach_head(&body, blen, is_receipt,
	    head, hlen) != 0)) {
		free(body);
		body = NULL;
	}
	free(head);
	return body;
}

uint8_t *
kpd_frame_build(kpd_t *d, const char *to_oin, uint8_t type,
    const uint8_t *msg, size_t len, size_t *frame_len)
{
	uint8_t *body, *frame = NULL;
	size_t blen = 0;

	if ((body = s_frame_body(d, to_oin, type == KPD_FRAME_RECEIPT, msg,
	    len, &blen)) == NULL)
		return NULL;
	if ((frame = malloc(blen + 1)) != NULL) {
		frame[0] = type;
		memcpy(frame + 1, body, blen);
		*frame_len = blen + 1;
	}
	free(body);
	return frame;
}

int
kpd_frame_pack_add(kpd_t *d, pack_t *pack, size_t max_items,
    const char *to_oin, bool is_receipt, const uint8_t *msg, size_t len,
    bool *full)
{
	uint8_t *body;
	size_t blen = 0;
	int rc;

	/* asked before the head is drawn: ledger_head_for counts it sent */
	if ((*full = !pack_fits(pack, len + KPD_HEAD_ROOM, max_items)))
		return 0;
	if ((body = s_frame_body(d, to_oin, is_receipt, msg, len, &blen)) ==
	    NULL)
		return -1;
	rc = pack_add(pack, body, blen);
	free(body);
	return rc;
}

/* zmq.h declares ZMQ_METADATA only in its draft API; Debian's libzmq
 * 4.3.4 takes it all the same (bench/zmqpack.c --options shows it). */
#ifndef ZMQ_METADATA
#define ZMQ_METADATA 95
#endif

int
kpd_frame_announce_packs(void *sock)
{
	char prop[32];
	int n;

	n = snprintf(prop, sizeof(prop), "%s:%d", KP_PACK_PROPERTY,
	    KP_PACK_ITEMS_MAX);
	return zmq_setsockopt(sock, ZMQ_METADATA, prop, (size_t)n) == 0 ? 0 :
	    -1;
}
