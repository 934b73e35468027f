/*
 * test_links.c: links that recover and reloads that never kill (issue 9,
 * items 1, 3 and 6), with real daemons on loopback.
 *
 * 1. A partner that starts before the receiver knows its certificate is
 *    refused at the receiver's ZAP; libzmq then gives the endpoint up.
 *    Once the receiver knows the certificate (copied in, SIGHUP to the
 *    receiver only) the sender's link must come back by itself: the
 *    sender is never reloaded.  The same when the sender's certificate is
 *    briefly missing during one reload of the receiver.
 * 3. A reload that cannot bind the listen port (the test holds it) keeps
 *    the daemon up, says so, and binds again later; a SIGHUP storm while
 *    events flow loses and kills nothing.
 * 6. A daemon whose own certificate was revoked stops at the reload.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common.h"
#include "daemons.h"

TestSuite(links, .init = test_init, .timeout = 240);

static bool
s_alive(const td_org_t *o)
{
	return o->pid > 0 && waitpid(o->pid, NULL, WNOHANG) == 0;
}

Test(links, partner_known_late_recovers_without_reloading_the_sender)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char copy[4200];
	uint8_t id[16];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	/* Halt's chain does not contain Leerplicht yet */
	td_org_own_chain(&c, halt, OIN_LEERPLICHT, copy, sizeof(copy));
	td_start(halt);
	td_start(lp);
	td_send(lp, OIN_HALT, "referral", "LP-1", td_example("referral"), NULL,
	    id);
	cr_assert(td_log_has(halt, "zap: refused connection", 10000),
	    "Halt must refuse the unknown partner first");
	cr_assert(td_log_has(lp, "outbound: handshake with " OIN_HALT, 10000),
	    "Leerplicht must notice the refused handshake");
	usleep(1500000);  /* long past libzmq's own reconnect interval */
	cr_assert_eq(td_inbox_count(halt), 0);
	/* the new partner becomes known at Halt only */
	td_chain_reveal(&c, copy, OIN_LEERPLICHT);
	td_hup(halt);
	cr_assert(td_log_has(halt, "reload: ", 5000));
	cr_assert(td_wait_settled(lp, 30000),
	    "the event stayed pending after the partner learned the sender");
	cr_assert_eq(td_inbox_count(halt), 1);
	cr_assert(td_log_has(lp, "outbound: connected to " OIN_HALT, 1000));
	cr_assert_eq(td_log_count(lp, "reload"), 0, "the sender was reloaded");
	td_chain_stop_all(&c);
}

Test(links, certificate_briefly_missing_during_a_reload)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	char copy[4200];
	uint8_t id[16];

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_org_own_chain(&c, halt, OIN_RVDK, copy, sizeof(copy));
	td_start(halt);
	td_start(lp);
	td_send(lp, OIN_HALT, "referral", "LP-1", td_example("referral"), NULL,
	    id);
	cr_assert(td_wait_settled(lp, 10000));
	/* Leerplicht's certificate is gone while Halt reloads */
	cr_assert_eq(test_sh("mv '%s/orgs/%s/cert.pem' '%s/lp-cert.pem'", copy,
	    OIN_LEERPLICHT, copy), 0);
	td_hup(halt);
	cr_assert(td_log_count_reaches(halt, "reload: ", 2, 5000));
	/* (Rvdk is not in this copy: 4 partners, 3 without Leerplicht) */
	cr_assert(td_log_has(halt, "reload: 3 partners, 1 refused", 5000),
	    "Halt must have reloaded without Leerplicht");
	td_send(lp, OIN_HALT, "referral", "LP-2", td_example("referral"), NULL,
	    id);
	cr_assert(td_log_has(lp, "outbound: handshake with " OIN_HALT, 10000),
	    "Leerplicht must be refused while its certificate is missing");
	/* back, and Halt reloads once more */
	cr_assert_eq(test_sh("mv '%s/lp-cert.pem' '%s/orgs/%s/cert.pem'", copy,
	    copy, OIN_LEERPLICHT), 0);
	td_hup(halt);
	cr_assert(td_log_count_reaches(halt, "reload: ", 4, 5000));
	cr_assert(td_wait_settled(lp, 30000),
	    "the event stayed pending after the certificate was back");
	cr_assert_eq(td_inbox_count(halt), 2);
	cr_assert_eq(td_log_count(lp, "reload"), 0, "the sender was reloaded");
	td_chain_stop_all(&c);
}

