/*
 * daemon.h: the state of one ketenpostd process and the modules that work
 * on it.
 *
 * main.c owns the one kpd_t and passes it to every module; nothing else
 * keeps mutable state.  Data flows one way (design.md §2):
 *   api (apisrv.c) -> envelope -> outbox (store) -> transport (outbound.c)
 *   transport (inbound.c) -> envelope -> inbox (store) -> receipt
 * zap.c authenticates every inbound connection against the partner
 * directory before a byte of it reaches inbound.c.
 */
#ifndef KP_DAEMON_H
#define KP_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include "api.pb-c.h"
#include "auditlog.h"
#include "batchbuf.h"
#include "chain.h"
#include "config.h"
#include "envelope.h"
#include "merkle.h"
#include "pack.h"
#include "metrics.h"
#include "policy.h"
#include "ratelimit.h"
#include "store.h"
#include "util.h"

#define KPD_ZAP_DOMAIN "ketenpost"       /* partner transport (CURVE) */
#define KPD_API_ZAP_DOMAIN "ketenpost-api" /* local API (ipc, NULL) */
#define KPD_FRAME_ENVELOPE 0x01          /* frame = type byte || body */
#define KPD_FRAME_RECEIPT 0x02
#define KPD_FRAME_PACK 0x03              /* envelopes (PROTOCOL.md §13.1) */
#define KPD_FRAME_RECEIPT_PACK 0x04
/* libzmq drops (and disconnects) anything larger; between KP_MAX_ENVELOPE
 * and this a frame gets a signed `oversize` receipt instead. */
#define KPD_FRAME_HARD_MAX (2 * 65536 + 1)
/* Exit status when a reload found our own certificate revoked. */
#define KPD_EXIT_REVOKED 3

/* One outbound connection: a DEALER to a partner's listen endpoint. */
typedef struct link {
	char oin[21];
	char endpoint[256];
	void *dealer;        /* CURVE client */
	void *monitor;       /* PAIR receiving the DEALER's monitor events */
	bool up;             /* handshake succeeded, not disconnected since */
	unsigned refusals;   /* failed handshakes since the last success */
	unsigned cert;       /* the partner's certificate (peer_cert) whose
	                      * transport key is the dealer's server key */
	unsigned next_cert;  /* the one the next rebuild takes */
	unsigned tried;      /* its certificates failed since the last try of
	                      * the newest (outbound.c s_link_refused) */
	uint64_t reopen_at_ms; /* 0, or when to rebuild dealer and monitor */
	ratelimit_t *rl;     /* this link's repeated warnings */
	struct flow *flow;   /* events in flight, round trip (outbound.c) */
	bool single_sig;     /* refused a batch proof: sign each envelope */
	/* packs (PROTOCOL.md §13.1): what the partner's last message
	 * announced (1: single frames, or none yet); no_packs after it refused
	 * one of ours; pack holds a round's envelopes while packing
	 * (outbound.c s_round_begin .. s_round_end), their event ids in
	 * pack_ids */
	size_t pack_max;
	bool no_packs, packing;
	pack_t *pack;
	uint8_t pack_ids[KP_PACK_ITEMS_MAX][16];
	uint64_t pack_mark;  /* ledger_head_mark before the pack's first */
} link_t;

typedef struct ledger ledger_t;

