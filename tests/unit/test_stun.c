/* test_stun.c -- unit tests for the STUN codec (src/stun/stun_msg.c):
 * RFC 5769 / RFC 8489 B.1 vectors (parse, verify, re-encode), the validation
 * rules of RFC 8489 §5, §14, §14.5-14.7, builders, ChannelData framing
 * (RFC 8656 §12.4), and seeded fuzzing of the parser.
 *
 * The vectors come from the JSON file named by $STUN_VECTORS (default
 * tests/data/stun-vectors.json). Output is TAP with CMOCKA_MESSAGE_OUTPUT=TAP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/hmac.h>
#include <pthread.h>

#include "stun/stun_hmac.h"
#include "stun/stun_msg.h"
#include "stun/stun_prep.h"

static json_t *g_vectors;  /* the "vectors" array, or NULL when loading failed */
static json_t *g_root;

/* ---- helpers ------------------------------------------------------------ */

static size_t hex2bin(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	assert_true(strlen(hex) % 2 == 0);
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned int v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static json_t *vector_named(const char *prefix)
{
	size_t i;
	json_t *v;

	assert_non_null(g_vectors);
	json_array_foreach(g_vectors, i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));

		if (name != NULL && strncmp(name, prefix, strlen(prefix)) == 0)
			return v;
	}
	fail_msg("vector %s not in the JSON file", prefix);
	return NULL;
}

static const char *vstr(json_t *v, const char *key)
{
	return json_string_value(json_object_get(v, key));
}

static size_t vector_bytes(json_t *v, uint8_t *out, size_t cap)
{
	const char *hex = vstr(v, "hex");

	assert_non_null(hex);
	return hex2bin(hex, out, cap);
}

/* Username of a vector, either plain or given as UTF-8 hex; 0 when the
 * vector has none (the responses). */
static int vector_username(json_t *v, char *out, size_t cap)
{
	const char *u = vstr(v, "username");
	const char *uh = vstr(v, "username_utf8_hex");

	if (u != NULL) {
		assert_true(strlen(u) < cap);
		strcpy(out, u);
	} else if (uh != NULL) {
		size_t n = hex2bin(uh, (uint8_t *)out, cap - 1);

		out[n] = '\0';
	} else {
		out[0] = '\0';
		return 0;
	}
	return 1;
}

static void assert_attr_str(const struct stun_msg *m, uint16_t type, const char *want)
{
	const struct stun_attr *a = stun_msg_find(m, type);

	assert_non_null(a);
	assert_int_equal(a->len, strlen(want));
	assert_memory_equal(a->val, want, a->len);
}

/* "192.0.2.1:32853" or "[2001:db8::1]:32853" into a stun_addr. */
static void parse_addr_text(const char *s, struct stun_addr *out)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hl;

	assert_non_null(colon);
	memset(out, 0, sizeof(*out));
	out->port = (uint16_t)atoi(colon + 1);
	if (s[0] == '[') {
		hl = (size_t)(colon - s) - 2;
		assert_true(hl < sizeof(host));
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		out->family = STUN_AF_IPV6;
		assert_int_equal(inet_pton(AF_INET6, host, out->ip), 1);
	} else {
		hl = (size_t)(colon - s);
		assert_true(hl < sizeof(host));
		memcpy(host, s, hl);
		host[hl] = '\0';
		out->family = STUN_AF_IPV4;
		assert_int_equal(inet_pton(AF_INET, host, out->ip), 1);
	}
}

/* Hand-made messages for negative tests: attributes written raw, the
 * declared length free to lie. */
struct raw {
	uint8_t b[4096];
	size_t len;
};

