/*
 * pack.h: several frame bodies in one transport frame (PROTOCOL.md §13.1).
 *
 * A pack body is the protobuf encoding of `message Pack { repeated bytes
 * item = 1; }`.  The writer builds the whole frame (type byte, then the
 * body) in one buffer as items are added, so sending it copies nothing;
 * the reader returns where each item lies inside the body, so the caller
 * can hand out the items without copying them either.
 */
#ifndef KP_PACK_H
#define KP_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KP_PACK_ITEMS_MAX 64           /* what ketenpostd reads and announces */
#define KP_PACK_BODY_MAX (128 * 1024)  /* a pack frame's body, bytes */
/* ZMTP handshake metadata (ZMQ_METADATA) announcing the items one reads. */
#define KP_PACK_PROPERTY "X-Kp-Pack"

typedef struct pack pack_t;

/* A pack whose items are bodies of frame type item_type (0x01, 0x02), to
 * be sent as frame type pack_type (0x03, 0x04); NULL: out of memory. */
pack_t *pack_new(uint8_t item_type, uint8_t pack_type);
void pack_destroy(pack_t **p);

/* Empty p for the next frame (its buffer is kept). */
void pack_reset(pack_t *p);
size_t pack_count(const pack_t *p);

/* Whether an item of len bytes still fits: at most max_items items and
 * KP_PACK_BODY_MAX bytes of body. */
bool pack_fits(const pack_t *p, size_t len, size_t max_items);

/* Append an item (the caller checked pack_fits); -1: out of memory. */
int pack_add(pack_t *p, const uint8_t *item, size_t len);

/* The frame to send: a pack frame (pack type || body) for two items or
 * more, the plain frame (item type || item) for one; NULL for none.  Valid
 * until pack_reset, which must come before the next pack_add (a frame of
 * one item is made in place). */
const uint8_t *pack_frame(pack_t *p, size_t *len);

/* Where one item lies in a parsed body. */
typedef struct pack_item {
	size_t off;
	size_t len;
} pack_item_t;

/* Parse a pack body (without its type byte) of at most max_items items
 * into items[] (room for max_items).  OUT: *n.  -1: malformed (another
 * field or wire type, a length past the end, fewer than 2 items or more
 * than max_items, a body over KP_PACK_BODY_MAX). */
int pack_parse(const uint8_t *body, size_t len, pack_item_t *items,
    size_t max_items, size_t *n);

/* The value a peer announced under KP_PACK_PROPERTY (NULL: none): the
 * items it reads in one pack, capped at KP_PACK_ITEMS_MAX; 1 if it
 * announced nothing usable (send it single frames). */
size_t pack_announced(const char *value);

#endif
