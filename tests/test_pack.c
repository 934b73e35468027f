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
#include <errno.h>
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
#include "envelope.pb-c.h"
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

/* ---- a real ketenpostd, from the wire ---- */

/* zmq.h has the option only in its draft section (PERFORMANCE.md, issue
 * 16: Debian's libzmq 4.3.4 takes it). */
#define S_RECEIPTS_MAX 80

/* What came back on a connection: the receipts (verified), their raw
 * bytes, how they came, and the X-Kp-Pack the daemon announced. */
struct got {
	receipt_t r[S_RECEIPTS_MAX];
	uint8_t *raw[S_RECEIPTS_MAX];
	size_t rawlen[S_RECEIPTS_MAX];
	size_t n;
	size_t singles, packs;        /* 0x02 and 0x04 messages */
	size_t most;                  /* the most receipts in one 0x04 */
	char announced[32];           /* "" if none */
};

static void
s_got_free(struct got *g)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		free(g->raw[i]);
	memset(g, 0, sizeof(*g));
}

/* One message: type || body. */
static void
s_send(td_rogue_t *r, uint8_t type, const uint8_t *body, size_t len)
{
	uint8_t *frame = malloc(len + 1);

	cr_assert_not_null(frame);
	frame[0] = type;
	memcpy(frame + 1, body, len);
	cr_assert(zmq_send(r->sock, frame, len + 1, 0) == (int)(len + 1));
	free(frame);
}

/* The n (>= 2) envelopes as one 0x03 message, written by lib/pack as a
 * sender would. */
static void
s_send_pack(td_rogue_t *r, uint8_t *const *env, const size_t *len,
    size_t n)
{
	pack_t *p = pack_new(0x01, 0x03);
	const uint8_t *f;
	size_t i, flen;

	cr_assert(n >= 2);
	for (i = 0; i < n; i++) {
		cr_assert(pack_fits(p, len[i], KP_PACK_ITEMS_MAX));
		cr_assert_eq(pack_add(p, env[i], len[i]), 0);
	}
	f = pack_frame(p, &flen);
	cr_assert_eq(f[0], 0x03);
	cr_assert(zmq_send(r->sock, f, flen, 0) == (int)flen);
	pack_destroy(&p);
}

/* One receipt of a message, verified as `as`. */
static void
s_got_add(struct got *g, chain_t *as, const uint8_t *b, size_t len)
{
	kp_err_t e;

	cr_assert_lt(g->n, S_RECEIPTS_MAX, "more receipts than events");
	cr_assert(receipt_verify(as->dir, b, len, &g->r[g->n], &e) == 0,
	    "a receipt does not verify: %s", e.msg);
	g->raw[g->n] = malloc(len);
	memcpy(g->raw[g->n], b, len);
	g->rawlen[g->n] = len;
	g->n++;
}

/* One message from the daemon into g: a 0x02 receipt or a 0x04 pack of
 * them (anything else fails the test).  false on timeout. */
static bool
s_recv_one(td_rogue_t *r, chain_t *as, struct got *g)
{
	pack_item_t items[KP_PACK_ITEMS_MAX];
	const uint8_t *b;
	const char *v;
	size_t len, n, i;
	zmq_msg_t m;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, r->sock, 0) < 0) {
		zmq_msg_close(&m);
		return false;
	}
	b = zmq_msg_data(&m);
	len = zmq_msg_size(&m);
	cr_assert_gt(len, 1);
	if ((v = zmq_msg_gets(&m, KP_PACK_PROPERTY)) != NULL)
		snprintf(g->announced, sizeof(g->announced), "%s", v);
	if (b[0] == 0x02) {
		g->singles++;
		s_got_add(g, as, b + 1, len - 1);
	} else {
		cr_assert_eq(b[0], 0x04, "a message of type 0x%02x", b[0]);
		g->packs++;
		cr_assert_eq(pack_parse(b + 1, len - 1, items,
		    KP_PACK_ITEMS_MAX, &n), 0, "a 0x04 that does not parse");
		for (i = 0; i < n; i++)
			s_got_add(g, as, b + 1 + items[i].off, items[i].len);
		if (n > g->most)
			g->most = n;
	}
	zmq_msg_close(&m);
	return true;
}

/* Receive until `want` receipts came (each message waits up to the
 * socket's timeout), then make sure no more follows for half a second
 * (an absence has no event to wait for). */
static void
s_collect(td_rogue_t *r, chain_t *as, size_t want, struct got *g)
{
	int quiet = 500, tmo = 0;
	size_t tlen = sizeof(tmo);

	while (g->n < want && s_recv_one(r, as, g))
		;
	cr_assert_eq(g->n, want, "%zu receipts for %zu events", g->n, want);
	cr_assert_eq(zmq_getsockopt(r->sock, ZMQ_RCVTIMEO, &tmo, &tlen), 0);
	zmq_setsockopt(r->sock, ZMQ_RCVTIMEO, &quiet, sizeof(quiet));
	cr_assert(!s_recv_one(r, as, g), "a receipt too many");
	zmq_setsockopt(r->sock, ZMQ_RCVTIMEO, &tmo, sizeof(tmo));
}

/* The receipt of event id; asserts there is exactly one. */
static size_t
s_find(const struct got *g, const uint8_t id[16])
{
	size_t i, at = g->n, seen = 0;

	for (i = 0; i < g->n; i++)
		if (g->r[i].has_event_id &&
		    memcmp(g->r[i].event_id, id, 16) == 0) {
			at = i;
			seen++;
		}
	cr_assert_eq(seen, 1, "%zu receipts for one event", seen);
	return at;
}

/* n single-signed referrals from Leerplicht to Halt. */
static void
s_seal_n(td_chain_t *c, chain_t *lp, size_t n, uint8_t **env, size_t *len,
    uint8_t (*ids)[16])
{
	size_t i;

	for (i = 0; i < n; i++)
		td_seal(lp, c, OIN_HALT, "referral", td_example("referral"),
		    kp_now_ms(), &env[i], &len[i], ids[i]);
}

