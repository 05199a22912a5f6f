/* tsload.c -- the benchmark's load generator and echo peer (one thread).
 *
 * Per allocation it does the real TURN dance: Allocate -> 401 -> Allocate
 * with long-term credentials -> ChannelBind (which also installs the
 * permission) -> ChannelData. Against the ceiling forwarder (--mode raw) it
 * just sends the payload (UDP) or a 2-byte length-prefixed frame (TCP).
 * The peer every allocation relays to is this process's own UDP echo socket
 * (recvmmsg/sendmmsg), so what the relay forwarded is counted on both sides.
 *
 * Cases (--case):
 *   data    N allocations send SIZE-byte messages at RATE/s each (RATE 0:
 *           as fast as possible) for DURATION s, echoed by the peer.
 *   cycles  Allocate cycles (401, authenticated Allocate, Refresh 0) with
 *           --inflight of them under way, for DURATION s. UDP only.
 *   hold    sets up N allocations and measures the server's resident memory
 *           and open file descriptors before and after.
 *   ping    one allocation, back-to-back pings for DURATION s: RTT p50/p99.
 *           --mode direct pings the echo peer without any relay.
 * --peer-ips K: allocation i relays to peer IP (peer IP + i % K), same port,
 * all served by the one echo socket (bound to the wildcard address; replies
 * leave from the address they were sent to, IP_PKTINFO). For relays that
 * demultiplex peers by IP:port on one shared socket (coturn --multiplex-peer),
 * which need a distinct peer per allocation.
 * With --pid, the server's user and system CPU over the measured window are
 * read from /proc/PID/stat, and every CPU's busy and softirq time from
 * /proc/stat. --client-ip binds the clients to that address (default
 * 127.0.0.1). One JSON object on stdout. All sockets are on the addresses
 * given: loopback, or bench/run.sh --veth's own namespaces; every loop is
 * bounded in time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/md5.h>
#include <openssl/ssl.h>
#include <dirent.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x2112A442u
#define BATCH 32
#define PEER_TAG 0xffffffffu

enum { M_TURN, M_RAW, M_DIRECT };
enum { P_UDP, P_TCP, P_TLS };
enum { C_DATA, C_CYCLES, C_HOLD, C_PING };
enum { S_IDLE, S_ALLOC0, S_ALLOC, S_CB, S_RAW, S_READY, S_REFRESH, S_FAILED };

struct sess {
	int fd;
	SSL *ssl;
	int state, tries;
	uint64_t deadline;          /* ns, retransmission */
	uint8_t tid[12];
	uint8_t last[512];          /* last request, for retransmission */
	size_t lastlen;
	uint64_t sent, recv;
	uint8_t in[8192];
	size_t inlen;
};

static struct {
	struct sockaddr_in server, peer;
	int mode, proto, cas;
	int n, rate, size, inflight;
	double duration;
	const char *user, *pass;
	int pid;
	int peer_ips;               /* distinct peer IPs, from peer's upward */
	struct in_addr client_ip;   /* the clients' source address (--client-ip) */
} o = { .mode = M_TURN, .proto = P_UDP, .cas = C_DATA, .n = 1, .rate = 100, .size = 100, .inflight = 16,
	.duration = 3, .user = "bench", .pass = "benchpw", .pid = 0, .peer_ips = 1 };

static struct sess *ss;
static int ep, peerfd = -1;
static SSL_CTX *sslctx;
static char realm[256], nonce[256];
static uint8_t key[16];
static int have_key;
static uint64_t peer_rx, peer_tx, setup_fail, cycles, cycle_fail;
static uint64_t *rtts;
static size_t nrtt, rtt_cap;
static uint64_t ping_sent_ns;
static pid_t ping_child = -1;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "tsload: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---- /proc --------------------------------------------------------------- */

static void proc_cpu(int pid, double *user, double *sys)
{
	char path[64], buf[2048], *p;
	FILE *f;
	unsigned long ut = 0, st = 0;
	size_t n;

	*user = *sys = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return;
	/* after ')': state(3) ... utime is field 14, stime 15 */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return;
	*user = (double)ut / (double)sysconf(_SC_CLK_TCK);
	*sys = (double)st / (double)sysconf(_SC_CLK_TCK);
}

