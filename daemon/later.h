/*
 * later.h: lines about what a database transaction did, logged only once
 * it committed.  A line said before the commit can describe something that
 * never happened (a disk-full run once logged 5,799 "queued" lines for
 * events that were never stored).  Each line keeps the journal fields of
 * log_event (lib/log.h): event id, partner, reason.  Metric counts of what
 * the transaction did wait the same way (later_count), so a rolled-back
 * batch is not counted.
 */
#ifndef KP_LATER_H
#define KP_LATER_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"

typedef struct later_line {
	int prio;                      /* LOG_INFO, LOG_WARNING; -1: a count */
	metrics_t *metrics;            /* a count: metrics_count(...) */
	enum metrics_counter counter;
	int type, mreason;
	char event_id[37];             /* "" for none */
	char partner[21];
	char reason[48];
	char text[384];
} later_line_t;

/* Lines held for one transaction (or one request of it); zero-initialise. */
typedef struct later {
	later_line_t *line;
	size_t n, cap;
} later_t;

/* Hold one line.  Out of memory loses the line, never the transaction. */
void later_add(later_t *lt, int prio, const char *event_id,
    const char *partner, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Hold one metrics_count(m, c, partner, type, reason) (metrics.h). */
void later_count(later_t *lt, metrics_t *m, enum metrics_counter c,
    const char *partner, int type, int reason);
/* How many log lines (not counts) are held. */
size_t later_nlines(const later_t *lt);
/* Move src's lines to the end of dst. */
void later_move(later_t *dst, later_t *src);
/* Log the lines if committed, else drop them; free either way. */
void later_flush(later_t *lt, bool committed);
/* later_flush(lt, true) with the lines written together (log_hold): a
 * transaction's lines in one write, not one each. */
void later_flush_held(later_t *lt);
/* Log one held line now (with a suffix such as a rate-limit note), or
 * apply its count. */
void later_log(const later_line_t *l, const char *suffix);
/* Drop the lines (their writes were undone). */
void later_clear(later_t *lt);

#endif
