/*
 * test_metrics.c: two real daemons with `[metrics] listen`, scraped with
 * the curl command (a real HTTP client) before and after real traffic:
 * the counters and gauges move with what happened.  Also the structured
 * event lines of lib/log.c: their journal fields, and that they fall back
 * to stderr where no journald listens.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common.h"
#include "daemons.h"
#include "later.h"
#include "log.h"
#include "metrics.h"

TestSuite(metrics, .init = test_init, .timeout = 240);

static int
s_port_of(const td_org_t *o)
{
	const char *c = strrchr(o->listen, ':');

	cr_assert_not_null(c);
	return atoi(c + 1);
}

static void
s_enable_metrics(td_org_t *o, int port)
{
	FILE *f = fopen(o->conf, "a");

	cr_assert_not_null(f);
	fprintf(f, "\n[metrics]\nlisten = 127.0.0.1:%d\n", port);
	fclose(f);
}

/* Wait until series reaches at least want (the daemon counts as it goes). */
static double
s_wait_sample(int port, const char *series, double want, char *buf,
    size_t len)
{
	double v = -1;
	int i;

	for (i = 0; i < 100; i++) {
		test_scrape(port, buf, len);
		if ((v = test_sample(buf, series)) >= want)
			break;
		usleep(100000);
	}
	return v;
}

Test(metrics, counters_and_gauges_move_with_real_traffic)
{
	static char text[65536];
	char series[256], sh[4096];
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t id[16];
	double retries;
	int p_lp, p_halt, i;

	td_chain_make(&c, "event_ttl = 4s\n");
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	/* the 8 ports of this test process: the daemons' listen, then these */
	cr_assert_leq(c.n, 6);
	p_lp = s_port_of(&c.orgs[0]) + 6;
	p_halt = p_lp + 1;
	s_enable_metrics(lp, p_lp);
	s_enable_metrics(halt, p_halt);
	/* Halt owes its answer 2 s after a referral: overdue at once (and
	 * the referral's own feedback_due_days no longer sets the due date) */
	cr_assert_eq(test_sh("sed -i -e 's/^expects.halt = halt_outcome 90d$/"
	    "expects.halt = halt_outcome 2s/' -e '/^lead_/d' %s/policy.ini && "
	    "grep -q "
	    "'^expects.halt = halt_outcome 2s$' %s/policy.ini", c.dir, c.dir), 0);
	td_start(lp);
	td_start(halt);

	test_scrape(p_lp, text, sizeof(text));
	snprintf(series, sizeof(series), "ketenpost_events_queued_total{partner="
	    "\"%s\",type=\"referral\"}", OIN_HALT);
	cr_assert_eq(test_sample(text, series), -1, "nothing queued yet:\n%s",
	    text);
	cr_assert_eq(test_sample(text, "ketenpost_outbox_events{state="
	    "\"pending\"}"), 0);
	cr_assert_gt(test_sample(text, "ketenpost_crl_expiry_days"), 1);
	cr_assert_gt(test_sample(text, "ketenpost_ca_expiry_days"), 1);
	snprintf(series, sizeof(series), "ketenpost_certificate_expiry_days{oin="
	    "\"%s\",self=\"true\"}", OIN_LEERPLICHT);
	cr_assert_gt(test_sample(text, series), 1, "%s", text);
	snprintf(series, sizeof(series), "ketenpost_certificate_expiry_days{oin="
	    "\"%s\",self=\"false\"}", OIN_HALT);
	cr_assert_gt(test_sample(text, series), 1, "%s", text);

	for (i = 0; i < 3; i++)
		td_send(lp, OIN_HALT, "referral", "M-1", td_example("referral"),
		    NULL, id);
	cr_assert(td_wait_settled(lp, 20000));

	snprintf(series, sizeof(series), "ketenpost_receipts_total{partner="
	    "\"%s\",reason=\"none\"}", OIN_HALT);
	cr_assert_eq(s_wait_sample(p_lp, series, 3, text, sizeof(text)), 3,
	    "%s", text);
	snprintf(series, sizeof(series), "ketenpost_events_queued_total{partner="
	    "\"%s\",type=\"referral\"}", OIN_HALT);
	cr_assert_eq(test_sample(text, series), 3, "%s", text);
	snprintf(series, sizeof(series), "ketenpost_send_attempts_total{partner="
	    "\"%s\"}", OIN_HALT);
	cr_assert_geq(test_sample(text, series), 3, "%s", text);
	cr_assert_eq(test_sample(text, "ketenpost_outbox_events{state="
	    "\"delivered\"}"), 3);
	snprintf(series, sizeof(series), "ketenpost_partner_link_up{partner="
	    "\"%s\"}", OIN_HALT);
	cr_assert_eq(test_sample(text, series), 1, "%s", text);

	test_scrape(p_halt, text, sizeof(text));
	snprintf(series, sizeof(series), "ketenpost_events_received_total{"
	    "partner=\"%s\",type=\"referral\"}", OIN_LEERPLICHT);
	cr_assert_eq(test_sample(text, series), 3, "%s", text);
	cr_assert_eq(test_sample(text, "ketenpost_inbox_events{acked=\"false\"}"),
	    3);
	cr_assert_gt(test_sample(text, "ketenpost_audit_head_size"), 0, "%s", text);
	cr_assert_gt(test_sample(text, "ketenpost_audit_head_timestamp_seconds"),
	    1.7e9);

	/* the three referrals are now overdue at leerplicht */
	snprintf(series, sizeof(series), "ketenpost_overdue_expectations{"
	    "partner=\"%s\"}", OIN_HALT);
	cr_assert_eq(s_wait_sample(p_lp, series, 3, text, sizeof(text)), 3,
	    "%s", text);

	/* Halt down: one more referral waits, never resent to a partner
	 * that is not connected (no retry counted), then a dead letter */
	snprintf(series, sizeof(series), "ketenpost_retries_total{partner="
	    "\"%s\"}", OIN_HALT);
	test_scrape(p_lp, text, sizeof(text));
	retries = test_sample(text, series);
	cr_assert_eq(td_stop(halt), 0);
	td_send(lp, OIN_HALT, "referral", "M-2", td_example("referral"), NULL,
	    id);
	cr_assert_eq(s_wait_sample(p_lp, "ketenpost_outbox_events{state="
	    "\"pending\"}", 1, text, sizeof(text)), 1, "%s", text);
	snprintf(series, sizeof(series), "ketenpost_dead_letters_total{partner="
	    "\"%s\"}", OIN_HALT);
	cr_assert_eq(s_wait_sample(p_lp, series, 1, text, sizeof(text)), 1,
	    "%s", text);
	snprintf(series, sizeof(series), "ketenpost_retries_total{partner="
	    "\"%s\"}", OIN_HALT);
	cr_assert_eq(test_sample(text, series), retries, "%s", text);
	cr_assert_eq(test_sample(text, "ketenpost_outbox_events{state=\"dead\"}"),
	    1);

	/* only GET /metrics */
	snprintf(sh, sizeof(sh), "curl -s -o /dev/null -w '%%{http_code}' "
	    "http://127.0.0.1:%d/other", p_lp);
	cr_assert_eq(test_sh_output(text, sizeof(text), "%s", sh), 0);
	cr_assert_str_eq(text, "404");
	td_chain_stop_all(&c);
}