/* Envelopes a wire test may seal: one more than a pack may hold. */
#define S_WIRE_ENV_MAX (KP_PACK_ITEMS_MAX + 1)

/* A receiver seen from the wire (s_wire_open, s_wire_close): the set-up
 * and tear-down every such test shares, so that each keeps only what it
 * sends and asserts. */
struct wire {
	td_chain_t c;
	td_org_t *halt;               /* the receiver, running */
	chain_t *lp;                  /* Leerplicht's chain, to seal with */
	td_rogue_t r;                 /* the test's connection as Leerplicht */
	uint8_t *env[S_WIRE_ENV_MAX]; /* the n sealed envelopes, freed by close */
	size_t len[S_WIRE_ENV_MAX];
	uint8_t ids[S_WIRE_ENV_MAX][16];
	size_t n;
	struct got g;                 /* what came back on r */
};

/* How s_wire_open seals: each envelope signed on its own (s_seal_n), or
 * all in one batch with fresh ids and random cases (td_seal_referrals). */
#define S_WIRE_SINGLE 0u
#define S_WIRE_BATCH 1u

/* Halt running (with conf, if not NULL, in its chain's configuration),
 * n envelopes sealed by Leerplicht as `how` says, then the test connected
 * to Halt as Leerplicht announcing `announce` (NULL: nothing). */
static void
s_wire_open(struct wire *w, const char *conf, size_t n, unsigned how,
    const char *announce)
{
	cr_assert(n <= S_WIRE_ENV_MAX);
	memset(w, 0, sizeof(*w));
	w->n = n;
	td_chain_make(&w->c, conf);
	w->halt = td_org(&w->c, OIN_HALT);
	td_start(w->halt);
	w->lp = td_chain_open(&w->c, OIN_LEERPLICHT);
	if (how == S_WIRE_BATCH)
		td_seal_referrals(&w->c, w->lp, n, w->ids, NULL, kp_now_ms(),
		    TD_SEAL_FRESH_IDS | TD_SEAL_RANDOM_CASE, w->env, w->len,
		    NULL);
	else
		s_seal_n(&w->c, w->lp, n, w->env, w->len, w->ids);
	td_rogue_connect_announcing(&w->r, w->lp, w->halt, announce, 30000);
}

static void
s_wire_close(struct wire *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		free(w->env[i]);
	s_got_free(&w->g);
	td_rogue_close(&w->r);
	chain_close(&w->lp);
	td_chain_stop_all(&w->c);
}

static void
s_assert_accepted(const struct got *g, uint8_t (*ids)[16], size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		k = s_find(g, ids[i]);
		cr_assert_eq(g->r[k].status,
		    KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED, "event %zu "
		    "refused, reason %d", i, g->r[k].reason);
		cr_assert_str_eq(g->r[k].issuer_oin, OIN_HALT);
		cr_assert_str_eq(g->r[k].subject_oin, OIN_LEERPLICHT);
	}
}

/* A peer that announced nothing gets single receipts, one per
 * item; the daemon's ROUTER announces what it reads. */
Test(pack, a_pack_from_a_peer_that_announced_nothing_gets_single_receipts)
{
	struct wire w;

	s_wire_open(&w, NULL, 3, S_WIRE_SINGLE, NULL);
	s_send_pack(&w.r, w.env, w.len, 3);
	s_collect(&w.r, w.lp, 3, &w.g);
	cr_assert_eq(w.g.singles, 3, "three 0x02 receipts");
	cr_assert_eq(w.g.packs, 0, "no 0x04 to a peer that announced nothing");
	s_assert_accepted(&w.g, w.ids, 3);
	cr_assert_eq(td_inbox_count(w.halt), 3);
	cr_assert_str_eq(w.g.announced, "64", "the ROUTER announces 64");
	s_wire_close(&w);
}

/* A peer that announced X-Kp-Pack gets the receipts of a pack
 * packed (a receiver may split them over its passes: any mix of 0x04 and
 * 0x02, one receipt per event, at least one pack). */
Test(pack, a_peer_that_announced_gets_its_receipts_packed)
{
	struct wire w;

	s_wire_open(&w, NULL, 10, S_WIRE_SINGLE, "64");
	s_send_pack(&w.r, w.env, w.len, 10);
	s_collect(&w.r, w.lp, 10, &w.g);
	cr_assert_geq(w.g.packs, 1, "no 0x04 (%zu single receipts)",
	    w.g.singles);
	s_assert_accepted(&w.g, w.ids, 10);
	cr_assert_eq(td_inbox_count(w.halt), 10);
	cr_assert_str_eq(w.g.announced, "64");
	s_wire_close(&w);
}

/* A peer that reads fewer items gets packs of at most that many. */
Test(pack, receipt_packs_hold_at_most_what_the_peer_announced)
{
	struct wire w;

	s_wire_open(&w, NULL, 10, S_WIRE_SINGLE, "3");
	s_send_pack(&w.r, w.env, w.len, 10);
	s_collect(&w.r, w.lp, 10, &w.g);
	s_assert_accepted(&w.g, w.ids, 10);
	cr_assert_geq(w.g.packs, 1, "no 0x04 (%zu single receipts)",
	    w.g.singles);
	cr_assert_leq(w.g.most, 3, "a pack of %zu receipts to a peer that "
	    "reads 3", w.g.most);
	s_wire_close(&w);
}

/* One signed refusal for the whole body, naming no event, its
 * digest over the raw body; nothing stored. */