typedef struct kpd {
	config_t cfg;
	chain_t *chain;          /* replaced whole on SIGHUP */
	policy_t *policy;        /* replaced whole on SIGHUP */
	store_t *store;
	uint8_t *storage_key;    /* sodium_malloc, 32 bytes: payloads at rest */
	void *zctx;
	void *zap;               /* REP at inproc://zeromq.zap.01 */
	void *router;            /* inbound, CURVE server; NULL for auditors */
	void *router_mon;        /* PAIR receiving the ROUTER's monitor events */
	void *api;               /* ROUTER at cfg.api */
	link_t *links;
	size_t n_links;
	uint64_t started_ms;
	uint64_t next_expire_ms; /* when to look for dead letters again */
	uint64_t next_purge_ms;  /* when to enforce retention again */
	uint32_t destroy_pending; /* purged, but old WAL pages may hold keys */
	uint64_t next_destroy_ms; /* when to retry their checkpoint */
	uint64_t next_head_ms;   /* when to sign a tree head again */
	uint64_t next_overdue_ms; /* when to look for overdue answers */
	ledger_t *ledger;        /* the audit log (ledger.c) */
	bool outbound_dirty;     /* something may be due: run outbound soon */
	uint64_t outbound_blocked_until; /* the database refused: pause sends */
	unsigned monitor_seq;    /* makes every monitor endpoint unique */
	int lock_fd;             /* flock'd state_dir/ketenpostd.lock; -1 */
	bool listening;          /* the ROUTER is bound to cfg.listen */
	uint64_t rebind_at_ms;   /* not listening: when to try to bind again */
	bool accept_damaged_log; /* --accept-damaged-audit-log (ledger_open) */
	ratelimit_t *rl_handshake; /* inbound_monitor's refused handshakes */
	ratelimit_t *rl_refusal;   /* refused envelopes (inbound.c) */
	ratelimit_t *rl_zap;       /* refused connections (zap.c) */
	ratelimit_t *rl_storage;   /* "the database refused" warnings */
	void *refuse_caps;         /* inbound.c: stored refusals per partner */
	batchbuf_t api_batch;      /* apisrv.c: a drain's requests */
	struct inpipe *in_pipe;    /* inbound.c: its passes, the cache of
	                            * envelope batch signatures verified */
	struct worker *in_worker;  /* inbound.c: prepares a pass (worker.h) */
	bool stopping;
	int exit_status;         /* main's, when stopping: 0 or KPD_EXIT_REVOKED */
	metrics_t *metrics;      /* counters; HTTP when [metrics] listen */
	struct kpd_bundle *bundle; /* bundle.c: NULL unless cfg.bundle */
	struct kpd_trustwatch *trustwatch; /* trustwatch.c */
	struct rest *rest;       /* REST API ([rest] listen), or NULL */
	batch_cache_t *batch_cache; /* outbound.c: receipt batch signatures
	                             * verified (the loop's; inbound.c keeps
	                             * its own for envelopes) */
	struct worker *api_worker; /* apisrv.c: prepares the next API pass */
	struct api_pipe *api_pipe; /* apisrv.c: its two passes */
} kpd_t;

/* Verified batch signatures remembered (PROTOCOL.md §5.6): a batch is at
 * most batch_max envelopes, so this covers many batches in flight at
 * once, in about 350 KiB. */
#define KPD_BATCH_CACHE 4096

/* May a rate-limited warning be logged now?  OUT: *sup, the lines held
 * back before it (for ratelimit_note).  A NULL limiter lets all through. */
static inline bool
kpd_log_ok(ratelimit_t *rl, uint64_t *sup)
{
	*sup = 0;
	return rl == NULL || ratelimit_allow(rl, kp_now_ms(), sup);
}

/*
 * trustwatch.c: freshness of the trust material.  stale: the CRL is past
 * its nextUpdate; the daemon then refuses inbound connections (zap.c) and
 * opens no outbound links (events stay queued).  tick: warns ahead of
 * expiries (expiry_warning); true when a CRL/certificate time has passed
 * and the chain must be reloaded.  warnings: the lines for status.
 */
#define KPD_TRUST_LINE 256
bool kpd_trust_stale(const kpd_t *d);
bool kpd_trust_tick(kpd_t *d);
size_t kpd_trust_warnings(const kpd_t *d, char lines[][KPD_TRUST_LINE],
    size_t max);
void kpd_trust_stop(kpd_t *d);
/* The next CRL, CA or certificate time after now (s) at which the chain
 * must be reloaded: every certificate of every partner counts (a renewed
 * partner's previous one expires first); 0 if none. */
int64_t kpd_trust_next_s(const chain_t *ch, int64_t now);

/*
 * bundle.c: with cfg.bundle, verify the signed chain bundle and unpack a
 * newer version into <state_dir>/trust/, pointing cfg.chain_dir (and
 * cfg.policy, unless set) at it.  start: at startup, before the chain is
 * opened (fails only if no version can be applied at all).  tick: every
 * bundle_check_interval (or now if force); true if a newer version was
 * unpacked and the chain must be reloaded.  for_check: --check unpacks
 * into a temporary folder (tmp, removed by check_done).
 */
int kpd_bundle_start(kpd_t *d, kp_err_t *err)
    __attribute__((warn_unused_result));
bool kpd_bundle_tick(kpd_t *d, bool force);
uint64_t kpd_bundle_applied(const kpd_t *d);  /* 0: no bundle */
const char *kpd_bundle_refused(const kpd_t *d); /* last refusal or NULL */
void kpd_bundle_stop(kpd_t *d);
int kpd_bundle_for_check(config_t *cfg, char *tmp, size_t len,
    kp_err_t *err) __attribute__((warn_unused_result));
