/* fwd.c -- the "ceiling" relay for the benchmark: the least work any TURN
 * relay has to do, and nothing else.
 *
 * No STUN, no authentication, no permissions. Per thread: one epoll, one
 * SO_REUSEPORT UDP listening socket (and a TCP one with -T); each new client
 * (UDP 5-tuple or TCP connection) gets its own UDP relay socket, as a TURN
 * allocation has. Client -> peer: the datagram (UDP) or the 2-byte
 * length-prefixed frame (TCP) is sent from the client's relay socket to the
 * one peer given with -e. Peer -> client: read from the relay socket, sent
 * from the listening socket (UDP) or written to the connection (TCP).
 * recvmmsg/sendmmsg batches of up to 32.
 *
 *   fwd -l 127.0.0.1 -p PORT -e 127.0.0.1:PEERPORT -t THREADS [-T]
 *
 * Prints "ready" on stdout once every thread listens. Stops on SIGTERM/SIGINT.
 * Loopback benchmark tool only: it relays for anybody.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define BATCH 32
#define SLOT 2048
#define HBITS 16

enum kind { K_UDP_LISTEN, K_TCP_LISTEN, K_RELAY, K_CONN };

struct sess {
	enum kind kind;             /* K_RELAY or K_CONN: both point here */
	int relay_fd;
	int conn_fd;                /* TCP: the client connection, else -1 */
	struct sockaddr_in client;  /* UDP: client address */
	struct sess *hnext;
	size_t inlen;
	uint8_t *in;                /* TCP: partial frame buffer */
};

/* epoll data.ptr points to one of these */
struct tag {
	enum kind kind;
	struct sess *s;
};

struct thr {
	int ep, ufd, tfd;
	struct tag utag, ttag;
	struct sess *h[1 << HBITS];
	uint8_t rx[BATCH][SLOT];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in from[BATCH];
};

static struct sockaddr_in listen_addr, peer_addr;
static int nthreads = 2, with_tcp;
static volatile sig_atomic_t stop;

static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

static unsigned hash_addr(const struct sockaddr_in *a)
{
	uint32_t x = a->sin_addr.s_addr * 2654435761u ^ (uint32_t)a->sin_port * 40503u;

	return (x ^ (x >> 16)) & ((1u << HBITS) - 1);
}

static int relay_socket(void)
{
	struct sockaddr_in a = listen_addr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	a.sin_port = 0;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static struct sess *sess_new(struct thr *t, int conn_fd)
{
	struct sess *s = calloc(1, sizeof(*s) + sizeof(struct tag) * 2);
	struct tag *tags = (struct tag *)(s + 1);
	struct epoll_event ev;

	if (s == NULL)
		return NULL;
	s->conn_fd = conn_fd;
	if ((s->relay_fd = relay_socket()) < 0) {
		free(s);
		return NULL;
	}
	tags[0].kind = K_RELAY;
	tags[0].s = s;
	ev.events = EPOLLIN;
	ev.data.ptr = &tags[0];
	epoll_ctl(t->ep, EPOLL_CTL_ADD, s->relay_fd, &ev);
	if (conn_fd >= 0) {
		tags[1].kind = K_CONN;
		tags[1].s = s;
		ev.data.ptr = &tags[1];
		epoll_ctl(t->ep, EPOLL_CTL_ADD, conn_fd, &ev);
		s->in = malloc(65536 + 2);
	}
	return s;
}

static void prep(struct thr *t, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		t->iov[i].iov_base = t->rx[i];
		t->iov[i].iov_len = SLOT;
		memset(&t->m[i].msg_hdr, 0, sizeof(t->m[i].msg_hdr));
		t->m[i].msg_hdr.msg_name = &t->from[i];
		t->m[i].msg_hdr.msg_namelen = sizeof(t->from[i]);
		t->m[i].msg_hdr.msg_iov = &t->iov[i];
		t->m[i].msg_hdr.msg_iovlen = 1;
	}
}

/* Sends msgs[0..n) from fd to the peer, in one sendmmsg. */
static void send_to_peer(int fd, struct mmsghdr *msgs, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		msgs[i].msg_hdr.msg_name = &peer_addr;
		msgs[i].msg_hdr.msg_namelen = sizeof(peer_addr);
	}
	while (n > 0) {
		int k = sendmmsg(fd, msgs, (unsigned)n, MSG_DONTWAIT);

		if (k <= 0)
			return;
		msgs += k;
		n -= k;
	}
}