/* A partner applying another policy refuses every event: the refusal is
 * counted by reason at the receiver, the negative receipt at the sender. */
Test(metrics, refusals_counted_by_reason_on_both_sides)
{
	static char text[65536];
	char series[256];
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t id[16];
	FILE *f;
	int p_lp, p_halt;

	td_chain_make(&c, NULL);
	cr_assert_leq(c.n, 6);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	p_lp = s_port_of(&c.orgs[0]) + 6;
	p_halt = p_lp + 1;
	cr_assert_eq(test_sh("cp %s/policy.ini %s/other.ini && echo '; local "
	    "edit' >> %s/other.ini", c.dir, c.dir, c.dir), 0);
	f = fopen(halt->conf, "a");
	cr_assert_not_null(f);
	fprintf(f, "\n[ketenpostd]\npolicy = %s/other.ini\n", c.dir);
	fclose(f);
	s_enable_metrics(lp, p_lp);
	s_enable_metrics(halt, p_halt);
	td_start(lp);
	td_start(halt);

	td_send(lp, OIN_HALT, "referral", "R-1", td_example("referral"), NULL,
	    id);
	cr_assert(td_wait_settled(lp, 20000));
	snprintf(series, sizeof(series), "ketenpost_events_refused_total{"
	    "partner=\"%s\",reason=\"policy_mismatch\"}", OIN_LEERPLICHT);
	cr_assert_geq(s_wait_sample(p_halt, series, 1, text, sizeof(text)), 1,
	    "%s", text);
	snprintf(series, sizeof(series), "ketenpost_events_received_total{"
	    "partner=\"%s\",type=\"referral\"}", OIN_LEERPLICHT);
	cr_assert_eq(test_sample(text, series), -1, "a refused event is not "
	    "received");
	snprintf(series, sizeof(series), "ketenpost_receipts_total{partner="
	    "\"%s\",reason=\"policy_mismatch\"}", OIN_HALT);
	cr_assert_eq(s_wait_sample(p_lp, series, 1, text, sizeof(text)), 1,
	    "%s", text);
	cr_assert_eq(test_sample(text, "ketenpost_outbox_events{state="
	    "\"rejected\"}"), 1, "%s", text);
	td_chain_stop_all(&c);
}