void kpd_bundle_check_done(const char *tmp);

/* zap.c: answer one pending ZAP request (the REP socket is readable). */
void zap_handle(kpd_t *d);

/*
 * inbound.c: envelopes in, as a pipeline of passes (at most batch_max
 * frames each): a pass is read from the ROUTER (inbound_drain, polled only
 * while no pass is in hand), prepared by a job on d->in_worker, then
 * stored, committed and receipted on the loop (inbound_work, when
 * inbound_work_fd polls readable; -1 while no job is in hand), which first
 * hands the next pass over.  inbound_settle: wait for the pass in hand
 * and store it (before a reload swaps the chain or policy it was
 * prepared with).  start: the worker (cfg.worker_threads) and the
 * passes; stop: the pass in hand stored, then all freed.  threaded:
 * prepare on a thread of its own, else inline on the loop.
 */
int inbound_start(kpd_t *d, bool threaded, kp_err_t *err)
    __attribute__((warn_unused_result));
void inbound_stop(kpd_t *d);
void inbound_drain(kpd_t *d);
void inbound_work(kpd_t *d);
void inbound_settle(kpd_t *d);
int inbound_work_fd(const kpd_t *d);
/* inbound.c: log events of the ROUTER monitor (refused handshakes). */
void inbound_monitor(kpd_t *d);
/* inbound.c: free the per-partner caps on stored refusals. */
void inbound_caps_destroy(kpd_t *d);

/* outbound.c: links to partners, sending due events, receipts back. */
int outbound_links_open(kpd_t *d, kp_err_t *err);
void outbound_links_close(kpd_t *d);
void outbound_send_due(kpd_t *d);
/* Send a just-committed envelope at once (its row is already scheduled
 * for the retry, so a failed attempt here costs nothing). */
/* Does the partner read batch signatures (PROTOCOL.md §3, §5.6)?  false
 * once it refused one as an older receiver does; then apisrv.c signs each
 * envelope to it alone and resends are re-signed singly. */
bool outbound_single_sig(kpd_t *d, const char *oin);
/* Around the sends of one API pass (outbound_send_now): what goes to a
 * partner that reads packs goes in packs, sent at outbound_rounds_end. */
void outbound_rounds_begin(kpd_t *d);
void outbound_rounds_end(kpd_t *d);
/* Send a queued event at once if its link has room; seq: its outbox row
 * (0: unknown). */
void outbound_send_now(kpd_t *d, const char *oin, const uint8_t id[16],
    uint64_t seq, const uint8_t *env, size_t len);
void outbound_drain(kpd_t *d, link_t *l);
void outbound_monitor(kpd_t *d, link_t *l);
/* Rebuild the links whose handshake was refused, once their backoff ran
 * out (outbound.c: a link's states). */
void outbound_links_tick(kpd_t *d);
void outbound_expire(kpd_t *d);
/* ms until something in the outbox is due (capped at cap_ms). */
uint64_t outbound_wait_ms(kpd_t *d, uint64_t cap_ms);
/* The receipt timeout after `attempts` tries, with jitter. */
uint64_t outbound_backoff_ms(const config_t *cfg, uint32_t attempts);
/* ... jittered by r, a uniformly random value the caller drew */
uint64_t outbound_backoff_jittered_ms(const config_t *cfg, uint32_t attempts,
    uint32_t r);

/*
 * apisrv.c: the local API, as a pipeline of at most two passes: a pass
 * taken from the socket is prepared by d->api_worker (decoding, checks,
 * sealing: nothing that reads the store) while the loop stores, signs,
 * commits and answers the pass before it.  drain: the socket is readable
 * and wanted (apisrv_wants_requests: no pass in the worker's hands);
 * work_done: the worker's fd (apisrv_work_fd) is readable.  settle: wait
 * for the pass in hand and store it, before anything the job reads
 * (chain, policy, keys) is replaced (main.c s_reload) and at stop.
 * start/stop make and end the worker (cfg.worker_threads: 0 inline).
 */
int apisrv_start(kpd_t *d, kp_err_t *err)
    __attribute__((warn_unused_result));
