/*
 * ratelimit.h: a fixed-window counter that lets at most `burst` things
 * through per `interval_ms`, and counts what it held back.
 *
 * Used for two kinds of thing: log lines that repeat (refused handshakes,
 * refusals, a full database), where the next line let through says how
 * many similar lines were suppressed, and work a peer can make us do
 * (stored refusals per partner), where what is held back is not done.
 * It knows nothing about what it limits; the caller passes the clock, so
 * it is deterministic under test.  Not thread-safe (one per owner).
 */
#ifndef KP_RATELIMIT_H
#define KP_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit_t;

/* burst >= 1 things per interval_ms >= 1; NULL on bad arguments or OOM. */
ratelimit_t *ratelimit_new(unsigned burst, uint64_t interval_ms);
void ratelimit_destroy(ratelimit_t **self_p);

/*
 * May one more thing happen at now_ms?  true: yes; OUT: *suppressed is the
 * number held back since the last one let through (then reset to 0).
 * false: no, and it is counted.  suppressed may be NULL.
 */
bool ratelimit_allow(ratelimit_t *r, uint64_t now_ms, uint64_t *suppressed);

/* Held back since the last one let through (not reset). */
uint64_t ratelimit_suppressed(const ratelimit_t *r);

/* " (N similar lines suppressed)" for n > 0, "" for 0, into buf; returns
 * buf, so it can be an argument of the log line it belongs to. */
const char *ratelimit_note(uint64_t n, char *buf, size_t len);

#endif
