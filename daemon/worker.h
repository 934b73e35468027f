/*
 * worker.h: one job at a time on a thread beside the daemon's loop.
 *
 * For work that reads nothing the loop writes while the job is in hand
 * (opening, decoding, checking, sealing), so a pass can use the second
 * core while the loop stores the pass before it.  The loop owns the job's
 * memory before worker_submit and again after worker_wait; in between it
 * belongs to the job alone.  Without a thread (worker_new(false, ...):
 * `worker_threads = 0`, tests) worker_submit runs the job at once, and
 * everything else behaves the same, so the loop has one code path.
 */
#ifndef KP_WORKER_H
#define KP_WORKER_H

#include <pthread.h>
#include <stdbool.h>

#include "kperr.h"

typedef struct worker worker_t;
typedef void worker_job_fn(void *arg);

/* A worker: with threaded, one thread (every signal blocked in it). */
int worker_new(bool threaded, worker_t **out, kp_err_t *e);

/* Waits for the job in hand (if any), joins the thread, frees; *w = NULL. */
void worker_destroy(worker_t **w);

/* Hand fn(arg) over.  One job at a time: -1 if one is in hand (a bug of
 * the caller; nothing is started).  From here until worker_wait returns,
 * arg and all it points to belong to the job. */
int worker_submit(worker_t *w, worker_job_fn *fn, void *arg);

/* true from worker_submit until worker_wait has returned. */
bool worker_busy(const worker_t *w);

/* Block until the job in hand is done; its arg (NULL if none was in
 * hand).  What the job wrote is visible to the caller once this returns. */
void *worker_wait(worker_t *w);

/* Polls readable (POLLIN) once the job in hand is done, until worker_wait;
 * for the loop's zmq_poll set. */
int worker_fd(const worker_t *w);

/* Start one of the daemon's threads the way each is started: with every
 * signal blocked in it (the daemon reads them from a signalfd) and named
 * for top -H, perf and /proc/PID/task (15 bytes at most).  0, or
 * pthread_create's error number.  store_ckpt.c starts its thread so too. */
int worker_thread_start(pthread_t *t, void *(*fn)(void *), void *arg,
    const char *name);

#endif