void apisrv_stop(kpd_t *d);
void apisrv_drain(kpd_t *d);
void apisrv_work_done(kpd_t *d);
bool apisrv_wants_requests(const kpd_t *d);
int apisrv_work_fd(const kpd_t *d);
void apisrv_settle(kpd_t *d);
/*
 * Run one packed kp.Request (req, len) as the client `who` with `roles`
 * through exactly the path of the socket's requests (role check, its own
 * transaction, read audit, idempotency, the send right after the commit).
 * For the REST API (rest.c).  OUT: *resp (free with
 * kp__response__free_unpacked(*resp, &atrest_allocator), which wipes
 * it): the answer, ok or an error.  -1 only when
 * no answer could be made at all (out of memory, no transaction).
 */
struct Kp__Response;
int apisrv_execute(kpd_t *d, const char *who, unsigned roles,
    const uint8_t *req, size_t len, struct Kp__Response **resp)
    __attribute__((warn_unused_result));
/* The API ROUTER's options (answers never dropped; sizes); 0 / -1. */
int apisrv_socket_options(void *sock);
/* Bind the API socket to endpoint, by a short alias when its ipc:// path
 * is longer than a Unix socket address holds (kp_ipc_address); 0 / -1. */
int apisrv_bind(void *sock, const char *endpoint);

/* retention.c: destroy payloads whose retention ended; logged.  OUT: *n.
 * Runs inside its own transaction.  0 / -1.  A purge is destroyed only
 * once the WAL is checkpointed and empty; until then d->destroy_pending
 * counts its payloads and retention_tick retries. */
int retention_purge(kpd_t *d, size_t *n, kp_err_t *err);
/* Run retention_purge when its interval has passed; retry a pending
 * destruction every second. */
void retention_tick(kpd_t *d);

/* atrest.c: payloads at rest, each under its own wrapped key. */
int atrest_key_derive(const uint8_t payload_sk[32], uint8_t key[32]);
/* The metadata key (store_open's meta_key) from the storage key. */
int atrest_meta_key_derive(const uint8_t store_key[32], uint8_t key[32]);
int atrest_event_key(const uint8_t store_key[32], const uint8_t id[16],
    uint8_t key[32], uint8_t wrapped[STORE_KEY_WRAP_LEN]);
int atrest_event_key_unwrap(const uint8_t store_key[32], const uint8_t id[16],
    const uint8_t wrapped[STORE_KEY_WRAP_LEN], uint8_t key[32]);
int atrest_seal(const uint8_t key[32], const uint8_t id[16],
    const uint8_t *in, size_t len, uint8_t **out, size_t *out_len);
int atrest_open(const uint8_t key[32], const uint8_t id[16],
    const uint8_t *in, size_t len, uint8_t **out, size_t *out_len);
/*
 * The same with the random bytes drawn by the caller (a receiver draws
 * them for a whole pass at once: randombytes_buf is one getrandom(2) per
 * 256 bytes, and per event were two).  Each byte fresh from
 * randombytes_buf and used for one event only; the caller wipes them.
 * r: K_e, then the wrapping nonce; ATREST_EVENT_RANDOM bytes for both
 * calls of one event (K_e, wrapping nonce, payload nonce).
 */
#define ATREST_NONCE_LEN 24
#define ATREST_EVENT_RANDOM (32 + 2 * ATREST_NONCE_LEN)
int atrest_event_key_from(const uint8_t store_key[32], const uint8_t id[16],
    const uint8_t r[32 + ATREST_NONCE_LEN], uint8_t key[32],
    uint8_t wrapped[STORE_KEY_WRAP_LEN]);
int atrest_seal_nonce(const uint8_t key[32], const uint8_t id[16],
    const uint8_t nonce[ATREST_NONCE_LEN], const uint8_t *in, size_t len,
    uint8_t **out, size_t *out_len);
/* Blocks that held plaintext, wiped when freed: atrest_alloc (zeroed) /
 * atrest_free; the same for protobuf-c (unpack and free_unpacked of API
 * requests); atrest_zmq_free(data, hint = size) for zmq_msg_init_data. */
void *atrest_alloc(size_t size);
void atrest_free(void *p);
extern ProtobufCAllocator atrest_allocator;
void atrest_zmq_free(void *data, void *hint);

/* monitor.c: start a socket monitor (PAIR returned in *mon) and read one
 * event from it (non-blocking; -1 if none). */
int kpd_monitor_start(kpd_t *d, void *sock, const char *name, int events,
    void **mon);
int kpd_monitor_read(void *mon, uint16_t *event, char *addr, size_t len);
/* Does the message being received on sock have more frames?  And drop the
 * remaining frames of that one message (never of the next). */
