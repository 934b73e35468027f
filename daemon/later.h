/*
 * later.h: lines about what a database transaction did, logged only once
 * it committed.  A line said before the commit can describe something that
 * never happened (a disk-full run once logged 5,799 "queued" lines for
 * events that were never stored).  Each line keeps the journal fields of
 * log_event (lib/log.h): event id, partner, reason.
 */
#ifndef KP_LATER_H
#define KP_LATER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct later_line {
	int prio;                      /* LOG_INFO, LOG_WARNING */
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
/* Move src's lines to the end of dst. */
void later_move(later_t *dst, later_t *src);
/* Log the lines if committed, else drop them; free either way. */
void later_flush(later_t *lt, bool committed);
/* Log one held line now (with a suffix such as a rate-limit note). */
void later_log(const later_line_t *l, const char *suffix);
/* Drop the lines (their writes were undone). */
void later_clear(later_t *lt);

#endif
