/*
 * test_worker.c: daemon/worker.c, one job at a time beside the loop.
 *
 * With a thread and without: the job runs (on another thread, or at once
 * in the caller), the fd polls readable exactly while a done job waits to
 * be taken, a second job is refused while one is in hand, what the job
 * wrote is there after worker_wait, and destroying a worker with a job in
 * hand waits for the job.  No timing asserts: waits have generous bounds.
 */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "worker.h"

TestSuite(worker);

struct job {
	pthread_t ran_on;
	int runs;
	unsigned delay_us;
	uint32_t in, out[256];
};

static void
s_job(void *arg)
{
	struct job *j = arg;
	size_t i;

	if (j->delay_us > 0)
		usleep(j->delay_us);
	j->ran_on = pthread_self();
	j->runs++;
	for (i = 0; i < 256; i++)
		j->out[i] = j->in * 2654435761u + (uint32_t)i;
}

static bool
s_readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

static void
s_check_out(const struct job *j)
{
	size_t i;

	for (i = 0; i < 256; i++)
		cr_assert_eq(j->out[i], j->in * 2654435761u + (uint32_t)i,
		    "word %zu of the job's output", i);
}

static void
s_one_job(bool threaded)
{
	struct job j = { .in = 7, .delay_us = threaded ? 20000 : 0 };
	worker_t *w = NULL;
	kp_err_t e;

	cr_assert_eq(worker_new(threaded, &w, &e), 0, "%s", e.msg);
	cr_assert_not(worker_busy(w));
	cr_assert_not(s_readable(worker_fd(w), 0), "readable with no job");
	cr_assert_null(worker_wait(w), "a job taken that was never given");
	cr_assert_eq(worker_submit(w, s_job, &j), 0);
	cr_assert(worker_busy(w));
	cr_assert_eq(worker_submit(w, s_job, &j), -1,
	    "a second job given while one is in hand");
	cr_assert(s_readable(worker_fd(w), 10000), "done job not signalled");
	cr_assert_eq(worker_wait(w), &j);
	cr_assert_not(worker_busy(w));
	cr_assert_not(s_readable(worker_fd(w), 0), "readable after the wait");
	cr_assert_eq(j.runs, 1, "the refused job ran anyway");
	s_check_out(&j);
	if (threaded)
		cr_assert_not(pthread_equal(j.ran_on, pthread_self()),
		    "the job ran on the loop's thread");
	else
		cr_assert(pthread_equal(j.ran_on, pthread_self()),
		    "an inline job ran elsewhere");
	worker_destroy(&w);
	cr_assert_null(w);
}

Test(worker, a_job_runs_on_the_thread_and_is_taken_back_once)
{
	s_one_job(true);
}

Test(worker, without_a_thread_the_job_runs_at_once_the_same_way)
{
	s_one_job(false);
}

/* A job given right after the last was taken sees the loop's new input,
 * and the loop sees each job's whole output: the hand-over orders memory
 * both ways. */
Test(worker, many_jobs_in_turn_each_see_their_input_and_hand_back_output)
{
	struct job j = { 0 };
	worker_t *w = NULL;
	kp_err_t e;
	uint32_t i;

	cr_assert_eq(worker_new(true, &w, &e), 0, "%s", e.msg);
	for (i = 0; i < 2000; i++) {
		j.in = i;
		cr_assert_eq(worker_submit(w, s_job, &j), 0, "job %u", i);
		cr_assert_eq(worker_wait(w), &j);
		s_check_out(&j);
	}
	cr_assert_eq(j.runs, 2000);
	worker_destroy(&w);
}

Test(worker, destroy_waits_for_the_job_in_hand)
{
	struct job j = { .in = 3, .delay_us = 100000 };
	worker_t *w = NULL;
	kp_err_t e;

	cr_assert_eq(worker_new(true, &w, &e), 0, "%s", e.msg);
	cr_assert_eq(worker_submit(w, s_job, &j), 0);
	worker_destroy(&w);
	cr_assert_null(w);
	cr_assert_eq(j.runs, 1, "destroyed before its job ended");
	s_check_out(&j);
}

Test(worker, destroy_with_no_job_ever_given)
{
	worker_t *w = NULL;
	kp_err_t e;

	cr_assert_eq(worker_new(true, &w, &e), 0, "%s", e.msg);
	worker_destroy(&w);
	cr_assert_null(w);
	worker_destroy(&w);          /* and again: a no-op on NULL */
}