static void
s_refused_whole(td_rogue_t *r, chain_t *lp, const td_org_t *halt,
    const uint8_t *body, size_t len, const char *what)
{
	uint8_t digest[32];
	struct got g;

	memset(&g, 0, sizeof(g));
	s_send(r, 0x03, body, len);
	s_collect(r, lp, 1, &g);
	cr_assert_eq(g.r[0].status, KP__RECEIPT_STATUS__RECEIPT_STATUS_REJECTED,
	    "%s", what);
	cr_assert_eq(g.r[0].reason, KP__REASON__REASON_MALFORMED,
	    "%s: reason %d", what, g.r[0].reason);
	cr_assert(!g.r[0].has_event_id, "%s: an event id", what);
	crypto_generichash(digest, 32, body, len, NULL, 0);
	cr_assert_arr_eq(g.r[0].envelope_digest, digest, 32,
	    "%s: not the digest of the raw pack body", what);
	cr_assert_str_eq(g.r[0].subject_oin, OIN_LEERPLICHT);
	cr_assert_eq(td_inbox_count(halt), 0, "%s: an item was read", what);
	s_got_free(&g);
}

/* A body whose items are the n envelopes, unchecked (n may be 1 or
 * over the limit).  OUT: *blen. */
static uint8_t *
s_body_of(uint8_t *const *env, const size_t *len, size_t n, size_t *blen)
{
	pack_t *p = pack_new(0x01, 0x03);
	uint8_t *out;
	const uint8_t *f;
	size_t i, flen;

	for (i = 0; i < n; i++)
		cr_assert_eq(pack_add(p, env[i], len[i]), 0);
	/* a second item makes pack_frame write the pack form; for a body
	 * of one it is cut off again (its tag, length 1 and byte) */
	if (n == 1)
		cr_assert_eq(pack_add(p, (const uint8_t *)"x", 1), 0);
	f = pack_frame(p, &flen);
	*blen = flen - 1 - (n == 1 ? 3 : 0);
	out = malloc(*blen);
	memcpy(out, f + 1, *blen);
	pack_destroy(&p);
	return out;
}

/* After the refusals, a good pack on the same connection is read. */
static void
s_good_pack_still_read(td_chain_t *c, td_rogue_t *r, chain_t *lp,
    const td_org_t *halt)
{
	uint8_t ids[2][16], *two[2];
	size_t tlen[2];
	struct got g;

	memset(&g, 0, sizeof(g));
	s_seal_n(c, lp, 2, two, tlen, ids);
	s_send_pack(r, two, tlen, 2);
	s_collect(r, lp, 2, &g);
	s_assert_accepted(&g, ids, 2);
	cr_assert_eq(td_inbox_count(halt), 2);
	free(two[0]);
	free(two[1]);
	s_got_free(&g);
}

Test(pack, a_malformed_pack_gets_one_refusal_and_none_of_it_is_read)
{
	struct wire w;
	uint8_t *body, junk[200];
	size_t blen;

	s_wire_open(&w, NULL, KP_PACK_ITEMS_MAX + 1, S_WIRE_BATCH, "64");
	/* one valid envelope, as a pack of one */
	body = s_body_of(w.env, w.len, 1, &blen);
	cr_assert_eq(blen, 1 + (w.len[0] < 128 ? 1 : w.len[0] < 16384 ? 2 :
	    3) + w.len[0]);
	s_refused_whole(&w.r, w.lp, w.halt, body, blen, "one item");
	free(body);
	/* no item at all */
	s_refused_whole(&w.r, w.lp, w.halt, junk, 0, "empty");
	/* not a pack at all */
	memset(junk, 0xff, sizeof(junk));
	s_refused_whole(&w.r, w.lp, w.halt, junk, sizeof(junk), "garbage");
	/* 65 valid envelopes */
	body = s_body_of(w.env, w.len, KP_PACK_ITEMS_MAX + 1, &blen);
	cr_assert_leq(blen, KP_PACK_BODY_MAX);
	s_refused_whole(&w.r, w.lp, w.halt, body, blen, "65 items");
	free(body);
	s_good_pack_still_read(&w.c, &w.r, w.lp, w.halt);
	s_wire_close(&w);
}

/* env with one bit of its signature flipped.  OUT: *out_len. */
static uint8_t *
s_forged(const uint8_t *env, size_t len, size_t *out_len)
{
	Kp__Envelope *e = kp__envelope__unpack(NULL, len, env);
	uint8_t *out;

	cr_assert_not_null(e);
	cr_assert_eq(e->signature.len, 64);
	e->signature.data[5] ^= 0x01;
	out = malloc(kp__envelope__get_packed_size(e));
	*out_len = kp__envelope__pack(e, out);
	kp__envelope__free_unpacked(e, NULL);
	return out;
}

/* Each item is handled as a single frame would be, in order. */
Test(pack, each_item_gets_its_own_receipt_and_reason)
{
	struct wire w;
	uint8_t *items[3];
	size_t ilen[3], k, j, first[2];
	struct got *g = &w.g;

	s_wire_open(&w, NULL, 2, S_WIRE_SINGLE, "64");
	items[0] = w.env[0];
	ilen[0] = w.len[0];
	items[1] = s_forged(w.env[1], w.len[1], &ilen[1]);
	items[2] = w.env[0];        /* a resend of the first, in the pack */
	ilen[2] = w.len[0];
	s_send_pack(&w.r, items, ilen, 3);
	s_collect(&w.r, w.lp, 3, g);
	k = s_find(g, w.ids[1]);
	cr_assert_eq(g->r[k].status,
	    KP__RECEIPT_STATUS__RECEIPT_STATUS_REJECTED);
	cr_assert_eq(g->r[k].reason, KP__REASON__REASON_BAD_SIGNATURE,
	    "reason %d", g->r[k].reason);
	/* the first and its resend: accepted, the same receipt byte for
	 * byte */
	for (j = k = 0; k < g->n; k++) {
		if (!g->r[k].has_event_id || memcmp(g->r[k].event_id,
		    w.ids[0], 16) != 0)
			continue;
		cr_assert_eq(g->r[k].status,
		    KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED, "reason %d",
		    g->r[k].reason);
		cr_assert_lt(j, 2, "more than two receipts for the first");
		first[j++] = k;
	}
	cr_assert_eq(j, 2, "the resend in the pack got no receipt");
	cr_assert_eq(g->rawlen[first[0]], g->rawlen[first[1]]);
	cr_assert_arr_eq(g->raw[first[0]], g->raw[first[1]],
	    g->rawlen[first[0]], "the resend got another receipt than the "
	    "first");
	cr_assert_eq(td_inbox_count(w.halt), 1);
	cr_assert(td_log_has(w.halt, "is a duplicate", 30000));
	free(items[1]);
	s_wire_close(&w);
}