static const uint8_t test_tid[STUN_TID_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

static void raw_init(struct raw *r, uint16_t type)
{
	memset(r, 0, sizeof(*r));
	r->b[0] = (uint8_t)(type >> 8);
	r->b[1] = (uint8_t)type;
	r->b[4] = 0x21;
	r->b[5] = 0x12;
	r->b[6] = 0xA4;
	r->b[7] = 0x42;
	memcpy(r->b + 8, test_tid, STUN_TID_LEN);
	r->len = STUN_HEADER_LEN;
}

/* Writes an attribute header declaring dlen, then nbytes of fill (padded to
 * 4), and sets the header length to the whole message. */
static void raw_attr(struct raw *r, uint16_t type, uint16_t dlen, uint8_t fill, size_t nbytes)
{
	size_t padded = (nbytes + 3) & ~(size_t)3;

	assert_true(r->len + 4 + padded <= sizeof(r->b));
	r->b[r->len] = (uint8_t)(type >> 8);
	r->b[r->len + 1] = (uint8_t)type;
	r->b[r->len + 2] = (uint8_t)(dlen >> 8);
	r->b[r->len + 3] = (uint8_t)dlen;
	memset(r->b + r->len + 4, fill, nbytes);
	memset(r->b + r->len + 4 + nbytes, 0, padded - nbytes);
	r->len += 4 + padded;
	r->b[2] = (uint8_t)((r->len - STUN_HEADER_LEN) >> 8);
	r->b[3] = (uint8_t)(r->len - STUN_HEADER_LEN);
}

static int raw_parse(struct raw *r, struct stun_msg *m)
{
	return stun_msg_parse(m, r->b, r->len, NULL);
}

/* Structural promises of a successful parse, checked after fuzz inputs. */
static void assert_parse_sane(const struct stun_msg *m, const uint8_t *buf, size_t len)
{
	assert_true(m->nattrs <= STUN_MAX_ATTRS);
	assert_true(m->nunknown <= 16);
	for (size_t i = 0; i < m->nattrs; i++) {
		const struct stun_attr *a = &m->attrs[i];

		assert_true(a->val >= buf + STUN_HEADER_LEN + 4);
		assert_true((size_t)(a->val - buf) + a->len <= len);
	}
	if (m->fp_off != 0)
		assert_true(m->fp_off + 8 == len);
}

/* Calls every decoder on every attribute: must not crash or read out of bounds. */
static void exercise_decoders(const struct stun_msg *m)
{
	static const uint8_t key[] = "key";

	for (size_t i = 0; i < m->nattrs; i++) {
		struct stun_addr addr;
		uint32_t u;
		int code;
		const char *reason;
		size_t rlen;

		(void)stun_attr_xor_addr(m, &m->attrs[i], &addr);
		(void)stun_attr_addr(&m->attrs[i], &addr);
		(void)stun_attr_u32(&m->attrs[i], &u);
		if (stun_attr_error_code(&m->attrs[i], &code, &reason, &rlen) == 0)
			assert_true(code >= 300 && code <= 699);
	}
	assert_true(stun_msg_check_integrity(m, key, 3) <= 1);
}

/* xorshift64*: deterministic so a fuzz failure can be replayed. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* ---- vectors ------------------------------------------------------------ */

/* The key a vector's MESSAGE-INTEGRITY uses: short-term = the password,
 * long-term = MD5(user:realm:pass). Returns its length, or -1 when the
 * vector gives no password (B.1). */
static int vector_key(json_t *v, const char *user, uint8_t key[32])
{
	const char *cred = vstr(v, "credential"), *pw;
	size_t n;

	assert_non_null(cred);
	if (strcmp(cred, "short-term") == 0) {
		pw = vstr(v, "password");
		assert_non_null(pw);
		n = strlen(pw);
		assert_true(n <= 32);
		memcpy(key, pw, n);
		return (int)n;
	}
	pw = vstr(v, "password_after_saslprep");
	if (pw == NULL)
		return -1;
	return stun_long_term_key(STUN_PW_ALG_MD5, user, vstr(v, "realm"), pw, key);
}

/* B.1's "userhash" field: "<64 hex digits> = SHA-256(...)". */
static void check_userhash(json_t *v, const struct stun_msg *m, const char *user)
{
	uint8_t want[32], got[32];
	char hex[65];
	const char *uh = vstr(v, "userhash");
	const struct stun_attr *a = stun_msg_find(m, STUN_ATTR_USERHASH);

	assert_non_null(uh);
	assert_non_null(a);
	assert_int_equal(a->len, 32);
	assert_true(strlen(uh) >= 64);
	memcpy(hex, uh, 64);
	hex[64] = '\0';
	hex2bin(hex, want, sizeof(want));
	stun_userhash(user, vstr(v, "realm"), got);
	assert_memory_equal(got, want, 32);
	/* The message bytes in the JSON differ from SHA-256 in one byte (see
	 * b1_corrected): say so in the TAP output instead of hiding it. */
	if (memcmp(a->val, got, 32) != 0)
		print_message("# %s: USERHASH in the message bytes != SHA-256(username:realm)\n",
			      vstr(v, "name"));
}

/* One entry of a vector's "checks" list. */
static void run_check(json_t *v, const char *what, const struct stun_msg *m, const char *user,
		      const uint8_t *key, int keylen)
{
	if (strncmp(what, "MESSAGE-INTEGRITY", 17) == 0) {
		uint8_t bad[32];

		assert_true(keylen > 0);
		assert_true(m->mi_off > 0);
		assert_int_equal(stun_msg_check_integrity(m, key, (size_t)keylen), 1);
		memcpy(bad, key, (size_t)keylen);
		bad[0] ^= 1;
		assert_int_equal(stun_msg_check_integrity(m, bad, (size_t)keylen), 0);
	} else if (strcmp(what, "FINGERPRINT") == 0) {
		/* parse OK with fp_off set means the CRC was verified */
		assert_true(m->fp_off > 0);
		assert_int_equal(m->fp_off + 8, m->len);
	} else if (strcmp(what, "USERHASH value") == 0) {
		check_userhash(v, m, user);
	} else if (strcmp(what, "parse all attributes") == 0) {
		assert_non_null(stun_msg_find(m, STUN_ATTR_USERHASH));
		assert_non_null(stun_msg_find(m, STUN_ATTR_NONCE));
		assert_non_null(stun_msg_find(m, STUN_ATTR_REALM));
		assert_non_null(stun_msg_find(m, STUN_ATTR_PASSWORD_ALGORITHM));
		assert_true(m->mi256_off > 0);
	} else {
		fail_msg("unknown check '%s'", what);
	}
}

/* Everything a vector's fields say about it. */
static void check_vector(json_t *v)
{
	uint8_t buf[1024], key[32];
	char user[256];
	struct stun_msg m;
	const char *err = NULL, *s;
	json_t *checks, *c;
	size_t len, i;
	int rc, keylen;

	len = vector_bytes(v, buf, sizeof(buf));
	rc = stun_msg_parse(&m, buf, len, &err);
	if (rc != STUN_PARSE_OK)
		fail_msg("%s: parse %d (%s)", vstr(v, "name"), rc, err);
	assert_int_equal(stun_msg_is_stun(buf, len), 1);
	assert_int_equal(m.nunknown, 0);
	assert_int_equal(m.duplicate, 0);

	s = vstr(v, "class");
	assert_non_null(s);
	if (strcmp(s, "request") == 0)
		assert_int_equal(m.cls, STUN_CLASS_REQUEST);
	else if (strcmp(s, "success response") == 0)
		assert_int_equal(m.cls, STUN_CLASS_SUCCESS);
	else
		fail_msg("unexpected class %s", s);
	s = vstr(v, "method");
	assert_non_null(s);
	assert_string_equal(s, "binding");
	assert_int_equal(m.method, STUN_METHOD_BINDING);
	assert_memory_equal(m.tid, buf + 8, STUN_TID_LEN);

	if ((s = vstr(v, "software")) != NULL)
		assert_attr_str(&m, STUN_ATTR_SOFTWARE, s);
	if ((s = vstr(v, "realm")) != NULL)
		assert_attr_str(&m, STUN_ATTR_REALM, s);
	if ((s = vstr(v, "nonce")) != NULL)
		assert_attr_str(&m, STUN_ATTR_NONCE, s);
	if ((s = vstr(v, "xor_mapped_address")) != NULL) {
		struct stun_addr want, got;

		parse_addr_text(s, &want);
		assert_int_equal(stun_attr_xor_addr(&m, stun_msg_find(&m, STUN_ATTR_XOR_MAPPED_ADDRESS),
						    &got), 0);
		assert_int_equal(got.family, want.family);
		assert_int_equal(got.port, want.port);
		assert_memory_equal(got.ip, want.ip, want.family == STUN_AF_IPV4 ? 4 : 16);
	}
	if (vector_username(v, user, sizeof(user)) && stun_msg_find(&m, STUN_ATTR_USERHASH) == NULL)
		assert_attr_str(&m, STUN_ATTR_USERNAME, user);
	keylen = vector_key(v, user, key);

	checks = json_object_get(v, "checks");
	assert_true(json_is_array(checks));
	assert_true(json_array_size(checks) > 0);
	json_array_foreach(checks, i, c) {
		assert_non_null(json_string_value(c));
		run_check(v, json_string_value(c), &m, user, key, keylen);
	}
}

static void test_vectors_all(void **state)
{
	size_t i;
	json_t *v;

	assert_non_null(g_vectors);
	assert_true(json_array_size(g_vectors) >= 5);
	json_array_foreach(g_vectors, i, v)
		check_vector(v);
}

static void test_vector_2_1(void **state) { check_vector(vector_named("rfc5769-2.1")); }
static void test_vector_2_2(void **state) { check_vector(vector_named("rfc5769-2.2")); }
static void test_vector_2_3(void **state) { check_vector(vector_named("rfc5769-2.3")); }
static void test_vector_2_4(void **state) { check_vector(vector_named("rfc5769-2.4")); }
static void test_vector_b_1(void **state) { check_vector(vector_named("rfc8489-B.1")); }

/* Adds an attribute and then overwrites its padding with pad: RFC 5769 pads
 * some values with spaces (0x20), we pad with zeros. Writing the vector's
 * padding before MESSAGE-INTEGRITY lets the whole message compare exactly. */
static void build_attr_pad(struct stun_builder *b, uint16_t type, const void *val, size_t len, uint8_t pad)
{
	size_t padn = (4 - len % 4) % 4;

	assert_int_equal(stun_build_attr(b, type, val, len), 0);
	memset(b->buf + b->len - padn, pad, padn);
}

static void test_reencode_2_1(void **state)
{
	json_t *v = vector_named("rfc5769-2.1");
	uint8_t want[512], out[512];
	static const uint8_t prio[4] = { 0x6e, 0x00, 0x01, 0xff };
	static const uint8_t ice[8] = { 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36 };
	const char *pw = vstr(v, "password");
	struct stun_builder b;
	size_t wlen = vector_bytes(v, want, sizeof(want)), n;

	stun_build_init(&b, out, sizeof(out), STUN_METHOD_BINDING, STUN_CLASS_REQUEST, want + 8);
	assert_int_equal(stun_build_str(&b, STUN_ATTR_SOFTWARE, vstr(v, "software")), 0);
	assert_int_equal(stun_build_attr(&b, STUN_ATTR_PRIORITY, prio, 4), 0);
	assert_int_equal(stun_build_attr(&b, STUN_ATTR_ICE_CONTROLLED, ice, 8), 0);
	build_attr_pad(&b, STUN_ATTR_USERNAME, vstr(v, "username"), strlen(vstr(v, "username")), 0x20);
	assert_int_equal(stun_build_integrity(&b, (const uint8_t *)pw, strlen(pw)), 0);
	assert_int_equal(stun_build_fingerprint(&b), 0);
	n = stun_build_finish(&b);
	assert_int_equal(n, wlen);
	assert_memory_equal(out, want, wlen);
}

static void reencode_response(const char *name)
{
	json_t *v = vector_named(name);
	uint8_t want[512], out[512];
	const char *pw = vstr(v, "password"), *sw = vstr(v, "software");
	struct stun_builder b;
	struct stun_addr addr;
	size_t wlen = vector_bytes(v, want, sizeof(want));

	parse_addr_text(vstr(v, "xor_mapped_address"), &addr);
	stun_build_init(&b, out, sizeof(out), STUN_METHOD_BINDING, STUN_CLASS_SUCCESS, want + 8);
	build_attr_pad(&b, STUN_ATTR_SOFTWARE, sw, strlen(sw), 0x20);
	assert_int_equal(stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &addr), 0);
	assert_int_equal(stun_build_integrity(&b, (const uint8_t *)pw, strlen(pw)), 0);
	assert_int_equal(stun_build_fingerprint(&b), 0);
	assert_int_equal(stun_build_finish(&b), wlen);
	assert_memory_equal(out, want, wlen);
}

static void test_reencode_2_2(void **state) { reencode_response("rfc5769-2.2"); }
static void test_reencode_2_3(void **state) { reencode_response("rfc5769-2.3"); }

static void test_reencode_2_4(void **state)
{
	json_t *v = vector_named("rfc5769-2.4");
	uint8_t want[512], out[512], key[32];
	char user[64];
	struct stun_builder b;
	size_t wlen = vector_bytes(v, want, sizeof(want));
	int klen;

	assert_int_equal(vector_username(v, user, sizeof(user)), 1);
	klen = stun_long_term_key(STUN_PW_ALG_MD5, user, vstr(v, "realm"), vstr(v, "password_after_saslprep"),
				  key);
	assert_int_equal(klen, 16);
	stun_build_init(&b, out, sizeof(out), STUN_METHOD_BINDING, STUN_CLASS_REQUEST, want + 8);
	assert_int_equal(stun_build_str(&b, STUN_ATTR_USERNAME, user), 0);
	assert_int_equal(stun_build_str(&b, STUN_ATTR_NONCE, vstr(v, "nonce")), 0);
	assert_int_equal(stun_build_str(&b, STUN_ATTR_REALM, vstr(v, "realm")), 0);
	assert_int_equal(stun_build_integrity(&b, key, (size_t)klen), 0);
	assert_int_equal(stun_build_finish(&b), wlen);
	assert_memory_equal(out, want, wlen);
}

/* RFC 8489 B.1 as corrected by errata 6268, with one more fix: the JSON's
 * USERHASH has 0x69 at value byte 20 where SHA-256(username:realm) and the
 * RFC text have 0x56 (a transcription slip). With that byte restored the
 * MESSAGE-INTEGRITY-SHA256 verifies, so the "_about" note's "does NOT verify"
 * comes from the slip. This puts the computed USERHASH into buf, after
 * checking the JSON differs from it in at most that one byte. */