static void udp_listen_read(struct thr *t)
{
	struct sess *sv[BATCH];
	struct mmsghdr out[BATCH];
	struct iovec oiov[BATCH];
	int n, i, j, rounds;

	for (rounds = 0; rounds < 8; rounds++) {
		prep(t, BATCH);
		n = recvmmsg(t->ufd, t->m, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (i = 0; i < n; i++) {
			unsigned h = hash_addr(&t->from[i]);
			struct sess *s;

			for (s = t->h[h]; s != NULL; s = s->hnext)
				if (s->client.sin_port == t->from[i].sin_port &&
				    s->client.sin_addr.s_addr == t->from[i].sin_addr.s_addr)
					break;
			if (s == NULL && (s = sess_new(t, -1)) != NULL) {
				s->client = t->from[i];
				s->hnext = t->h[h];
				t->h[h] = s;
			}
			sv[i] = s;
		}
		/* runs of datagrams for the same relay socket go in one sendmmsg */
		for (i = 0; i < n; i = j) {
			int k = 0;

			for (j = i; j < n && sv[j] == sv[i]; j++) {
				oiov[k].iov_base = t->rx[j];
				oiov[k].iov_len = t->m[j].msg_len;
				memset(&out[k].msg_hdr, 0, sizeof(out[k].msg_hdr));
				out[k].msg_hdr.msg_iov = &oiov[k];
				out[k].msg_hdr.msg_iovlen = 1;
				k++;
			}
			if (sv[i] != NULL)
				send_to_peer(sv[i]->relay_fd, out, k);
		}
		if (n < BATCH)
			return;
	}
}

static void relay_read(struct thr *t, struct sess *s)
{
	int n, i, rounds;

	for (rounds = 0; rounds < 4; rounds++) {
		prep(t, BATCH);
		n = recvmmsg(s->relay_fd, t->m, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		if (s->conn_fd < 0) {
			struct mmsghdr *m = t->m;
			int left = n;

			for (i = 0; i < n; i++) {
				t->iov[i].iov_len = t->m[i].msg_len;
				t->m[i].msg_hdr.msg_name = &s->client;
				t->m[i].msg_hdr.msg_namelen = sizeof(s->client);
			}
			while (left > 0) {
				int k = sendmmsg(t->ufd, m, (unsigned)left, MSG_DONTWAIT);

				if (k <= 0)
					break;
				m += k;
				left -= k;
			}
		} else {
			/* TCP: 2-byte length + payload per datagram, one writev */
			struct iovec wv[BATCH * 2];
			uint8_t hdr[BATCH][2];

			for (i = 0; i < n; i++) {
				hdr[i][0] = (uint8_t)(t->m[i].msg_len >> 8);
				hdr[i][1] = (uint8_t)t->m[i].msg_len;
				wv[2 * i].iov_base = hdr[i];
				wv[2 * i].iov_len = 2;
				wv[2 * i + 1].iov_base = t->rx[i];
				wv[2 * i + 1].iov_len = t->m[i].msg_len;
			}
			if (writev(s->conn_fd, wv, 2 * n) < 0 && errno != EAGAIN)
				return;
		}
		if (n < BATCH)
			return;
	}
}

static void sess_close(struct thr *t, struct sess *s)
{
	epoll_ctl(t->ep, EPOLL_CTL_DEL, s->relay_fd, NULL);
	epoll_ctl(t->ep, EPOLL_CTL_DEL, s->conn_fd, NULL);
	close(s->relay_fd);
	close(s->conn_fd);
	free(s->in);
	free(s);
}

static void conn_read(struct thr *t, struct sess *s)
{
	struct mmsghdr out[BATCH];
	struct iovec oiov[BATCH];
	ssize_t r;

	for (;;) {
		size_t off = 0;
		int k = 0;

		r = read(s->conn_fd, s->in + s->inlen, 65536 + 2 - s->inlen);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
			sess_close(t, s);
			return;
		}
		if (r < 0)
			return;
		s->inlen += (size_t)r;
		for (;;) {
			size_t flen;

			if (s->inlen - off < 2)
				break;
			flen = ((size_t)s->in[off] << 8) | s->in[off + 1];
			if (s->inlen - off < 2 + flen)
				break;
			oiov[k].iov_base = s->in + off + 2;
			oiov[k].iov_len = flen;
			memset(&out[k].msg_hdr, 0, sizeof(out[k].msg_hdr));
			out[k].msg_hdr.msg_iov = &oiov[k];
			out[k].msg_hdr.msg_iovlen = 1;
			off += 2 + flen;
			if (++k == BATCH) {
				send_to_peer(s->relay_fd, out, k);
				k = 0;
			}
		}
		if (k > 0)
			send_to_peer(s->relay_fd, out, k);
		memmove(s->in, s->in + off, s->inlen - off);
		s->inlen -= off;
		if ((size_t)r < 65536 / 2)
			return;
	}
}

static void tcp_accept(struct thr *t)
{
	int fd, on = 1;

	while ((fd = accept4(t->tfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		if (sess_new(t, fd) == NULL)
			close(fd);
	}
}

static int listen_socket(int type)
{
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), on = 1, sz = 1 << 20;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
	if (type == SOCK_DGRAM) {
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	if (bind(fd, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
		perror("fwd: bind/listen");
		exit(1);
	}
	return fd;
}

static void *thr_main(void *arg)
{
	struct thr *t = arg;
	struct epoll_event evs[64];
	int n, i;

	while (!stop) {
		n = epoll_wait(t->ep, evs, 64, 200);
		for (i = 0; i < n; i++) {
			struct tag *g = evs[i].data.ptr;

			switch (g->kind) {
			case K_UDP_LISTEN:
				udp_listen_read(t);
				break;
			case K_TCP_LISTEN:
				tcp_accept(t);
				break;
			case K_RELAY:
				relay_read(t, g->s);
				break;
			case K_CONN:
				conn_read(t, g->s);
				/* the session may be gone: later events for it in
				 * this batch would dangle, so stop the batch */
				i = n;
				break;
			}
		}
	}
	return NULL;
}

static int parse_addr(const char *s, struct sockaddr_in *a)
{
	char ip[64];
	const char *c = strrchr(s, ':');

	if (c == NULL || (size_t)(c - s) >= sizeof(ip))
		return -1;
	memcpy(ip, s, (size_t)(c - s));
	ip[c - s] = '\0';
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)atoi(c + 1));
	return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *lip = "127.0.0.1";
	int port = 0, opt, i;
	struct thr **t;
	pthread_t *tid;
	struct sigaction sa;

	memset(&peer_addr, 0, sizeof(peer_addr));
	while ((opt = getopt(argc, argv, "l:p:e:t:T")) != -1) {
		switch (opt) {
		case 'l': lip = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'e':
			if (parse_addr(optarg, &peer_addr) < 0) {
				fprintf(stderr, "fwd: bad peer %s\n", optarg);
				return 2;
			}
			break;
		case 't': nthreads = atoi(optarg); break;
		case 'T': with_tcp = 1; break;
		default:
			fprintf(stderr, "usage: fwd -l IP -p PORT -e PEERIP:PORT -t THREADS [-T]\n");
			return 2;
		}
	}
	if (port <= 0 || peer_addr.sin_port == 0 || nthreads < 1) {
		fprintf(stderr, "usage: fwd -l IP -p PORT -e PEERIP:PORT -t THREADS [-T]\n");
		return 2;
	}
	memset(&listen_addr, 0, sizeof(listen_addr));
	listen_addr.sin_family = AF_INET;
	listen_addr.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, lip, &listen_addr.sin_addr);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sig;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	t = calloc((size_t)nthreads, sizeof(*t));
	tid = calloc((size_t)nthreads, sizeof(*tid));
	for (i = 0; i < nthreads; i++) {
		struct epoll_event ev;

		t[i] = calloc(1, sizeof(**t));
		t[i]->ep = epoll_create1(EPOLL_CLOEXEC);
		t[i]->ufd = listen_socket(SOCK_DGRAM);
		t[i]->utag.kind = K_UDP_LISTEN;
		ev.events = EPOLLIN;
		ev.data.ptr = &t[i]->utag;
		epoll_ctl(t[i]->ep, EPOLL_CTL_ADD, t[i]->ufd, &ev);
		t[i]->tfd = -1;
		if (with_tcp) {
			t[i]->tfd = listen_socket(SOCK_STREAM);
			t[i]->ttag.kind = K_TCP_LISTEN;
			ev.data.ptr = &t[i]->ttag;
			epoll_ctl(t[i]->ep, EPOLL_CTL_ADD, t[i]->tfd, &ev);
		}
	}
	for (i = 0; i < nthreads; i++)
		pthread_create(&tid[i], NULL, thr_main, t[i]);
	printf("ready\n");
	fflush(stdout);
	for (i = 0; i < nthreads; i++)
		pthread_join(tid[i], NULL);
	return 0;
}
