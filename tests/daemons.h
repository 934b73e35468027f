/*
 * daemons.h: real ketenpostd processes for the integration tests.
 *
 * A test chain is made fresh in a temporary folder by the real
 * ketenpost-certs, with one config per organisation (loopback ports picked
 * per test process, short retry timers); daemons are started with
 * fork/exec, talked to over their real local API, stopped with SIGTERM or
 * killed with SIGKILL.
 */
#ifndef KP_TEST_DAEMONS_H
#define KP_TEST_DAEMONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "api.pb-c.h"

#define TD_MAX_ORGS 8

typedef struct td_org {
	char oin[21];
	char role[16];
	char conf[4096];
	char api[4200];
	char log[4096];
	char listen[64];
	pid_t pid;              /* 0 when not running */
} td_org_t;

typedef struct td_chain {
	char dir[4096];         /* the chain folder (a fresh temp dir) */
	td_org_t orgs[TD_MAX_ORGS];
	size_t n;
} td_chain_t;

/* Make a chain with leerplicht, halt, rvdk, om, jbt (OINs of common.h).
 * `extra_conf` is appended to every config (may be NULL). */
void td_chain_make(td_chain_t *c, const char *extra_conf);
/* Stop every daemon still running and remove nothing (logs stay). */
void td_chain_stop_all(td_chain_t *c);
td_org_t *td_org(td_chain_t *c, const char *oin);

/* Start the daemon and wait (up to 10 s) until its API answers. */
void td_start(td_org_t *o);
/* Start without waiting (for a daemon expected to fail). */
pid_t td_spawn(td_org_t *o);
/* SIGTERM and wait for exit; returns the exit status. */
int td_stop(td_org_t *o);
/* SIGKILL and reap. */
void td_kill(td_org_t *o);
/* SIGSTOP, and wait until every thread of o has stopped: kill(2) returns
 * before a running thread stops, so it could still read what is sent
 * right after (two requests meant for one pass went in two). */
void td_pause(td_org_t *o);
/* Send SIGHUP. */
void td_hup(td_org_t *o);
/* True if the log file of o contains `needle` (waits up to ms). */
bool td_log_has(const td_org_t *o, const char *needle, int wait_ms);

/* One API call (REQ socket, timeout_ms).  *resp to be freed with
 * kp__response__free_unpacked.  0 / -1 on transport failure. */
int td_call(const td_org_t *o, const Kp__Request *req, Kp__Response **resp,
    int timeout_ms);
/* Send one event from a docs/examples file or JSON text; asserts ok.
 * OUT: event_id. */
void td_send(td_org_t *from, const char *to_oin, const char *type,
    const char *case_ref, const char *json_text, const uint8_t *reply_to,
    uint8_t event_id[16]);
/*
 * Seal an event as organisation `from` (a chain_t of the test chain) for
 * `to`, with the JSON payload, under the purpose, legal basis and hash of
 * the chain's policy.ini, created at `created_ms`: what a daemon would
 * send, made by hand so tests can send it on a raw connection.
 * OUT: *env (malloc'd), *len, id.
 */
struct chain;
void td_seal(struct chain *from, const td_chain_t *c, const char *to,
    const char *type, const char *json, uint64_t created_ms, uint8_t **env,
    size_t *len, uint8_t id[16]);

/* Organisation oin's chain as its daemon opens it (its keys, the chain's
 * directory): to seal and sign as it would.  chain_close when done. */
struct chain *td_chain_open(const td_chain_t *c, const char *oin);

/* A connection to target's listener made by hand, as a partner (or an
 * impostor) would make it: a DEALER with CURVE keys pk/sk to server_pk,
 * receiving with a timeout of rcv_timeout_ms. */
typedef struct td_rogue {
	void *ctx, *sock;
} td_rogue_t;
void td_rogue_connect(td_rogue_t *r, const td_org_t *target,
    const uint8_t pk[32], const uint8_t sk[32], const uint8_t server_pk[32],
    int rcv_timeout_ms);
/* ... with the real transport keys of organisation `as`. */
void td_rogue_connect_as(td_rogue_t *r, struct chain *as,
    const td_org_t *target, int rcv_timeout_ms);
/* ... and announcing in its handshake that it reads packs of `announce`
 * items (X-Kp-Pack, PROTOCOL.md §13.1; NULL: announcing nothing). */
void td_rogue_connect_announcing(td_rogue_t *r, struct chain *as,
    const td_org_t *target, const char *announce, int rcv_timeout_ms);
