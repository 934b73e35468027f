/*
 * test_backoff.c: outbound_backoff_ms (daemon/outbound.c), the delivery
 * backoff: retry_initial doubling per attempt up to retry_max, jittered
 * to 75%..125% of that, spread over the whole range, never 0.
 */
#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "common.h"
#include "daemon.h"

TestSuite(backoff, .init = test_init);

Test(backoff, doubles_up_to_its_maximum_jittered_over_the_whole_range)
{
	config_t cfg;
	uint64_t t, lo, hi, want;
	uint32_t attempts;
	int i;

	memset(&cfg, 0, sizeof(cfg));
	cfg.retry_initial_ms = 1000;
	cfg.retry_max_ms = 60000;
	for (attempts = 1; attempts <= 9; attempts++) {
		want = 1000ull << (attempts - 1);
		if (want > 60000)
			want = 60000;
		lo = UINT64_MAX;
		hi = 0;
		for (i = 0; i < 4000; i++) {
			t = outbound_backoff_ms(&cfg, attempts);
			cr_assert_geq(t, want * 3 / 4, "attempt %u: %llu", attempts,
			    (unsigned long long)t);
			cr_assert_leq(t, want * 5 / 4, "attempt %u: %llu", attempts,
			    (unsigned long long)t);
			lo = t < lo ? t : lo;
			hi = t > hi ? t : hi;
		}
		/* 4,000 draws reach both ends' tenth of the range */
		cr_expect_lt(lo, want * 3 / 4 + want / 20, "attempt %u", attempts);
		cr_expect_gt(hi, want * 5 / 4 - want / 20, "attempt %u", attempts);
	}
	cfg.retry_initial_ms = 0;
	for (i = 0; i < 100; i++)
		cr_assert_gt(outbound_backoff_ms(&cfg, 1), 0);
}

/* The jitter a caller drew (an API send draws it with its event key):
 * its two ends give the range's ends, and the middle the backoff. */
Test(backoff, jittered_by_the_callers_value_spans_the_range)
{
	config_t cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.retry_initial_ms = 1000;
	cfg.retry_max_ms = 60000;
	cr_assert_eq(outbound_backoff_jittered_ms(&cfg, 1, 0), 750);
	cr_assert_eq(outbound_backoff_jittered_ms(&cfg, 1, UINT32_MAX), 1250);
	cr_assert_eq(outbound_backoff_jittered_ms(&cfg, 1, 1u << 31), 1000);
	cr_assert_eq(outbound_backoff_jittered_ms(&cfg, 8, 1u << 31), 60000);
	cfg.retry_initial_ms = 0;
	cr_assert_eq(outbound_backoff_jittered_ms(&cfg, 1, 0), 1);
}
