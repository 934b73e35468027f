/*
 * ratelimit.c: fixed-window rate limiting (see ratelimit.h).
 *
 * A window starts with the first thing after the previous window ended;
 * within it `burst` things pass, the rest are counted as suppressed.  A
 * fixed window rather than a token bucket: the bound "at most burst per
 * interval, counted from the first" is what the documentation promises
 * and what a test can check, and twice the burst across a window edge is
 * an acceptable worst case for logs and stored refusals.  Never touches
 * anything but its own struct; never logs.
 */
#include <stdio.h>
#include <stdlib.h>

#include "ratelimit.h"

struct ratelimit {
	unsigned burst;
	uint64_t interval_ms;
	uint64_t window_start;
	bool started;
	unsigned used;          /* let through in this window */
	uint64_t suppressed;    /* held back since the last let through */
};

ratelimit_t *
ratelimit_new(unsigned burst, uint64_t interval_ms)
{
	ratelimit_t *r;

	if (burst == 0 || interval_ms == 0)
		return NULL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->burst = burst;
	r->interval_ms = interval_ms;
	return r;
}

void
ratelimit_destroy(ratelimit_t **self_p)
{
	if (self_p == NULL || *self_p == NULL)
		return;
	free(*self_p);
	*self_p = NULL;
}

bool
ratelimit_allow(ratelimit_t *r, uint64_t now_ms, uint64_t *suppressed)
{
	/* a new window when the old one ran out, or the clock went back */
	if (!r->started || now_ms < r->window_start ||
	    now_ms - r->window_start >= r->interval_ms) {
		r->started = true;
		r->window_start = now_ms;
		r->used = 0;
	}
	if (r->used >= r->burst) {
		r->suppressed++;
		return false;
	}
	r->used++;
	if (suppressed != NULL)
		*suppressed = r->suppressed;
	r->suppressed = 0;
	return true;
}

uint64_t
ratelimit_suppressed(const ratelimit_t *r)
{
	return r->suppressed;
}

const char *
ratelimit_note(uint64_t n, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (n > 0)
		snprintf(buf, len, " (%llu similar line%s suppressed)",
		    (unsigned long long)n, n == 1 ? "" : "s");
	return buf;
}