/* Set X-Kp-Pack to value on sock before it binds or connects (NULL:
 * nothing).  ZMQ_METADATA is in zmq.h's draft section only. */
#define TD_ZMQ_METADATA 95
void td_announce_packs(void *sock, const char *value);
/* How many events o's inbox holds (acknowledged or not). */
size_t td_inbox_count(const td_org_t *o);
void td_rogue_close(td_rogue_t *r);

/* A DEALER on o's local API, for a client that pipelines requests:
 * receive timeout 60 s; rcvhwm > 0 limits the answers queued to it.
 * td_api_dealer_send sends [empty][Request]; td_api_dealer_recv reads one
 * [empty][Response] (NULL on timeout). */
void *td_api_dealer(void *ctx, const td_org_t *o, int rcvhwm);
void td_api_dealer_send(void *s, const Kp__Request *req);
Kp__Response *td_api_dealer_recv(void *s);

/* The example payload of type, packed (td_example); its length.  out
 * holds TD_EXAMPLE_MAX bytes. */
#define TD_EXAMPLE_MAX 256
size_t td_example_packed(const char *type, uint8_t *out);

/*
 * n (>= 1) envelopes of the example referral to Halt, sealed by `from`
 * under the chain's policy.ini, created at `created`, in reply to
 * reply_to if not NULL, and signed together: one batch signature for
 * n > 1 (PROTOCOL.md §5.6), a single signature for n = 1.  ids: n event
 * ids, used as given, or made (OUT) with TD_SEAL_FRESH_IDS; NULL with that
 * flag for ids nobody needs.  The case pseudonym is random with
 * TD_SEAL_RANDOM_CASE, else all zero.  OUT: env[i] (malloc'd), len[i],
 * and the envelope digests dg[i] if dg is not NULL.
 */
#define TD_SEAL_FRESH_IDS 1u
#define TD_SEAL_RANDOM_CASE 2u
void td_seal_referrals(const td_chain_t *c, struct chain *from, size_t n,
    uint8_t (*ids)[16], const uint8_t *reply_to, uint64_t created,
    unsigned flags, uint8_t **env, size_t *len, uint8_t (*dg)[32]);

/* The example payload of type as JSON text (static buffer). */
const char *td_example(const char *type);
/* The example as it may go to to_oin under mas.ini: a referral to another
 * partner than Halt without the Halt-only fields (only_to.*). */
const char *td_example_to(const char *type, const char *to_oin);
/* Counts from the status call. */
void td_status(const td_org_t *o, Kp__StatusResponse *out);
/* Wait until o's outbox has no pending event (up to ms); true if so. */
bool td_wait_settled(const td_org_t *o, int ms);
/* Outbox / inbox lists (all items); free with kp__response__free_unpacked. */
Kp__Response *td_outbox(const td_org_t *o);
Kp__Response *td_inbox(const td_org_t *o, bool all);

/* Issue 9 helpers. */
/* The state folder of oin in chain c (its default). */
void td_state_dir(const td_chain_t *c, const char *oin, char *buf,
    size_t len);
/* Give o a copy of the chain folder of its own (OUT: dir), in which
 * organisation hidden_oin does not exist: o's config and API path follow
 * the copy.  Call before o was started. */
void td_org_own_chain(td_chain_t *c, td_org_t *o, const char *hidden_oin,
    char *dir, size_t len);
/* Put oin's certificate (from c) into the chain copy dir, atomically. */
void td_chain_reveal(const td_chain_t *c, const char *dir, const char *oin);
/* Wait up to ms for o to exit: its exit status (128+signal), or -1 if
 * it still runs. */
int td_wait_exit(td_org_t *o, int ms);
/* Lines of o's log containing needle; and wait until there are n. */
size_t td_log_count(const td_org_t *o, const char *needle);
bool td_log_count_reaches(const td_org_t *o, const char *needle, size_t n,
    int wait_ms);
/* SELECT count(*) FROM <from_sql> in the database of state_dir, with the
 * sqlite3 shell; -1 on failure. */
long td_sql_count(const char *state_dir, const char *from_sql);
/* td_spawn with one more command-line argument. */
pid_t td_spawn_arg(td_org_t *o, const char *arg);
/* Wait (up to about ms) until o's API answers; false if it exited. */
bool td_wait_api(td_org_t *o, int ms);
/* Set the daemons' simulated clock (KETENPOST_CLOCK_FILE `file`) to ms,
 * by a rename, so a daemon never reads half a number. */
void td_set_clock(const char *file, uint64_t ms);

#endif
