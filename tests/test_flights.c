/*
 * test_flights.c: daemon/flights.c, the index of a link's events in
 * flight.  Every flight added is found, in its own slot of fl[], until it
 * is forgotten, and never after; forgetting one moves the last into its
 * place and keeps it findable; ids whose hashes collide (long probe runs,
 * a run that wraps round the end of the table) stay findable as entries
 * before them are forgotten; a full table takes no more; a clear forgets
 * all.  A long random run checks all of it against a plain list.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common.h"
#include "flights.h"

TestSuite(flights, .init = test_init);

static flights_t s_f;

/* Id n with the hash tail `tail` (the last 8 bytes decide the slot). */
static void
s_id(uint8_t id[16], uint32_t n, uint64_t tail)
{
	memset(id, 0, 16);
	memcpy(id, &n, sizeof(n));
	memcpy(id + 8, &tail, sizeof(tail));
}

/* Every id in want[0..n) is found at a flight holding it, and the table
 * holds n flights. */
static void
s_all_found(uint8_t (*want)[16], size_t n)
{
	size_t i;
	ssize_t at;

	cr_assert_eq(s_f.n, n);
	for (i = 0; i < n; i++) {
		at = flights_find(&s_f, want[i]);
		cr_assert_geq(at, 0, "flight %zu lost", i);
		cr_assert_lt((size_t)at, s_f.n);
		cr_assert_eq(memcmp(s_f.fl[at].id, want[i], 16), 0);
	}
}

Test(flights, add_find_forget)
{
	uint8_t a[16], b[16], c[16];
	flight_t *fl;

	memset(&s_f, 0xEE, sizeof(s_f));
	flights_clear(&s_f);
	s_id(a, 1, 11);
	s_id(b, 2, 22);
	s_id(c, 3, 33);
	cr_assert_eq(flights_find(&s_f, a), -1);
	fl = flights_add(&s_f, a);
	cr_assert_not_null(fl);
	cr_assert_eq(fl->sends, 0, "a new flight starts zeroed");
	cr_assert_not(fl->resent);
	cr_assert_not_null(flights_add(&s_f, b));
	cr_assert_not_null(flights_add(&s_f, c));
	cr_assert_eq(flights_find(&s_f, b), 1);
	flights_forget(&s_f, 0);              /* c moves into slot 0 */
	cr_assert_eq(flights_find(&s_f, a), -1);
	cr_assert_eq(flights_find(&s_f, c), 0);
	cr_assert_eq(flights_find(&s_f, b), 1);
	flights_forget(&s_f, 1);              /* the last one */
	cr_assert_eq(flights_find(&s_f, b), -1);
	cr_assert_eq(flights_find(&s_f, c), 0);
	flights_clear(&s_f);
	cr_assert_eq(s_f.n, 0);
	cr_assert_eq(flights_find(&s_f, c), -1);
}

/* All ids in one probe run that wraps round the end of the table; they
 * are forgotten from the front, where a deletion must pull the rest of
 * the run back over the wrap. */
Test(flights, a_colliding_run_across_the_end_of_the_table)
{
	static uint8_t ids[64][16];
	uint64_t tail;
	uint8_t probe[16];
	size_t i, n = 64;

	flights_clear(&s_f);
	/* a tail whose home is the last slot: add one id, look where it sits */
	for (tail = 1;; tail++) {
		s_id(probe, 0, tail);
		flights_add(&s_f, probe);
		cr_assert_eq(flights_find(&s_f, probe), 0);
		if (s_f.at[FLIGHTS_SLOTS - 1] != 0)
			break;
		flights_clear(&s_f);
		cr_assert_lt(tail, 1000000, "no tail for the last slot");
	}
	flights_clear(&s_f);
	for (i = 0; i < n; i++) {
		s_id(ids[i], (uint32_t)i + 1, tail);
		cr_assert_not_null(flights_add(&s_f, ids[i]));
	}
	cr_assert_neq(s_f.at[0], 0, "the run wraps to slot 0");
	s_all_found(ids, n);
	while (n > 0) {
		flights_forget(&s_f, (size_t)flights_find(&s_f, ids[0]));
		memmove(ids[0], ids[1], (n - 1) * 16);
		n--;
		s_all_found(ids, n);
	}
	for (i = 0; i < FLIGHTS_SLOTS; i++)
		cr_assert_eq(s_f.at[i], 0, "slot %zu not freed", i);
}

Test(flights, a_full_table_takes_no_more)
{
	uint8_t id[16];
	uint32_t i;

	flights_clear(&s_f);
	for (i = 0; i < FLIGHTS_MAX; i++) {
		s_id(id, i, (uint64_t)i * 0x100000001ULL + 7);
		cr_assert_not_null(flights_add(&s_f, id));
	}
	s_id(id, i, 99);
	cr_assert_null(flights_add(&s_f, id));
	cr_assert_eq(s_f.n, FLIGHTS_MAX);
}

/* Random adds and forgets against a plain list, a quarter of the ids
 * sharing a few tails so that probe runs are long. */
Test(flights, a_random_run_matches_a_list)
{
	static uint8_t live[FLIGHTS_MAX][16];
	uint8_t id[16];
	size_t n = 0, j, step;
	uint32_t next = 1;
	ssize_t at;

	srand(16);
	flights_clear(&s_f);
	for (step = 0; step < 200000; step++) {
		if (rand() % 5 < 3 && n < FLIGHTS_MAX) {
			s_id(id, next++, rand() % 4 == 0 ?
			    (uint64_t)(rand() % 8) : ((uint64_t)rand() << 32) ^
			    (uint64_t)rand());
			cr_assert_eq(flights_find(&s_f, id), -1);
			cr_assert_not_null(flights_add(&s_f, id));
			memcpy(live[n++], id, 16);
		} else if (n > 0) {
			j = (size_t)rand() % n;
			at = flights_find(&s_f, live[j]);
			cr_assert_geq(at, 0, "step %zu: flight lost", step);
			flights_forget(&s_f, (size_t)at);
			cr_assert_eq(flights_find(&s_f, live[j]), -1);
			memcpy(live[j], live[--n], 16);
		}
		if (step % 5000 == 0)
			s_all_found(live, n);
	}
	s_all_found(live, n);
}
