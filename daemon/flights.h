/*
 * flights.h: the events in flight on one link (sent, no receipt yet),
 * found by their event id.
 *
 * A fixed table: fl[0..n) are the flights, in no meaningful order
 * (forgetting one moves the last into its place), and at[] indexes them
 * by event id (open addressing, linear probing; index + 1, 0 = free),
 * because every send and every receipt looks one up: a scan of a full
 * window for each took ~7% of the sender in a backlog's drain.  The ids
 * are the sending daemon's own UUIDv7 (kp_uuid_new: the last 8 bytes are
 * random), so their tail is the hash.
 *
 * The caller (outbound.c, struct flow) owns the table and what a flight's
 * times mean; this module never reads the store, a socket or the clock.
 */
#ifndef KP_FLIGHTS_H
#define KP_FLIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FLIGHTS_MAX 4096              /* events in flight per partner */
#define FLIGHTS_SLOTS_LOG2 13
#define FLIGHTS_SLOTS (1u << FLIGHTS_SLOTS_LOG2)  /* 2 x FLIGHTS_MAX */

typedef struct flight {
	uint8_t id[16];
	uint64_t sent_ms;
	uint64_t backoff_ms;  /* the jittered backoff of this send */
	uint32_t sends;       /* sends of this event on this connection */
	bool resent;          /* Karn: no round-trip sample from a resend */
	uint64_t seq;         /* its outbox row's seq; 0 if not known */
	uint32_t bytes;       /* its envelope's length (the window's bytes) */
} flight_t;

typedef struct flights {
	flight_t fl[FLIGHTS_MAX];
	uint16_t at[FLIGHTS_SLOTS];
	size_t n;
} flights_t;

/* The index of the flight of event id in fl[], or -1. */
ssize_t flights_find(const flights_t *f, const uint8_t id[16]);
/* A new flight for id at fl[n] (its other fields zero), or NULL when the
 * table is full.  The caller has checked that id is not in flight. */
flight_t *flights_add(flights_t *f, const uint8_t id[16]);
/* Forget flight i (< n); the last flight takes its place. */
void flights_forget(flights_t *f, size_t i);
/* Forget every flight. */
void flights_clear(flights_t *f);

#endif