static size_t b1_corrected(uint8_t *buf, size_t cap, char *user, size_t ucap)
{
	json_t *v = vector_named("rfc8489-B.1");
	size_t len = vector_bytes(v, buf, cap), ndiff = 0;
	uint8_t uh[32];
	struct stun_msg m;
	const struct stun_attr *a;

	assert_int_equal(vector_username(v, user, ucap), 1);
	assert_int_equal(stun_msg_parse(&m, buf, len, NULL), STUN_PARSE_OK);
	a = stun_msg_find(&m, STUN_ATTR_USERHASH);
	assert_non_null(a);
	stun_userhash(user, vstr(v, "realm"), uh);
	for (size_t i = 0; i < 32; i++)
		if (a->val[i] != uh[i]) {
			ndiff++;
			assert_int_equal(i, 20);
			assert_int_equal(a->val[i], 0x69);
		}
	assert_true(ndiff <= 1);
	memcpy((uint8_t *)a->val, uh, 32);
	return len;
}

/* RFC 8489 B.1 password (after OpaqueString); the JSON does not carry it. */
#define B1_PASSWORD "TheMatrIX"

static void test_vector_b_1_integrity(void **state)
{
	uint8_t buf[512], key[32];
	char user[64];
	size_t len = b1_corrected(buf, sizeof(buf), user, sizeof(user));
	struct stun_msg m;
	uint32_t alg = 0;

	assert_int_equal(stun_msg_parse(&m, buf, len, NULL), STUN_PARSE_OK);
	assert_int_equal(stun_attr_u32(stun_msg_find(&m, STUN_ATTR_PASSWORD_ALGORITHM), &alg), 0);
	assert_int_equal(alg >> 16, STUN_PW_ALG_SHA256);
	assert_int_equal(m.mi_off, 0);
	assert_true(m.mi256_off > 0);
	assert_int_equal(stun_long_term_key(STUN_PW_ALG_SHA256, user, "example.org", B1_PASSWORD, key), 32);
	assert_int_equal(stun_msg_check_integrity(&m, key, 32), 1);
	/* the MD5 key of the same credentials must not do */
	assert_int_equal(stun_long_term_key(STUN_PW_ALG_MD5, user, "example.org", B1_PASSWORD, key), 16);
	assert_int_equal(stun_msg_check_integrity(&m, key, 16), 0);
}

/* B.1 re-encoded from its fields with the builder: byte-identical to the
 * corrected vector, MESSAGE-INTEGRITY-SHA256 included. */
static void test_reencode_b_1(void **state)
{
	uint8_t want[512], out[512], key[32], uh[32];
	static const uint8_t pwalg[4] = { 0x00, 0x02, 0x00, 0x00 };
	json_t *v = vector_named("rfc8489-B.1");
	char user[64];
	size_t wlen = b1_corrected(want, sizeof(want), user, sizeof(user));
	struct stun_builder b;

	stun_userhash(user, vstr(v, "realm"), uh);
	assert_int_equal(stun_long_term_key(STUN_PW_ALG_SHA256, user, vstr(v, "realm"), B1_PASSWORD, key), 32);
	stun_build_init(&b, out, sizeof(out), STUN_METHOD_BINDING, STUN_CLASS_REQUEST, want + 8);
	assert_int_equal(stun_build_attr(&b, STUN_ATTR_USERHASH, uh, 32), 0);
	assert_int_equal(stun_build_str(&b, STUN_ATTR_NONCE, vstr(v, "nonce")), 0);
	assert_int_equal(stun_build_str(&b, STUN_ATTR_REALM, vstr(v, "realm")), 0);
	assert_int_equal(stun_build_attr(&b, STUN_ATTR_PASSWORD_ALGORITHM, pwalg, 4), 0);
	assert_int_equal(stun_build_integrity_sha256(&b, key, 32), 0);
	assert_int_equal(stun_build_finish(&b), wlen);
	assert_memory_equal(out, want, wlen);
}

/* ---- header validation -------------------------------------------------- */

static void test_truncations_rejected(void **state)
{
	uint8_t buf[1024];
	size_t i, cut;
	json_t *v;

	assert_non_null(g_vectors);
	json_array_foreach(g_vectors, i, v) {
		size_t len = vector_bytes(v, buf, sizeof(buf));

		for (cut = 0; cut < len; cut++) {
			/* a heap copy of exactly cut bytes so ASan sees any overread */
			uint8_t *p = malloc(cut ? cut : 1);
			struct stun_msg m;

			assert_non_null(p);
			memcpy(p, buf, cut);
			assert_int_not_equal(stun_msg_parse(&m, p, cut, NULL), STUN_PARSE_OK);
			assert_int_equal(stun_msg_is_stun(p, cut), 0);
			free(p);
		}
	}
}

static void set_len_field(uint8_t *buf, unsigned v)
{
	buf[2] = (uint8_t)(v >> 8);
	buf[3] = (uint8_t)v;
}

static void test_length_field_lies(void **state)
{
	uint8_t buf[512];
	size_t len = vector_bytes(vector_named("rfc5769-2.2"), buf, sizeof(buf));
	unsigned real = (unsigned)len - STUN_HEADER_LEN;
	static const int deltas[] = { 4, -4, 1, -1, 2, -2, 3, 8, -8, 0x1000 };
	struct stun_msg m;
	const char *err = NULL;

	for (size_t i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
		set_len_field(buf, (unsigned)((int)real + deltas[i]));
		assert_int_equal(stun_msg_parse(&m, buf, len, &err), STUN_PARSE_NOT_STUN);
		assert_non_null(err);
		assert_int_equal(stun_msg_is_stun(buf, len), 0);
	}
	set_len_field(buf, real);
	assert_int_equal(stun_msg_parse(&m, buf, len, NULL), STUN_PARSE_OK);
	/* UDP: the datagram must be exactly the message, no trailing bytes */
	buf[len] = 0;
	assert_int_equal(stun_msg_parse(&m, buf, len + 4, NULL), STUN_PARSE_NOT_STUN);
}

static void test_bad_cookie(void **state)
{
	uint8_t buf[512];
	size_t len = vector_bytes(vector_named("rfc5769-2.2"), buf, sizeof(buf));
	struct stun_msg m;

	for (int byte = 4; byte < 8; byte++) {
		buf[byte] ^= 0x01;
		assert_int_equal(stun_msg_parse(&m, buf, len, NULL), STUN_PARSE_NOT_STUN);
		assert_int_equal(stun_msg_is_stun(buf, len), 0);
		buf[byte] ^= 0x01;
	}
	assert_int_equal(stun_msg_is_stun(buf, len), 1);
}

static void test_top_bits(void **state)
{
	uint8_t buf[512];
	size_t len = vector_bytes(vector_named("rfc5769-2.2"), buf, sizeof(buf));
	struct stun_msg m;

	buf[0] |= 0x80;
	assert_int_equal(stun_msg_parse(&m, buf, len, NULL), STUN_PARSE_NOT_STUN);
	buf[0] = (uint8_t)((buf[0] & 0x3F) | 0x40);
	assert_int_equal(stun_msg_parse(&m, buf, len, NULL), STUN_PARSE_NOT_STUN);
	assert_int_equal(stun_msg_is_stun(buf, len), 0);
}

static void test_header_only(void **state)
{
	struct raw r;
	struct stun_msg m;

	raw_init(&r, 0x0001);
	assert_int_equal(raw_parse(&r, &m), STUN_PARSE_OK);
	assert_int_equal(m.nattrs, 0);
	assert_int_equal(m.cls, STUN_CLASS_REQUEST);
	assert_int_equal(m.method, STUN_METHOD_BINDING);
	assert_memory_equal(m.tid, test_tid, STUN_TID_LEN);
	assert_int_equal(stun_msg_check_integrity(&m, (const uint8_t *)"k", 1), -1);
	assert_int_equal(stun_msg_parse(&m, NULL, 0, NULL), STUN_PARSE_NOT_STUN);
}

/* ---- attribute validation ----------------------------------------------- */

static void test_attr_past_end(void **state)
{
	struct raw r;
	struct stun_msg m;
	const char *err = NULL;

	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_SOFTWARE, 9, 'a', 8);  /* declares 9, 8 present */
	assert_int_equal(stun_msg_parse(&m, r.b, r.len, &err), STUN_PARSE_MALFORMED);
	assert_non_null(err);

	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_SOFTWARE, 0xFFFF, 'a', 4);
	assert_int_equal(raw_parse(&r, &m), STUN_PARSE_MALFORMED);

	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_SOFTWARE, 4, 'a', 4);
	raw_attr(&r, 0x8050, 1, 'b', 0);  /* the last header with no room for its value */
	assert_int_equal(raw_parse(&r, &m), STUN_PARSE_MALFORMED);
}

