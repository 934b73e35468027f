/*
 * test_ratelimit.c: lib/ratelimit.c, with an explicit clock: the burst per
 * window, the count of what was held back and its reset, window edges, a
 * clock that goes back, bad arguments, and the note text.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "ratelimit.h"

TestSuite(ratelimit);

Test(ratelimit, burst_then_suppressed_then_counted)
{
	ratelimit_t *r = ratelimit_new(3, 1000);
	uint64_t sup = 99;
	int i;

	cr_assert_not_null(r);
	for (i = 0; i < 3; i++) {
		cr_assert(ratelimit_allow(r, 5000 + (uint64_t)i, &sup));
		cr_assert_eq(sup, 0);
	}
	for (i = 0; i < 7; i++)
		cr_assert_not(ratelimit_allow(r, 5100, &sup));
	cr_assert_eq(ratelimit_suppressed(r), 7);
	/* still inside the window that started at 5000 */
	cr_assert_not(ratelimit_allow(r, 5999, &sup));
	cr_assert_eq(ratelimit_suppressed(r), 8);
	/* the next window: let through, and told about the 8 */
	cr_assert(ratelimit_allow(r, 6000, &sup));
	cr_assert_eq(sup, 8);
	cr_assert_eq(ratelimit_suppressed(r), 0);
	cr_assert(ratelimit_allow(r, 6001, &sup));
	cr_assert_eq(sup, 0);
	ratelimit_destroy(&r);
	cr_assert_null(r);
	ratelimit_destroy(&r);  /* NULL is fine */
}

Test(ratelimit, window_starts_at_first_use_not_at_zero)
{
	ratelimit_t *r = ratelimit_new(1, 100);

	cr_assert(ratelimit_allow(r, 1050, NULL));
	cr_assert_not(ratelimit_allow(r, 1149, NULL));
	cr_assert(ratelimit_allow(r, 1150, NULL));
	ratelimit_destroy(&r);
}

Test(ratelimit, clock_going_back_starts_a_new_window)
{
	ratelimit_t *r = ratelimit_new(1, 1000);
	uint64_t sup = 0;

	cr_assert(ratelimit_allow(r, 10000, NULL));
	cr_assert_not(ratelimit_allow(r, 10001, NULL));
	cr_assert(ratelimit_allow(r, 500, &sup));
	cr_assert_eq(sup, 1);
	ratelimit_destroy(&r);
}

Test(ratelimit, at_most_burst_per_window_over_a_long_run)
{
	ratelimit_t *r = ratelimit_new(5, 1000);
	uint64_t t, allowed = 0, sup = 0, total_sup = 0;

	for (t = 0; t < 10000; t += 7) {
		if (ratelimit_allow(r, t, &sup)) {
			allowed++;
			total_sup += sup;
		}
	}
	/* windows start at 0, 1001, 2002, ...: 10 windows of 5 */
	cr_assert_leq(allowed, 5 * 10);
	cr_assert_geq(allowed, 5 * 9);
	cr_assert_eq(allowed + total_sup + ratelimit_suppressed(r),
	    (10000 + 6) / 7);
	ratelimit_destroy(&r);
}

Test(ratelimit, bad_arguments)
{
	cr_assert_null(ratelimit_new(0, 1000));
	cr_assert_null(ratelimit_new(1, 0));
}

Test(ratelimit, note)
{
	char buf[64];

	cr_assert_str_eq(ratelimit_note(0, buf, sizeof(buf)), "");
	cr_assert_str_eq(ratelimit_note(1, buf, sizeof(buf)),
	    " (1 similar line suppressed)");
	cr_assert_str_eq(ratelimit_note(42, buf, sizeof(buf)),
	    " (42 similar lines suppressed)");
	cr_assert_str_eq(ratelimit_note(42, buf, 8), " (42 si");
}
