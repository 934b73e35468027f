/*
 * worker.c: one job at a time on a thread beside the daemon's loop.
 *
 * Owns one thread, one eventfd and the hand-over state.  Shared, under
 * mu: fn and arg (main: the job given; thread: taken), done (thread: the
 * job returned), stop (main: worker_destroy).  cv wakes the thread (a job,
 * stop) and the loop waiting in worker_wait.  in_hand belongs to the loop
 * alone.  The mutex is also what makes the job's writes visible to the
 * loop: the thread sets done under it after the job, the loop reads done
 * under it before it touches the job's memory again.
 *
 * The eventfd only tells zmq_poll that a job is done; worker_wait, not
 * the fd, says so with certainty, and drains the fd.  The thread must
 * never: handle signals (all blocked in it: the daemon reads them from a
 * signalfd), log (the job decides what is said, on the loop, afterwards),
 * outlive worker_destroy.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "worker.h"

struct worker {
	bool threaded;
	bool in_hand;                /* the loop's: submitted, not yet waited */
	int efd;                     /* readable once done */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	worker_job_fn *fn;           /* under mu: a job not yet taken */
	void *arg;                   /* under mu: the job in hand's argument */
	bool done, stop;             /* under mu */
};

static void
s_signal_done(worker_t *w)
{
	uint64_t one = 1;

	/* a full counter (2^64 - 2 jobs unwaited) cannot happen: every job
	 * is waited before the next one is given */
	while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void *
s_main(void *arg)
{
	worker_t *w = arg;
	worker_job_fn *fn;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && w->fn == NULL)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->fn == NULL)          /* stop, and no job left */
			break;
		fn = w->fn;
		w->fn = NULL;
		pthread_mutex_unlock(&w->mu);
		fn(w->arg);
		pthread_mutex_lock(&w->mu);
		w->done = true;
		s_signal_done(w);
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int
worker_thread_start(pthread_t *t, void *(*fn)(void *), void *arg,
    const char *name)
{
	sigset_t all, old;
	int rc;

	/* the thread inherits the mask it is created with */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		(void)pthread_setname_np(*t, name);
	return rc;
}

int
worker_new(bool threaded, worker_t **out, kp_err_t *e)
{
	worker_t *w;
	int step = 0, rc;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return kp_fail(e, KP_ERR_NOMEM, "worker: out of memory");
	w->threaded = threaded;
	if ((w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		kp_fail(e, KP_ERR_IO, "worker: eventfd: %s", strerror(errno));
		goto fail;
	}
	if (pthread_mutex_init(&w->mu, NULL) != 0) {
		kp_fail(e, KP_ERR_NOMEM, "worker: mutex");
		goto fail;
	}
	step = 1;
	if (pthread_cond_init(&w->cv, NULL) != 0) {
		kp_fail(e, KP_ERR_NOMEM, "worker: condition variable");
		goto fail;
	}
	step = 2;
	if (threaded && (rc = worker_thread_start(&w->thread, s_main, w,
	    "kp-worker")) != 0) {
		kp_fail(e, KP_ERR_IO, "worker thread: %s", strerror(rc));
		goto fail;
	}
	*out = w;
	return 0;
fail:
	if (step >= 2)
		pthread_cond_destroy(&w->cv);
	if (step >= 1)
		pthread_mutex_destroy(&w->mu);
	if (w->efd >= 0)
		close(w->efd);
	free(w);
	return -1;
}

void
worker_destroy(worker_t **wp)
{
	worker_t *w = *wp;

	if (w == NULL)
		return;
	(void)worker_wait(w);
	if (w->threaded) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	close(w->efd);
	free(w);
	*wp = NULL;
}

int
worker_submit(worker_t *w, worker_job_fn *fn, void *arg)
{
	if (w->in_hand || fn == NULL)
		return -1;
	w->in_hand = true;
	if (!w->threaded) {
		fn(arg);
		w->arg = arg;
		w->done = true;
		s_signal_done(w);
		return 0;
	}
	pthread_mutex_lock(&w->mu);
	w->fn = fn;
	w->arg = arg;
	w->done = false;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

bool
worker_busy(const worker_t *w)
{
	return w->in_hand;
}

void *
worker_wait(worker_t *w)
{
	uint64_t count;
	void *arg;

	if (!w->in_hand)
		return NULL;
	pthread_mutex_lock(&w->mu);
	while (!w->done)
		pthread_cond_wait(&w->cv, &w->mu);
	arg = w->arg;
	w->arg = NULL;
	w->done = false;
	pthread_mutex_unlock(&w->mu);
	/* drain: the fd is not readable again until the next job is done */
	while (read(w->efd, &count, sizeof(count)) < 0 && errno == EINTR)
		;
	w->in_hand = false;
	return arg;
}

int
worker_fd(const worker_t *w)
{
	return w->efd;
}
