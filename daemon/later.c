/*
 * later.c: lines logged, and counts applied, once their transaction
 * committed (see later.h).
 * Owns nothing but the lines it is given; never logs before the caller
 * says the transaction committed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "later.h"
#include "log.h"

/* A new empty line at the end (its strings "", no count), or NULL (out
 * of memory loses it).  Not zeroed whole: its texts are written as
 * strings, and a received event's two lines were 1,040 bytes of memset
 * per event in a drain. */
static later_line_t *
s_push(later_t *lt)
{
	later_line_t *grown, *l;
	size_t cap;

	if (lt->n == lt->cap) {
		cap = lt->cap ? 2 * lt->cap : 8;
		if ((grown = realloc(lt->line, cap * sizeof(*grown))) == NULL)
			return NULL;
		lt->line = grown;
		lt->cap = cap;
	}
	l = &lt->line[lt->n++];
	l->prio = 0;
	l->metrics = NULL;
	l->counter = 0;
	l->type = l->mreason = 0;
	l->event_id[0] = l->partner[0] = l->reason[0] = l->text[0] = '\0';
	return l;
}

/* src (NULL: "") into dst of cap bytes, cut to fit: what snprintf "%s"
 * did, without parsing a format per field. */
static void
s_copy(char *dst, size_t cap, const char *src)
{
	size_t n = src != NULL ? strnlen(src, cap - 1) : 0;

	memcpy(dst, src != NULL ? src : "", n);
	dst[n] = '\0';
}

void
later_add(later_t *lt, int prio, const char *event_id, const char *partner,
    const char *reason, const char *fmt, ...)
{
	later_line_t *l;
	va_list ap;

	if ((l = s_push(lt)) == NULL)
		return;
	l->prio = prio;
	s_copy(l->event_id, sizeof(l->event_id), event_id);
	s_copy(l->partner, sizeof(l->partner), partner);
	s_copy(l->reason, sizeof(l->reason), reason);
	va_start(ap, fmt);
	vsnprintf(l->text, sizeof(l->text), fmt, ap);
	va_end(ap);
}

void
later_count(later_t *lt, metrics_t *m, enum metrics_counter c,
    const char *partner, int type, int reason)
{
	later_line_t *l;

	if (m == NULL || (l = s_push(lt)) == NULL)
		return;
	l->prio = -1;
	l->metrics = m;
	l->counter = c;
	l->type = type;
	l->mreason = reason;
	s_copy(l->partner, sizeof(l->partner), partner);
}

void
later_log(const later_line_t *l, const char *suffix)
{
	if (l->prio < 0) {
		metrics_count(l->metrics, l->counter, l->partner[0] ?
		    l->partner : NULL, l->type, l->mreason);
		return;
	}
	log_event_text(l->prio, l->event_id[0] ? l->event_id : NULL,
	    l->partner[0] ? l->partner : NULL, l->reason[0] ? l->reason : NULL,
	    l->text, suffix);
}

size_t
later_nlines(const later_t *lt)
{
	size_t i, n = 0;

	for (i = 0; i < lt->n; i++)
		n += lt->line[i].prio >= 0;
	return n;
}

void
later_move(later_t *dst, later_t *src)
{
	later_line_t *l;
	size_t i;

	for (i = 0; i < src->n; i++)
		if ((l = s_push(dst)) != NULL)
			*l = src->line[i];
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
later_flush_held(later_t *lt)
{
	log_hold();
	later_flush(lt, true);
	log_release();
}

void
later_clear(later_t *lt)
{
	free(lt->line);
	memset(lt, 0, sizeof(*lt));
}
