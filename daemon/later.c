/*
 * later.c: lines logged once their transaction committed (see later.h).
 * Owns nothing but the lines it is given; never logs before the caller
 * says the transaction committed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "later.h"
#include "log.h"

void
later_add(later_t *lt, int prio, const char *event_id, const char *partner,
    const char *reason, const char *fmt, ...)
{
	later_line_t *grown, *l;
	size_t cap;
	va_list ap;

	if (lt->n == lt->cap) {
		cap = lt->cap ? 2 * lt->cap : 8;
		if ((grown = realloc(lt->line, cap * sizeof(*grown))) == NULL)
			return;
		lt->line = grown;
		lt->cap = cap;
	}
	l = &lt->line[lt->n++];
	l->prio = prio;
	snprintf(l->event_id, sizeof(l->event_id), "%s", event_id ? event_id :
	    "");
	snprintf(l->partner, sizeof(l->partner), "%s", partner ? partner : "");
	snprintf(l->reason, sizeof(l->reason), "%s", reason ? reason : "");
	va_start(ap, fmt);
	vsnprintf(l->text, sizeof(l->text), fmt, ap);
	va_end(ap);
}

void
later_log(const later_line_t *l, const char *suffix)
{
	log_event(l->prio, l->event_id[0] ? l->event_id : NULL,
	    l->partner[0] ? l->partner : NULL, l->reason[0] ? l->reason : NULL,
	    "%s%s", l->text, suffix ? suffix : "");
}

void
later_move(later_t *dst, later_t *src)
{
	size_t i;

	for (i = 0; i < src->n; i++) {
		const later_line_t *l = &src->line[i];

		later_add(dst, l->prio, l->event_id, l->partner, l->reason, "%s",
		    l->text);
	}
	later_clear(src);
}

void
later_flush(later_t *lt, bool committed)
{
	size_t i;

	for (i = 0; committed && i < lt->n; i++)
		later_log(&lt->line[i], NULL);
	later_clear(lt);
}

void
later_clear(later_t *lt)
{
	free(lt->line);
	memset(lt, 0, sizeof(*lt));
}