bool kpd_more(void *sock);
void kpd_drain_message(void *sock);
/* Close a socket with linger 0 and set the pointer to NULL. */
void kpd_close(void **sock_p);
/* Close a socket and its monitor PAIR, in the order libzmq needs. */
void kpd_close_monitored(void **sock_p, void **mon_p);

/*
 * ledger.c: the audit log.  Every database transaction of the daemon goes
 * through kpd_begin / kpd_commit / kpd_rollback, so the log's in-memory
 * tree follows exactly what was committed.  ledger_append fails closed:
 * -1 means the act it records must fail too.
 */
/* Record the own certificate in audit_meta (the current one and, kept
 * across renewals, each one used): after a reload changed it. */
int ledger_meta(kpd_t *d, kp_err_t *err) __attribute__((warn_unused_result));
int ledger_open(kpd_t *d, kp_err_t *err);
void ledger_close(kpd_t *d);
int ledger_append(kpd_t *d, audit_entry_t *e, kp_err_t *err)
    __attribute__((warn_unused_result));
int kpd_begin(kpd_t *d, kp_err_t *err) __attribute__((warn_unused_result));
/* The same, committed without a flush (store_begin_unflushed): receipts'
 * settlements only.  A tree head is signed and stored by a flushed commit,
 * which carries these entries to the disk before the head leaves. */
int kpd_begin_unflushed(kpd_t *d, kp_err_t *err)
    __attribute__((warn_unused_result));
int kpd_commit(kpd_t *d, kp_err_t *err) __attribute__((warn_unused_result));
void kpd_rollback(kpd_t *d);
/* One request inside a batch: undone on its own if it fails (SAVEPOINT),
 * with the audit entries it appended. */
int kpd_item_begin(kpd_t *d, size_t *mark, kp_err_t *err)
    __attribute__((warn_unused_result));
int kpd_item_end(kpd_t *d, size_t mark, bool ok, kp_err_t *err)
    __attribute__((warn_unused_result));
void ledger_sign_head(kpd_t *d, bool force);
void ledger_tick(kpd_t *d);
/* The latest signed head for partner to_oin as a serialised kp.TreeHead
 * (malloc'd; NULL if none yet), with a consistency proof from the last
 * head given to that partner when it has grown since. */
int ledger_head_for(kpd_t *d, const char *to_oin, uint8_t **wire,
    size_t *len);
/* ledger_head_for counts a head given when it is drawn.  A mark of what
 * was given to to_oin, taken before a frame's heads are drawn, and the way
 * back to it when that frame was not sent after all: the next head's proof
 * then starts at the size the partner was really given (AUDIT.md §10). */
uint64_t ledger_head_mark(kpd_t *d, const char *to_oin);
void ledger_head_rewind(kpd_t *d, const char *to_oin, uint64_t mark);
/* Witness the head carried by an envelope or receipt from from_oin. */
void ledger_witness(kpd_t *d, const char *from_oin, const uint8_t *msg,
    size_t len, bool is_receipt);
/* The same with the head already taken out of the message (a packed
 * kp.TreeHead, envelope_extract_head; NULL: none): inbound.c takes it
 * out in its prepare phase, off the loop. */
void ledger_witness_head(kpd_t *d, const char *from_oin, const uint8_t *wire,
    size_t wlen);

/* The decrypted payload of a received event (-1 if purged or unknown). */
int atrest_inbox_payload(kpd_t *d, const uint8_t id[16], uint8_t **plain,
    size_t *plen);

/* An arena for the pieces of one API response, freed after the reply. */
typedef struct arena {
	void **blocks;
	size_t n, cap;
} arena_t;
void *arena_alloc(arena_t *a, size_t size);  /* zeroed; NULL on OOM */
char *arena_strdup(arena_t *a, const char *s);
/* Free heap block p with the arena (on failure: now, and -1). */
int arena_adopt(arena_t *a, void *p);
void arena_free(arena_t *a);

/* feedback.c: the officer's view (case, cases, report). */
int feedback_case(kpd_t *d, arena_t *a, const Kp__CaseRequest *q,
    Kp__CaseResponse **out, kp_err_t *err);
int feedback_cases(kpd_t *d, arena_t *a, const Kp__CasesRequest *q,
    Kp__CasesResponse **out, kp_err_t *err);
int feedback_report(kpd_t *d, arena_t *a, const Kp__ReportRequest *q,
    Kp__ReportResponse **out, kp_err_t *err);
