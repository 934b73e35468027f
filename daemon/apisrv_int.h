/*
 * apisrv_int.h: what the local API's two rooms share (apisrv.c: the
 * socket, the passes and sends; apiquery.c: every other request).
 *
 * struct api_req is one request, owned by apisrv.c (by the pass that
 * holds it, or by apisrv_execute for a REST request), which creates,
 * answers and frees it; a handler in apiquery.c
 * fills its answer and the storage behind it (r->arena, r->owned) and
 * never keeps a pointer into it.  Not for other modules: the rest of the
 * daemon reaches the API through daemon.h (apisrv_*).
 */
#ifndef KP_APISRV_INT_H
#define KP_APISRV_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "access.h"
#include "api.pb-c.h"
#include "daemon.h"
#include "envelope.h"
#include "later.h"

/*
 * What the prepare phase of a send found (s_prepare_send): all of the send
 * that reads no store.  The store phase (s_send) applies it in the order
 * the checks had before the split: a failure found here is reported only
 * at its stage (after the idempotency look-up, after the reply check or
 * after the case link), and logged only then.
 */
enum { PREP_OK, PREP_EARLY, PREP_CHECK, PREP_SEAL };
struct send_prep {
	bool done;                    /* prepared (by the job or inline) */
	int failed;                   /* PREP_*: the stage its error is at */
	kp_err_t err;
	bool log_refused;             /* ... a payload refused: log it */
	int refusal_reason;           /* ... and audit it (refusal_out) */
	char refusal_rule[AUDIT_RULE_MAX + 1];
	uint8_t hash[32];             /* s_request_hash, with a key */
	uint8_t event_id[16];
	const peer_t *to;
	const policy_rule_t *rule;
	ProtobufCMessage *ev;         /* the payload decoded; freed in cleanup */
	bool has_candidate;           /* the pseudonym from keys alone */
	envelope_meta_t m;            /* case_ref: the candidate, as sealed */
	envelope_draft_t draft;       /* sealed under m; moved to the request */
	outbox_row_t row;             /* but its case, link, digest, key: later */
	/* the event key in clear, then the nonce its envelope is sealed at
	 * rest with (s_store_signed): drawn with the key's wrapping nonce in
	 * one system call, so the loop neither unwraps the key nor draws a
	 * nonce; wiped by s_prep_clear (the request holds the payload in
	 * clear as long) */
	uint8_t rest[32 + ATREST_NONCE_LEN];
	/* the case reference and route sealed at rest, for the store's
	 * memo (store_seals_use) before its statements; wiped likewise */
	store_seals_t seals;
	bool has_seals;
};

struct api_req {
	uint8_t rid[256];
	size_t rid_len;
	zmq_msg_t msg;                /* the request as received, until the */
	bool has_msg;                 /* ... prepare phase unpacked it */
	struct send_prep prep;        /* a send's prepare phase */
	Kp__Request *req;
	Kp__Response resp;
	Kp__SendResponse send_resp;
	Kp__AckResponse ack;
	Kp__StatusResponse status;
	Kp__SubjectResponse subject;
	Kp__PurgeResponse purge;
	uint8_t event_id[16];
	char to_oin[21];
	uint8_t *env;                 /* sealed envelope, sent after commit */
	size_t env_len;
	envelope_draft_t draft;       /* ... until signed: s_sign_sends */
	bool has_draft;
	outbox_row_t row;             /* stored once signed: s_store_signed */
	struct api_req *batch;        /* the requests before this one in its */
	size_t index;                 /* ... batch: s_idem_in_batch */
	char error[KP_ERR_MSG_MAX];
	const char *code;
	bool fatal;                   /* the store failed part-way (the audit
	                               * log, a send's later write): undo the
	                               * batch */
	bool saw_early;               /* a read answered after s_sign_before
	                               * stored the sends before it: on a
	                               * rollback its answer is not sent */
	arena_t arena;                /* feedback responses */
	Kp__RemindResponse remind;
	bool immediate;               /* send right after commit (else: due) */
	char who[ACCESS_ID_MAX];      /* the client, from ZAP (access.c) */
	unsigned roles;               /* ... and its roles */
	int refusal_reason;           /* a send refused here: audit it */
	char refusal_rule[AUDIT_RULE_MAX + 1]; /* ... and the rule it broke */
	void *owned;                  /* result storage to free after sending */
	void (*free_owned)(void *);
	bool repeated;                /* idempotency key of a stored event */
	later_t log;                  /* "queued" lines, after the commit */
};

/* r's error message and stable code (kp_code_name); returns -1, so that a
 * handler can `return api_fail(...)`. */
int api_fail(struct api_req *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The requests other than send and remind (apiquery.c): each answers in
 * r->resp (and the response it names) or fails r with api_fail. */
int apiquery_outbox(kpd_t *d, struct api_req *r);
int apiquery_inbox(kpd_t *d, struct api_req *r);
int apiquery_fetch(kpd_t *d, struct api_req *r);
int apiquery_ack(kpd_t *d, struct api_req *r, Kp__AckResponse *out);
int apiquery_status(kpd_t *d, struct api_req *r, Kp__StatusResponse *st);
int apiquery_subject(kpd_t *d, struct api_req *r);
int apiquery_purge(kpd_t *d, struct api_req *r);   /* its own transaction */
int apiquery_case(kpd_t *d, struct api_req *r);
int apiquery_cases(kpd_t *d, struct api_req *r);
int apiquery_report(kpd_t *d, struct api_req *r);
int apiquery_link(kpd_t *d, struct api_req *r);
int apiquery_outcome(kpd_t *d, struct api_req *r);
int apiquery_todo(kpd_t *d, struct api_req *r);

#endif
