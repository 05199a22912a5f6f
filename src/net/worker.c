/* worker.c -- worker threads: event loop, UDP listeners, relay sockets, timers. */
#include "net/worker.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth_redis.h"
#include "log.h"
#include "net/limits.h"
#include "net/netaddr.h"
#include "net/reserve.h"
#include "net/sessions.h"
#include "net/statsdb.h"
#include "net/stream.h"
#include "net/tcp_relay.h"
#include "net/turn_auth.h"
#include "net/turn_handler.h"
#include "net/ebpf/ebpf.h"

uint64_t worker_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec;
}

uint64_t worker_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t worker_wallclock(void)
{
	return (uint64_t)time(NULL);
}

/* CPU time (user + system) the calling thread has used, microseconds. */
static uint64_t thread_cpu_usec(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru) < 0)
		return 0;
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

int worker_stats_transport(const struct origin *o)
{
	if (o->conn == NULL)
		return STATS_UDP;
	return stream_is_tls(o->conn) ? STATS_TLS : STATS_TCP;
}

/* Starts a new second of log budget; reports what the last one dropped. */
static void log_roll(struct worker *w, uint64_t now)
{
	if (now == w->log_sec)
		return;
	if (w->log_dropped > 0)
		log_warnx("worker %d: %u request log lines suppressed", w->id, w->log_dropped);
	w->log_sec = now;
	w->log_n = 0;
	w->log_dropped = 0;
}

int worker_log_ok(struct worker *w)
{
	log_roll(w, worker_now());
	if (w->log_n < WORKER_LOG_BURST) {
		w->log_n++;
		return 1;
	}
	w->log_dropped++;
	return 0;
}

static uint32_t worker_rand(struct worker *w)
{
	/* xorshift32: port picking needs spread, not secrecy. */
	uint32_t x = w->rng;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return w->rng = x;
}

/* ---- receiving --------------------------------------------------------- */

struct rxbatch {
	struct mmsghdr msgs[WORKER_BATCH];
	struct iovec iov[WORKER_BATCH];
	struct sockaddr_storage from[WORKER_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctl[WORKER_BATCH];
};

/* Datagrams queued by the read callbacks of one event loop pass: to clients
 * in relay_read, to peers in listener_read, each with its socket (fds). They
 * point into the rx slots, which the next read then leaves alone (rx_next),
 * and leave at the end of the pass (worker_main), one sendmmsg per socket:
 * so the peer -> client datagrams of all the relay sockets that were ready
 * together share the listening socket's system call. They also leave before
 * the slots are needed again, before a socket they wait for closes
 * (txbatch_fd_closing: a reused descriptor number never sends them) and
 * before anything is sent at once (so one socket's datagrams keep their
 * order). open is 1 only inside the two read callbacks; everywhere else
 * udp_send and worker_relay_send send at once. */
/* A destination the kernel refused a GSO run to with EMSGSIZE (EINVAL
 * before Linux 6.x): its path MTU is below seg + the headers. Runs of seg
 * bytes or more to it are not merged again, until TX_GSO_BARS other
 * destinations have been barred after it (round robin). */
#define TX_GSO_BARS 16

struct tx_bar {
	socklen_t len; /* 0: empty */
	uint16_t seg;  /* the smallest refused segment size, bytes */
	struct sockaddr_storage to;
};

struct txbatch {
	int open, n;
	int rx_next; /* first rx slot no queued datagram points into */
	int no_gso;  /* the kernel refused UDP_SEGMENT once: send one by one */
	int fds[WORKER_BATCH];
	struct mmsghdr msgs[WORKER_BATCH];
	struct iovec iov[WORKER_BATCH];
	struct sockaddr_storage to[WORKER_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctl[WORKER_BATCH];
	/* what txbatch_flush sends: msgs with runs merged for GSO */
	struct mmsghdr out[WORKER_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} gctl[WORKER_BATCH];
	struct tx_bar bars[TX_GSO_BARS];
	unsigned bar_next; /* the slot the next new destination takes */
};

/* UDP GSO (UDP_SEGMENT, Linux 4.18): a run of queued datagrams with one
 * destination and source, all of one size but the last, which may be
 * shorter, leaves as one message that the kernel cuts back into the same
 * datagrams: one pass down the IP/UDP send path for the run instead of one
 * per datagram. Only datagrams of at most TX_GSO_MAX_LEN bytes (payload),
 * so a segment fits any path MTU we send on, and at most TX_GSO_MAX_TOTAL
 * bytes per run (the kernel's 64 KB limit). */
#define TX_GSO_MAX_LEN 1200
#define TX_GSO_MAX_TOTAL 60000

/* The bar of h's destination, or NULL. A linear search: it runs once per
 * run considered for merging, not per datagram, and most often finds
 * nothing at the first empty slot. */
static struct tx_bar *tx_bar_find(struct txbatch *t, const struct msghdr *h)
{
	int i;

