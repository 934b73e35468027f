/*
 * stats.h: the summary statistics of the evaluation report (lead times in
 * days), one definition for every output form: the daemon computes them
 * once, and JSON, text and HTML all show that one number.
 *
 * Pure functions over an array the caller has sorted ascending; they never
 * allocate and never look at anything else.
 */
#ifndef KP_STATS_H
#define KP_STATS_H

#include <stddef.h>

/*
 * The median by the usual definition: the middle value of an odd count,
 * the mean of the two middle values of an even count.  0 for n == 0.
 */
double kp_median(const double *sorted, size_t n);

/*
 * The pct-th percentile (1..100) by the nearest-rank method: the smallest
 * value such that at least pct% of the values are at or below it, i.e.
 * sorted[ceil(pct * n / 100) - 1].  Always one of the values (never
 * interpolated).  0 for n == 0.  Integer arithmetic: no rounding error
 * moves the rank (0.9 * 20 is not exactly 18 in binary floating point).
 */
double kp_percentile(const double *sorted, size_t n, unsigned pct);

#endif