/* An item over the envelope limit, or not an envelope at all, in a good
 * pack: its own refusal (no event named, the digest of the item's
 * bytes), and the other items are read. */
Test(pack, a_bad_item_gets_its_own_refusal_and_the_rest_is_read)
{
	struct wire w;
	uint8_t *items[4], big[70000], junk[100], dg[32];
	size_t ilen[4], i, refused = 0;
	struct got *g = &w.g;

	memset(big, 0x0a, sizeof(big));
	memset(junk, 0xff, sizeof(junk));
	s_wire_open(&w, NULL, 2, S_WIRE_SINGLE, "64");
	items[0] = w.env[0];
	ilen[0] = w.len[0];
	items[1] = big;
	ilen[1] = sizeof(big);
	items[2] = junk;
	ilen[2] = sizeof(junk);
	items[3] = w.env[1];
	ilen[3] = w.len[1];
	s_send_pack(&w.r, items, ilen, 4);
	s_collect(&w.r, w.lp, 4, g);
	s_assert_accepted(g, w.ids, 2);
	for (i = 0; i < g->n; i++) {
		if (g->r[i].has_event_id)
			continue;
		cr_assert_eq(g->r[i].status,
		    KP__RECEIPT_STATUS__RECEIPT_STATUS_REJECTED);
		crypto_generichash(dg, 32, big, sizeof(big), NULL, 0);
		if (memcmp(g->r[i].envelope_digest, dg, 32) == 0) {
			cr_assert_eq(g->r[i].reason,
			    KP__REASON__REASON_OVERSIZE, "reason %d",
			    g->r[i].reason);
			refused |= 1;
			continue;
		}
		crypto_generichash(dg, 32, junk, sizeof(junk), NULL, 0);
		cr_assert_arr_eq(g->r[i].envelope_digest, dg, 32,
		    "a refusal's digest is of neither bad item");
		cr_assert_eq(g->r[i].reason, KP__REASON__REASON_MALFORMED,
		    "reason %d", g->r[i].reason);
		refused |= 2;
	}
	cr_assert_eq(refused, 3, "not both bad items refused on their own");
	cr_assert_eq(td_inbox_count(w.halt), 2);
	s_wire_close(&w);
}

/* A receipt pack sent to a receiver is dropped unanswered, as a 0x02
 * is (PROTOCOL.md §13); the connection still works. */
Test(pack, a_receipt_pack_sent_to_the_receiver_is_dropped)
{
	struct wire w;
	uint8_t *body;
	size_t blen;

	s_wire_open(&w, NULL, 2, S_WIRE_SINGLE, "64");
	body = s_body_of(w.env, w.len, 2, &blen);
	s_send(&w.r, 0x04, body, blen);
	s_send_pack(&w.r, w.env, w.len, 2);
	s_collect(&w.r, w.lp, 2, &w.g);
	s_assert_accepted(&w.g, w.ids, 2);
	cr_assert_eq(td_inbox_count(w.halt), 2);
	free(body);
	s_wire_close(&w);
}

/*
 * A pack read as the last message of a pass adds its items past
 * batch_max: with batch_max = 1, a pack of 20 envelopes of one batch
 * (their receipts drafted to be signed together, their rows waiting in
 * the pass) is one pass of 20.  Each is accepted, and the daemon stays
 * responsive.  (The table of waiting rows sized by batch_max, 8eed787's
 * bug, is caught by test_rxpipe's a_pack_longer_than_batch_max_is_one_pass,
 * whose pack holds a copy that must find its original waiting; this pack
 * holds none, so with that table's probes bounded it would pass here.)
 */
Test(pack, a_pack_longer_than_batch_max_is_read_whole)
{
	struct wire w;

	s_wire_open(&w, "batch_max = 1\n", 20, S_WIRE_BATCH, "64");
	s_send_pack(&w.r, w.env, w.len, 20);
	s_collect(&w.r, w.lp, 20, &w.g);
	s_assert_accepted(&w.g, w.ids, 20);
	cr_assert_eq(td_inbox_count(w.halt), 20);
	s_wire_close(&w);
}

/* ---- two daemons ---- */

/* o serves its metrics on the port five above the first daemon's (the
 * eight ports of this test process: the daemons' listen, then these). */
static int
s_enable_metrics(td_chain_t *c, td_org_t *o)
{
	const char *colon = strrchr(c->orgs[0].listen, ':');
	int port;
	FILE *f;

	cr_assert_not_null(colon);
	port = atoi(colon + 1) + 5;
	cr_assert_not_null(f = fopen(o->conf, "a"));
	fprintf(f, "\n[metrics]\nlisten = 127.0.0.1:%d\n", port);
	cr_assert_eq(fclose(f), 0);
	return port;
}

/* o's counter `name` for partner. */
static double
s_counter(int port, const char *name, const char *partner)
{
	static char text[131072];
	char series[128];

	test_scrape(port, text, sizeof(text));
	snprintf(series, sizeof(series), "%s{partner=\"%s\"}", name, partner);
	return test_sample(text, series);
}

/* n referrals from o to Halt, through its API. */
static void
s_queue(td_org_t *o, size_t n, const char *prefix)
{
	uint8_t id[16];
	char ref[32];
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(ref, sizeof(ref), "%s%zu", prefix, i);
		td_send(o, OIN_HALT, "referral", ref, td_example("referral"),
		    NULL, id);
	}
}

/*
 * A backlog queued while the partner is down goes out, once it starts,
 * in the sender's catch-up: every event arrives once and is settled at
 * the sender.  The sender hears what the partner reads only with its
 * first receipts on the connection (PROTOCOL.md §13.1), so what it sends
 * before then goes as single frames: a backlog over the flow window
 * (here 16 KiB of envelopes in flight, about 46 referrals: window_kib)
 * has its rest sent after receipts came back, and that rest goes in
 * packs (ketenpost_packs_sent_total).
 */