	for (i = 0; i < TX_GSO_BARS && t->bars[i].len != 0; i++)
		if (t->bars[i].len == h->msg_namelen && memcmp(&t->bars[i].to, h->msg_name, h->msg_namelen) == 0)
			return &t->bars[i];
	return NULL;
}

/* 1 when runs of seg-byte datagrams to h's destination are not merged. */
static int tx_barred(struct txbatch *t, const struct msghdr *h, size_t seg)
{
	const struct tx_bar *b = tx_bar_find(t, h);

	return b != NULL && seg >= b->seg;
}

/* The kernel refused a run of seg-byte datagrams to h's destination: one
 * line per refused run, which the bar makes one per destination. */
static void tx_bar(struct txbatch *t, const struct msghdr *h, size_t seg)
{
	struct tx_bar *b = tx_bar_find(t, h);

	log_debug("udp: a UDP GSO run of %zu-byte datagrams was refused (path MTU); they go one by one "
		  "to that destination from now on",
		  seg);
	if (b != NULL) {
		if (seg < b->seg)
			b->seg = (uint16_t)seg;
		return;
	}
	b = &t->bars[t->bar_next++ % TX_GSO_BARS];
	b->len = h->msg_namelen;
	b->seg = (uint16_t)seg;
	memcpy(&b->to, h->msg_name, h->msg_namelen);
}

/* 1 when two queued messages go to the same address from the same source. */
static int tx_same_path(const struct msghdr *a, const struct msghdr *b)
{
	return a->msg_namelen == b->msg_namelen && memcmp(a->msg_name, b->msg_name, a->msg_namelen) == 0 &&
	       a->msg_controllen == b->msg_controllen &&
	       (a->msg_controllen == 0 || memcmp(a->msg_control, b->msg_control, a->msg_controllen) == 0);
}

/* Sends m[0..n) (from t->msgs, or t->out) on fd. A datagram the kernel
 * refuses is lost, as a refused sendmsg was (UDP: only with a full send
 * buffer). A merged run (msg_iovlen > 1, its datagrams at t->iov) the kernel
 * refuses is sent again datagram by datagram from t->msgs; after EIO or
 * ENOPROTOOPT (no GSO on this kernel or device) t stops merging, after
 * EMSGSIZE or EINVAL (a path MTU below the segment) it stops merging for
 * that destination (tx_bar). */
static void tx_send(struct txbatch *t, int fd, struct mmsghdr *m, int n)
{
	int k = 0, sent;

	while (k < n) {
		const struct msghdr *h = &m[k].msg_hdr;

		sent = sendmmsg(fd, m + k, (unsigned)(n - k), MSG_DONTWAIT);
		if (sent > 0) {
			k += sent;
			continue;
		}
		if (sent < 0 && errno == EINTR)
			continue;
		if (h->msg_iovlen > 1) {
			if (errno == EIO || errno == ENOPROTOOPT) {
				log_warn("udp: the kernel refuses UDP GSO; datagrams are sent one by one");
				t->no_gso = 1;
			} else if (errno == EMSGSIZE || errno == EINVAL) {
				tx_bar(t, h, h->msg_iov[0].iov_len);
			}
			tx_send(t, fd, t->msgs + (h->msg_iov - t->iov), (int)h->msg_iovlen);
		}
		k++; /* skip the one refused, try the rest */
	}
}

/* Sends t's datagrams [from, to), all for one socket, in order, runs merged
 * by UDP GSO (above). */
static void tx_flush_fd(struct txbatch *t, int from, int to)
{
	int i = from, no = 0, fd = t->fds[from];

	if (t->no_gso || to - from < 2) {
		tx_send(t, fd, t->msgs + from, to - from);
		return;
	}
	while (i < to) {
		const struct msghdr *h = &t->msgs[i].msg_hdr;
		struct msghdr *o = &t->out[no].msg_hdr;
		size_t seg = t->iov[i].iov_len, total = seg;
		int j = i + 1;

		if (seg > 0 && seg <= TX_GSO_MAX_LEN)
			while (j < to && t->iov[j].iov_len > 0 && t->iov[j].iov_len <= seg &&
			       total + t->iov[j].iov_len <= TX_GSO_MAX_TOTAL && tx_same_path(h, &t->msgs[j].msg_hdr)) {
				total += t->iov[j].iov_len;
				if (t->iov[j++].iov_len < seg)
					break; /* a shorter datagram ends the run */
			}
		/* the bars are searched only for a run that formed, not for
		 * every datagram; a barred run leaves datagram by datagram */
		if (j - i > 1 && tx_barred(t, h, seg)) {
			while (i < j)
				t->out[no++] = t->msgs[i++];
			continue;
		}
		*o = *h;
		if (j - i > 1) {
			/* msgs[i..j) point at iov[i..j): one gather list */
			char *c = t->gctl[no].buf;
			struct cmsghdr *cm;
			uint16_t gso = (uint16_t)seg;

			memset(c, 0, sizeof(t->gctl[no].buf));
			if (h->msg_controllen > 0)
				memcpy(c, h->msg_control, h->msg_controllen);
			cm = (struct cmsghdr *)(c + h->msg_controllen);
			cm->cmsg_level = IPPROTO_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(gso));
			memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
			o->msg_iov = &t->iov[i];
			o->msg_iovlen = (size_t)(j - i);
			o->msg_control = c;
			o->msg_controllen = h->msg_controllen + CMSG_SPACE(sizeof(gso));
		}
		no++;
		i = j;
	}
	tx_send(t, fd, t->out, no);
}

/* Puts t's datagrams in socket order, each socket's own in the order they
 * were queued (insertion sort: at most WORKER_BATCH, and most often
 * already in order). */
static void txbatch_group(struct txbatch *t)
{
	int i, j;

	for (i = 1; i < t->n; i++) {
		struct mmsghdr m = t->msgs[i];
		struct iovec v = t->iov[i];
		int fd = t->fds[i];

		for (j = i; j > 0 && t->fds[j - 1] > fd; j--) {
			t->msgs[j] = t->msgs[j - 1];
			t->iov[j] = t->iov[j - 1];
			t->fds[j] = t->fds[j - 1];
		}
		t->msgs[j] = m;
		t->iov[j] = v;
		t->fds[j] = fd;
	}
	/* msgs[k] points at iov[k] again: a GSO run needs its datagrams'
	 * iovecs side by side */
	for (i = 0; i < t->n; i++)
		t->msgs[i].msg_hdr.msg_iov = &t->iov[i];
}

/* Sends what t holds: one sendmmsg per socket. The rx slots are free after. */
static void txbatch_flush(struct txbatch *t)
{
	int i, j;

	txbatch_group(t);
	for (i = 0; i < t->n; i = j) {
		for (j = i + 1; j < t->n && t->fds[j] == t->fds[i]; j++)
			;
		tx_flush_fd(t, i, j);
	}
	t->n = 0;
	t->rx_next = 0;
}

/* fd is about to close: what waits for it leaves first. */
static void txbatch_fd_closing(struct txbatch *t, int fd)
{
	int i;

	if (t == NULL)
		return;
	for (i = 0; i < t->n; i++)
		if (t->fds[i] == fd) {
			txbatch_flush(t);
			return;
		}
}

/* A datagram is about to be sent at once: what t holds leaves first, so
 * that one socket's datagrams leave in the order they were sent. */
static void txbatch_before_direct(struct txbatch *t)
{
	if (t != NULL && t->n > 0)
		txbatch_flush(t);
}

/* The first rx slot a read callback may fill. The slots behind it hold
 * datagrams still queued in t; when they are over half, they are sent
 * first, so that a receive batch has room for at least half of
 * WORKER_BATCH. */
static int txbatch_rx_start(struct txbatch *t)
{
	if (t->n == 0)
		t->rx_next = 0;
	else if (t->rx_next > WORKER_BATCH / 2)
		txbatch_flush(t);
	return t->rx_next;
}

/* 1 when len bytes at buf lie in w's receive slots (they stay put until
 * the batch's flush). */
static int in_rx_slots(const struct worker *w, const void *buf, size_t len)
{
	return (const uint8_t *)buf >= w->rx && (const uint8_t *)buf + len <= w->rx + (size_t)WORKER_BATCH * WORKER_SLOT;
}

/* Room for one more datagram to fd in t: flushes first when t is full.
 * Returns the slot index. */
static int txbatch_slot(struct txbatch *t, int fd)
{
	if (t->n == WORKER_BATCH)
		txbatch_flush(t);
	t->fds[t->n] = fd;
	return t->n++;
}

/* Points b's headers at the rx slots once, at start: recvmmsg changes only
 * the name and control lengths and the flags of the headers it fills, and
 * rxbatch_reset puts those back, so a batch of one datagram costs one header
 * reset, not WORKER_BATCH. */
static void rxbatch_prepare(struct rxbatch *b, uint8_t *rx, int want_ctl)
{
	int i;

	for (i = 0; i < WORKER_BATCH; i++) {
		struct msghdr *h = &b->msgs[i].msg_hdr;

		b->iov[i].iov_base = rx + (size_t)i * WORKER_SLOT + WORKER_HEADROOM;
		/* keep 4 bytes spare at the end for padding a Data indication */
		b->iov[i].iov_len = WORKER_SLOT - WORKER_HEADROOM - 4;
		memset(h, 0, sizeof(*h));
		h->msg_name = &b->from[i];
		h->msg_namelen = sizeof(b->from[i]);
		h->msg_iov = &b->iov[i];
		h->msg_iovlen = 1;
		if (want_ctl) {
			h->msg_control = b->ctl[i].buf;
			h->msg_controllen = sizeof(b->ctl[i].buf);
		}
	}
}

/* Restores the headers [from, to) that recvmmsg filled for the next call. */
static void rxbatch_reset(struct rxbatch *b, int from, int to, int want_ctl)
{
	int i;

	for (i = from; i < to; i++) {
		struct msghdr *h = &b->msgs[i].msg_hdr;

		h->msg_namelen = sizeof(b->from[i]);
		h->msg_controllen = want_ctl ? sizeof(b->ctl[i].buf) : 0;
		h->msg_flags = 0;
	}
}

/* Local address the datagram reached, from IP_PKTINFO / IPV6_PKTINFO. */
static void rx_local_addr(const struct msghdr *h, const struct listener *l, struct stun_addr *local)
{
	struct cmsghdr *c;

	*local = l->local;
	if (!l->wildcard)
		return;
	for (c = CMSG_FIRSTHDR((struct msghdr *)h); c != NULL; c = CMSG_NXTHDR((struct msghdr *)h, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			memcpy(local->ip, &pi.ipi_addr, 4);
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			memcpy(local->ip, &pi.ipi6_addr, 16);
		}
	}
}

static void listener_read(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;
	struct worker *w = l->w;
	struct rxbatch *b = w->rxb[l->wildcard != 0];
	int n, i, rounds, start, room;

	/* Bounded, so one busy socket cannot starve the rest of the loop. */
	for (rounds = 0; rounds < 8; rounds++) {
		start = txbatch_rx_start(w->txb);
		room = WORKER_BATCH - start;
		n = recvmmsg(fd, b->msgs + start, (unsigned)room, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break;
		if (w->bps_on)
			w->now_ms = worker_now_ms();
		w->txb->open = 1;
		for (i = start; i < start + n; i++) {
			struct origin o;
			struct msghdr *h = &b->msgs[i].msg_hdr;

			if (h->msg_flags & MSG_TRUNC)
				continue;
			if (netaddr_from_sockaddr(&o.client, (struct sockaddr *)&b->from[i]) < 0)
				continue;
			o.l = l;
			o.conn = NULL;
			rx_local_addr(h, l, &o.local);
			turn_handle_client(w, &o, b->iov[i].iov_base, b->msgs[i].msg_len);
		}
		w->txb->open = 0;
		w->txb->rx_next = start + n;
		rxbatch_reset(b, start, start + n, l->wildcard != 0);
		if (n < room)
			break;
	}
}

static void relay_read(evutil_socket_t fd, short what, void *arg)
{
	struct relay *r = arg;
	struct worker *w = r->w;
	struct rxbatch *b = w->rxb[0];
	int n, i, rounds, start, room;

	for (rounds = 0; rounds < 4; rounds++) {
		start = txbatch_rx_start(w->txb);
		room = WORKER_BATCH - start;
		n = recvmmsg(fd, b->msgs + start, (unsigned)room, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break;
		if (w->bps_on)
			w->now_ms = worker_now_ms();
		w->txb->open = 1;
		for (i = start; i < start + n; i++) {
			struct stun_addr peer;

			if (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
				continue;
			if (netaddr_from_sockaddr(&peer, (struct sockaddr *)&b->from[i]) < 0)
				continue;
			/* r->alloc stays valid: allocations are freed only by
			 * timers and client requests, never from here. */
			turn_handle_peer(w, r->alloc, &peer, b->iov[i].iov_base, b->msgs[i].msg_len);
		}
		w->txb->open = 0;
		w->txb->rx_next = start + n;
		rxbatch_reset(b, start, start + n, 0);
		if (n < room)
			break;
	}
}

/* ---- sending ----------------------------------------------------------- */

/* Fills h (and the control buffer ctl) for a datagram to client from the
 * local address local on l; to holds the destination. */
static void udp_msg(struct listener *l, const struct stun_addr *local, const struct stun_addr *client,
		    struct msghdr *h, struct iovec *iov, struct sockaddr_storage *to, char *ctl, size_t ctlsize)
{
	memset(h, 0, sizeof(*h));
	h->msg_name = to;
	h->msg_namelen = netaddr_to_sockaddr(client, to);
	h->msg_iov = iov;
	h->msg_iovlen = 1;
	if (l->wildcard) {
		/* Answer from the address the client sent to, not the
		 * kernel's choice, or its NAT drops the reply. */
		struct cmsghdr *c;

		memset(ctl, 0, ctlsize);
		h->msg_control = ctl;
		c = (struct cmsghdr *)ctl;
		if (local->family == STUN_AF_IPV6) {
			struct in6_pktinfo pi;

			memset(&pi, 0, sizeof(pi));
			memcpy(&pi.ipi6_addr, local->ip, 16);
			c->cmsg_level = IPPROTO_IPV6;
			c->cmsg_type = IPV6_PKTINFO;
			c->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(c), &pi, sizeof(pi));
			h->msg_controllen = CMSG_SPACE(sizeof(pi));
		} else {
			struct in_pktinfo pi;

			memset(&pi, 0, sizeof(pi));
			memcpy(&pi.ipi_spec_dst, local->ip, 4);
			c->cmsg_level = IPPROTO_IP;
			c->cmsg_type = IP_PKTINFO;
			c->cmsg_len = CMSG_LEN(sizeof(pi));
			memcpy(CMSG_DATA(c), &pi, sizeof(pi));
			h->msg_controllen = CMSG_SPACE(sizeof(pi));
		}
	}
}

/* A datagram to client. Inside relay_read (t->open) it is queued, pointing
 * at buf (in the rx slots), and sent at the end of the loop pass. */
static int udp_send(struct listener *l, const struct stun_addr *local, const struct stun_addr *client,
		    const void *buf, size_t len)
{
	struct txbatch *t = l->w->txb;
	struct sockaddr_storage to;
	struct iovec iov = { (void *)buf, len };
	struct msghdr h;
	union {
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} ctl;

	/* only what lives in the receive slots can wait for the flush */
	if (t != NULL && t->open && in_rx_slots(l->w, buf, len)) {
		int k = txbatch_slot(t, l->fd);

		t->iov[k].iov_base = (void *)buf;
		t->iov[k].iov_len = len;
		udp_msg(l, local, client, &t->msgs[k].msg_hdr, &t->iov[k], &t->to[k], t->ctl[k].buf, sizeof(t->ctl[k].buf));
		return 0;
	}
	txbatch_before_direct(t);
	udp_msg(l, local, client, &h, &iov, &to, ctl.buf, sizeof(ctl.buf));
	return sendmsg(l->fd, &h, MSG_DONTWAIT) < 0 ? -1 : 0;
}

int worker_send_client(const struct origin *o, const void *buf, size_t len, int is_data)
{
	if (o->conn != NULL)
		return stream_send(o->conn, buf, len, is_data);
	return udp_send(o->l, &o->local, &o->client, buf, len);
}

int worker_relay_send(struct turn_alloc *a, const struct stun_addr *peer, const void *buf, size_t len)
{
	struct relay *r = a->io;
	struct txbatch *t = r->w->txb;
	struct sockaddr_storage to;
	int fd = r->fd;

	if (peer->family != a->relay.family) {
		if (r->ev2 == NULL || peer->family != a->relay2.family)
			return -1;
		fd = r->fd2;
	}
	if (t != NULL && t->open && in_rx_slots(r->w, buf, len)) {
		int k = txbatch_slot(t, fd);
		struct msghdr *h = &t->msgs[k].msg_hdr;

		t->iov[k].iov_base = (void *)buf;
		t->iov[k].iov_len = len;
		memset(h, 0, sizeof(*h));
		h->msg_name = &t->to[k];
		h->msg_namelen = netaddr_to_sockaddr(peer, &t->to[k]);
		h->msg_iov = &t->iov[k];
		h->msg_iovlen = 1;
		return 0;
	}
	txbatch_before_direct(t);
	socklen_t tolen = netaddr_to_sockaddr(peer, &to);
	return sendto(fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&to, tolen) < 0 ? -1 : 0;
}

/* ---- sockets ----------------------------------------------------------- */

static int udp_socket(const struct stun_addr *a, int reuseport, struct sockaddr_storage *ss, socklen_t *sslen)
{
	int fd, on = 1;

	*sslen = netaddr_to_sockaddr(a, ss);
	fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (a->family == STUN_AF_IPV6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (reuseport &&
	    (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int listener_open(struct worker *w, struct listener *l, const struct stun_addr *a, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char as[NETADDR_STRLEN];
	int on = 1, size = 1 << 20;

	memset(l, 0, sizeof(*l));
	l->w = w;
	l->local = *a;
	l->local.port = (uint16_t)w->srv->cfg->listening_port;
	l->wildcard = netaddr_is_any(&l->local);
	l->fd = udp_socket(&l->local, 1, &ss, &sslen);
	if (l->fd < 0 || bind(l->fd, (struct sockaddr *)&ss, sslen) < 0) {
		snprintf(err, errlen, "cannot listen on UDP %s: %s", netaddr_str(&l->local, as), strerror(errno));
		if (l->fd >= 0)
			close(l->fd);
		return -1;
	}
	setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(l->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (l->wildcard) {
		if (a->family == STUN_AF_IPV6)
			setsockopt(l->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
		else
			setsockopt(l->fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
	}
	l->ev = event_new(w->base, l->fd, EV_READ | EV_PERSIST, listener_read, l);
	if (l->ev == NULL || event_add(l->ev, NULL) < 0) {
		snprintf(err, errlen, "cannot register UDP listener");
		close(l->fd);
		return -1;
	}
	return 0;
}

/* Binds a UDP socket on a->ip at a free port of min-port..max-port (even
 * when even is set; then with port + 1 also bound into *pair_fd when
 * pair_fd is not NULL). Returns the fd with a->port set, or -1. */
static int relay_bind(struct worker *w, struct stun_addr *a, int even, int *pair_fd)
{
	const struct config *cfg = w->srv->cfg;
	uint32_t range = (uint32_t)(cfg->max_port - cfg->min_port + 1), i, start;
	struct sockaddr_storage ss;
	socklen_t sslen;
	int fd;

	start = worker_rand(w) % range;
	for (i = 0; i < range; i++) {
		uint32_t port = (uint32_t)cfg->min_port + (start + i) % range;

		if (even && (port & 1))
			continue;
		if (pair_fd != NULL && port + 1 > (uint32_t)cfg->max_port)
			continue;
		a->port = (uint16_t)port;
		if ((fd = udp_socket(a, 0, &ss, &sslen)) < 0)
			return -1;
		if (bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
			close(fd);
			if (errno != EADDRINUSE)
				return -1;
			continue;
		}
		if (pair_fd == NULL)
			return fd;
		struct stun_addr next = *a;

		next.port = (uint16_t)(port + 1);
		if ((*pair_fd = udp_socket(&next, 0, &ss, &sslen)) >= 0 &&
		    bind(*pair_fd, (struct sockaddr *)&ss, sslen) == 0)
			return fd;
		if (*pair_fd >= 0)
			close(*pair_fd);
		close(fd);
	}
	return -1;
}

int worker_relay_open(struct worker *w, const struct origin *o, struct turn_alloc *a, struct relay_req *rq,
		      struct stun_addr *bound)
{
	struct stun_addr addr = rq->bind_ip;
	struct relay *r;
	int fd, pair = -1;

	if (rq->token != NULL) {
		if ((fd = reserve_take(rq->token, worker_now(), &addr)) < 0)
			return -2;
	} else {
		if (rq->tcp) /* RFC 6062: a listening TCP socket */
			fd = tcp_relay_bind(w, &addr);
		else
			fd = relay_bind(w, &addr, rq->even || rq->reserve, rq->reserve ? &pair : NULL);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			static _Atomic int64_t logged;

			STAT_INC(w->stats.refused[STATS_REFUSE_NO_FD]);
			if (log_ratelimit(&logged, 10))
				log_warn("descriptors: no relay socket for an Allocate, answering 508 (this message "
					 "at most every 10 s); raise RLIMIT_NOFILE");
			return -3;
		}
		if (fd < 0)
			return -1;
		if (rq->reserve) {
			struct stun_addr next = addr;

			next.port++;
			if (reserve_put(pair, &next, worker_now(), (uint32_t)w->srv->cfg->reservation_lifetime,
					rq->token_out) < 0) {
				close(fd);
				return -1;
			}
		}
	}
	if (rq->dont_fragment && addr.family == STUN_AF_IPV4) {
		int pmtu = IP_PMTUDISC_DO;

		setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		close(fd);
		return -1;
	}
	r->fd = fd;
	r->fd2 = -1; /* with ev2 NULL: no second socket */
	r->o = *o;
	r->alloc = a;
	r->w = w;
	if (rq->tcp) {
		if (tcp_relay_attach(w, r, &addr) < 0) {
			close(fd);
			free(r);
			return -1;
		}
	} else if ((r->ev = event_new(w->base, fd, EV_READ | EV_PERSIST, relay_read, r)) == NULL ||
		   event_add(r->ev, NULL) < 0) {
		if (r->ev != NULL)
			event_free(r->ev);
		close(fd);
		free(r);
		return -1;
	}
	a->io = r;
	*bound = addr;
	if (o->conn != NULL)
		stream_set_alloc(o->conn, a);
	/* The allocs[][] gauge: counted here, uncounted in relay_release. */
	a->created = worker_now();
	a->stats_transport = (uint8_t)worker_stats_transport(o);
	a->stats_family = o->client.family == STUN_AF_IPV6 ? STATS_V6 : STATS_V4;
	STAT_INC(w->stats.allocs[a->stats_transport][a->stats_family]);
	r->quota_held = (uint8_t)rq->quota_held;
	limits_relay_init(w, r);
	return 0;
}

int worker_relay_open_second(struct worker *w, struct turn_alloc *a, const struct stun_addr *bind_ip,
			     struct stun_addr *bound)
{
	struct relay *r = a->io;
	struct stun_addr addr = *bind_ip;
	int fd;

	if (r == NULL || r->ev2 != NULL)
		return -1;
	if ((fd = relay_bind(w, &addr, 0, NULL)) < 0) {
		if (errno == EMFILE || errno == ENFILE) {
			STAT_INC(w->stats.refused[STATS_REFUSE_NO_FD]);
			return -3;
		}
		return -1;
	}
	r->ev2 = event_new(w->base, fd, EV_READ | EV_PERSIST, relay_read, r);
	if (r->ev2 == NULL || event_add(r->ev2, NULL) < 0) {
		if (r->ev2 != NULL)
			event_free(r->ev2);
		r->ev2 = NULL;
		close(fd);
		return -1;
	}
	r->fd2 = fd;
	*bound = addr;
	return 0;
}

static void relay_close_second(struct relay *r)
{
	if (r->ev2 == NULL) /* none (calloc'd relays have ev2 NULL) */
		return;
	event_free(r->ev2);
	txbatch_fd_closing(r->w->txb, r->fd2);
	close(r->fd2);
	r->ev2 = NULL;
	r->fd2 = -1;
}

int worker_relay_close_family(struct turn_alloc *a, uint8_t family)
{
	struct relay *r = a->io;

	if (r == NULL || r->ev2 == NULL || a->relay2.family == 0)
		return -1;
	if (family != a->relay.family && family != a->relay2.family)
		return -1;
	/* The fast path's entries of this family go while their relayed
	 * address (the key) is still known: the program must not relay
	 * through a closed port until the channels lapse. */
	for (size_t i = 0; i < a->nchans; i++)
		if (a->chans[i].peer.family == family)
			ebpf_channel_clear(r->w, a, &a->chans[i]);
	if (family == a->relay.family) {
		/* The second socket becomes the first. */
		struct event *ev = r->ev;
		int fd = r->fd;

		r->ev = r->ev2;
		r->fd = r->fd2;
		r->ev2 = ev;
		r->fd2 = fd;
		a->relay = a->relay2;
	} else if (family != a->relay2.family) {
		return -1;
	}
	relay_close_second(r);
	memset(&a->relay2, 0, sizeof(a->relay2));
	return 0;
}

static void relay_release(struct turn_alloc *a)
{
	struct relay *r = a->io;

	if (r == NULL)
		return;
	ebpf_alloc_clear(r->w, a); /* before the socket closes: its address is the key */
	STAT_ADD(r->w->stats.allocs[a->stats_transport][a->stats_family], -1);
	if (r->o.conn != NULL)
		stream_set_alloc(r->o.conn, NULL);
	/* Every way an allocation ends (expiry, Refresh 0, kill, connection
	 * closed, shutdown) comes through here. */
	if (r->quota_held)
		limits_alloc_release(r->w->srv, a->username);
	if (r->statsdb_id != 0)
		statsdb_alloc_deleted(r->w->statsdb, r->statsdb_id, a);
	if (r->tcp != NULL) {
		tcp_relay_release(r); /* the listener and every data connection */
	} else {
		event_free(r->ev);
		txbatch_fd_closing(r->w->txb, r->fd);
		close(r->fd);
		relay_close_second(r);
	}
	free(r);
	a->io = NULL;
}

void worker_alloc_free(struct worker *w, struct turn_alloc *a)
{
	char cs[NETADDR_STRLEN];

	log_debug("worker %d: allocation of %s (user %s) freed", w->id, netaddr_str(&a->client, cs),
		  LOG_ESC(a->username));
	relay_release(a);
	turn_table_remove(&w->allocs, a); /* cancels a->timer */
}

/* ---- timers and lifecycle ---------------------------------------------- */

void worker_alloc_arm(struct worker *w, struct turn_alloc *a)
{
	turn_timer_arm(w->wheel, &a->timer, turn_alloc_next_deadline(a, worker_now()));
}

/* An allocation's timer: its end, or dead permissions/channels to drop. */
static void alloc_timer(struct turn_timer *t, void *arg)
{
	struct turn_alloc *a = (struct turn_alloc *)((char *)t - offsetof(struct turn_alloc, timer));
	struct worker *w = arg;
	uint64_t now = worker_now();

	if (now >= a->expires) {
		worker_alloc_free(w, a);
		return;
	}
	ebpf_alloc_tick(w, a, now); /* lapsed channels and permissions out of the map */
	turn_alloc_expire(a, now);
	worker_alloc_arm(w, a);
}

static void worker_tick(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	log_roll(w, worker_now());
	/* O(what is due), not a walk of every allocation (issue 14). */
	turn_wheel_advance(w->wheel, worker_now(), alloc_timer, w);
	/* ebpf-offload: the program's counters reach the statistics once a
	 * second; only the allocations with entries in the maps are walked. */
	ebpf_worker_tick(w, worker_now());
	turn_table_step(&w->allocs, 256);
	tcp_relay_tick(w);
	STAT_INC(w->stats.loop_ticks); /* /healthz: this loop is turning */
	/* The load figure: the kernel's count of this thread's CPU time, read
	 * once a second rather than timing every event on the relay path. */
	atomic_store_explicit(&w->stats.busy_usec, thread_cpu_usec(), memory_order_relaxed);
	/* One worker frees unclaimed EVEN-PORT reservations on time. */
	if (w->id == 0)
		reserve_tick(worker_now());
}

int worker_post(struct worker *w, enum worker_msg_type type, void *ptr)
{
	struct worker_msg *m = calloc(1, sizeof(*m)), **pp;
	uint64_t one = 1;

	if (m == NULL)
		return -1;
	m->type = type;
	m->ptr = ptr;
	pthread_mutex_lock(&w->mq_lock);
	for (pp = &w->mq; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = m;
	pthread_mutex_unlock(&w->mq_lock);
	return write(w->wake_fd, &one, sizeof(one)) == (ssize_t)sizeof(one) ? 0 : -1;
}

static void worker_wake(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct worker_msg *m, *next;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return;
	pthread_mutex_lock(&w->mq_lock);
	m = w->mq;
	w->mq = NULL;
	pthread_mutex_unlock(&w->mq_lock);
	for (; m != NULL; m = next) {
		next = m->next;
		switch (m->type) {
		case WORKER_MSG_STOP:
			event_base_loopbreak(w->base);
			break;
		case WORKER_MSG_TLS_CTX:
			/* New connections use the new context; live ones keep
			 * theirs (each SSL holds its own reference). */
			if (w->tls_ctx != NULL)
				SSL_CTX_free(w->tls_ctx);
			w->tls_ctx = m->ptr;
			break;
		case WORKER_MSG_SESSIONS:
			sessions_fill(w, m->ptr);
			break;
		case WORKER_MSG_TCP_BIND:
			tcp_relay_on_msg(w, m->ptr);
			break;
		}
		free(m);
	}
}

static void worker_on_kill(void *arg, const char *user)
{
	turn_kill_user(arg, user);
}

int worker_init(struct worker *w, int id, struct server *srv, char *err, size_t errlen)
{
	struct event_config *ec;
	struct timeval one = { 1, 0 };
	size_t i;

	memset(w, 0, sizeof(*w));
	w->id = id;
	w->srv = srv;
	w->wake_fd = -1;
	w->rng = (uint32_t)(getpid() * 2654435761u) ^ (uint32_t)(id + 1) * 40503u ^ (uint32_t)time(NULL);
	if (w->rng == 0)
		w->rng = 1;
	if ((ec = event_config_new()) == NULL)
		goto oom;
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	w->base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (w->base == NULL || (w->rx = malloc((size_t)WORKER_BATCH * WORKER_SLOT)) == NULL ||
	    (w->rxb[0] = malloc(sizeof(struct rxbatch))) == NULL ||
	    (w->rxb[1] = malloc(sizeof(struct rxbatch))) == NULL ||
	    (w->txb = calloc(1, sizeof(struct txbatch))) == NULL || turn_table_init(&w->allocs, 1024) < 0 ||
	    (w->wheel = malloc(sizeof(*w->wheel))) == NULL)
		goto oom;
	turn_wheel_init(w->wheel, worker_now());
	/* Both batches use the same slots: a worker reads one socket at a time. */
	rxbatch_prepare(w->rxb[0], w->rx, 0);
	rxbatch_prepare(w->rxb[1], w->rx, 1);
	pthread_mutex_init(&w->mq_lock, NULL);
	limits_worker_init(w);
	if (tcp_relay_worker_init(w) < 0)
		goto oom;
	for (i = 0; i < srv->nlisten; i++) {
		if (!srv->cfg->no_udp) {
			if (listener_open(w, &w->ls[w->nls], &srv->listen[i], err, errlen) < 0)
				return -1;
			w->nls++;
		}
		if (!srv->cfg->no_tcp && stream_listen(w, &srv->listen[i], 0, err, errlen) < 0)
			return -1;
		if (srv->tls != NULL && stream_listen(w, &srv->listen[i], 1, err, errlen) < 0)
			return -1;
	}
	if (srv->tls != NULL) {
		SSL_CTX_up_ref(srv->tls);
		w->tls_ctx = srv->tls;
	}
	if (srv->cfg->redis_userdb != NULL) {
		struct auth_redis_params rp = {
			.conninfo = srv->cfg->redis_userdb,
			.realm = srv->cfg->realm,
			.cache_ttl = srv->cfg->auth_cache_ttl,
			.on_kill = worker_on_kill,
			.kill_arg = w,
		};

		if ((w->redis = auth_redis_new(w->base, &rp, err, errlen)) == NULL)
			return -1;
	}
	if (srv->cfg->redis_statsdb != NULL &&
	    (w->statsdb = statsdb_new(w->base, srv->cfg->redis_statsdb, srv->cfg->realm, err, errlen)) == NULL)
		return -1;
	if ((w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		goto oom;
	w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, worker_wake, w);
	w->tick_ev = event_new(w->base, -1, EV_PERSIST, worker_tick, w);
	if (w->wake_ev == NULL || w->tick_ev == NULL || event_add(w->wake_ev, NULL) < 0 ||
	    event_add(w->tick_ev, &one) < 0)
		goto oom;
	return 0;
oom:
	snprintf(err, errlen, "worker %d: cannot set up its event loop: %s", id, strerror(errno));
	return -1;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	log_debug("worker %d running", w->id);
	/* One pass at a time (EVLOOP_ONCE: one wait, then every callback it
	 * made ready), so that what the read callbacks queued leaves after
	 * all of them, as few system calls as there are sockets to send on. */
	for (;;) {
		int rc = event_base_loop(w->base, EVLOOP_ONCE);

		txbatch_flush(w->txb);
		if (rc != 0 || event_base_got_break(w->base))
			break;
	}
	return NULL;
}

int worker_start(struct worker *w)
{
	int rc = pthread_create(&w->thread, NULL, worker_main, w);

	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return 0;
}

void worker_stop(struct worker *w)
{
	if (worker_post(w, WORKER_MSG_STOP, NULL) < 0)
		log_warn("worker %d: cannot wake", w->id);
	pthread_join(w->thread, NULL);
}

void worker_free(struct worker *w)
{
	struct worker_msg *m, *next;
	size_t i;

	stream_close_all(w);
	turn_cancel_pending(w, NULL);
	if (w->redis != NULL)
		auth_redis_free(w->redis);
	if (w->allocs.buckets != NULL)
		turn_table_destroy(&w->allocs, relay_release);
	free(w->wheel);
	w->wheel = NULL;
	tcp_relay_worker_free(w);
	statsdb_free(w->statsdb);
	w->statsdb = NULL;
	for (i = 0; i < w->nls; i++) {
		event_free(w->ls[i].ev);
		close(w->ls[i].fd);
	}
	for (i = 0; i < w->ntcp; i++)
		evconnlistener_free(w->tcp[i]);
	for (i = 0; i < w->ntls; i++)
		evconnlistener_free(w->tls[i]);
	if (w->tls_ctx != NULL)
		SSL_CTX_free(w->tls_ctx);
	for (m = w->mq; m != NULL; m = next) {
		next = m->next;
		if (m->type == WORKER_MSG_TLS_CTX)
			SSL_CTX_free(m->ptr);
		else if (m->type == WORKER_MSG_SESSIONS)
			sessions_req_put(m->ptr);
		else if (m->type == WORKER_MSG_TCP_BIND)
			tcp_relay_msg_free(w->srv, m->ptr);
		free(m);
	}
	pthread_mutex_destroy(&w->mq_lock);
	if (w->wake_ev != NULL)
		event_free(w->wake_ev);
	if (w->tick_ev != NULL)
		event_free(w->tick_ev);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->base != NULL)
		event_base_free(w->base);
	free(w->rx);
	free(w->rxb[0]);
	free(w->rxb[1]);
	free(w->txb);
}