Test(metrics, a_bad_listen_is_a_config_error)
{
	char tmp[512], out[4096];

	test_tmpdir(tmp, sizeof(tmp));
	cr_assert_eq(test_sh("printf '[ketenpostd]\\nchain_dir = %s\\norg = %s\\n"
	    "listen = tcp://127.0.0.1:1\\n[metrics]\\nlisten = localhost:x\\n' "
	    "> %s/k.conf", test_chain(), OIN_HALT, tmp), 0);
	cr_assert_eq(test_sh_output(out, sizeof(out), "%s/ketenpostd --config "
	    "%s/k.conf --check", test_bin(), tmp), 1, "%s", out);
	cr_assert(strstr(out, "k.conf:6: listen: 'localhost:x' is not "
	    "ADDRESS:PORT") != NULL, "%s", out);
	test_sh("rm -rf %s", tmp);
}

Test(metrics, event_lines_carry_journal_fields)
{
	char f[8][LOG_FIELD_MAX];
	size_t n;

	log_init("ketenpostd", 0);
	n = log_event_fields(f, 8, LOG_WARNING,
	    "0190e7d4-8f44-7c9a-b3c4-2f1d7c6f0e11", OIN_HALT, "REASON_REPLAY",
	    "event refused\nsecond line");
	cr_assert_eq(n, 6);
	cr_assert_str_eq(f[0], "MESSAGE=event refused?second line");
	cr_assert_str_eq(f[1], "PRIORITY=4");
	cr_assert_str_eq(f[2], "SYSLOG_IDENTIFIER=ketenpostd");
	cr_assert_str_eq(f[3], "EVENT_ID=0190e7d4-8f44-7c9a-b3c4-2f1d7c6f0e11");
	cr_assert_str_eq(f[4], "PARTNER_OIN=" OIN_HALT);
	cr_assert_str_eq(f[5], "REASON=REASON_REPLAY");
	n = log_event_fields(f, 8, LOG_INFO, NULL, OIN_HALT, NULL, "queued");
	cr_assert_eq(n, 4, "absent fields are left out");
	cr_assert_str_eq(f[3], "PARTNER_OIN=" OIN_HALT);
	cr_assert_eq(log_event_fields(f, 3, LOG_INFO, NULL, NULL, NULL, "x"), 0);
}

/* fork(2), the child's stderr on a new file at path (the child exits 3
 * if it cannot be): 0 in the child, the child's pid in the parent. */
static pid_t
s_fork_stderr_to(const char *path)
{
	pid_t pid = fork();
	int fd;

	cr_assert_neq(pid, -1);
	if (pid == 0 && ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC,
	    0600)) < 0 || dup2(fd, 2) != 2))
		_exit(3);
	return pid;
}

/* s_fork_stderr_to a file "err" in a new temporary folder tmp; path:
 * the file's. */
static pid_t
s_fork_stderr_tmp(char *tmp, size_t tmp_cap, char *path, size_t path_cap)
{
	test_tmpdir(tmp, tmp_cap);
	snprintf(path, path_cap, "%s/err", tmp);
	return s_fork_stderr_to(path);
}

/* Wait for child pid, which must have exited 0. */
static void
s_child_ok(pid_t pid)
{
	int st;

	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d",
	    WEXITSTATUS(st));
}

/* In a child with stderr on `path` and JOURNAL_STREAM as given: one
 * log_info and one log_event line. */