/* Take the TCP port of endpoint as soon as it is free (up to ms). */
static int
s_grab_port(const char *endpoint, int ms)
{
	const char *colon = strrchr(endpoint, ':');
	struct sockaddr_in sa;
	int fd, one = 1, waited = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	while (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (waited >= ms * 10) {
			close(fd);
			return -1;
		}
		usleep(100);
		waited++;
	}
	cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

Test(links, reload_that_cannot_bind_keeps_serving)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	Kp__StatusResponse st;
	uint8_t id[16];
	int fd, i;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	td_start(lp);
	/* Halt reloads and releases its port: the test takes it (Halt may
	 * win the race and bind again first: then the next reload) */
	for (i = 0, fd = -1; fd < 0 && i < 20; i++) {
		td_hup(halt);
		fd = s_grab_port(halt->listen, 1500);
	}
	cr_assert(fd >= 0, "the port of Halt was never free");
	cr_assert(td_log_has(halt, "binding again every", 10000),
	    "a failed bind at reload must be said");
	cr_assert(s_alive(halt), "the failed bind killed the daemon");
	td_status(halt, &st);  /* the API still answers */
	td_send(lp, OIN_HALT, "referral", "LP-1", td_example("referral"), NULL,
	    id);
	usleep(500000);
	cr_assert_eq(td_inbox_count(halt), 0);
	close(fd);
	cr_assert(td_log_has(halt, "again: partners can deliver", 10000));
	cr_assert(td_wait_settled(lp, 30000));
	cr_assert_eq(td_inbox_count(halt), 1);
	cr_assert(s_alive(halt));
	td_chain_stop_all(&c);
}

#define STORM_EVENTS 120

Test(links, sighup_storm_while_events_flow)
{
	td_chain_t c;
	td_org_t *lp, *halt;
	uint8_t id[16];
	char ref[32];
	int i;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	halt = td_org(&c, OIN_HALT);
	td_start(halt);
	td_start(lp);
	for (i = 0; i < STORM_EVENTS; i++) {
		snprintf(ref, sizeof(ref), "LP-%d", i);
		td_send(lp, OIN_HALT, "referral", ref, td_example("referral"),
		    NULL, id);
		if (i % 2 == 0)
			td_hup(halt);
		if (i % 7 == 0)
			td_hup(lp);
		usleep(10000);
		cr_assert(s_alive(halt) && s_alive(lp), "a daemon died at %d", i);
	}
	cr_assert(td_wait_settled(lp, 60000), "not everything was delivered");
	cr_assert_eq(td_inbox_count(halt), STORM_EVENTS);
	cr_assert(s_alive(halt) && s_alive(lp));
	cr_assert_eq(td_log_count(halt, "fatal"), 0);
	cr_assert_eq(td_stop(halt), 0);
	cr_assert_eq(td_stop(lp), 0);
}

Test(links, own_certificate_revoked_stops_at_reload)
{
	td_chain_t c;
	td_org_t *lp;

	td_chain_make(&c, NULL);
	lp = td_org(&c, OIN_LEERPLICHT);
	td_start(lp);
	cr_assert_eq(test_sh("%s/ketenpost-certs revoke --dir %s --oin %s "
	    ">/dev/null", test_bin(), c.dir, OIN_LEERPLICHT), 0);
	td_hup(lp);
	cr_assert_eq(td_wait_exit(lp, 10000), 3,
	    "a daemon on a revoked certificate must stop with status 3");
	cr_assert(td_log_has(lp, "our own certificate is revoked", 10));
	/* and it does not start again on it */
	td_spawn(lp);
	cr_assert_eq(td_wait_exit(lp, 10000), 1);
	td_chain_stop_all(&c);
}