static void test_attr_padding(void **state)
{
	struct raw r;
	struct stun_msg m;

	/* value of 5 bytes needs 8 with padding: only 4 there */
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_SOFTWARE, 5, 'a', 4);
	assert_int_equal(raw_parse(&r, &m), STUN_PARSE_MALFORMED);

	/* with the padding present it parses, and len excludes the padding */
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_SOFTWARE, 5, 'a', 5);
	raw_attr(&r, STUN_ATTR_REALM, 1, 'r', 1);
	assert_int_equal(raw_parse(&r, &m), STUN_PARSE_OK);
	assert_int_equal(m.nattrs, 2);
	assert_int_equal(m.attrs[0].len, 5);
	assert_int_equal(m.attrs[1].type, STUN_ATTR_REALM);
	assert_int_equal(m.attrs[1].val[0], 'r');

	/* message body not a multiple of 4: not STUN at all */
	raw_init(&r, 0x0001);
	raw_attr(&r, STUN_ATTR_SOFTWARE, 5, 'a', 5);
	r.len -= 3;
	set_len_field(r.b, (unsigned)(r.len - STUN_HEADER_LEN));
	assert_int_equal(raw_parse(&r, &m), STUN_PARSE_NOT_STUN);
}

static void test_fixed_lengths(void **state)
{
	static const struct {
		uint16_t type, len;
	} bad[] = {
		{ TURN_ATTR_LIFETIME, 5 }, { TURN_ATTR_LIFETIME, 0 }, { TURN_ATTR_REQUESTED_TRANSPORT, 8 },
		{ TURN_ATTR_CHANNEL_NUMBER, 2 }, { STUN_ATTR_MESSAGE_INTEGRITY, 16 },
		{ STUN_ATTR_MESSAGE_INTEGRITY, 24 }, { STUN_ATTR_MESSAGE_INTEGRITY_SHA256, 12 },
		{ STUN_ATTR_MESSAGE_INTEGRITY_SHA256, 18 }, { STUN_ATTR_MESSAGE_INTEGRITY_SHA256, 36 },
		{ STUN_ATTR_FINGERPRINT, 8 }, { STUN_ATTR_ERROR_CODE, 3 }, { STUN_ATTR_USERNAME, 600 },
	};
	struct raw r;
	struct stun_msg m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		raw_init(&r, 0x0003);
		raw_attr(&r, bad[i].type, bad[i].len, 0, bad[i].len);
		if (raw_parse(&r, &m) != STUN_PARSE_MALFORMED)
			fail_msg("type 0x%04x len %u accepted", bad[i].type, bad[i].len);
	}
	/* the right lengths are fine */
	raw_init(&r, 0x0003);
	raw_attr(&r, TURN_ATTR_LIFETIME, 4, 0, 4);
	raw_attr(&r, TURN_ATTR_REQUESTED_TRANSPORT, 4, 0, 4);
	raw_attr(&r, TURN_ATTR_CHANNEL_NUMBER, 4, 0, 4);
	assert_int_equal(raw_parse(&r, &m), STUN_PARSE_OK);
	assert_int_equal(m.nattrs, 3);
}

static void test_fingerprint_wrong(void **state)
{
	uint8_t buf[512];
	json_t *v = vector_named("rfc5769-2.2");
	size_t len = vector_bytes(v, buf, sizeof(buf));
	struct stun_msg m;
	const char *err = NULL;

	buf[len - 1] ^= 0x01;
	assert_int_equal(stun_msg_parse(&m, buf, len, &err), STUN_PARSE_BAD_FINGERPRINT);
	assert_non_null(err);
	/* a change anywhere before the FINGERPRINT is caught too */
	len = vector_bytes(v, buf, sizeof(buf));
	buf[STUN_HEADER_LEN + 4] ^= 0x20;  /* first SOFTWARE byte */
	assert_int_equal(stun_msg_parse(&m, buf, len, NULL), STUN_PARSE_BAD_FINGERPRINT);
}

static void test_attr_after_fingerprint(void **state)
{
	uint8_t buf[256];
	struct stun_builder b;
	struct stun_msg m;
	size_t n;

	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_CLASS_REQUEST, test_tid);
	assert_int_equal(stun_build_fingerprint(&b), 0);
	n = stun_build_finish(&b);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_OK);
	assert_int_equal(m.fp_off, STUN_HEADER_LEN);
	assert_int_equal(stun_build_str(&b, STUN_ATTR_SOFTWARE, "late"), 0);
	n = stun_build_finish(&b);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_MALFORMED);
	/* two FINGERPRINTs: the second is "after FINGERPRINT" */
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_CLASS_REQUEST, test_tid);
	assert_int_equal(stun_build_fingerprint(&b), 0);
	assert_int_equal(stun_build_fingerprint(&b), 0);
	n = stun_build_finish(&b);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_MALFORMED);
}

static void test_too_many_attrs(void **state)
{
	struct raw r;
	struct stun_msg m;

	raw_init(&r, 0x0001);
	for (int i = 0; i < STUN_MAX_ATTRS; i++)
		raw_attr(&r, TURN_ATTR_XOR_PEER_ADDRESS, 8, 0, 8);
	assert_int_equal(raw_parse(&r, &m), STUN_PARSE_OK);
	assert_int_equal(m.nattrs, STUN_MAX_ATTRS);
	raw_attr(&r, TURN_ATTR_XOR_PEER_ADDRESS, 8, 0, 8);
	assert_int_equal(raw_parse(&r, &m), STUN_PARSE_MALFORMED);

	/* ignored and empty attributes count too */
	raw_init(&r, 0x0001);
	for (int i = 0; i <= STUN_MAX_ATTRS; i++)
		raw_attr(&r, 0x8077, 0, 0, 0);
	assert_int_equal(raw_parse(&r, &m), STUN_PARSE_MALFORMED);
}

static void test_unknown_attrs(void **state)
{
	struct raw r;
	struct stun_msg m;

	raw_init(&r, 0x0001);
	raw_attr(&r, 0x0030, 4, 0, 4);       /* comprehension-required */
	raw_attr(&r, 0x8030, 4, 0, 4);       /* comprehension-optional */
	raw_attr(&r, 0x7FFF, 0, 0, 0);
	raw_attr(&r, 0x0030, 4, 0, 4);       /* same unknown again: listed once */
	raw_attr(&r, STUN_ATTR_SOFTWARE, 1, 'x', 1);
	assert_int_equal(raw_parse(&r, &m), STUN_PARSE_OK);
	assert_int_equal(m.nunknown, 2);
	assert_int_equal(m.unknown[0], 0x0030);
	assert_int_equal(m.unknown[1], 0x7FFF);
	assert_int_equal(m.duplicate, 0);
	assert_non_null(stun_msg_find(&m, STUN_ATTR_SOFTWARE));

	/* more than 16 distinct: 16 kept, parse still OK */
	raw_init(&r, 0x0001);
	for (uint16_t t = 0x0040; t < 0x0040 + 20; t++)
		raw_attr(&r, t, 0, 0, 0);
	assert_int_equal(raw_parse(&r, &m), STUN_PARSE_OK);
	assert_int_equal(m.nunknown, 16);
	assert_int_equal(m.unknown[15], 0x004F);
}

static void test_duplicates(void **state)
{
	uint8_t buf[512];
	struct stun_builder b;
	struct stun_msg m;
	struct stun_addr peer = { .family = STUN_AF_IPV4, .port = 1000, .ip = { 10, 0, 0, 1 } };
	uint32_t life = 0;
	size_t n;

	stun_build_init(&b, buf, sizeof(buf), TURN_METHOD_REFRESH, STUN_CLASS_REQUEST, test_tid);
	stun_build_u32(&b, TURN_ATTR_LIFETIME, 600);
	stun_build_u32(&b, TURN_ATTR_LIFETIME, 0);
	n = stun_build_finish(&b);
	assert_true(n > 0);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_OK);
	assert_int_equal(m.duplicate, 1);
	assert_int_equal(m.nattrs, 1);
	assert_int_equal(stun_attr_u32(stun_msg_find(&m, TURN_ATTR_LIFETIME), &life), 0);
	assert_int_equal(life, 600);

	/* XOR-PEER-ADDRESS repeats legitimately (CreatePermission) */
	stun_build_init(&b, buf, sizeof(buf), TURN_METHOD_CREATE_PERMISSION, STUN_CLASS_REQUEST, test_tid);
	for (int i = 0; i < 3; i++) {
		peer.ip[3] = (uint8_t)(i + 1);
		assert_int_equal(stun_build_xor_addr(&b, TURN_ATTR_XOR_PEER_ADDRESS, &peer), 0);
	}
	n = stun_build_finish(&b);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_OK);
	assert_int_equal(m.duplicate, 0);
	assert_int_equal(m.nattrs, 3);
	assert_int_equal(m.method, TURN_METHOD_CREATE_PERMISSION);
	for (size_t i = 0; i < 3; i++) {
		struct stun_addr got;

		assert_int_equal(m.attrs[i].type, TURN_ATTR_XOR_PEER_ADDRESS);
		assert_int_equal(stun_attr_xor_addr(&m, &m.attrs[i], &got), 0);
		assert_int_equal(got.ip[3], i + 1);
	}
}

/* ---- integrity ---------------------------------------------------------- */

