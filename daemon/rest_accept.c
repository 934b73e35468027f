/*
 * rest_accept.c: the Accept header against what a resource can give
 * (rest_accept.h).
 *
 * Read-only on the header text: each media range is looked at in place,
 * so a header of any length costs no memory and cannot overflow a
 * buffer.  A malformed range matches nothing (it is skipped) rather than
 * failing the request: the client then gets 406 only if nothing else in
 * its header fits.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rest_accept.h"

#define S_OWS " \t"

/* Quality of one range's parameters (after its type): 1000 * q, or -1
 * for a bad q. */
static int
s_quality(const char *p, const char *end)
{
	const char *v;
	int q = 1000, scale;

	while (p < end && (p = memchr(p, ';', (size_t)(end - p))) != NULL) {
		p++;
		p += strspn(p, S_OWS);
		if (end - p < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=')
			continue;
		v = p + 2;
		if (v >= end || (*v != '0' && *v != '1'))
			return -1;
		q = (*v - '0') * 1000;
		if (++v < end && *v == '.')
			for (v++, scale = 100; v < end && *v >= '0' && *v <= '9' &&
			    scale > 0; v++, scale /= 10)
				q += (*v - '0') * scale;
		if (q > 1000)
			return -1;
	}
	return q;
}

/* How specifically range [r, rlen) names type t: 3 exactly, 2 as type/any,
 * 1 as any/any; 0: it does not (any: an asterisk). */
static int
s_match(const char *r, size_t rlen, const char *t)
{
	const char *slash = strchr(t, '/');
	size_t tlen = strlen(t), major = (size_t)(slash - t);

	if (rlen == tlen && strncasecmp(r, t, tlen) == 0)
		return 3;
	if (rlen == major + 2 && strncasecmp(r, t, major + 1) == 0 &&
	    r[major + 1] == '*')
		return 2;
	return rlen == 3 && strncmp(r, "*/*", 3) == 0 ? 1 : 0;
}

int
rest_accept_pick(const char *accept, const char *const *types, size_t n)
{
	int best = -1, best_q = 0, q[16] = { 0 }, spec[16] = { 0 };
	const char *p, *end, *semi;
	size_t i, rlen;
	int s, rq;

	if (accept == NULL || accept[strspn(accept, S_OWS)] == '\0')
		return n > 0 ? 0 : -1;
	if (n > sizeof(q) / sizeof(q[0]))
		n = sizeof(q) / sizeof(q[0]);
	for (p = accept; *p != '\0'; p = *end ? end + 1 : end) {
		end = p + strcspn(p, ",");
		p += strspn(p, S_OWS);
		semi = memchr(p, ';', (size_t)(end - p));
		rlen = (size_t)((semi ? semi : end) - p);
		while (rlen > 0 && strchr(S_OWS, p[rlen - 1]) != NULL)
			rlen--;
		if ((rq = s_quality(semi ? semi : end, end)) < 0)
			continue;
		for (i = 0; i < n; i++)
			if ((s = s_match(p, rlen, types[i])) > spec[i]) {
				spec[i] = s;
				q[i] = rq;
			}
	}
	for (i = 0; i < n; i++)
		if (spec[i] > 0 && q[i] > best_q) {
			best_q = q[i];
			best = (int)i;
		}
	return best;
}
