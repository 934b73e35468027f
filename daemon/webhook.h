/*
 * webhook.h: notices to a case system's local URL (`[rest] webhook`,
 * ketenpostd.conf(5)) when an event arrives, a receipt comes back for an
 * event sent, or an expected answer becomes overdue: what wakes the REST
 * API's long polls, pushed instead of waited for.
 *
 * A notice is small JSON: the kind, the event id, its number and time;
 * never a case reference or payload content (the case system fetches the
 * event through the API, with its roles and read auditing).  Notices are
 * queued in the database in the transaction of the act (store_webhook.h),
 * posted one at a time in order, retried with backoff, every attempt
 * recorded; the daemon's loop never waits for the receiver.
 */
#ifndef KP_WEBHOOK_H
#define KP_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "kperr.h"

struct kpd;
typedef struct webhook webhook_t;

enum webhook_kind { WEBHOOK_EVENT, WEBHOOK_RECEIPT, WEBHOOK_OVERDUE };

/*
 * Queue a notice of kind about event id, in the caller's transaction
 * (inbound.c, outbound.c, cases.c).  Nothing when no webhook is
 * configured.  0 / -1 (a database error: the caller's transaction fails
 * as for any other write).
 */
int webhook_notice(struct kpd *d, enum webhook_kind kind,
    const uint8_t id[16], kp_err_t *err) __attribute__((warn_unused_result));

/* Does a poster run (so webhook_notice queues)?  Its notices are numbered
 * by their row: a transaction that queues one must be flushed, or a power
 * loss could give a number already posted to another notice. */
bool webhook_running(struct kpd *d);

/* Post to d's [rest] webhook URL (the table is made if need be).  NULL
 * after err is set. */
webhook_t *webhook_new(struct kpd *d, kp_err_t *err);
/* Stop (an attempt in flight is dropped, and made again at the next
 * start) and free.  NULL ok. */
void webhook_destroy(webhook_t **self_p);
/* A notice may have been queued: look at the table at the next run. */
void webhook_poke(webhook_t *w);
/* cap, or less when an attempt is due or times out sooner. */
uint64_t webhook_wait_ms(const webhook_t *w, uint64_t cap);
/* Do what can be done without blocking: start, continue or finish an
 * attempt; its socket is (un)registered in epfd to wake the loop. */
void webhook_run(webhook_t *w, int epfd);

#endif