static void test_attrs_after_integrity_ignored(void **state)
{
	static const uint8_t key[] = "secret";
	uint8_t buf[512];
	struct stun_builder b;
	struct stun_msg m;
	size_t n;

	stun_build_init(&b, buf, sizeof(buf), TURN_METHOD_ALLOCATE, STUN_CLASS_REQUEST, test_tid);
	stun_build_str(&b, STUN_ATTR_USERNAME, "alice");
	stun_build_integrity(&b, key, 6);
	stun_build_str(&b, STUN_ATTR_SOFTWARE, "sneaky");  /* not covered: ignored */
	stun_build_u32(&b, TURN_ATTR_LIFETIME, 1);
	stun_build_attr(&b, 0x0031, "x", 1);                /* unknown, but ignored */
	stun_build_fingerprint(&b);
	n = stun_build_finish(&b);
	assert_true(n > 0);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_OK);
	assert_null(stun_msg_find(&m, STUN_ATTR_SOFTWARE));
	assert_null(stun_msg_find(&m, TURN_ATTR_LIFETIME));
	assert_int_equal(m.nunknown, 0);
	assert_int_equal(m.mi_off, 32);  /* 20 header + USERNAME 4+8 */
	assert_true(m.fp_off > m.mi_off);
	assert_non_null(stun_msg_find(&m, STUN_ATTR_FINGERPRINT));
	assert_int_equal(stun_msg_check_integrity(&m, key, 6), 1);
	assert_int_equal(stun_msg_check_integrity(&m, (const uint8_t *)"secreT", 6), 0);
	assert_int_equal(stun_msg_check_integrity(&m, key, 5), 0);
}

static void test_integrity_sha256_preferred(void **state)
{
	static const uint8_t k1[] = "one", k2[] = "two";
	uint8_t buf[512];
	struct stun_builder b;
	struct stun_msg m;
	size_t n;

	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_CLASS_REQUEST, test_tid);
	stun_build_str(&b, STUN_ATTR_USERNAME, "bob");
	stun_build_integrity(&b, k1, 3);
	stun_build_integrity_sha256(&b, k2, 3);
	stun_build_integrity(&b, k1, 3);             /* after MI-SHA256: ignored */
	stun_build_str(&b, STUN_ATTR_SOFTWARE, "x"); /* ignored */
	stun_build_fingerprint(&b);
	n = stun_build_finish(&b);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_OK);
	assert_true(m.mi_off > 0 && m.mi256_off > m.mi_off && m.fp_off > m.mi256_off);
	assert_null(stun_msg_find(&m, STUN_ATTR_SOFTWARE));
	assert_int_equal(stun_msg_check_integrity(&m, k2, 3), 1);
	assert_int_equal(stun_msg_check_integrity(&m, k1, 3), 0);
	/* all 32 bytes are compared, not just a truncated prefix */
	buf[m.mi256_off + 4 + 31] ^= 0x01;
	assert_int_equal(stun_msg_check_integrity(&m, k2, 3), 0);
}

/* A MESSAGE-INTEGRITY-SHA256 truncated to 16 bytes (§14.6) built by hand:
 * HMAC over the message with the length field ending after a 16-byte value. */
static void test_integrity_sha256_truncated(void **state)
{
	static const uint8_t key[] = "trunc-key";
	uint8_t buf[256], mac[32];
	unsigned int maclen = 0;
	struct stun_builder b;
	struct stun_msg m;
	size_t off, n;

	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_CLASS_REQUEST, test_tid);
	stun_build_str(&b, STUN_ATTR_USERNAME, "carol");
	off = b.len;
	set_len_field(buf, (unsigned)(off + 4 + 16 - STUN_HEADER_LEN));
	assert_non_null(HMAC(EVP_sha256(), key, 9, buf, off, mac, &maclen));
	assert_int_equal(maclen, 32);
	assert_int_equal(stun_build_attr(&b, STUN_ATTR_MESSAGE_INTEGRITY_SHA256, mac, 16), 0);
	n = stun_build_finish(&b);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_OK);
	assert_int_equal(m.mi256_off, off);
	assert_int_equal(stun_msg_check_integrity(&m, key, 9), 1);
	buf[off + 4 + 15] ^= 1;
	assert_int_equal(stun_msg_check_integrity(&m, key, 9), 0);
}

static void test_integrity_none(void **state)
{
	uint8_t buf[512];
	size_t len = vector_bytes(vector_named("rfc5769-2.2"), buf, sizeof(buf));
	struct stun_msg m;
	struct stun_builder b;
	size_t n;

	assert_int_equal(stun_msg_parse(&m, buf, len, NULL), STUN_PARSE_OK);
	assert_int_equal(stun_msg_check_integrity(&m, (const uint8_t *)"wrong", 5), 0);
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_CLASS_SUCCESS, test_tid);
	stun_build_str(&b, STUN_ATTR_SOFTWARE, "no integrity");
	stun_build_fingerprint(&b);
	n = stun_build_finish(&b);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_OK);
	assert_int_equal(stun_msg_check_integrity(&m, (const uint8_t *)"k", 1), -1);
}

static void test_integrity_empty_key(void **state)
{
	uint8_t buf[128];
	struct stun_builder b;
	struct stun_msg m;
	size_t n;

	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_CLASS_REQUEST, test_tid);
	assert_int_equal(stun_build_integrity(&b, NULL, 0), 0);
	n = stun_build_finish(&b);
	assert_int_equal(n, 44);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_OK);
	assert_int_equal(stun_msg_check_integrity(&m, (const uint8_t *)"", 0), 1);
	assert_int_equal(stun_msg_check_integrity(&m, (const uint8_t *)"a", 1), 0);
}

/* stun_hmac keeps keyed contexts per thread: every answer must still be
 * HMAC(key, a || b) from scratch, whatever came before it: keys that are
 * prefixes of each other, the empty key, keys longer than a block, more
 * keys than cache slots, both digests interleaved, in two threads. */
static void *hmac_cache_round(void *arg)
{
	static const size_t keylens[] = { 0, 1, 5, 6, 16, 20, 32, 63, 64, 65, 100 };
	uint8_t key[100], msg[150], got[32], want[32];
	unsigned int wlen;
	int *ok = arg;

	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 13 + 5);
	*ok = 1;
	for (int round = 0; round < 40; round++) {
		size_t kl = keylens[(round * 5) % 11], split = (size_t)(round * 17) % 120, mlen = 120 + (size_t)round % 30;
		int sha256 = round % 3 == 1;
		const EVP_MD *md = sha256 ? EVP_sha256() : EVP_sha1();
		size_t outlen = sha256 ? 32 : 20;

		if (round % 7 == 6)
			key[0] ^= 0x80; /* same length, other key */
		HMAC(md, key, (int)kl, msg, mlen, want, &wlen);
		if (stun_hmac(sha256 ? STUN_HMAC_SHA256 : STUN_HMAC_SHA1, key, kl, msg, split, msg + split,
			      mlen - split, got, outlen) != 0 || wlen != outlen || memcmp(got, want, outlen) != 0)
			*ok = 0;
	}
	return NULL;
}

static void test_hmac_cache(void **state)
{
	uint8_t out[32];
	pthread_t t;
	int ok_main, ok_thread;

	hmac_cache_round(&ok_main);
	assert_true(ok_main);
	assert_int_equal(pthread_create(&t, NULL, hmac_cache_round, &ok_thread), 0);
	hmac_cache_round(&ok_main);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_true(ok_main);
	assert_true(ok_thread);
	/* the output length must be the digest's */
	assert_int_equal(stun_hmac(STUN_HMAC_SHA1, (const uint8_t *)"k", 1, out, 4, NULL, 0, out, 32), -1);
	assert_int_equal(stun_hmac(STUN_HMAC_SHA256, (const uint8_t *)"k", 1, out, 4, NULL, 0, out, 20), -1);
}

static void test_long_term_key(void **state)
{
	uint8_t k[32], h[32];
	/* MD5("user:realm:pass") and SHA-256 of the same, computed independently */
	static const char md5hex[] = "8493fbc53ba582fb4c044c456bdc40eb";
	uint8_t want[16];

	hex2bin(md5hex, want, sizeof(want));
	assert_int_equal(stun_long_term_key(STUN_PW_ALG_MD5, "user", "realm", "pass", k), 16);
	assert_memory_equal(k, want, 16);
	assert_int_equal(stun_long_term_key(STUN_PW_ALG_SHA256, "user", "realm", "pass", k), 32);
	assert_int_equal(stun_long_term_key(3, "user", "realm", "pass", k), -1);
	assert_int_equal(stun_long_term_key(0, "user", "realm", "pass", k), -1);
	stun_userhash("user", "realm", h);
	assert_memory_not_equal(h, k, 32);  /* "user:realm" != "user:realm:pass" */
}

/* ---- decoders and builders ---------------------------------------------- */

static void xor_roundtrip(const struct stun_addr *a)
{
	uint8_t buf[128];
	struct stun_builder b;
	struct stun_msg m;
	struct stun_addr got;
	const struct stun_attr *at;
	size_t n, iplen = a->family == STUN_AF_IPV4 ? 4 : 16;

	stun_build_init(&b, buf, sizeof(buf), TURN_METHOD_ALLOCATE, STUN_CLASS_SUCCESS, test_tid);
	assert_int_equal(stun_build_xor_addr(&b, TURN_ATTR_XOR_RELAYED_ADDRESS, a), 0);
	n = stun_build_finish(&b);
	assert_int_equal(n, STUN_HEADER_LEN + 4 + 4 + iplen);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_OK);
	at = stun_msg_find(&m, TURN_ATTR_XOR_RELAYED_ADDRESS);
	assert_non_null(at);
	assert_int_equal(stun_attr_xor_addr(&m, at, &got), 0);
	assert_int_equal(got.family, a->family);
	assert_int_equal(got.port, a->port);
	assert_memory_equal(got.ip, a->ip, iplen);
	/* on the wire the address is really XORed */
	assert_memory_not_equal(at->val + 4, a->ip, iplen);
	assert_int_equal(stun_attr_addr(at, &got), 0);
	assert_int_equal(got.port, a->port ^ 0x2112);
	assert_int_equal(got.ip[0], a->ip[0] ^ 0x21);
}