static void
s_log_child(const char *path, const char *journal_stream)
{
	pid_t pid = s_fork_stderr_to(path);

	if (pid == 0) {
		if (journal_stream != NULL)
			setenv("JOURNAL_STREAM", journal_stream, 1);
		else {
			struct stat sb;
			char v[64];

			fstat(2, &sb);
			snprintf(v, sizeof(v), "%llu:%llu",
			    (unsigned long long)sb.st_dev,
			    (unsigned long long)sb.st_ino);
			setenv("JOURNAL_STREAM", v, 1);
		}
		log_init("ketenpostd", 0);
		log_info("plain line");
		log_event(LOG_INFO, "0190e7d4-8f44-7c9a-b3c4-2f1d7c6f0e12",
		    OIN_HALT, NULL, "event line");
		_exit(0);
	}
	s_child_ok(pid);
}

/* In a child with stderr on `path` (not the journal): lines held by
 * log_hold are all written, in order, none before log_release unless
 * more than the buffer holds; a line of another thread is not held. */
static void *
s_other_thread(void *arg)
{
	(void)arg;
	log_info("other thread");
	return NULL;
}

Test(metrics, held_lines_are_written_whole_and_in_order)
{
	char tmp[512], path[600], out[256];
	pid_t pid;

	if ((pid = s_fork_stderr_tmp(tmp, sizeof(tmp), path,
	    sizeof(path))) == 0) {
		struct stat sb;
		pthread_t t;

		setenv("JOURNAL_STREAM", "1:1", 1);
		log_init("ketenpostd", 0);
		log_hold();
		log_event(LOG_INFO, NULL, OIN_HALT, NULL, "held %d", 0);
		log_warnx("held warning");
		if (pthread_create(&t, NULL, s_other_thread, NULL) != 0 ||
		    pthread_join(t, NULL) != 0)
			_exit(4);
		/* only the other thread's line is out yet */
		if (fstat(2, &sb) != 0 || sb.st_size != (off_t)strlen(
		    "ketenpostd: other thread\n"))
			_exit(5);
		for (int i = 1; i < 3000; i++)     /* past the 16 KiB held */
			log_event(LOG_INFO, NULL, NULL, NULL, "held %d", i);
		log_release();
		log_info("after");
		_exit(0);
	}
	s_child_ok(pid);
	cr_assert_eq(test_sh_output(out, sizeof(out), "head -3 %s", path), 0);
	cr_assert_str_eq(out, "ketenpostd: other thread\nketenpostd: held 0\n"
	    "ketenpostd: warn: held warning\n");
	cr_assert_eq(test_sh_output(out, sizeof(out), "sed -n 4,3002p %s | awk "
	    "'$0 != \"ketenpostd: held \" NR { print \"line \" NR \": \" "
	    "$0; exit }'", path), 0);
	cr_assert_str_eq(out, "", "%s", out);
	cr_assert_eq(test_sh_output(out, sizeof(out), "tail -n 1 %s; wc -l "
	    "< %s", path, path), 0);
	cr_assert_str_eq(out, "ketenpostd: after\n3003\n");
	test_sh("rm -rf %s", tmp);
}

/* log_event_text writes what log_event writes for "%s%s": the same line,
 * its level's tag, the same cut of a long message. */
Test(metrics, a_made_event_line_is_the_formatted_one)
{
	char tmp[512], path[600], out[256];
	pid_t pid;

	if ((pid = s_fork_stderr_tmp(tmp, sizeof(tmp), path,
	    sizeof(path))) == 0) {
		char longer[1500];

		setenv("JOURNAL_STREAM", "1:1", 1);
		log_init("ketenpostd", 0);
		memset(longer, 'x', sizeof(longer) - 1);
		longer[sizeof(longer) - 1] = '\0';
		log_event(LOG_WARNING, NULL, OIN_HALT, "R", "%s%s", "a ", "b");
		log_event_text(LOG_WARNING, NULL, OIN_HALT, "R", "a ", "b");
		log_event(LOG_INFO, NULL, NULL, NULL, "%s%s", "c", "");
		log_event_text(LOG_INFO, NULL, NULL, NULL, "c", NULL);
		log_event(LOG_INFO, NULL, NULL, NULL, "%s%s", longer, "y");
		log_event_text(LOG_INFO, NULL, NULL, NULL, longer, "y");
		log_event_text(LOG_DEBUG, NULL, NULL, NULL, "not shown", NULL);
		_exit(0);
	}
	s_child_ok(pid);
	cr_assert_eq(test_sh_output(out, sizeof(out), "head -4 %s", path), 0);
	cr_assert_str_eq(out, "ketenpostd: warn: a b\nketenpostd: warn: a b\n"
	    "ketenpostd: c\nketenpostd: c\n");
	cr_assert_eq(test_sh_output(out, sizeof(out), "wc -l < %s; sed -n 5p "
	    "%s | wc -c; sed -n 5,6p %s | uniq | wc -l", path, path, path), 0);
	cr_assert_str_eq(out, "6\n1036\n1\n", "the long lines: %s", out);
	test_sh("rm -rf %s", tmp);
}

