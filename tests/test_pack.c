/*
 * test_pack.c: packs (PROTOCOL.md §13.1), several frame bodies in one
 * ZeroMQ message.
 *
 * First lib/pack alone: what the writer builds and the reader accepts and
 * refuses.  Then a real ketenpostd seen from the wire, the test process
 * playing a partner with real CURVE keys of the test chain: packs of
 * envelopes read item by item, receipts packed back only to a peer that
 * announced X-Kp-Pack, a malformed pack refused as a whole.  Last two
 * daemons: a backlog drained to a partner that was down.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>
#include <zmq.h>

#include "chain.h"
#include "common.h"
#include "daemons.h"
#include "envelope.h"
#include "pack.h"
#include "util.h"

TestSuite(pack, .init = test_init, .timeout = 240);

/* ---- lib/pack ---- */

/* Item i of a test pack: len bytes, each (i * 7 + k) mod 251, so two
 * items never share their bytes at the same offset. */
static uint8_t *
s_item(size_t i, size_t len)
{
	uint8_t *b = malloc(len > 0 ? len : 1);
	size_t k;

	cr_assert_not_null(b);
	for (k = 0; k < len; k++)
		b[k] = (uint8_t)((i * 7 + k) % 251);
	return b;
}

/* Lengths that give varints of one, two and three bytes (16384, once:
 * 64 items stay within the body limit), and an empty item. */
static size_t
s_len(size_t i)
{
	static const size_t lens[] = { 1, 127, 128, 300, 0, 16383, 16384, 5 };

	if (i >= 8 && (lens[i % 8] > 300))
		return 1000;
	return lens[i % 8];
}

/* Pack n items of s_len, parse the frame back, compare every item. */
static void
s_round_trip(size_t n)
{
	pack_t *p = pack_new(0x01, 0x03);
	pack_item_t items[KP_PACK_ITEMS_MAX];
	const uint8_t *f;
	uint8_t *it;
	size_t i, len, got;

	cr_assert_not_null(p);
	for (i = 0; i < n; i++) {
		it = s_item(i, s_len(i));
		cr_assert(pack_fits(p, s_len(i), KP_PACK_ITEMS_MAX));
		cr_assert_eq(pack_add(p, it, s_len(i)), 0);
		free(it);
	}
	cr_assert_eq(pack_count(p), n);
	f = pack_frame(p, &len);
	cr_assert_not_null(f);
	cr_assert_eq(f[0], 0x03, "a pack frame starts with the pack type");
	cr_assert_eq(pack_parse(f + 1, len - 1, items, KP_PACK_ITEMS_MAX,
	    &got), 0);
	cr_assert_eq(got, n);
	for (i = 0; i < n; i++) {
		it = s_item(i, s_len(i));
		cr_assert_eq(items[i].len, s_len(i), "item %zu", i);
		cr_assert(items[i].off + items[i].len <= len - 1);
		if (s_len(i) > 0)
			cr_assert_arr_eq(f + 1 + items[i].off, it, s_len(i),
			    "item %zu", i);
		free(it);
	}
	pack_destroy(&p);
	cr_assert_null(p);
}

Test(pack, two_items_round_trip)
{
	s_round_trip(2);
}

Test(pack, sixty_four_items_round_trip)
{
	s_round_trip(KP_PACK_ITEMS_MAX);
}