static void test_xor_addr_ipv4(void **state)
{
	struct stun_addr a = { .family = STUN_AF_IPV4, .port = 49152, .ip = { 203, 0, 113, 7 } };

	xor_roundtrip(&a);
	a.port = 0;
	xor_roundtrip(&a);
}

static void test_xor_addr_ipv6(void **state)
{
	struct stun_addr a = { .family = STUN_AF_IPV6, .port = 3478 };

	assert_int_equal(inet_pton(AF_INET6, "2001:db8::dead:beef", a.ip), 1);
	xor_roundtrip(&a);
}

static void test_addr_decode_errors(void **state)
{
	static const uint8_t v4_as_v6[8] = { 0, STUN_AF_IPV6, 0, 1, 1, 2, 3, 4 };
	static const uint8_t fam3[8] = { 0, 3, 0, 1, 1, 2, 3, 4 };
	static const uint8_t shortv[3] = { 0, 1, 0 };
	struct stun_attr a = { STUN_ATTR_MAPPED_ADDRESS, 8, v4_as_v6 };
	struct stun_addr out;
	struct stun_msg m;
	uint8_t buf[512];
	struct stun_builder b;

	assert_int_equal(stun_attr_addr(&a, &out), -1);
	a.val = fam3;
	assert_int_equal(stun_attr_addr(&a, &out), -1);
	a.val = shortv;
	a.len = 3;
	assert_int_equal(stun_attr_addr(&a, &out), -1);
	assert_int_equal(stun_attr_addr(NULL, &out), -1);
	memset(&m, 0, sizeof(m));
	assert_int_equal(stun_attr_xor_addr(&m, NULL, &out), -1);
	/* building an address of an unknown family fails the builder */
	out.family = 7;
	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_CLASS_SUCCESS, test_tid);
	assert_int_equal(stun_build_xor_addr(&b, STUN_ATTR_XOR_MAPPED_ADDRESS, &out), -1);
	assert_int_equal(stun_build_finish(&b), 0);
}

static void test_u32(void **state)
{
	static const uint8_t v[5] = { 0x00, 0x00, 0x02, 0x58, 0xFF };
	struct stun_attr a = { TURN_ATTR_LIFETIME, 4, v };
	uint32_t out = 0;

	assert_int_equal(stun_attr_u32(&a, &out), 0);
	assert_int_equal(out, 600);
	a.len = 5;
	assert_int_equal(stun_attr_u32(&a, &out), -1);
	a.len = 3;
	assert_int_equal(stun_attr_u32(&a, &out), -1);
}

static void test_error_code_roundtrip(void **state)
{
	uint8_t buf[256];
	struct stun_builder b;
	struct stun_msg m;
	const char *reason;
	size_t rlen, n;
	int code = 0;

	stun_build_init(&b, buf, sizeof(buf), TURN_METHOD_ALLOCATE, STUN_CLASS_ERROR, test_tid);
	assert_int_equal(stun_build_error(&b, 438, NULL), 0);
	n = stun_build_finish(&b);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_OK);
	assert_int_equal(m.cls, STUN_CLASS_ERROR);
	assert_int_equal(m.method, TURN_METHOD_ALLOCATE);
	assert_int_equal(stun_attr_error_code(stun_msg_find(&m, STUN_ATTR_ERROR_CODE), &code, &reason, &rlen), 0);
	assert_int_equal(code, 438);
	assert_int_equal(rlen, strlen("Stale Nonce"));
	assert_memory_equal(reason, "Stale Nonce", rlen);
	/* class and number on the wire: 4 and 38 */
	assert_int_equal(buf[STUN_HEADER_LEN + 6], 4);
	assert_int_equal(buf[STUN_HEADER_LEN + 7], 38);

	stun_build_init(&b, buf, sizeof(buf), TURN_METHOD_ALLOCATE, STUN_CLASS_ERROR, test_tid);
	assert_int_equal(stun_build_error(&b, 599, "Odd \xc3\xa9"), 0);
	n = stun_build_finish(&b);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_OK);
	assert_int_equal(stun_attr_error_code(stun_msg_find(&m, STUN_ATTR_ERROR_CODE), &code, &reason, &rlen), 0);
	assert_int_equal(code, 599);
	assert_int_equal(rlen, 6);

	stun_build_init(&b, buf, sizeof(buf), TURN_METHOD_ALLOCATE, STUN_CLASS_ERROR, test_tid);
	assert_int_equal(stun_build_error(&b, 299, NULL), -1);
	assert_int_equal(stun_build_finish(&b), 0);
	stun_build_init(&b, buf, sizeof(buf), TURN_METHOD_ALLOCATE, STUN_CLASS_ERROR, test_tid);
	assert_int_equal(stun_build_error(&b, 700, NULL), -1);
	assert_int_equal(stun_build_finish(&b), 0);
}

static void test_error_code_decode_bad(void **state)
{
	static const uint8_t cls2[4] = { 0, 0, 2, 0 }, num100[4] = { 0, 0, 4, 100 };
	static const uint8_t hibits[4] = { 0xFF, 0xFF, 0xFC, 20 };
	struct stun_attr a = { STUN_ATTR_ERROR_CODE, 4, cls2 };
	const char *r;
	size_t rl;
	int code = 0;

	assert_int_equal(stun_attr_error_code(&a, &code, &r, &rl), -1);
	a.val = num100;
	assert_int_equal(stun_attr_error_code(&a, &code, &r, &rl), -1);
	a.val = hibits;  /* reserved bits are ignored: class 4, number 20 */
	assert_int_equal(stun_attr_error_code(&a, &code, &r, &rl), 0);
	assert_int_equal(code, 420);
	assert_int_equal(rl, 0);
	a.len = 3;
	assert_int_equal(stun_attr_error_code(&a, &code, &r, &rl), -1);
}

static void test_error_reasons(void **state)
{
	assert_string_equal(stun_error_reason(300), "Try Alternate");
	assert_string_equal(stun_error_reason(400), "Bad Request");
	assert_string_equal(stun_error_reason(401), "Unauthenticated");
	assert_string_equal(stun_error_reason(403), "Forbidden");
	assert_string_equal(stun_error_reason(405), "Mobility Forbidden");
	assert_string_equal(stun_error_reason(420), "Unknown Attribute");
	assert_string_equal(stun_error_reason(437), "Allocation Mismatch");
	assert_string_equal(stun_error_reason(438), "Stale Nonce");
	assert_string_equal(stun_error_reason(440), "Address Family not Supported");
	assert_string_equal(stun_error_reason(441), "Wrong Credentials");
	assert_string_equal(stun_error_reason(442), "Unsupported Transport Protocol");
	assert_string_equal(stun_error_reason(443), "Peer Address Family Mismatch");
	assert_string_equal(stun_error_reason(446), "Connection Already Exists");
	assert_string_equal(stun_error_reason(447), "Connection Timeout or Failure");
	assert_string_equal(stun_error_reason(486), "Allocation Quota Reached");
	assert_string_equal(stun_error_reason(487), "Role Conflict");
	assert_string_equal(stun_error_reason(500), "Server Error");
	assert_string_equal(stun_error_reason(508), "Insufficient Capacity");
	assert_string_equal(stun_error_reason(499), "Error");
	assert_string_equal(stun_error_reason(-1), "Error");
}

static void test_unknown_attributes_builder(void **state)
{
	static const uint16_t types[3] = { 0x0030, 0x7FFF, 0x0041 };
	uint8_t buf[128];
	struct stun_builder b;
	struct stun_msg m;
	const struct stun_attr *a;
	size_t n;

	stun_build_init(&b, buf, sizeof(buf), STUN_METHOD_BINDING, STUN_CLASS_ERROR, test_tid);
	stun_build_error(&b, 420, NULL);
	assert_int_equal(stun_build_unknown(&b, types, 3), 0);
	n = stun_build_finish(&b);
	assert_int_equal(stun_msg_parse(&m, buf, n, NULL), STUN_PARSE_OK);
	a = stun_msg_find(&m, STUN_ATTR_UNKNOWN_ATTRIBUTES);
	assert_non_null(a);
	assert_int_equal(a->len, 6);
	assert_int_equal((a->val[2] << 8) | a->val[3], 0x7FFF);
	/* zero padding after the odd count */
	assert_int_equal(a->val[6], 0);
	assert_int_equal(a->val[7], 0);
}

