/*
 * pack.c: the pack frame of PROTOCOL.md §13.1, written and parsed by hand
 * rather than through protobuf-c: the writer appends into the frame it
 * sends, and the reader must say where each item lies in the received
 * message, which protobuf-c's unpack (it copies every bytes field) cannot.
 * The encoding is still plain protobuf: `repeated bytes item = 1`.
 */
#include <stdlib.h>
#include <string.h>

#include "pack.h"

#define PACK_TAG 0x0a   /* field 1, wire type 2 (length-delimited) */

struct pack {
	uint8_t item_type, pack_type;
	uint8_t *buf;        /* pack type || body */
	size_t len, cap;
	size_t count;
	size_t first_off;    /* where the first item's bytes start in buf */
};

pack_t *
pack_new(uint8_t item_type, uint8_t pack_type)
{
	pack_t *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->item_type = item_type;
	p->pack_type = pack_type;
	pack_reset(p);
	return p;
}

void
pack_destroy(pack_t **pp)
{
	if (*pp == NULL)
		return;
	free((*pp)->buf);
	free(*pp);
	*pp = NULL;
}

void
pack_reset(pack_t *p)
{
	p->len = 1;         /* the type byte, written by pack_frame */
	p->count = 0;
	p->first_off = 0;
}

size_t
pack_count(const pack_t *p)
{
	return p->count;
}

static size_t
s_varint_len(size_t v)
{
	size_t n = 1;

	while (v > 0x7f) {
		v >>= 7;
		n++;
	}
	return n;
}

bool
pack_fits(const pack_t *p, size_t len, size_t max_items)
{
	size_t need = 1 + s_varint_len(len) + len;

	return p->count < max_items && len <= KP_PACK_BODY_MAX &&
	    (p->len - 1) + need <= KP_PACK_BODY_MAX;
}

static int
s_reserve(pack_t *p, size_t need)
{
	size_t cap = p->cap > 0 ? p->cap : 4096;
	uint8_t *grown;

	if (p->len + need <= p->cap)
		return 0;
	while (cap < p->len + need)
		cap *= 2;
	if ((grown = realloc(p->buf, cap)) == NULL)
		return -1;
	p->buf = grown;
	p->cap = cap;
	return 0;
}

int
pack_add(pack_t *p, const uint8_t *item, size_t len)
{
	size_t v = len;

	if (s_reserve(p, 1 + s_varint_len(len) + len) != 0)
		return -1;
	p->buf[p->len++] = PACK_TAG;
	do {
		p->buf[p->len++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v != 0);
	if (p->count == 0)
		p->first_off = p->len;
	if (len > 0)
		memcpy(p->buf + p->len, item, len);
	p->len += len;
	p->count++;
	return 0;
}

const uint8_t *
pack_frame(pack_t *p, size_t *len)
{
	if (p->count == 0)
		return NULL;
	if (p->count == 1) {
		/* the byte before the item (its length's last byte) becomes
		 * the plain frame's type byte */
		p->buf[p->first_off - 1] = p->item_type;
		*len = p->len - (p->first_off - 1);
		return p->buf + p->first_off - 1;
	}
	p->buf[0] = p->pack_type;
	*len = p->len;
	return p->buf;
}

/* A varint at b[*at..len) of at most 3 bytes (a length <= 2^21 - 1, over
 * any body allowed); -1: cut short or too long. */
static int
s_varint(const uint8_t *b, size_t len, size_t *at, size_t *out)
{
	size_t v = 0;
	unsigned shift = 0;

	while (*at < len && shift < 21) {
		uint8_t c = b[(*at)++];

		v |= (size_t)(c & 0x7f) << shift;
		if ((c & 0x80) == 0) {
			*out = v;
			return 0;
		}
		shift += 7;
	}
	return -1;
}

int
pack_parse(const uint8_t *body, size_t len, pack_item_t *items,
    size_t max_items, size_t *n)
{
	size_t at = 0, ilen, count = 0;

	*n = 0;
	if (len > KP_PACK_BODY_MAX)
		return -1;
	while (at < len) {
		if (body[at++] != PACK_TAG || count == max_items ||
		    s_varint(body, len, &at, &ilen) != 0 || ilen > len - at)
			return -1;
		items[count].off = at;
		items[count].len = ilen;
		count++;
		at += ilen;
	}
	if (count < 2)
		return -1;
	*n = count;
	return 0;
}

size_t
pack_announced(const char *value)
{
	char *end;
	unsigned long v;

	if (value == NULL || *value < '0' || *value > '9')
		return 1;
	v = strtoul(value, &end, 10);
	if (*end != '\0' || v < 2)
		return 1;
	return v > KP_PACK_ITEMS_MAX ? KP_PACK_ITEMS_MAX : (size_t)v;
}