Test(pack, one_item_is_the_plain_frame_and_the_buffer_is_reused)
{
	pack_t *p = pack_new(0x02, 0x04);
	pack_item_t items[4];
	uint8_t *a = s_item(1, 300), *b = s_item(2, 40);
	const uint8_t *f;
	size_t len, n;

	cr_assert_null(pack_frame(p, &len), "no frame for no item");
	cr_assert_eq(pack_add(p, a, 300), 0);
	f = pack_frame(p, &len);
	cr_assert_eq(len, 301);
	cr_assert_eq(f[0], 0x02, "one item goes as a plain receipt frame");
	cr_assert_arr_eq(f + 1, a, 300);
	/* the plain frame was made in place: the next pack is still right */
	pack_reset(p);
	cr_assert_eq(pack_count(p), 0);
	cr_assert_eq(pack_add(p, b, 40), 0);
	cr_assert_eq(pack_add(p, a, 300), 0);
	f = pack_frame(p, &len);
	cr_assert_eq(f[0], 0x04);
	cr_assert_eq(pack_parse(f + 1, len - 1, items, 4, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(items[0].len, 40);
	cr_assert_arr_eq(f + 1 + items[0].off, b, 40);
	cr_assert_eq(items[1].len, 300);
	cr_assert_arr_eq(f + 1 + items[1].off, a, 300);
	free(a);
	free(b);
	pack_destroy(&p);
	pack_destroy(&p);    /* NULL is fine */
}

Test(pack, fits_refuses_the_item_past_the_count_or_the_size)
{
	pack_t *p = pack_new(0x01, 0x03);
	uint8_t *big = s_item(0, 60000);
	size_t i;

	/* an item exactly filling the body: tag, 3-byte varint, item */
	cr_assert(pack_fits(p, KP_PACK_BODY_MAX - 4, KP_PACK_ITEMS_MAX));
	cr_assert(!pack_fits(p, KP_PACK_BODY_MAX - 3, KP_PACK_ITEMS_MAX));
	cr_assert(!pack_fits(p, KP_PACK_BODY_MAX + 1, KP_PACK_ITEMS_MAX));
	cr_assert_eq(pack_add(p, big, 60000), 0);
	cr_assert_eq(pack_add(p, big, 60000), 0);
	/* 2 * 60004 in the body: 11064 bytes are left, for a tag, a
	 * 2-byte varint and 11061 bytes */
	cr_assert(pack_fits(p, 11061, KP_PACK_ITEMS_MAX));
	cr_assert(!pack_fits(p, 11062, KP_PACK_ITEMS_MAX));
	pack_reset(p);
	for (i = 0; i < KP_PACK_ITEMS_MAX; i++) {
		cr_assert(pack_fits(p, 10, KP_PACK_ITEMS_MAX), "item %zu", i);
		cr_assert_eq(pack_add(p, big, 10), 0);
	}
	cr_assert(!pack_fits(p, 10, KP_PACK_ITEMS_MAX), "a 65th item");
	cr_assert(!pack_fits(p, 0, KP_PACK_ITEMS_MAX));
	/* a peer that reads fewer */
	pack_reset(p);
	cr_assert_eq(pack_add(p, big, 10), 0);
	cr_assert_eq(pack_add(p, big, 10), 0);
	cr_assert(!pack_fits(p, 10, 2));
	free(big);
	pack_destroy(&p);
}

/* pack_parse of body, with one more item slot than max holding a
 * sentinel the parser must never write. */
static int
s_parse(const uint8_t *body, size_t len, size_t max, size_t *n)
{
	pack_item_t items[KP_PACK_ITEMS_MAX + 1];
	int rc;

	cr_assert(max <= KP_PACK_ITEMS_MAX);
	items[max].off = items[max].len = 0xdeadbeef;
	*n = 12345;
	rc = pack_parse(body, len, items, max, n);
	cr_assert_eq(items[max].off, 0xdeadbeef, "wrote past max_items");
	cr_assert_eq(items[max].len, 0xdeadbeef, "wrote past max_items");
	if (rc != 0)
		cr_assert_eq(*n, 0, "*n is 0 on a refusal");
	return rc;
}

/* k items of 3 bytes each as a body; OUT: *len. */
static uint8_t *
s_body(size_t k, size_t *len)
{
	uint8_t *b = malloc(5 * k + 1);
	size_t i;

	for (i = 0; i < k; i++) {
		b[5 * i] = 0x0a;
		b[5 * i + 1] = 3;
		memset(b + 5 * i + 2, (int)i, 3);
	}
	*len = 5 * k;
	return b;
}

Test(pack, parse_refuses_every_malformed_body)
{
	static const uint8_t one[] = { 0x0a, 0x02, 'h', 'i' };
	static const uint8_t tag2[] = { 0x0a, 0x01, 'a', 0x12, 0x01, 'b' };
	static const uint8_t varint[] = { 0x0a, 0x01, 'a', 0x08, 0x01 };
	static const uint8_t cut[] = { 0x0a, 0x01, 'a', 0x0a, 0x80 };
	static const uint8_t cut3[] = { 0x0a, 0x01, 'a', 0x0a, 0xff, 0xff,
	    0xff, 0x01 };
	static const uint8_t past[] = { 0x0a, 0x01, 'a', 0x0a, 0x05, 'b' };
	uint8_t *b;
	size_t len, n;

	cr_assert_eq(s_parse((const uint8_t *)"", 0, 64, &n), -1, "empty");
	cr_assert_eq(s_parse(one, sizeof(one), 64, &n), -1, "one item");
	cr_assert_eq(s_parse(tag2, sizeof(tag2), 64, &n), -1, "field 2");
	cr_assert_eq(s_parse(varint, sizeof(varint), 64, &n), -1,
	    "field 1 as a varint");
	cr_assert_eq(s_parse(cut, sizeof(cut), 64, &n), -1, "varint cut");
	cr_assert_eq(s_parse(cut3, sizeof(cut3), 64, &n), -1,
	    "a length over three bytes");
	cr_assert_eq(s_parse(past, sizeof(past), 64, &n), -1, "past the end");
	b = s_body(KP_PACK_ITEMS_MAX + 1, &len);
	cr_assert_eq(s_parse(b, len, KP_PACK_ITEMS_MAX, &n), -1, "65 items");
	cr_assert_eq(s_parse(b, len - 5, KP_PACK_ITEMS_MAX, &n), 0);
	cr_assert_eq(n, KP_PACK_ITEMS_MAX);
	cr_assert_eq(s_parse(b, 15, 2, &n), -1, "3 items, 2 read");
	free(b);
	b = s_body(2, &len);
	b[len] = 0x00;
	cr_assert_eq(s_parse(b, len + 1, 64, &n), -1, "a trailing byte");
	cr_assert_eq(s_parse(b, len, 64, &n), 0);
	cr_assert_eq(n, 2);
	free(b);
}

/* A well-formed body of two items, body_len bytes in all. */
static uint8_t *
s_body_of_size(size_t body_len, size_t *len)
{
	pack_t *p = pack_new(0x01, 0x03);
	size_t second = body_len - (1 + 3 + 65536) - (1 + 3);
	uint8_t *a = s_item(0, 65536), *b = s_item(1, second), *out;
	const uint8_t *f;

	/* pack_add trusts its caller's pack_fits: it builds what is asked */
	cr_assert_eq(pack_add(p, a, 65536), 0);
	cr_assert_eq(pack_add(p, b, second), 0);
	f = pack_frame(p, len);
	cr_assert_eq(--*len, body_len);
	out = malloc(*len);
	memcpy(out, f + 1, *len);
	free(a);
	free(b);
	pack_destroy(&p);
	return out;
}

Test(pack, parse_refuses_a_body_over_the_limit)
{
	uint8_t *b;
	size_t len, n;

	b = s_body_of_size(KP_PACK_BODY_MAX, &len);
	cr_assert_eq(s_parse(b, len, 64, &n), 0, "exactly the limit");
	cr_assert_eq(n, 2);
	free(b);
	b = s_body_of_size(KP_PACK_BODY_MAX + 1, &len);
	cr_assert_eq(s_parse(b, len, 64, &n), -1, "one byte over");
	free(b);
}

Test(pack, announced_values)
{
	cr_assert_eq(pack_announced("64"), 64);
	cr_assert_eq(pack_announced("1000"), KP_PACK_ITEMS_MAX);
	cr_assert_eq(pack_announced("99999999999999999999999"),
	    KP_PACK_ITEMS_MAX);
	cr_assert_eq(pack_announced("2"), 2);
	cr_assert_eq(pack_announced("1"), 1);
	cr_assert_eq(pack_announced("0"), 1);
	cr_assert_eq(pack_announced("x"), 1);
	cr_assert_eq(pack_announced(""), 1);
	cr_assert_eq(pack_announced(NULL), 1);
	cr_assert_eq(pack_announced("12x"), 1);
	cr_assert_eq(pack_announced("-5"), 1);
	cr_assert_eq(pack_announced(" 8"), 1);
}
