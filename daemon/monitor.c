/*
 * monitor.c: libzmq socket monitors (connection events) and socket close.
 *
 * A monitor publishes on an inproc PAIR: frame 1 is a 16-bit event and a
 * 32-bit value, frame 2 the endpoint.  Outbound links use it to learn that
 * a partner came up (so its queue can be flushed at once instead of
 * waiting out a backoff); the inbound side logs refused handshakes.
 */
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "daemon.h"

int
kpd_monitor_start(kpd_t *d, void *sock, const char *name, int events,
    void **mon)
{
	char ep[128];
	void *pair;
	int zero = 0;

	snprintf(ep, sizeof(ep), "inproc://monitor-%s-%u", name, d->monitor_seq++);
	if (zmq_socket_monitor(sock, ep, events) != 0)
		return -1;
	pair = zmq_socket(d->zctx, ZMQ_PAIR);
	if (pair == NULL)
		return -1;
	zmq_setsockopt(pair, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_connect(pair, ep) != 0) {
		zmq_close(pair);
		return -1;
	}
	*mon = pair;
	return 0;
}

int
kpd_monitor_read(void *mon, uint16_t *event, char *addr, size_t len)
{
	zmq_msg_t m;
	size_t n;

	zmq_msg_init(&m);
	if (zmq_msg_recv(&m, mon, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&m);
		return -1;
	}
	*event = 0;
	if (zmq_msg_size(&m) >= 2)
		memcpy(event, zmq_msg_data(&m), 2);
	addr[0] = '\0';
	if (zmq_msg_more(&m)) {
		zmq_msg_close(&m);
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, mon, 0) >= 0) {
			n = zmq_msg_size(&m) < len - 1 ? zmq_msg_size(&m) :
			    len - 1;
			memcpy(addr, zmq_msg_data(&m), n);
			addr[n] = '\0';
		}
	}
	zmq_msg_close(&m);
	return 0;
}

void
kpd_close(void **sock_p)
{
	int zero = 0;

	if (*sock_p == NULL)
		return;
	zmq_setsockopt(*sock_p, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_close(*sock_p);
	*sock_p = NULL;
}

/*
 * Close a monitored socket and its monitor.  The order matters: libzmq's
 * I/O thread sends monitor events with a blocking send on the monitor's
 * PAIR, also while a closed socket is still being torn down; with our
 * reading end already closed that send waits for ever, and the I/O thread
 * with it: every socket of the context stalls (API, links, listener).
 * So the monitor is switched off first (zmq_socket_monitor with NULL
 * stops it synchronously), then the socket is closed, then the PAIR.
 */
void
kpd_close_monitored(void **sock_p, void **mon_p)
{
	if (*sock_p != NULL)
		(void)zmq_socket_monitor(*sock_p, NULL, 0);
	kpd_close(sock_p);
	kpd_close(mon_p);
}

bool
kpd_more(void *sock)
{
	int more = 0;
	size_t len = sizeof(more);

	return zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more;
}

void
kpd_drain_message(void *sock)
{
	zmq_msg_t m;

	while (kpd_more(sock)) {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		zmq_msg_close(&m);
	}
}
