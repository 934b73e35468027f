/*
 * stats.c: median and nearest-rank percentile of sorted values (stats.h).
 * Owns no state; must never reorder or allocate: the caller sorts.
 */
#include "stats.h"

double
kp_median(const double *sorted, size_t n)
{
	if (n == 0)
		return 0;
	if (n % 2 == 1)
		return sorted[n / 2];
	return (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

double
kp_percentile(const double *sorted, size_t n, unsigned pct)
{
	size_t rank;

	if (n == 0)
		return 0;
	if (pct > 100)
		pct = 100;
	rank = (pct * n + 99) / 100;   /* ceil(pct * n / 100) */
	return sorted[rank == 0 ? 0 : rank - 1];
}