static long proc_rss_kb(int pid)
{
	char path[64], line[256];
	FILE *f;
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static long proc_nfds(int pid)
{
	char path[64];
	DIR *d;
	struct dirent *e;
	long n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Per-CPU time, seconds, from /proc/stat, for up to MAX_CPUS CPUs.
 * The tick-sampled fields (user, system, softirq) miss what a CPU does
 * between ticks while it is otherwise idle (a softirq woken by an IPI on a
 * tickless idle CPU: exactly where an in-kernel fast path runs), but the
 * idle field of a tickless CPU is measured, not sampled. So busy is taken
 * as elapsed time minus idle and iowait; softirq and steal (time a VM's
 * hypervisor ran something else; when it delays an idle vCPU's wake-up the
 * guest counts that as idle too, so it is not subtracted) are the sampled
 * fields, for the record. The benchmark's --veth mode pins the server and its
 * interface's receive processing to one CPU, so that CPU's busy time is what
 * the server host spent, in and out of the process. */
#define MAX_CPUS 64
struct host_cpu {
	int n;
	uint64_t at_ns;
	double idle[MAX_CPUS], soft[MAX_CPUS], ticks[MAX_CPUS], steal[MAX_CPUS];
};

static uint64_t now_ns(void);

static void host_cpu(struct host_cpu *h)
{
	char line[512];
	unsigned long long us, ni, sy, id, io, irq, sirq, st;
	double hz = (double)sysconf(_SC_CLK_TCK);
	int cpu;
	FILE *f = fopen("/proc/stat", "r");

	h->n = 0;
	h->at_ns = now_ns();
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &us, &ni, &sy, &id, &io, &irq,
			   &sirq, &st) != 9 || cpu < 0 || cpu >= MAX_CPUS)
			continue;
		h->idle[cpu] = (double)(id + io) / hz;
		h->steal[cpu] = (double)st / hz;
		h->soft[cpu] = (double)sirq / hz;
		h->ticks[cpu] = (double)(us + ni + sy + irq + sirq) / hz;
		if (cpu + 1 > h->n)
			h->n = cpu + 1;
	}
	fclose(f);
}

/* The JSON fields "cpu_busy_s" (elapsed - idle - iowait), "cpu_steal_s",
 * "cpu_softirq_s" and "cpu_tick_busy_s" (sampled): per-CPU deltas. */
static void print_host_cpu(const struct host_cpu *a, const struct host_cpu *b)
{
	double el = (double)(b->at_ns - a->at_ns) / 1e9;

	printf(",\"cpu_busy_s\":[");
	for (int c = 0; c < b->n; c++)
		printf("%s%.3f", c ? "," : "", el - (b->idle[c] - a->idle[c]));
	printf("],\"cpu_softirq_s\":[");
	for (int c = 0; c < b->n; c++)
		printf("%s%.3f", c ? "," : "", b->soft[c] - a->soft[c]);
	printf("],\"cpu_steal_s\":[");
	for (int c = 0; c < b->n; c++)
		printf("%s%.3f", c ? "," : "", b->steal[c] - a->steal[c]);
	printf("],\"cpu_tick_busy_s\":[");
	for (int c = 0; c < b->n; c++)
		printf("%s%.3f", c ? "," : "", b->ticks[c] - a->ticks[c]);
	printf("],\"cpu_window_s\":%.3f", el);
}

static double self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* ---- STUN ---------------------------------------------------------------- */

struct msg {
	uint8_t b[512];
	size_t len;
};

static void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void msg_init(struct msg *m, unsigned type, const uint8_t tid[12])
{
	uint32_t mc = htonl(MAGIC);

	put16(m->b, type);
	put16(m->b + 2, 0);
	memcpy(m->b + 4, &mc, 4);
	memcpy(m->b + 8, tid, 12);
	m->len = 20;
}

static void msg_attr(struct msg *m, unsigned type, const void *val, size_t len)
{
	put16(m->b + m->len, type);
	put16(m->b + m->len + 2, (unsigned)len);
	memcpy(m->b + m->len + 4, val, len);
	m->len += 4 + len;
	while (m->len & 3)
		m->b[m->len++] = 0;
	put16(m->b + 2, (unsigned)(m->len - 20));
}

static void msg_auth(struct msg *m)
{
	unsigned int hl = 20;

	msg_attr(m, 0x0006, o.user, strlen(o.user));
	msg_attr(m, 0x0014, realm, strlen(realm));
	msg_attr(m, 0x0015, nonce, strlen(nonce));
	put16(m->b + 2, (unsigned)(m->len - 20 + 24));
	HMAC(EVP_sha1(), key, 16, m->b, m->len, m->b + m->len + 4, &hl);
	put16(m->b + m->len, 0x0008);
	put16(m->b + m->len + 2, 20);
	m->len += 24;
}

static void new_tid(struct sess *s)
{
	for (int i = 0; i < 12; i++)
		s->tid[i] = (uint8_t)(random() >> 7);
}