static void test_method_class_roundtrip(void **state)
{
	static const uint16_t methods[] = { STUN_METHOD_BINDING, TURN_METHOD_ALLOCATE, TURN_METHOD_REFRESH,
					    TURN_METHOD_SEND, TURN_METHOD_DATA, TURN_METHOD_CREATE_PERMISSION,
					    TURN_METHOD_CHANNEL_BIND, 0x0FFF, 0x0ABC };
	uint8_t buf[32];
	struct stun_builder b;
	struct stun_msg m;

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		for (uint8_t cls = 0; cls < 4; cls++) {
			stun_build_init(&b, buf, sizeof(buf), methods[i], cls, test_tid);
			assert_int_equal(stun_build_finish(&b), STUN_HEADER_LEN);
			assert_int_equal(stun_msg_parse(&m, buf, STUN_HEADER_LEN, NULL), STUN_PARSE_OK);
			assert_int_equal(m.method, methods[i]);
			assert_int_equal(m.cls, cls);
		}
	}
	/* known encodings: Allocate error response 0x0113, Data indication 0x0017 */
	stun_build_init(&b, buf, sizeof(buf), TURN_METHOD_ALLOCATE, STUN_CLASS_ERROR, test_tid);
	assert_int_equal((buf[0] << 8) | buf[1], 0x0113);
	stun_build_init(&b, buf, sizeof(buf), TURN_METHOD_DATA, STUN_CLASS_INDICATION, test_tid);
	assert_int_equal((buf[0] << 8) | buf[1], 0x0017);
	/* bad method or class: the builder refuses */
	stun_build_init(&b, buf, sizeof(buf), 0x1000, 0, test_tid);
	assert_int_equal(stun_build_finish(&b), 0);
}

static void test_builder_overflow(void **state)
{
	uint8_t buf[64];
	static const uint8_t key[] = "k";
	struct stun_builder b;

	stun_build_init(&b, buf, 19, STUN_METHOD_BINDING, STUN_CLASS_REQUEST, test_tid);
	assert_int_equal(stun_build_finish(&b), 0);
	assert_int_equal(stun_build_str(&b, STUN_ATTR_SOFTWARE, "x"), -1);

	stun_build_init(&b, buf, 24, STUN_METHOD_BINDING, STUN_CLASS_REQUEST, test_tid);
	assert_int_equal(stun_build_u32(&b, TURN_ATTR_LIFETIME, 1), -1);
	assert_int_equal(stun_build_finish(&b), 0);

	/* an exact fit works, one byte more does not, and the error sticks */
	stun_build_init(&b, buf, 28, STUN_METHOD_BINDING, STUN_CLASS_REQUEST, test_tid);
	assert_int_equal(stun_build_u32(&b, TURN_ATTR_LIFETIME, 1), 0);
	assert_int_equal(stun_build_finish(&b), 28);
	assert_int_equal(stun_build_attr(&b, TURN_ATTR_DATA, "", 0), -1);
	assert_int_equal(stun_build_finish(&b), 0);

	/* padding counts: 5 bytes of value need 12 with the header */
	stun_build_init(&b, buf, 31, STUN_METHOD_BINDING, STUN_CLASS_REQUEST, test_tid);
	assert_int_equal(stun_build_str(&b, STUN_ATTR_SOFTWARE, "12345"), -1);
	assert_int_equal(stun_build_finish(&b), 0);

	stun_build_init(&b, buf, 40, STUN_METHOD_BINDING, STUN_CLASS_REQUEST, test_tid);
	assert_int_equal(stun_build_integrity(&b, key, 1), -1);
	assert_int_equal(stun_build_fingerprint(&b), -1);
	assert_int_equal(stun_build_finish(&b), 0);

	/* value longer than a 16-bit length field */
	{
		static uint8_t big[70000];
		uint8_t *out = malloc(sizeof(big) + 64);

		assert_non_null(out);
		stun_build_init(&b, out, sizeof(big) + 64, TURN_METHOD_SEND, STUN_CLASS_INDICATION, test_tid);
		assert_int_equal(stun_build_attr(&b, TURN_ATTR_DATA, big, sizeof(big)), -1);
		assert_int_equal(stun_build_finish(&b), 0);
		free(out);
	}
}

static void test_is_stun(void **state)
{
	uint8_t buf[64] = { 0 };
	struct raw r;

	raw_init(&r, 0x0001);
	assert_int_equal(stun_msg_is_stun(r.b, r.len), 1);
	raw_attr(&r, STUN_ATTR_SOFTWARE, 3, 'a', 3);
	assert_int_equal(stun_msg_is_stun(r.b, r.len), 1);
	assert_int_equal(stun_msg_is_stun(r.b, r.len - 4), 0);
	assert_int_equal(stun_msg_is_stun(buf, sizeof(buf)), 0);
	/* ChannelData is not STUN */
	buf[0] = 0x40;
	buf[3] = 4;
	assert_int_equal(stun_msg_is_stun(buf, 8), 0);
	assert_int_equal(turn_is_channel_data(buf, 8), 1);
}

/* ---- ChannelData -------------------------------------------------------- */

static void test_channel_data(void **state)
{
	uint8_t buf[64] = { 0x40, 0x00, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0 };
	uint16_t ch = 0, dlen = 0;

	assert_int_equal(turn_channel_data_parse(buf, 9, &ch, &dlen), 0);
	assert_int_equal(ch, 0x4000);
	assert_int_equal(dlen, 5);
	/* padding after the data (TCP framing) is allowed */
	assert_int_equal(turn_channel_data_parse(buf, 12, &ch, &dlen), 0);
	assert_int_equal(dlen, 5);
	/* length lying: more data claimed than present */
	assert_int_equal(turn_channel_data_parse(buf, 8, &ch, &dlen), -1);
	buf[3] = 0xFF;
	assert_int_equal(turn_channel_data_parse(buf, 12, &ch, &dlen), -1);
	buf[3] = 5;
	/* RFC 5766's 0x5000-0x7FFF still frames as ChannelData; whether such a
	 * number can be bound is the server's decision (rfc5766-channels). */
	buf[0] = 0x50;
	assert_int_equal(turn_channel_data_parse(buf, 12, &ch, &dlen), 0);
	assert_int_equal(ch, 0x5000);
	buf[0] = 0x7F;
	assert_int_equal(turn_channel_data_parse(buf, 12, &ch, &dlen), 0);
	buf[0] = 0x80;
	buf[1] = 0x00;
	assert_int_equal(turn_channel_data_parse(buf, 12, &ch, &dlen), -1);
	buf[0] = 0x3F;
	buf[1] = 0xFF;
	assert_int_equal(turn_channel_data_parse(buf, 12, &ch, &dlen), -1);
	buf[0] = 0x4F;
	assert_int_equal(turn_channel_data_parse(buf, 12, &ch, &dlen), 0);
	assert_int_equal(ch, 0x4FFF);
	/* empty data and a too-short header */
	buf[3] = 0;
	assert_int_equal(turn_channel_data_parse(buf, 4, &ch, &dlen), 0);
	assert_int_equal(dlen, 0);
	assert_int_equal(turn_channel_data_parse(buf, 3, &ch, &dlen), -1);
	assert_int_equal(turn_is_channel_data(buf, 3), 0);
}

/* ---- fuzzing ------------------------------------------------------------ */

static void fuzz_one(const uint8_t *src, size_t len, int *ok)
{
	/* exact-size heap copy so ASan catches any read past len */
	uint8_t *p = malloc(len ? len : 1);
	struct stun_msg m;
	int rc;

	assert_non_null(p);
	memcpy(p, src, len);
	rc = stun_msg_parse(&m, p, len, NULL);
	assert_true(rc <= STUN_PARSE_OK && rc >= STUN_PARSE_BAD_FINGERPRINT);
	assert_int_equal(stun_msg_is_stun(p, len), rc != STUN_PARSE_NOT_STUN);
	if (rc == STUN_PARSE_OK) {
		(*ok)++;
		assert_parse_sane(&m, p, len);
		exercise_decoders(&m);
	}
	free(p);
}

static void test_fuzz_random(void **state)
{
	uint8_t buf[256];
	int ok = 0;

	rng_state = 0x1234567887654321ull;
	for (int iter = 0; iter < 100000; iter++) {
		size_t len = rng() % sizeof(buf);

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rng();
		/* most inputs get a plausible header so the attribute walk is reached */
		if (len >= STUN_HEADER_LEN && rng() % 4 != 0) {
			len &= ~(size_t)3;
			buf[0] &= 0x3F;
			buf[4] = 0x21, buf[5] = 0x12, buf[6] = 0xA4, buf[7] = 0x42;
			set_len_field(buf, (unsigned)(len - STUN_HEADER_LEN));
			/* small attribute lengths make longer walks likely */
			for (size_t off = STUN_HEADER_LEN; off + 4 <= len; off += 4)
				if (rng() % 2)
					buf[off + 2] = 0;
		}
		fuzz_one(buf, len, &ok);
	}
	print_message("# random buffers: %d of 100000 parsed OK\n", ok);
	assert_true(ok > 0);
}

/* Random edits of every vector: most break the FINGERPRINT, but 2.4 and B.1
 * have none, so the integrity and attribute paths see damaged input too. */
