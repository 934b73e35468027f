/*
 * feedback_int.h: what the files of the officer's views share
 * (feedback.c: one case, all cases, the to-do list; feedback_report.c:
 * the evaluation report).  Not for any other module: apiquery.c (the
 * views) and apisrv.c (feedback_overdue, for remind) call the feedback_*
 * functions of daemon.h.
 */
#ifndef KP_FEEDBACK_INT_H
#define KP_FEEDBACK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon.h"

/* A growing array of pointers in the arena. */
struct ptrs {
	void **v;
	size_t n, cap;
};

/* Append item (NULL: -1, as for no memory). */
int feedback_push(arena_t *a, struct ptrs *p, void *item);

/* Had an interim answer (a phase) come by `at`? */
bool feedback_interim_at(const expect_row_t *x, uint64_t at);
/* The expectation's state as of `at` (Kp__ExpectationState). */
int feedback_state_at(const expect_row_t *x, uint64_t at);
/* The partner's display name, or "(not a partner)"; owned by the
 * directory (copy it into the answer). */
const char *feedback_partner_name(kpd_t *d, const char *oin);
/* The outcome of received answer `id` ("positief"); -1 if its payload is
 * gone or unreadable. */
int feedback_answer_outcome(kpd_t *d, int type, const uint8_t id[16],
    char *out, size_t len);
/* Had an escalation been sent for x by `at`? */
bool feedback_escalated(kpd_t *d, const expect_row_t *x, uint64_t at);

#endif