/* Builds the next request for s's state into s->last. */
static void build_request(struct sess *s)
{
	struct msg m;
	static const uint8_t udp[4] = { 17, 0, 0, 0 };

	new_tid(s);
	switch (s->state) {
	case S_ALLOC0:
		msg_init(&m, 0x0003, s->tid);
		msg_attr(&m, 0x0019, udp, 4);
		break;
	case S_ALLOC:
		msg_init(&m, 0x0003, s->tid);
		msg_attr(&m, 0x0019, udp, 4);
		msg_auth(&m);
		break;
	case S_CB: {
		uint8_t ch[4] = { 0x40, 0x00, 0, 0 }, xa[8];
		uint32_t ip = htonl(ntohl(o.peer.sin_addr.s_addr) + (uint32_t)((s - ss) % o.peer_ips)) ^ htonl(MAGIC);

		msg_init(&m, 0x0009, s->tid);
		msg_attr(&m, 0x000C, ch, 4);
		xa[0] = 0;
		xa[1] = 1;
		put16(xa + 2, ntohs(o.peer.sin_port) ^ (MAGIC >> 16));
		memcpy(xa + 4, &ip, 4);
		msg_attr(&m, 0x0012, xa, 8);
		msg_auth(&m);
		break;
	}
	case S_REFRESH: {
		uint8_t zero[4] = { 0, 0, 0, 0 };

		msg_init(&m, 0x0004, s->tid);
		msg_attr(&m, 0x000D, zero, 4);
		msg_auth(&m);
		break;
	}
	default: /* S_RAW: one payload, echoed (2-byte length first on TCP) */
		m.len = 0;
		if (o.proto != P_UDP) {
			put16(m.b, (unsigned)o.size);
			m.len = 2;
		}
		memset(m.b + m.len, 0x5a, (size_t)o.size);
		m.len += (size_t)o.size;
		break;
	}
	memcpy(s->last, m.b, m.len);
	s->lastlen = m.len;
}

/* Parses a STUN response for s. Returns the class (1 success, 2 error) and
 * the error code in *code; 0 if it is not the answer s waits for. */
static int parse_response(struct sess *s, const uint8_t *b, size_t len, int *code)
{
	size_t off;
	unsigned type;

	if (len < 20 || (b[0] & 0xc0) != 0 || memcmp(b + 8, s->tid, 12) != 0)
		return 0;
	type = ((unsigned)b[0] << 8) | b[1];
	*code = 0;
	for (off = 20; off + 4 <= len;) {
		unsigned at = ((unsigned)b[off] << 8) | b[off + 1], al = ((unsigned)b[off + 2] << 8) | b[off + 3];

		if (off + 4 + al > len)
			break;
		if (at == 0x0009 && al >= 4)
			*code = (b[off + 6] & 7) * 100 + b[off + 7];
		else if (at == 0x0014 && al < sizeof(realm)) {
			memcpy(realm, b + off + 4, al);
			realm[al] = '\0';
		} else if (at == 0x0015 && al < sizeof(nonce)) {
			memcpy(nonce, b + off + 4, al);
			nonce[al] = '\0';
		}
		off += 4 + ((al + 3) & ~3u);
	}
	return (type & 0x0110) == 0x0100 ? 1 : (type & 0x0110) == 0x0110 ? 2 : 0;
}

/* ---- sockets ------------------------------------------------------------- */

static int sock_write(struct sess *s, const void *b, size_t len)
{
	if (s->ssl != NULL)
		return SSL_write(s->ssl, b, (int)len) == (int)len ? 0 : -1;
	if (o.proto == P_UDP)
		return send(s->fd, b, len, MSG_DONTWAIT) == (ssize_t)len ? 0 : -1;
	/* TCP: blocking socket, whole frame */
	while (len > 0) {
		ssize_t w = send(s->fd, b, len, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		b = (const uint8_t *)b + w;
		len -= (size_t)w;
	}
	return 0;
}

static int sess_open(struct sess *s, int i)
{
	int type = o.proto == P_UDP ? SOCK_DGRAM : SOCK_STREAM, on = 1;
	const struct sockaddr_in *to = o.mode == M_DIRECT ? &o.peer : &o.server;
	struct epoll_event ev;

	s->fd = socket(AF_INET, type | SOCK_CLOEXEC | (o.proto == P_UDP ? SOCK_NONBLOCK : 0), 0);
	if (s->fd < 0)
		die("socket");
	if (o.proto == P_UDP) {
		/* Walk source ports in order instead of the kernel's random pick,
		 * so a 5-tuple comes back only after ~28000 cycles: a server may
		 * keep a deleted allocation around for a while (coturn answers
		 * 437 to a new Allocate from a recently used 5-tuple). */
		static unsigned next = 0;
		struct sockaddr_in me = { .sin_family = AF_INET };

		me.sin_addr = o.client_ip;
		for (int k = 0; k < 1000; k++) {
			me.sin_port = htons((uint16_t)(33000 + next++ % 28000));
			if (bind(s->fd, (struct sockaddr *)&me, sizeof(me)) == 0)
				break;
		}
	}
	if (connect(s->fd, (const struct sockaddr *)to, sizeof(*to)) < 0 && errno != EINPROGRESS)
		return -1;
	if (o.proto != P_UDP)
		setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (o.proto == P_TLS) {
		s->ssl = SSL_new(sslctx);
		SSL_set_fd(s->ssl, s->fd);
		if (SSL_connect(s->ssl) != 1) {
			ERR_print_errors_fp(stderr);
			return -1;
		}
	}
	s->inlen = 0;
	ev.events = EPOLLIN;
	ev.data.u64 = (uint64_t)i;
	epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
	return 0;
}

static void sess_close(struct sess *s)
{
	if (s->ssl != NULL) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
		close(s->fd);
	}
	s->fd = -1;
}