Test(metrics, event_lines_go_to_stderr_unless_stderr_is_the_journal)
{
	char tmp[512], path[600], out[4096];
	bool journald;

	test_tmpdir(tmp, sizeof(tmp));
	snprintf(path, sizeof(path), "%s/err", tmp);
	/* JOURNAL_STREAM naming some other stream: a foreground run */
	s_log_child(path, "1:1");
	cr_assert_eq(test_sh_output(out, sizeof(out), "cat %s", path), 0);
	cr_assert_str_eq(out, "ketenpostd: plain line\nketenpostd: event line\n");
	/* stderr is the stream JOURNAL_STREAM names: priority prefixes, and
	 * the event line goes to journald natively, or (none listening
	 * here) falls back to stderr */
	journald = access("/run/systemd/journal/socket", W_OK) == 0;
	s_log_child(path, NULL);
	cr_assert_eq(test_sh_output(out, sizeof(out), "cat %s", path), 0);
	if (journald) {
		cr_assert_str_eq(out, "<6>plain line\n");
		cr_assert_eq(test_sh_output(out, sizeof(out), "sleep 1; journalctl "
		    "-o cat EVENT_ID=0190e7d4-8f44-7c9a-b3c4-2f1d7c6f0e12"), 0);
		cr_assert(strstr(out, "event line") != NULL, "%s", out);
	} else
		cr_assert_str_eq(out, "<6>plain line\n<6>event line\n");
	test_sh("rm -rf %s", tmp);
}

/* A count waits for its transaction like a log line (daemon/later.c): a
 * rolled-back batch counts nothing, a committed one counts once. */
Test(metrics, counts_wait_for_the_commit)
{
	const char *series = "ketenpost_events_queued_total{partner="
	    "\"00000001001234567000\",type=\"referral\"}";
	metrics_t *m = metrics_new();
	later_t lt = { 0 }, moved = { 0 };
	char *text;

	cr_assert_not_null(m);
	later_count(&lt, m, KPM_QUEUED, "00000001001234567000", 1, -1);
	later_flush(&lt, false);             /* rolled back */
	cr_assert_not_null(text = metrics_render(m, NULL));
	cr_expect_eq(test_sample(text, series), -1, "counted a rollback:\n%s",
	    text);
	free(text);

	later_count(&lt, m, KPM_QUEUED, "00000001001234567000", 1, -1);
	later_add(&lt, LOG_INFO, NULL, NULL, NULL, "held line");
	cr_expect_eq(later_nlines(&lt), 1, "a count is not a log line");
	later_move(&moved, &lt);             /* a request into its batch */
	cr_expect_eq(lt.n, 0);
	later_flush(&moved, true);           /* committed */
	cr_assert_not_null(text = metrics_render(m, NULL));
	cr_expect_eq(test_sample(text, series), 1, "not counted once:\n%s", text);
	free(text);
	metrics_destroy(&m);
}

/* A committed transaction's lines go out in one write when flushed held
 * (later_flush_held), and one write each otherwise.  stderr is a datagram
 * socket here, so each write(2) arrives as one datagram. */
Test(metrics, a_transactions_lines_go_out_in_one_write)
{
	char buf[512];
	ssize_t got;
	pid_t pid;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	cr_assert_neq(pid = fork(), -1);
	if (pid == 0) {
		later_t lt = { 0 };

		close(sv[0]);
		if (dup2(sv[1], 2) != 2)
			_exit(3);
		setenv("JOURNAL_STREAM", "1:1", 1);
		log_init("ketenpostd", 0);
		later_add(&lt, LOG_INFO, NULL, NULL, NULL, "first");
		later_add(&lt, LOG_WARNING, NULL, NULL, NULL, "second");
		later_add(&lt, LOG_INFO, NULL, NULL, NULL, "third");
		later_flush_held(&lt);
		later_add(&lt, LOG_INFO, NULL, NULL, NULL, "alone 1");
		later_add(&lt, LOG_INFO, NULL, NULL, NULL, "alone 2");
		later_flush(&lt, true);
		_exit(0);
	}
	close(sv[1]);
	s_child_ok(pid);
	got = recv(sv[0], buf, sizeof(buf) - 1, MSG_DONTWAIT);
	cr_assert_gt(got, 0);
	buf[got] = '\0';
	cr_assert_str_eq(buf, "ketenpostd: first\nketenpostd: warn: second\n"
	    "ketenpostd: third\n");
	got = recv(sv[0], buf, sizeof(buf) - 1, MSG_DONTWAIT);
	cr_assert_gt(got, 0);
	buf[got] = '\0';
	cr_assert_str_eq(buf, "ketenpostd: alone 1\n");
	got = recv(sv[0], buf, sizeof(buf) - 1, MSG_DONTWAIT);
	cr_assert_gt(got, 0);
	buf[got] = '\0';
	cr_assert_str_eq(buf, "ketenpostd: alone 2\n");
	cr_assert_eq(recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT), -1);
	close(sv[0]);
}