/* todo: the officer's work list, overdue or due within q->days. */
int feedback_todo(kpd_t *d, arena_t *a, const Kp__TodoRequest *q,
    Kp__TodoResponse **out, kp_err_t *err);
/* Is the reminder due now for overdue x the escalation (MAS opschaling)
 * of the policy's escalation step?  A failure to tell counts as no. */
bool feedback_escalate_now(kpd_t *d, const expect_row_t *x, uint64_t now);
/* Overdue expectations of a case as of `at`; cb non-zero stops. */
int feedback_overdue(kpd_t *d, const char *case_local, uint64_t at,
    int (*cb)(void *arg, const expect_row_t *x), void *arg, kp_err_t *err);

/* cases.c: expectations of answers (issue: systematic feedback). */
int cases_route_of(int type, const ProtobufCMessage *ev);
bool cases_is_answer(kpd_t *d, int type, int role);
/* A reply must be about an event exchanged with the same partner: on
 * send (0, or -1 with a one-line error), on receipt (false with detail). */
int cases_check_reply(kpd_t *d, const char *to_oin, const uint8_t id[16],
    kp_err_t *err) __attribute__((warn_unused_result));
bool cases_reply_known(kpd_t *d, const envelope_meta_t *m, char *detail,
    size_t len);
/* link: file a received event (and every other from that partner on the
 * same pseudonym) under a local case reference of this organisation. */
int feedback_link(kpd_t *d, arena_t *a, const Kp__LinkRequest *q,
    Kp__LinkResponse **out, kp_err_t *err);
/* outcome: the officer's record of the absence after the route (local). */
int feedback_outcome(kpd_t *d, arena_t *a, const Kp__OutcomeRequest *q,
    Kp__OutcomeResponse **out, kp_err_t *err);
/* The values of a received event still kept, as a JSON object (OUT:
 * *text, malloc'd), for subject access; *text NULL when none are kept
 * (sent, destroyed).  -1 when kept values cannot be shown (unreadable,
 * undecodable, out of memory). */
int cases_values_json(kpd_t *d, const subject_row_t *row, char **text,
    kp_err_t *e);
/* A received event on no linked case is filed under the case of the event
 * it replies to (row->case_local), if it names one. */
void cases_file_reply(kpd_t *d, inbox_row_t *row);
/* ev: the event sent (its own lead time, the policy's lead_field). */
int cases_on_send(kpd_t *d, const outbox_row_t *row, int recipient_role,
    const ProtobufCMessage *ev, kp_err_t *err)
    __attribute__((warn_unused_result));
/* ev: the event received (an interim answer keeps the expectation open). */
int cases_on_receive(kpd_t *d, const inbox_row_t *row,
    const ProtobufCMessage *ev, kp_err_t *err)
    __attribute__((warn_unused_result));
void cases_tick(kpd_t *d);
void cases_summary(int type, const uint8_t *payload, size_t len, char *out,
    size_t outlen, bool value_only);
/* The outcome of an answer for a route: the value of the policy's
 * `outcome` field of its type, else the first enum value ("positief"). */
void cases_outcome(kpd_t *d, int type, const uint8_t *payload, size_t len,
    char *out, size_t outlen);
/* Is this answer an interim one (a phase) by the policy? */
bool cases_is_interim(kpd_t *d, int type, const uint8_t *payload,
    size_t len);

/* frame.c: type byte || message (+ our latest tree head). malloc'd. */
uint8_t *kpd_frame_build(kpd_t *d, const char *to_oin, uint8_t type,
    const uint8_t *msg, size_t len, size_t *frame_len);
/* Add msg, its head attached as in kpd_frame_build, to pack as one more
 * item of at most max_items, unless it does not fit (*full: send the pack
 * first).  -1: out of memory. */
int kpd_frame_pack_add(kpd_t *d, pack_t *pack, size_t max_items,
    const char *to_oin, bool is_receipt, const uint8_t *msg, size_t len,
    bool *full) __attribute__((warn_unused_result));
/* Announce on sock, before it binds or connects, that we read packs of
 * KP_PACK_ITEMS_MAX items (ZMTP metadata KP_PACK_PROPERTY).  -1: this
 * libzmq cannot (then peers send single frames: slower, not broken). */
int kpd_frame_announce_packs(void *sock);

/* Log prefix helper: event id as UUID text. */
const char *kpd_id(const uint8_t id[16], char buf[37]);

#endif