static void sess_send_request(struct sess *s)
{
	build_request(s);
	s->tries = 0;
	s->deadline = now_ns() + 500000000ull;
	sock_write(s, s->last, s->lastlen);
}

static void sess_start(struct sess *s)
{
	s->state = o.mode == M_TURN ? S_ALLOC0 : S_RAW;
	sess_send_request(s);
}

/* A complete message for s during setup or cycles. */
static void on_control(struct sess *s, int i, const uint8_t *b, size_t len)
{
	int cls, code;

	if (s->state == S_RAW) {
		s->state = S_READY;
		return;
	}
	if ((cls = parse_response(s, b, len, &code)) == 0)
		return;
	if (cls == 2 && (code == 401 || code == 438) && (s->state == S_ALLOC0 || code == 438)) {
		if (!have_key) {
			char buf[600];
			int n = snprintf(buf, sizeof(buf), "%s:%s:%s", o.user, realm, o.pass);

			MD5((const unsigned char *)buf, (size_t)n, key);
			have_key = 1;
		}
		if (s->state == S_ALLOC0)
			s->state = S_ALLOC;
		if (++s->tries > 5)
			goto fail;
		{
			int t = s->tries;

			sess_send_request(s);
			s->tries = t;
		}
		return;
	}
	if (cls != 1)
		goto fail;
	switch (s->state) {
	case S_ALLOC:
		s->state = o.cas == C_CYCLES ? S_REFRESH : S_CB;
		sess_send_request(s);
		return;
	case S_CB:
		s->state = S_READY;
		return;
	case S_REFRESH:
		cycles++;
		sess_close(s);
		if (sess_open(s, i) == 0)
			sess_start(s);
		else
			s->state = S_FAILED;
		return;
	}
	return;
fail:
	if (o.cas == C_CYCLES) {
		if (cycle_fail++ < 3)
			fprintf(stderr, "tsload: cycle failed: state %d class %d code %d\n", s->state, cls, code);
		sess_close(s);
		if (sess_open(s, i) == 0)
			sess_start(s);
		else
			s->state = S_FAILED;
		return;
	}
	if (setup_fail < 5)
		fprintf(stderr, "tsload: session %d: state %d: class %d code %d\n", i, s->state, cls, code);
	s->state = S_FAILED;
	setup_fail++;
}

static void check_timeouts(int from, int to)
{
	uint64_t t = now_ns();

	for (int i = from; i < to; i++) {
		struct sess *s = &ss[i];

		if (s->state == S_IDLE || s->state == S_READY || s->state == S_FAILED || t < s->deadline)
			continue;
		if (++s->tries > 6 || o.proto != P_UDP) {
			if (o.cas == C_CYCLES) {
				if (cycle_fail++ < 3)
					fprintf(stderr, "tsload: cycle timed out in state %d\n", s->state);
				sess_close(s);
				if (sess_open(s, i) == 0)
					sess_start(s);
				else
					s->state = S_FAILED;
				continue;
			}
			s->state = S_FAILED;
			setup_fail++;
			continue;
		}
		s->deadline = t + (500000000ull << s->tries);
		sock_write(s, s->last, s->lastlen);
	}
}

/* ---- data path ------------------------------------------------------------ */

static void on_data(struct sess *s, const uint8_t *b, size_t len)
{
	s->recv++;
	if (o.cas == C_PING && len >= 8 + (o.mode == M_TURN ? 4 : 0)) {
		uint64_t t0;

		memcpy(&t0, b + (o.mode == M_TURN ? 4 : 0), 8);
		if (t0 == ping_sent_ns && nrtt < rtt_cap)
			rtts[nrtt++] = now_ns() - t0;
	}
}

static void on_message(struct sess *s, int i, const uint8_t *b, size_t len)
{
	if (s->state != S_READY) {
		on_control(s, i, b, len);
		return;
	}
	if (o.mode == M_TURN && (len < 4 || (b[0] & 0xc0) != 0x40))
		return; /* a stray STUN answer */
	on_data(s, b, len);
}