Test(pack, a_backlog_to_a_partner_that_was_down_arrives_once_partly_packed)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	Kp__StatusResponse st;
	size_t n = 400;
	double sent, packs;
	int port;

	td_chain_make(&c, "window_kib = 16\n");
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	port = s_enable_metrics(&c, lp);
	td_start(lp);
	s_queue(lp, n, "LP-P");
	td_status(lp, &st);
	cr_assert_eq(st.outbox_pending, n, "nothing can be delivered yet");
	td_start(halt);
	cr_assert(td_wait_settled(lp, 120000), "not all delivered after start");
	td_status(lp, &st);
	cr_assert_eq(st.outbox_delivered, n);
	td_status(halt, &st);
	cr_assert_eq(st.inbox_total, n, "each event stored once");
	/* a loaded machine may see receipts overdue and events resent (the
	 * receiver answers those with the stored receipt): counted, not
	 * asserted away */
	sent = s_counter(port, "ketenpost_send_attempts_total", OIN_HALT);
	packs = s_counter(port, "ketenpost_packs_sent_total", OIN_HALT);
	cr_log_info("backlog of %zu: %.0f sends, %.0f of them again, %.0f "
	    "packs", n, sent, sent - (double)n, packs);
	cr_assert_geq(sent, (double)n);
	cr_assert_gt(packs, 0, "no pack in the drain");
	td_chain_stop_all(&c);
}

/* ---- a daemon sending to a receiver played by the test ---- */

/* A receiver at o's endpoint with o's transport key, as a partner
 * running other software there would be: a ROUTER, CURVE server, no ZAP
 * handler (every client admitted), announcing `announce` if not NULL. */