/* A counter is found by the arguments that made it, and there is one
 * series per label set: arguments that give the same labels (another
 * character where the labels keep digits only, a partner too long for
 * its label, no type or reason given in two ways) count in one series,
 * and different ones apart, however often each is counted. */
Test(metrics, one_series_per_label_set)
{
	static const char *const long_oin = "0000000100123456700000000042";
	metrics_t *m = metrics_new();
	char *text;
	int i;

	cr_assert_not_null(m);
	for (i = 0; i < 3; i++) {
		metrics_count(m, KPM_SENT, "00000001001234567000", 0, -1);
		metrics_count(m, KPM_SENT, "0000000100123456700a", 0, -1);
		metrics_count(m, KPM_SENT, "0000000100123456700b", -2, -7);
		metrics_count(m, KPM_SENT, long_oin, 0, -1);
		metrics_count(m, KPM_RECEIPT, "00000001001234567000", 0, 0);
		metrics_count(m, KPM_RECEIPT, "00000001001234567000", 0, 6);
		metrics_count(m, KPM_DEAD, NULL, i == 1 ? -3 : 0, -1);
		/* two types of one partner: two series */
		metrics_count(m, KPM_QUEUED, "00000001001234567000", 1, -1);
		if (i == 0)
			metrics_count(m, KPM_QUEUED, "00000001001234567000", 2,
			    -1);
		/* no partner and an empty one are two label sets */
		metrics_count(m, KPM_QUEUED, NULL, 1, -1);
		metrics_count(m, KPM_QUEUED, "", 1, -1);
	}
	metrics_count(m, KPM_SENT, "00000001001234567001", 0, -1);
	cr_assert_not_null(text = metrics_render(m, NULL));
	cr_expect_eq(test_sample(text, "ketenpost_send_attempts_total{partner="
	    "\"00000001001234567000\"}"), 3, "%s", text);
	cr_expect_eq(test_sample(text, "ketenpost_send_attempts_total{partner="
	    "\"00000001001234567001\"}"), 1, "%s", text);
	cr_expect_eq(test_sample(text, "ketenpost_send_attempts_total{partner="
	    "\"0000000100123456700_\"}"), 6, "%s", text);
	cr_expect_eq(test_sample(text, "ketenpost_send_attempts_total{partner="
	    "\"00000001001234567000000\"}"), 3, "%s", text);
	cr_expect_eq(test_sample(text, "ketenpost_receipts_total{partner="
	    "\"00000001001234567000\",reason=\"none\"}"), 3, "%s", text);
	cr_expect_eq(test_sample(text, "ketenpost_receipts_total{partner="
	    "\"00000001001234567000\",reason=\"bad_signature\"}"), 3, "%s",
	    text);
	cr_expect_eq(test_sample(text, "ketenpost_dead_letters_total{}"), 3, "%s",
	    text);
	cr_expect_eq(test_sample(text, "ketenpost_events_queued_total{partner="
	    "\"00000001001234567000\",type=\"referral\"}"), 3, "%s", text);
	cr_expect_eq(test_sample(text, "ketenpost_events_queued_total{partner="
	    "\"00000001001234567000\",type=\"halt_outcome\"}"), 1, "%s", text);
	cr_expect_eq(test_sample(text, "ketenpost_events_queued_total{"
	    "type=\"referral\"}"), 3, "%s", text);
	cr_expect_eq(test_sample(text, "ketenpost_events_queued_total{partner="
	    "\"\",type=\"referral\"}"), 3, "%s", text);
	free(text);
	metrics_destroy(&m);
}