static void read_udp(struct sess *s, int i)
{
	static uint8_t rx[BATCH][2048];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	int n, k, rounds;

	for (rounds = 0; rounds < 8; rounds++) {
		for (k = 0; k < BATCH; k++) {
			iov[k].iov_base = rx[k];
			iov[k].iov_len = sizeof(rx[k]);
			memset(&m[k].msg_hdr, 0, sizeof(m[k].msg_hdr));
			m[k].msg_hdr.msg_iov = &iov[k];
			m[k].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(s->fd, m, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (k = 0; k < n; k++)
			on_message(s, i, rx[k], m[k].msg_len);
		if (n < BATCH)
			return;
	}
}

/* Stream: returns the length of the first complete frame in b, or 0. */
static size_t frame_len(const uint8_t *b, size_t len)
{
	size_t f;

	if (o.mode == M_RAW) {
		if (len < 2)
			return 0;
		f = 2 + (((size_t)b[0] << 8) | b[1]);
	} else {
		if (len < 4)
			return 0;
		f = ((size_t)b[2] << 8) | b[3];
		if ((b[0] & 0xc0) == 0x40)
			f = (4 + f + 3) & ~(size_t)3;
		else
			f += 20;
	}
	return f <= len ? f : 0;
}

static void read_stream(struct sess *s, int i)
{
	ssize_t r;
	size_t off, f;

	do {
		if (s->ssl != NULL) {
			r = SSL_read(s->ssl, s->in + s->inlen, (int)(sizeof(s->in) - s->inlen));
			if (r <= 0)
				return;
		} else {
			r = recv(s->fd, s->in + s->inlen, sizeof(s->in) - s->inlen, MSG_DONTWAIT);
			if (r <= 0)
				return;
		}
		s->inlen += (size_t)r;
		for (off = 0; (f = frame_len(s->in + off, s->inlen - off)) > 0; off += f) {
			if (o.mode == M_RAW && s->state == S_READY)
				on_data(s, s->in + off + 2, f - 2);
			else
				on_message(s, i, s->in + off, f);
		}
		memmove(s->in, s->in + off, s->inlen - off);
		s->inlen -= off;
	} while (s->ssl != NULL ? SSL_pending(s->ssl) > 0 : r == (ssize_t)(sizeof(s->in)));
}

static void peer_echo(void)
{
	static uint8_t rx[BATCH][2048];
	static struct sockaddr_in from[BATCH];
	static uint8_t ctl[BATCH][CMSG_SPACE(sizeof(struct in_pktinfo))];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	int n, k, rounds, sent;

	for (rounds = 0; rounds < 16; rounds++) {
		for (k = 0; k < BATCH; k++) {
			iov[k].iov_base = rx[k];
			iov[k].iov_len = sizeof(rx[k]);
			memset(&m[k].msg_hdr, 0, sizeof(m[k].msg_hdr));
			m[k].msg_hdr.msg_name = &from[k];
			m[k].msg_hdr.msg_namelen = sizeof(from[k]);
			m[k].msg_hdr.msg_iov = &iov[k];
			m[k].msg_hdr.msg_iovlen = 1;
			if (o.peer_ips > 1) {
				m[k].msg_hdr.msg_control = ctl[k];
				m[k].msg_hdr.msg_controllen = sizeof(ctl[k]);
			}
		}
		n = recvmmsg(peerfd, m, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		peer_rx += (uint64_t)n;
		for (k = 0; k < n; k++) {
			iov[k].iov_len = m[k].msg_len;
			/* reply from the address the datagram was sent to */
			for (struct cmsghdr *c = o.peer_ips > 1 ? CMSG_FIRSTHDR(&m[k].msg_hdr) : NULL; c != NULL;
			     c = CMSG_NXTHDR(&m[k].msg_hdr, c))
				if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
					struct in_pktinfo *pi = (struct in_pktinfo *)CMSG_DATA(c);

					pi->ipi_spec_dst = pi->ipi_addr;
					pi->ipi_ifindex = 0;
				}
		}
		for (k = 0; k < n; k += sent) {
			sent = sendmmsg(peerfd, m + k, (unsigned)(n - k), MSG_DONTWAIT);
			if (sent <= 0)
				break;
			peer_tx += (uint64_t)sent;
		}
		if (n < BATCH)
			return;
	}
}

/* One round of events, waiting at most timeout_ms. */
static void poll_events(int timeout_ms)
{
	struct epoll_event evs[256];
	int n = epoll_wait(ep, evs, 256, timeout_ms);

	for (int k = 0; k < n; k++) {
		uint32_t i = (uint32_t)evs[k].data.u64;

		if (i == PEER_TAG)
			peer_echo();
		else if (ss[i].fd >= 0) {
			if (o.proto == P_UDP)
				read_udp(&ss[i], (int)i);
			else
				read_stream(&ss[i], (int)i);
		}
	}
}

/* Sends k data messages from s. */
static uint64_t send_data(struct sess *s, int k)
{
	static uint8_t buf[64][2048];
	struct mmsghdr m[64];
	struct iovec iov[64];
	size_t hdr = o.mode == M_TURN ? 4 : o.proto != P_UDP ? 2 : 0, len = hdr + (size_t)o.size;
	int j, done = 0;

	if (k > 64)
		k = 64;
	for (j = 0; j < k; j++) {
		uint8_t *b = buf[j];

		if (o.mode == M_TURN) {
			b[0] = 0x40;
			b[1] = 0x00;
			put16(b + 2, (unsigned)o.size);
		} else if (hdr == 2) {
			put16(b, (unsigned)o.size);
		}
		memset(b + hdr, 0x5a, (size_t)o.size);
		if (o.cas == C_PING) {
			ping_sent_ns = now_ns();
			memcpy(b + hdr, &ping_sent_ns, 8);
		} else {
			memcpy(b + hdr, &s->sent, 8);
		}
		iov[j].iov_base = b;
		iov[j].iov_len = (len + (o.proto != P_UDP && o.mode == M_TURN ? 3 : 0)) & ~(size_t)(o.proto != P_UDP && o.mode == M_TURN ? 3 : 0);
		memset(&m[j].msg_hdr, 0, sizeof(m[j].msg_hdr));
		m[j].msg_hdr.msg_iov = &iov[j];
		m[j].msg_hdr.msg_iovlen = 1;
	}
	if (o.proto == P_UDP) {
		int r = k == 1 ? (send(s->fd, buf[0], iov[0].iov_len, MSG_DONTWAIT) > 0 ? 1 : 0)
			       : sendmmsg(s->fd, m, (unsigned)k, MSG_DONTWAIT);

		done = r > 0 ? r : 0;
	} else {
		for (j = 0; j < k; j++)
			if (sock_write(s, buf[j], iov[j].iov_len) == 0)
				done++;
	}
	s->sent += (uint64_t)done;
	return (uint64_t)done;
}

/* ---- setup ---------------------------------------------------------------- */

/* Opens and sets up sessions [0, n) with at most window under way.
 * Returns the number that failed. */
static void setup_all(int n, int window, double limit_s)
{
	int started = 0, i;
	uint64_t end = now_ns() + (uint64_t)(limit_s * 1e9);

	for (;;) {
		int busy = 0, ready = 0;

		for (i = 0; i < started; i++) {
			if (ss[i].state == S_READY || ss[i].state == S_FAILED)
				ready++;
			else
				busy++;
		}
		if (ready == n)
			return;
		while (busy < window && started < n) {
			if (sess_open(&ss[started], started) < 0) {
				ss[started].state = S_FAILED;
				setup_fail++;
			} else {
				sess_start(&ss[started]);
				busy++;
			}
			started++;
		}
		poll_events(5);
		check_timeouts(0, started);
		if (now_ns() > end) {
			fprintf(stderr, "tsload: setup timed out\n");
			for (i = 0; i < n; i++)
				if (ss[i].state != S_READY && ss[i].state != S_FAILED) {
					ss[i].state = S_FAILED;
					setup_fail++;
				}
			return;
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
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

static void usage(void)
{
	fprintf(stderr,
		"usage: tsload --server IP:PORT --peer IP:PORT [--mode turn|raw|direct] [--proto udp|tcp|tls]\n"
		"              [--case data|cycles|hold|ping] [--allocs N] [--rate MSG/S] [--size B]\n"
		"              [--duration S] [--inflight K] [--user U --pass P] [--pid SERVERPID]\n"
		"              [--peer-ips K] [--client-ip IP]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double u0 = 0, s0 = 0, u1 = 0, s1 = 0, lc0, lc1, setup_s, wall;
	static struct host_cpu h0, h1;
	uint64_t t0, t1, tsetup, sent = 0, recv = 0;
	long rss0 = -1, rss1 = -1, fd0 = -1, fd1 = -1;
	struct epoll_event ev;
	int i, bufsz = 8 << 20;

	o.client_ip.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		i++;
		if (!strcmp(a, "--server")) {
			if (parse_addr(v, &o.server) < 0)
				usage();
		} else if (!strcmp(a, "--peer")) {
			if (parse_addr(v, &o.peer) < 0)
				usage();
		} else if (!strcmp(a, "--mode"))
			o.mode = !strcmp(v, "raw") ? M_RAW : !strcmp(v, "direct") ? M_DIRECT : M_TURN;
		else if (!strcmp(a, "--proto"))
			o.proto = !strcmp(v, "tcp") ? P_TCP : !strcmp(v, "tls") ? P_TLS : P_UDP;
		else if (!strcmp(a, "--case"))
			o.cas = !strcmp(v, "cycles") ? C_CYCLES : !strcmp(v, "hold") ? C_HOLD
				: !strcmp(v, "ping") ? C_PING : C_DATA;
		else if (!strcmp(a, "--client-ip")) {
			if (inet_pton(AF_INET, v, &o.client_ip) != 1)
				usage();
		} else if (!strcmp(a, "--allocs"))
			o.n = atoi(v);
		else if (!strcmp(a, "--rate"))
			o.rate = atoi(v);
		else if (!strcmp(a, "--size"))
			o.size = atoi(v);
		else if (!strcmp(a, "--duration"))
			o.duration = atof(v);
		else if (!strcmp(a, "--inflight"))
			o.inflight = atoi(v);
		else if (!strcmp(a, "--user"))
			o.user = v;
		else if (!strcmp(a, "--pass"))
			o.pass = v;
		else if (!strcmp(a, "--pid"))
			o.pid = atoi(v);
		else if (!strcmp(a, "--peer-ips"))
			o.peer_ips = atoi(v);
		else
			usage();
	}
	if (o.size < 16 || o.size > 1400 || o.n < 1 || o.duration <= 0 || o.duration > 120 || o.peer_ips < 1 || o.peer_ips > 65536)
		usage();
	if (o.cas == C_PING)
		o.n = 1;
	if (o.cas == C_CYCLES)
		o.n = o.inflight;
	srandom((unsigned)now_ns());
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll");
	if (o.proto == P_TLS) {
		sslctx = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_verify(sslctx, SSL_VERIFY_NONE, NULL);
	}
	/* the echo peer */
	peerfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (o.peer_ips > 1) {
		struct sockaddr_in any = o.peer;
		int on = 1;

		if (o.cas == C_PING)
			o.peer_ips = 1;  /* the forked ping peer replies without IP_PKTINFO */
		else {
			any.sin_addr.s_addr = htonl(INADDR_ANY);
			if (peerfd < 0 || setsockopt(peerfd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on)) < 0 ||
			    bind(peerfd, (struct sockaddr *)&any, sizeof(any)) < 0)
				die("peer bind");
		}
	}
	if (peerfd < 0 || (o.peer_ips == 1 && bind(peerfd, (struct sockaddr *)&o.peer, sizeof(o.peer)) < 0))
		die("peer bind");
	if (setsockopt(peerfd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz)) < 0)
		setsockopt(peerfd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	if (setsockopt(peerfd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)) < 0)
		setsockopt(peerfd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	if (o.cas == C_PING) {
		/* The echo peer of a ping runs in its own process, blocking, so
		 * that a ping pays the wake-ups a real peer costs and the direct
		 * RTT is a fair baseline. It ends by itself. */
		pid_t child = ping_child = fork();

		if (child == 0) {
			uint8_t b[2048];
			struct sockaddr_in from;
			socklen_t fl;
			struct timeval tv = { 1, 0 };
			uint64_t end = now_ns() + (uint64_t)((o.duration + 30) * 1e9);
			ssize_t r;

			setsockopt(peerfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			fcntl(peerfd, F_SETFL, 0);
			while (now_ns() < end && getppid() != 1) {
				fl = sizeof(from);
				r = recvfrom(peerfd, b, sizeof(b), 0, (struct sockaddr *)&from, &fl);
				if (r > 0)
					sendto(peerfd, b, (size_t)r, 0, (struct sockaddr *)&from, fl);
			}
			_exit(0);
		}
		close(peerfd);
		peerfd = -1;
	} else {
		ev.events = EPOLLIN;
		ev.data.u64 = PEER_TAG;
		epoll_ctl(ep, EPOLL_CTL_ADD, peerfd, &ev);
	}
	if ((ss = calloc((size_t)o.n, sizeof(*ss))) == NULL)
		die("calloc");
	for (i = 0; i < o.n; i++)
		ss[i].fd = -1;

	if (o.pid > 0 && o.cas == C_HOLD) {
		rss0 = proc_rss_kb(o.pid);
		fd0 = proc_nfds(o.pid);
	}
	tsetup = now_ns();
	if (o.cas == C_CYCLES) {
		setup_s = 0;
	} else if (o.mode == M_DIRECT) {
		for (i = 0; i < o.n; i++)
			if (sess_open(&ss[i], i) == 0)
				ss[i].state = S_READY;
		setup_s = 0;
	} else {
		setup_all(o.n, o.proto == P_UDP ? 64 : 1, 60);
		setup_s = (double)(now_ns() - tsetup) / 1e9;
	}

	if (o.cas == C_HOLD) {
		uint64_t end = now_ns() + 1000000000ull;

		while (now_ns() < end) /* let the server settle, keep answering */
			poll_events(50);
		if (o.pid > 0) {
			rss1 = proc_rss_kb(o.pid);
			fd1 = proc_nfds(o.pid);
		}
		printf("{\"case\":\"hold\",\"allocs\":%d,\"ok\":%llu,\"setup_s\":%.3f,\"rss0_kb\":%ld,\"rss1_kb\":%ld,"
		       "\"fds0\":%ld,\"fds1\":%ld}\n",
		       o.n, (unsigned long long)(o.n - setup_fail), setup_s, rss0, rss1, fd0, fd1);
		return 0;
	}

	if (o.pid > 0)
		proc_cpu(o.pid, &u0, &s0);
	lc0 = self_cpu();
	host_cpu(&h0);
	t0 = now_ns();
	t1 = t0 + (uint64_t)(o.duration * 1e9);
	if (o.cas == C_CYCLES) {
		for (i = 0; i < o.n; i++)
			if (sess_open(&ss[i], i) == 0)
				sess_start(&ss[i]);
		while (now_ns() < t1) {
			poll_events(5);
			check_timeouts(0, o.n);
		}
	} else if (o.cas == C_PING) {
		rtt_cap = 1000000;
		rtts = malloc(rtt_cap * sizeof(*rtts));
		while (now_ns() < t1 && nrtt < rtt_cap) {
			uint64_t before = ss[0].recv, deadline;

			if (ss[0].state != S_READY)
				break;
			send_data(&ss[0], 1);
			deadline = now_ns() + 200000000ull;
			while (ss[0].recv == before && now_ns() < deadline)
				poll_events(10);
		}
	} else {
		/* data: allocation i sends its k-th message at t0 + (k + 1 - i/n)/rate */
		while (now_ns() < t1) {
			uint64_t t = now_ns();
			int late = 0;

			for (i = 0; i < o.n; i++) {
				struct sess *s = &ss[i];
				uint64_t due;

				if (s->state != S_READY)
					continue;
				if (o.rate == 0)
					due = s->sent + 8;
				else
					due = (uint64_t)((double)(t - t0) * 1e-9 * o.rate + (double)i / o.n);
				if (due > s->sent) {
					send_data(s, (int)(due - s->sent));
					if (due > s->sent)
						late = 1;
				}
			}
			poll_events(o.rate == 0 || late ? 0 : 1);
		}
		/* drain: what is still in flight comes back */
		{
			uint64_t end = now_ns() + 500000000ull;

			while (now_ns() < end)
				poll_events(20);
		}
	}
	wall = (double)(now_ns() - t0) / 1e9;
	lc1 = self_cpu();
	host_cpu(&h1);
	if (o.pid > 0)
		proc_cpu(o.pid, &u1, &s1);
	for (i = 0; i < o.n; i++) {
		sent += ss[i].sent;
		recv += ss[i].recv;
	}
	if (o.cas == C_CYCLES) {
		printf("{\"case\":\"cycles\",\"inflight\":%d,\"cycles\":%llu,\"failed\":%llu,\"wall_s\":%.3f,"
		       "\"srv_user_s\":%.3f,\"srv_sys_s\":%.3f,\"gen_cpu_s\":%.3f",
		       o.n, (unsigned long long)cycles, (unsigned long long)cycle_fail, wall, u1 - u0, s1 - s0,
		       lc1 - lc0);
		print_host_cpu(&h0, &h1);
		printf("}\n");
	} else if (o.cas == C_PING) {
		if (ping_child > 0) {
			kill(ping_child, SIGTERM);
			waitpid(ping_child, NULL, 0);
		}
		qsort(rtts, nrtt, sizeof(*rtts), cmp_u64);
		printf("{\"case\":\"ping\",\"pings\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"lost\":%llu,"
		       "\"srv_user_s\":%.3f,\"srv_sys_s\":%.3f",
		       nrtt, nrtt ? rtts[nrtt / 2] / 1e3 : -1.0, nrtt ? rtts[(size_t)(nrtt * 0.99)] / 1e3 : -1.0,
		       (unsigned long long)(ss[0].sent - ss[0].recv), u1 - u0, s1 - s0);
		print_host_cpu(&h0, &h1);
		printf("}\n");
	} else {
		printf("{\"case\":\"data\",\"allocs\":%d,\"ready\":%llu,\"setup_s\":%.3f,\"rate\":%d,\"duration_s\":%.3f,"
		       "\"wall_s\":%.3f,\"sent\":%llu,\"recv\":%llu,\"peer_rx\":%llu,\"peer_tx\":%llu,"
		       "\"srv_user_s\":%.3f,\"srv_sys_s\":%.3f,\"gen_cpu_s\":%.3f",
		       o.n, (unsigned long long)(o.n - setup_fail), setup_s, o.rate, o.duration, wall,
		       (unsigned long long)sent, (unsigned long long)recv, (unsigned long long)peer_rx,
		       (unsigned long long)peer_tx, u1 - u0, s1 - s0, lc1 - lc0);
		print_host_cpu(&h0, &h1);
		printf("}\n");
	}
	return 0;
}