static void
s_fake_receiver(td_rogue_t *r, chain_t *as, const td_org_t *o,
    const char *announce, int rcv_timeout_ms)
{
	int one = 1, zero = 0;

	r->ctx = zmq_ctx_new();
	r->sock = zmq_socket(r->ctx, ZMQ_ROUTER);
	zmq_setsockopt(r->sock, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(r->sock, ZMQ_RCVTIMEO, &rcv_timeout_ms,
	    sizeof(rcv_timeout_ms));
	td_announce_packs(r->sock, announce);
	cr_assert_eq(zmq_setsockopt(r->sock, ZMQ_CURVE_SERVER, &one,
	    sizeof(one)), 0);
	cr_assert_eq(zmq_setsockopt(r->sock, ZMQ_CURVE_SECRETKEY,
	    identity_transport_sk(as->self), 32), 0);
	cr_assert_eq(zmq_bind(r->sock, o->listen), 0, "bind %s: %s",
	    o->listen, zmq_strerror(errno));
}

/* What the fake receiver took: envelopes, and how they came. */
struct took {
	uint8_t *env[64];
	size_t len[64];
	size_t items, singles, packs, most;
	uint8_t rid[256];
	size_t rid_len;
	char announced[32];           /* the sender's X-Kp-Pack; "" if none */
};

static void
s_took_free(struct took *t)
{
	size_t i;

	for (i = 0; i < t->items; i++)
		free(t->env[i]);
	memset(t, 0, sizeof(*t));
}

static void
s_took_add(struct took *t, const uint8_t *env, size_t len)
{
	cr_assert_lt(t->items, 64);
	t->env[t->items] = malloc(len);
	memcpy(t->env[t->items], env, len);
	t->len[t->items++] = len;
}

/* One message to the fake receiver into t: a 0x01 envelope or a 0x03
 * pack of them.  false on timeout. */
static bool
s_fake_take(td_rogue_t *fake, struct took *t)
{
	pack_item_t items[KP_PACK_ITEMS_MAX];
	const uint8_t *b;
	const char *v;
	size_t len, n, i;
	zmq_msg_t m;
	int rid;

	if ((rid = zmq_recv(fake->sock, t->rid, sizeof(t->rid), 0)) < 0)
		return false;
	t->rid_len = (size_t)rid;
	zmq_msg_init(&m);
	cr_assert_geq(zmq_msg_recv(&m, fake->sock, 0), 1);
	cr_assert(!zmq_msg_more(&m), "a message of more than one frame");
	b = zmq_msg_data(&m);
	len = zmq_msg_size(&m);
	if ((v = zmq_msg_gets(&m, KP_PACK_PROPERTY)) != NULL)
		snprintf(t->announced, sizeof(t->announced), "%s", v);
	if (b[0] == 0x01) {
		t->singles++;
		s_took_add(t, b + 1, len - 1);
	} else {
		cr_assert_eq(b[0], 0x03, "a frame of type 0x%02x", b[0]);
		t->packs++;
		cr_assert_eq(pack_parse(b + 1, len - 1, items,
		    KP_PACK_ITEMS_MAX, &n), 0, "a 0x03 that does not parse");
		for (i = 0; i < n; i++)
			s_took_add(t, b + 1 + items[i].off, items[i].len);
		if (n > t->most)
			t->most = n;
	}
	zmq_msg_close(&m);
	return true;
}

/* Answer envelope i of t as the fake receiver hc: an accepted receipt,
 * signed with its real key, as one 0x02 frame on t's connection. */
static void
s_fake_receipt(td_rogue_t *fake, chain_t *hc, const struct took *t,
    size_t i)
{
	envelope_meta_t m;
	receipt_t r;
	uint8_t digest[32], *payload = NULL, *rc = NULL;
	size_t plen = 0, rlen = 0;
	bool has_digest = false;
	kp_err_t e;

	cr_assert(envelope_open(hc->dir, t->env[i], t->len[i], &m, &payload,
	    &plen, digest, &has_digest, &e) == 0, "%s", e.msg);
	free(payload);
	memset(&r, 0, sizeof(r));
	r.has_event_id = true;
	memcpy(r.event_id, m.event_id, 16);
	snprintf(r.subject_oin, sizeof(r.subject_oin), "%s", OIN_LEERPLICHT);
	memcpy(r.envelope_digest, digest, 32);
	r.status = KP__RECEIPT_STATUS__RECEIPT_STATUS_ACCEPTED;
	r.reason = KP__REASON__REASON_NONE;
	r.received_at_ms = kp_now_ms();
	cr_assert(receipt_sign(hc->dir, &r, &rc, &rlen, &e) == 0, "%s", e.msg);
	cr_assert(zmq_send(fake->sock, t->rid, t->rid_len, ZMQ_SNDMORE) >= 0);
	s_send(fake, 0x02, rc, rlen);
	free(rc);
}

/* The size of the tree head an envelope carries (kp.TreeHead, field 5),
 * and OUT (if not NULL) the size its consistency proof starts from (0:
 * it carries none). */
static uint64_t
s_head_of(const uint8_t *env, size_t len, uint64_t *proof_from)
{
	Kp__TreeHead *th;
	uint8_t *h = NULL;
	size_t hl = 0;
	uint64_t size;

	cr_assert_eq(envelope_extract_head(env, len, false, &h, &hl), 0);
	cr_assert_not_null(h, "the envelope carries no tree head");
	cr_assert_not_null(th = kp__tree_head__unpack(NULL, hl, h));
	size = th->size;
	if (proof_from != NULL)
		*proof_from = th->has_proof_from_size && th->n_consistency > 0 ?
		    th->proof_from_size : 0;
	kp__tree_head__free_unpacked(th, NULL);
	free(h);
	return size;
}

/* Wait (up to 30 s) until o has signed a tree head larger than `than`
 * (its debug line "signed tree head, size N"); false if it did not. */
static bool
s_head_grew(const td_org_t *o, uint64_t than)
{
	char needle[64];
	uint64_t k;
	int waited;

	for (waited = 0; waited < 30000; waited += 50) {
		for (k = than + 1; k <= than + 64; k++) {
			snprintf(needle, sizeof(needle), "signed tree head, size "
			    "%llu\n", (unsigned long long)k);
			if (td_log_has(o, needle, 0))
				return true;
		}
		usleep(50000);
	}
	return false;
}

/* A sender seen from its receiver (s_sender_open, s_sender_close): the
 * set-up and tear-down every such test shares. */
struct sender {
	char clock[4200];             /* the sender's simulated clock file */
	uint64_t t0;                  /* the time that clock starts at */
	td_chain_t c;
	td_org_t *lp;                 /* Leerplicht's daemon, the sender */
	chain_t *hc;                  /* Halt's chain, to sign receipts with */
	td_rogue_t fake;              /* the receiver, played by the test */
	struct took t;                /* what the test's own steps took */
};

/*
 * A sender on a simulated clock (at s->t0, now) and a fake receiver
 * announcing `announce`: the sender's first event, receipted, tells it
 * what the receiver reads; then n more are taken unanswered.  Each came
 * as a single frame: the first after connecting, the others sent at once
 * on an idle link (PROTOCOL.md §13.1).  OUT (if not NULL): *head_size,
 * the size of the tree head the last of them carried.
 */
static void
s_sender_open(struct sender *s, const char *announce, size_t n,
    uint64_t *head_size)
{
	struct took t;
	uint8_t id[16];
	char ref[32];
	size_t i;

	memset(s, 0, sizeof(*s));
	s->t0 = kp_now_ms();
	memset(&t, 0, sizeof(t));
	td_chain_make(&s->c, NULL);
	s->lp = td_org(&s->c, OIN_LEERPLICHT);
	s->hc = td_chain_open(&s->c, OIN_HALT);
	s_fake_receiver(&s->fake, s->hc, td_org(&s->c, OIN_HALT), announce,
	    10000);
	snprintf(s->clock, sizeof(s->clock), "%.4000s/clock", s->c.dir);
	td_set_clock(s->clock, s->t0);
	cr_assert_eq(setenv("KETENPOST_CLOCK_FILE", s->clock, 1), 0);
	td_start(s->lp);
	unsetenv("KETENPOST_CLOCK_FILE");
	for (i = 0; i <= n; i++) {
		snprintf(ref, sizeof(ref), "LP-O%zu", i);
		td_send(s->lp, OIN_HALT, "referral", ref,
		    td_example("referral"), NULL, id);
		cr_assert(s_fake_take(&s->fake, &t), "event %zu never came", i);
		cr_assert_eq(t.packs, 0, "event %zu came in a pack", i);
		if (i == 0) {
			s_fake_receipt(&s->fake, s->hc, &t, 0);
			cr_assert(td_wait_settled(s->lp, 10000));
			cr_assert(td_log_has(s->lp, "reads packs of", 30000));
		}
	}
	if (head_size != NULL)
		*head_size = s_head_of(t.env[t.items - 1], t.len[t.items - 1],
		    NULL);
	s_took_free(&t);
}

static void
s_sender_close(struct sender *s)
{
	s_took_free(&s->t);
	td_rogue_close(&s->fake);
	chain_close(&s->hc);
	td_chain_stop_all(&s->c);
}

/* Take from the fake receiver until `want` events came in all (or one
 * wait timed out: the caller's assertion says how many came). */
static void
s_take_until(struct sender *s, size_t want)
{
	while (s->t.items < want && s_fake_take(&s->fake, &s->t))
		;
}

/* Receipt every event the fake receiver took, in the order taken. */
static void
s_receipt_all(struct sender *s)
{
	size_t i;

	for (i = 0; i < s->t.items; i++)
		s_fake_receipt(&s->fake, s->hc, &s->t, i);
}

/*
 * Resends go as single frames, even to a partner that announced it reads
 * packs (PROTOCOL.md §13.1: a wrong belief about what it reads then costs
 * a pack's events one retry timer, never more).  The receiver is played by
 * the test, announcing 3; the daemons run on a simulated clock, so the ten
 * events sent at once are overdue at once and go again in one round: ten
 * single frames.
 */
Test(pack, a_resend_round_goes_as_single_frames)
{
	struct sender s;

	if (!kp_clock_simulated())
		cr_skip_test("built without KP_SIMULATED_CLOCK (scripts/test.sh "
		    "turns it on)");
	s_sender_open(&s, "3", 10, NULL);
	cr_assert(td_log_has(s.lp, "reads packs of 3 envelopes", 1000));
	/* past every retry timer (retry_max 2 s, a slot waits at most
	 * four): all ten are due in one resend round */
	td_set_clock(s.clock, s.t0 + 10000);
	s_take_until(&s, 10);
	cr_assert_eq(s.t.items, 10, "%zu of 10 resent", s.t.items);
	cr_assert_str_eq(s.t.announced, "64", "the sender's DEALER announces "
	    "what it reads");
	cr_assert(s.t.packs == 0 && s.t.singles == 10, "the resends came as "
	    "%zu packs and %zu single frames, not 10 single frames",
	    s.t.packs, s.t.singles);
	s_receipt_all(&s);
	cr_assert(td_wait_settled(s.lp, 10000));
	s_sender_close(&s);
}

/* The fake receiver refuses the pack in t (its raw body: body, blen) as
 * a whole: one signed malformed receipt naming no event. */
static void
s_fake_refuse_pack(td_rogue_t *fake, chain_t *hc, const struct took *t,
    const uint8_t *body, size_t blen)
{
	receipt_t r;
	uint8_t *rc = NULL;
	size_t rlen = 0;
	kp_err_t e;

	memset(&r, 0, sizeof(r));
	snprintf(r.subject_oin, sizeof(r.subject_oin), "%s", OIN_LEERPLICHT);
	crypto_generichash(r.envelope_digest, 32, body, blen, NULL, 0);
	r.status = KP__RECEIPT_STATUS__RECEIPT_STATUS_REJECTED;
	r.reason = KP__REASON__REASON_MALFORMED;
	r.received_at_ms = kp_now_ms();
	cr_assert(receipt_sign(hc->dir, &r, &rc, &rlen, &e) == 0, "%s", e.msg);
	cr_assert(zmq_send(fake->sock, t->rid, t->rid_len, ZMQ_SNDMORE) >= 0);
	s_send(fake, 0x02, rc, rlen);
	free(rc);
}

static void s_send_in_one_pass(td_org_t *o, size_t n);

/*
 * PROTOCOL.md §13.1: a sender whose pack was refused as malformed sends
 * that partner no more packs (until its next connection); a 0x04 that does
 * not parse is dropped with a log line, and the daemon goes on.  The packs
 * come from API passes (s_send_in_one_pass): resends are never packed.
 */
Test(pack, a_refused_pack_stops_packs_and_a_bad_receipt_pack_is_dropped)
{
	struct sender s;
	uint8_t *body, junk[40];
	size_t blen;

	if (!kp_clock_simulated())
		cr_skip_test("built without KP_SIMULATED_CLOCK (scripts/test.sh "
		    "turns it on)");
	s_sender_open(&s, "64", 0, NULL);
	/* one API pass of four: one pack of four, refused whole */
	s_send_in_one_pass(s.lp, 4);
	s_take_until(&s, 4);
	cr_assert(s.t.packs == 1 && s.t.items == 4, "%zu packs, %zu items",
	    s.t.packs, s.t.items);
	body = s_body_of(s.t.env, s.t.len, s.t.items, &blen);
	s_fake_refuse_pack(&s.fake, s.hc, &s.t, body, blen);
	free(body);
	/* a receipt pack that does not parse: dropped, logged */
	memset(junk, 0xff, sizeof(junk));
	cr_assert(zmq_send(s.fake.sock, s.t.rid, s.t.rid_len, ZMQ_SNDMORE) >=
	    0);
	s_send(&s.fake, 0x04, junk, sizeof(junk));
	cr_assert(td_log_has(s.lp, "malformed pack of receipts", 30000));
	s_took_free(&s.t);
	/* the next API pass: single frames only */
	s_send_in_one_pass(s.lp, 3);
	s_take_until(&s, 3);
	cr_assert_eq(s.t.items, 3);
	cr_assert_eq(s.t.packs, 0, "a pack after the partner refused one");
	s_receipt_all(&s);
	s_took_free(&s.t);
	/* and the four of the refused pack, resent singly once overdue */
	td_set_clock(s.clock, s.t0 + 30000);
	s_take_until(&s, 4);
	cr_assert_eq(s.t.items, 4);
	cr_assert_eq(s.t.packs, 0, "a resend in a pack");
	s_receipt_all(&s);
	cr_assert(td_wait_settled(s.lp, 10000));
	s_sender_close(&s);
}

/*
 * PROTOCOL.md §13.1: a sender learns what its partner reads from the
 * first message the receiver sends it on a connection, "so a sender's
 * first envelopes after it connects go as single frames", and a peer that
 * announces nothing gets single frames only.  Leerplicht learns Halt's 64
 * on one connection; Halt goes down and software that announces nothing
 * (ketenpostd 1.2, a second implementation) answers on its endpoint: the
 * catch-up of what queued meanwhile must come as single frames.
 */
Test(pack, a_reconnection_to_a_peer_that_announces_nothing_gets_single_frames)
{
	struct sender s;              /* its clock stays unused: not simulated */
	td_org_t *halt;
	uint8_t id[16];
	char ref[32];
	size_t i;

	memset(&s, 0, sizeof(s));
	td_chain_make(&s.c, NULL);
	s.lp = td_org(&s.c, OIN_LEERPLICHT);
	halt = td_org(&s.c, OIN_HALT);
	td_start(s.lp);
	td_start(halt);
	td_send(s.lp, OIN_HALT, "referral", "LP-R0", td_example("referral"),
	    NULL, id);
	cr_assert(td_wait_settled(s.lp, 10000));
	cr_assert(td_log_has(s.lp, "reads packs of 64", 30000));
	td_stop(halt);
	cr_assert(td_log_has(s.lp, "disconnected from " OIN_HALT, 10000));
	for (i = 1; i <= 5; i++) {
		snprintf(ref, sizeof(ref), "LP-R%zu", i);
		td_send(s.lp, OIN_HALT, "referral", ref,
		    td_example("referral"), NULL, id);
	}
	s.hc = td_chain_open(&s.c, OIN_HALT);
	s_fake_receiver(&s.fake, s.hc, halt, NULL, 10000);
	s_take_until(&s, 5);
	cr_assert_eq(s.t.items, 5, "the catch-up brought %zu of 5", s.t.items);
	cr_assert_eq(s.t.packs, 0, "a pack to a receiver that announced "
	    "nothing");
	s_sender_close(&s);
}

/* n referrals to Halt pipelined on one API connection while o is stopped,
 * so that o's API reads them in one pass; each answered ok. */
static void
s_send_in_one_pass(td_org_t *o, size_t n)
{
	Kp__Request req = KP__REQUEST__INIT;
	Kp__SendRequest s = KP__SEND_REQUEST__INIT;
	Kp__Response *resp;
	uint8_t payload[TD_EXAMPLE_MAX];
	void *ctx = zmq_ctx_new(), *sock;
	char ref[32];
	size_t i;

	sock = td_api_dealer(ctx, o, 0);
	s.has_event_type = s.has_payload = 1;
	s.event_type = KP__EVENT_TYPE__EVENT_TYPE_REFERRAL;
	s.payload = (ProtobufCBinaryData){ td_example_packed("referral",
	    payload), payload };
	s.to_oin = (char *)OIN_HALT;
	req.op_case = KP__REQUEST__OP_SEND;
	req.send = &s;
	td_pause(o);
	for (i = 0; i < n; i++) {
		snprintf(ref, sizeof(ref), "LP-A%zu", i);
		s.case_ref = ref;
		td_api_dealer_send(sock, &req);
	}
	usleep(1000000);    /* the frames reach the stopped daemon's socket */
	kill(o->pid, SIGCONT);
	for (i = 0; i < n; i++) {
		cr_assert_not_null(resp = td_api_dealer_recv(sock));
		cr_assert(resp->ok, "%s", resp->error);
		kp__response__free_unpacked(resp, NULL);
	}
	zmq_close(sock);
	zmq_ctx_term(ctx);
}

/*
 * The events one API pass queues for a partner that reads packs go out
 * packed once the pass commits (at most what the partner announced), not
 * one message each (main b42ca72; the sender's set-up needs no simulated
 * clock here: nothing is left overdue).
 */
Test(pack, the_events_of_one_api_pass_go_out_packed)
{
	struct sender s;

	s_sender_open(&s, "3", 0, NULL);
	s_send_in_one_pass(s.lp, 7);
	s_take_until(&s, 7);
	cr_assert_eq(s.t.items, 7, "%zu of 7 came", s.t.items);
	cr_assert_geq(s.t.packs, 1, "no pack (%zu single frames)", s.t.singles);
	cr_assert_leq(s.t.most, 3, "a pack of %zu to a receiver that reads 3",
	    s.t.most);
	s_receipt_all(&s);
	cr_assert(td_wait_settled(s.lp, 10000));
	s_sender_close(&s);
}

/*
 * A pack the link does not take is no attempt (PROTOCOL.md §13.1 says
 * nothing is lost): its events' slots are freed and the catch-up sends
 * them again, each once.  Nor were its tree heads given: the next head's
 * consistency proof starts at the size the partner last really got
 * (AUDIT.md §10), not at the one the lost pack carried.  The link's
 * refusal is the test build's fault KETENPOST_TEST_PACK_SEND_FAILS
 * (daemon/outbound.c): the first pack send fails as a link that takes
 * nothing would.
 */
Test(pack, a_pack_the_link_did_not_take_goes_again_with_the_catch_up)
{
	struct sender s;
	int quiet = 1000;
	uint64_t got_size = 0, size, from = 0;

	if (!kp_clock_simulated())
		cr_skip_test("built without KP_SIMULATED_CLOCK (scripts/test.sh "
		    "turns it on)");
	cr_assert_eq(setenv("KETENPOST_TEST_PACK_SEND_FAILS", "1", 1), 0);
	s_sender_open(&s, "64", 0, &got_size);
	unsetenv("KETENPOST_TEST_PACK_SEND_FAILS");
	/* a head larger than the partner got (the interval's tick: 60 s) ... */
	td_set_clock(s.clock, s.t0 + 61000);
	cr_assert(s_head_grew(s.lp, got_size), "no new tree head signed");
	/* ... one API pass of four: its pack, with that head, is not taken */
	s_send_in_one_pass(s.lp, 4);
	cr_assert(td_log_has(s.lp, "4 events to " OIN_HALT " not sent",
	    30000));
	/* ... and after the stall the catch-up sends the four, once each */
	td_set_clock(s.clock, s.t0 + 66000);
	s_take_until(&s, 4);
	cr_assert_eq(s.t.items, 4, "%zu of 4 came", s.t.items);
	cr_assert_eq(s.t.packs, 1, "the catch-up's four in %zu packs and %zu "
	    "single frames", s.t.packs, s.t.singles);
	size = s_head_of(s.t.env[0], s.t.len[0], &from);
	cr_assert_gt(size, got_size, "the log did not grow");
	cr_assert_eq(from, got_size, "a head of size %llu proved from %llu, "
	    "but the partner last got size %llu", (unsigned long long)size,
	    (unsigned long long)from, (unsigned long long)got_size);
	zmq_setsockopt(s.fake.sock, ZMQ_RCVTIMEO, &quiet, sizeof(quiet));
	cr_assert(!s_fake_take(&s.fake, &s.t), "an event sent twice");
	s_receipt_all(&s);
	cr_assert(td_wait_settled(s.lp, 30000), "the four are not all "
	    "settled");
	s_sender_close(&s);
}
