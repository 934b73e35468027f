/*
 * store_webhook.h: the webhook's notices in the daemon's database (table
 * webhook, made by store_webhook_init): each notice queued in the same
 * transaction as the act it tells of (an arrival, a receipt, an overdue
 * answer), so a notice is never sent of something that was rolled back,
 * nor lost in a crash; and each delivery attempt recorded on its row.
 */
#ifndef KP_STORE_WEBHOOK_H
#define KP_STORE_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "kperr.h"
#include "store.h"

typedef struct webhook_row {
	uint64_t seq;                 /* the notice's number, increasing */
	char kind[16];                /* "event", "receipt", "overdue" */
	uint8_t event_id[16];
	uint64_t created_ms;
	uint32_t attempts;            /* made so far */
} webhook_row_t;

/* The table (if it is not there yet).  Outside a transaction. */
int store_webhook_init(store_t *s, kp_err_t *err)
    __attribute__((warn_unused_result));
/* Queue a notice (in the caller's transaction). */
int store_webhook_add(store_t *s, const char *kind, const uint8_t id[16],
    uint64_t now, kp_err_t *err) __attribute__((warn_unused_result));
/* The oldest notice neither delivered nor given up.  OUT: *found, row. */
int store_webhook_next(store_t *s, webhook_row_t *row, bool *found,
    kp_err_t *err) __attribute__((warn_unused_result));
/* One attempt at notice seq: its HTTP status (0: no answer), and whether
 * it was delivered (2xx) or is given up. */
int store_webhook_attempt(store_t *s, uint64_t seq, int status,
    bool delivered, bool give_up, uint64_t now, kp_err_t *err)
    __attribute__((warn_unused_result));
/* Forget settled notices (delivered or given up) created before `before`. */
int store_webhook_prune(store_t *s, uint64_t before, kp_err_t *err)
    __attribute__((warn_unused_result));

#endif