static void test_fuzz_mutations(void **state)
{
	uint8_t orig[8][512], buf[600];
	size_t olen[8], nvec, len;
	int ok = 0;
	json_t *v;

	assert_non_null(g_vectors);
	json_array_foreach(g_vectors, nvec, v) {
		if (nvec == 8)
			break;
		olen[nvec] = vector_bytes(v, orig[nvec], sizeof(orig[nvec]));
	}
	assert_true(nvec > 0);
	rng_state = 0xDEADBEEFCAFEF00Dull;
	for (int iter = 0; iter < 100000; iter++) {
		size_t k = (size_t)iter % nvec;
		int edits = 1 + (int)(rng() % 4);

		memcpy(buf, orig[k], olen[k]);
		len = olen[k];
		for (int e = 0; e < edits; e++) {
			switch (rng() % 4) {
			case 0: buf[rng() % len] ^= (uint8_t)(1u << (rng() % 8)); break;
			case 1: buf[rng() % len] = (uint8_t)rng(); break;
			case 2: /* shrink or grow, keeping the length field consistent */
				len = STUN_HEADER_LEN + ((rng() % (sizeof(buf) - STUN_HEADER_LEN)) & ~3u);
				if (len > olen[k])
					memset(buf + olen[k], (int)(rng() & 0xFF), len - olen[k]);
				set_len_field(buf, (unsigned)(len - STUN_HEADER_LEN));
				break;
			default: /* the low byte of some attribute length */
				if (len > STUN_HEADER_LEN)
					buf[STUN_HEADER_LEN + 3 + 4 * (rng() % ((len - STUN_HEADER_LEN) / 4))] =
						(uint8_t)rng();
				break;
			}
		}
		fuzz_one(buf, len, &ok);
	}
	print_message("# mutations: %d of 100000 parsed OK\n", ok);
	assert_true(ok > 0);
}

/* ---- main --------------------------------------------------------------- */

static void load_vectors(void)
{
	const char *path = getenv("STUN_VECTORS");
	json_error_t jerr;

	if (path == NULL || *path == '\0')
		path = "tests/data/stun-vectors.json";
	g_root = json_load_file(path, 0, &jerr);
	if (g_root == NULL) {
		fprintf(stderr, "# cannot load %s: %s (line %d)\n", path, jerr.text, jerr.line);
		return;
	}
	g_vectors = json_object_get(g_root, "vectors");
	if (!json_is_array(g_vectors))
		g_vectors = NULL;
}

/* OpaqueString (RFC 8265 §4.2) as stun_prep.h implements it. */
/* Printable ASCII (U+0020..U+007E) is FreeformClass and NFC-stable, so
 * OpaqueString keeps such a string as it is (stun_opaque_string takes a
 * shortcut for it); every other ASCII byte is a control and is refused. */
static void test_opaque_string_ascii(void **state)
{
	char in[3], all[96], out[128];

	(void)state;
	for (int c = 1; c < 0x80; c++) {
		in[0] = 'a';
		in[1] = (char)c;
		in[2] = '\0';
		if (c >= 0x20 && c < 0x7f) {
			assert_int_equal(stun_opaque_string(in, out, sizeof(out)), 2);
			assert_memory_equal(out, in, 3);
			assert_int_equal(stun_opaque_ok((const unsigned char *)in + 1, 1), 1);
		} else {
			assert_int_equal(stun_opaque_string(in, out, sizeof(out)), -1);
			assert_int_equal(stun_opaque_ok((const unsigned char *)in + 1, 1), 0);
		}
	}
	for (int c = 0x20; c < 0x7f; c++)
		all[c - 0x20] = (char)c;
	all[95] = '\0';
	assert_int_equal(stun_opaque_string(all, out, sizeof(out)), 95);
	assert_string_equal(out, all);
	assert_int_equal(stun_opaque_string(all, out, 96), 95);
	assert_int_equal(stun_opaque_string(all, out, 95), -1);
	assert_int_equal(stun_opaque_string(" ", out, sizeof(out)), 1);
}

static void test_opaque_string(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(stun_opaque_string("secret pw", out, sizeof(out)), 9);
	assert_string_equal(out, "secret pw");
	/* non-ASCII spaces (Zs) map to U+0020; other non-ASCII stays */
	assert_int_equal(stun_opaque_string("a\xc2\xa0" "b\xe3\x80\x80" "c", out, sizeof(out)), 5);
	assert_string_equal(out, "a b c");
	assert_int_equal(stun_opaque_string("p\xc3\xa4ss", out, sizeof(out)), 5);
	assert_string_equal(out, "p\xc3\xa4ss");
	/* refused: empty, controls (C0, DEL, C1), bad UTF-8, surrogates, overlong, too long */
	assert_int_equal(stun_opaque_string("", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("a\tb", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("a\x7f", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("a\xc2\x85", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("a\xff", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("a\xc3", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("\xed\xa0\x80", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("\xc0\xaf", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("\xe0\x80\xaf", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("abcdef", out, 6), -1);
	/* NFC: e + COMBINING ACUTE ACCENT is stored as U+00E9; a USERNAME sent
	 * decomposed is not prepared */
	assert_int_equal(stun_opaque_string("caf" "e\xcc\x81", out, sizeof(out)), 5);
	assert_string_equal(out, "caf\xc3\xa9");
	assert_int_equal(stun_opaque_ok((const unsigned char *)"caf\xc3\xa9", 5), 1);
	assert_int_equal(stun_opaque_ok((const unsigned char *)"cafe\xcc\x81", 6), 0);
	/* FreeformClass refusals: soft hyphen (default ignorable), ZWJ, private
	 * use, unassigned, a noncharacter, Old Hangul Jamo, LINE SEPARATOR */
	assert_int_equal(stun_opaque_string("a\xc2\xad" "b", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("a\xe2\x80\x8d" "b", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("\xee\x80\x80", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("\xcd\xb8", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("\xef\xb7\x90", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("\xe1\x84\x80", out, sizeof(out)), -1);
	assert_int_equal(stun_opaque_string("a\xe2\x80\xa8", out, sizeof(out)), -1);
	/* allowed: symbols, other scripts, compatibility forms (kept as given) */
	assert_int_equal(stun_opaque_string("\xe2\x82\xac\xe6\x97\xa5\xef\xac\x81", out, sizeof(out)), 9);
	assert_int_equal(stun_opaque_ok((const unsigned char *)"alice", 5), 1);
	assert_int_equal(stun_opaque_ok((const unsigned char *)"al\nice", 6), 0);
	assert_int_equal(stun_opaque_ok((const unsigned char *)"a\xc2\xa0" "b", 4), 0); /* not prepared */
	assert_int_equal(stun_opaque_ok((const unsigned char *)"", 0), 0);
	/* the key uses the prepared realm and password */
	{
		uint8_t k1[32], k2[32];

		assert_int_equal(stun_long_term_key(STUN_PW_ALG_MD5, "u", "r", "a\xc2\xa0" "b", k1), 16);
		assert_int_equal(stun_long_term_key(STUN_PW_ALG_MD5, "u", "r", "a b", k2), 16);
		assert_memory_equal(k1, k2, 16);
		assert_int_equal(stun_long_term_key(STUN_PW_ALG_MD5, "u", "r", "a\x01", k1), -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_all),
		cmocka_unit_test(test_vector_2_1),
		cmocka_unit_test(test_vector_2_2),
		cmocka_unit_test(test_vector_2_3),
		cmocka_unit_test(test_vector_2_4),
		cmocka_unit_test(test_vector_b_1),
		cmocka_unit_test(test_vector_b_1_integrity),
		cmocka_unit_test(test_reencode_2_1),
		cmocka_unit_test(test_reencode_2_2),
		cmocka_unit_test(test_reencode_2_3),
		cmocka_unit_test(test_reencode_2_4),
		cmocka_unit_test(test_reencode_b_1),
		cmocka_unit_test(test_truncations_rejected),
		cmocka_unit_test(test_length_field_lies),
		cmocka_unit_test(test_bad_cookie),
		cmocka_unit_test(test_top_bits),
		cmocka_unit_test(test_header_only),
		cmocka_unit_test(test_attr_past_end),
		cmocka_unit_test(test_attr_padding),
		cmocka_unit_test(test_fixed_lengths),
		cmocka_unit_test(test_fingerprint_wrong),
		cmocka_unit_test(test_attr_after_fingerprint),
		cmocka_unit_test(test_too_many_attrs),
		cmocka_unit_test(test_unknown_attrs),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_attrs_after_integrity_ignored),
		cmocka_unit_test(test_integrity_sha256_preferred),
		cmocka_unit_test(test_integrity_sha256_truncated),
		cmocka_unit_test(test_integrity_none),
		cmocka_unit_test(test_integrity_empty_key),
		cmocka_unit_test(test_hmac_cache),
		cmocka_unit_test(test_long_term_key),
		cmocka_unit_test(test_xor_addr_ipv4),
		cmocka_unit_test(test_xor_addr_ipv6),
		cmocka_unit_test(test_addr_decode_errors),
		cmocka_unit_test(test_u32),
		cmocka_unit_test(test_error_code_roundtrip),
		cmocka_unit_test(test_error_code_decode_bad),
		cmocka_unit_test(test_error_reasons),
		cmocka_unit_test(test_unknown_attributes_builder),
		cmocka_unit_test(test_method_class_roundtrip),
		cmocka_unit_test(test_builder_overflow),
		cmocka_unit_test(test_is_stun),
		cmocka_unit_test(test_channel_data),
		cmocka_unit_test(test_fuzz_random),
		cmocka_unit_test(test_fuzz_mutations),
		cmocka_unit_test(test_opaque_string),
		cmocka_unit_test(test_opaque_string_ascii),
	};
	int rc;

	load_vectors();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	json_decref(g_root);
	return rc;
}
