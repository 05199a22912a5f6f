/* stun_msg.c -- STUN message codec (RFC 8489 §5, §6.3, §9.2, §14, §15, §18)
 * with the TURN attributes and ChannelData framing of RFC 8656 (§12.4, §18).
 *
 * Pure code: parsing never reads outside [buf, buf+len) whatever the input,
 * and building never writes outside the caller's buffer. Digests come from
 * libcrypto (EVP); CRC-32 for FINGERPRINT is computed here.
 */
#include "stun/stun_msg.h"
#include "stun/stun_hmac.h"
#include "stun/stun_prep.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define STUN_MI_LEN      20  /* HMAC-SHA1 */
#define STUN_MI256_LEN   32  /* HMAC-SHA256, full length as we send it */
#define STUN_MI256_MIN   16  /* shortest truncation a receiver accepts (§14.6) */

/* ---- small helpers ------------------------------------------------------- */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* CRC-32 as in IEEE 802.3 / zlib (reflected, poly 0xEDB88320), four bits
 * per step: a 16-entry table is enough for messages of at most 64 KiB. */
static const uint32_t crc_nibble[16] = {
	0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
	0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
	0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

static uint32_t stun_crc32(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFFu;

	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		crc = (crc >> 4) ^ crc_nibble[crc & 0x0F];
		crc = (crc >> 4) ^ crc_nibble[crc & 0x0F];
	}
	return crc ^ 0xFFFFFFFFu;
}

/* Digest of the concatenation of up to five strings ("a:b:c"). Returns the
 * digest length or -1. */
static int stun_digest_strs(const EVP_MD *md, const char *const *parts, size_t nparts, uint8_t *out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int olen = 0;
	int ok;

	if (ctx == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, md, NULL) == 1;
	for (size_t i = 0; ok && i < nparts; i++)
		ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i])) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, out, &olen) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? (int)olen : -1;
}

/* ---- attribute table ---------------------------------------------------- */

/* Length limits of the attributes we know (RFC 8489 §14, RFC 8656 §18,
 * RFC 8445 §16.1). Anything comprehension-required not listed here is
 * "unknown" and reported to the caller for a 420. */
struct attr_rule {
	uint16_t type;
	uint16_t min, max;  /* value length in bytes */
};

static const struct attr_rule attr_rules[] = {
	{ STUN_ATTR_MAPPED_ADDRESS, 0, 0xFFFF },
	{ STUN_ATTR_USERNAME, 0, 512 },            /* "less than 513 bytes" */
	{ STUN_ATTR_MESSAGE_INTEGRITY, STUN_MI_LEN, STUN_MI_LEN },
	{ STUN_ATTR_ERROR_CODE, 4, 4 + 762 },
	{ STUN_ATTR_UNKNOWN_ATTRIBUTES, 0, 0xFFFF },
	{ TURN_ATTR_CHANNEL_NUMBER, 4, 4 },
	{ TURN_ATTR_LIFETIME, 4, 4 },
	{ TURN_ATTR_XOR_PEER_ADDRESS, 0, 0xFFFF },
	{ TURN_ATTR_DATA, 0, 0xFFFF },
	{ STUN_ATTR_REALM, 0, 762 },               /* "less than 763 bytes" */
	{ STUN_ATTR_NONCE, 0, 762 },
	{ TURN_ATTR_XOR_RELAYED_ADDRESS, 0, 0xFFFF },
	{ TURN_ATTR_REQUESTED_ADDRESS_FAMILY, 4, 4 },
	{ TURN_ATTR_EVEN_PORT, 1, 1 },
	{ TURN_ATTR_REQUESTED_TRANSPORT, 4, 4 },
	{ TURN_ATTR_DONT_FRAGMENT, 0, 0 },
	{ TURN_ATTR_CONNECTION_ID, 4, 4 },         /* RFC 6062 §6.2 */
	{ STUN_ATTR_MESSAGE_INTEGRITY_SHA256, STUN_MI256_MIN, STUN_MI256_LEN },
	{ STUN_ATTR_PASSWORD_ALGORITHM, 4, 0xFFFF },
	{ STUN_ATTR_USERHASH, 32, 32 },
	{ STUN_ATTR_XOR_MAPPED_ADDRESS, 0, 0xFFFF },
	{ TURN_ATTR_RESERVATION_TOKEN, 8, 8 },
	{ STUN_ATTR_PRIORITY, 4, 4 },
	{ STUN_ATTR_USE_CANDIDATE, 0, 0 },
	{ TURN_ATTR_ADDITIONAL_ADDRESS_FAMILY, 4, 4 },
	{ TURN_ATTR_ADDRESS_ERROR_CODE, 4, 0xFFFF },
	{ STUN_ATTR_PASSWORD_ALGORITHMS, 0, 0xFFFF },
	{ STUN_ATTR_ALTERNATE_DOMAIN, 0, 0xFFFF },
	{ TURN_ATTR_ICMP, 8, 8 },
	{ STUN_ATTR_SOFTWARE, 0, 762 },
	{ STUN_ATTR_ALTERNATE_SERVER, 0, 0xFFFF },
	{ STUN_ATTR_FINGERPRINT, 4, 4 },
	{ STUN_ATTR_ICE_CONTROLLED, 8, 8 },
	{ STUN_ATTR_ICE_CONTROLLING, 8, 8 },
	{ STUN_ATTR_RESPONSE_ORIGIN, 0, 0xFFFF },
	{ STUN_ATTR_OTHER_ADDRESS, 0, 0xFFFF },
};

static const struct attr_rule *attr_rule_find(uint16_t type)
{
	for (size_t i = 0; i < sizeof(attr_rules) / sizeof(attr_rules[0]); i++)
		if (attr_rules[i].type == type)
			return &attr_rules[i];
	return NULL;
}

/* ---- parsing ------------------------------------------------------------ */

static int stun_header_ok(const uint8_t *buf, size_t len, const char **why)
{
	size_t blen;

	if (buf == NULL || len < STUN_HEADER_LEN) {
		*why = "shorter than a STUN header";
		return 0;
	}
	if ((buf[0] & 0xC0) != 0) {
		*why = "top two bits of the type are not zero";
		return 0;
	}
	if (get32(buf + 4) != STUN_MAGIC_COOKIE) {
		*why = "no magic cookie";
		return 0;
	}
	blen = get16(buf + 2);
	if (blen % 4 != 0) {
		*why = "length field not a multiple of 4";
		return 0;
	}
	if (STUN_HEADER_LEN + blen != len) {
		*why = "length field does not match the message size";
		return 0;
	}
	return 1;
}

int stun_msg_is_stun(const uint8_t *buf, size_t len)
{
	const char *why;

	return stun_header_ok(buf, len, &why);
}

/* Adds one attribute that is not ignored to m: checks its length against the
 * rules, notes unknown and duplicate types. Returns STUN_PARSE_OK or
 * STUN_PARSE_MALFORMED. */
static int stun_take_attr(struct stun_msg *m, uint16_t type, uint16_t alen, const uint8_t *val,
			  const char **why)
{
	const struct attr_rule *rule = attr_rule_find(type);

	if (rule == NULL) {
		if (type < 0x8000) {
			size_t i;

			for (i = 0; i < m->nunknown && m->unknown[i] != type; i++)
				;
			if (i == m->nunknown && m->nunknown < sizeof(m->unknown) / sizeof(m->unknown[0]))
				m->unknown[m->nunknown++] = type;
		}
	} else {
		if (alen < rule->min || alen > rule->max ||
		    (type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256 && alen % 4 != 0)) {
			*why = "attribute has a wrong length";
			return STUN_PARSE_MALFORMED;
		}
		if (type != TURN_ATTR_XOR_PEER_ADDRESS && stun_msg_find(m, type) != NULL) {
			m->duplicate = 1;
			return STUN_PARSE_OK;
		}
	}
	/* nattrs never exceeds the number of attributes walked (<= STUN_MAX_ATTRS). */
	m->attrs[m->nattrs].type = type;
	m->attrs[m->nattrs].len = alen;
	m->attrs[m->nattrs].val = val;
	m->nattrs++;
	return STUN_PARSE_OK;
}

/* Whether an attribute at this point is skipped: after MESSAGE-INTEGRITY only
 * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count, after
 * MESSAGE-INTEGRITY-SHA256 only FINGERPRINT (RFC 8489 §14.5, §14.6). */
static int stun_attr_ignored(const struct stun_msg *m, uint16_t type)
{
	if (m->mi256_off != 0)
		return type != STUN_ATTR_FINGERPRINT;
	if (m->mi_off != 0)
		return type != STUN_ATTR_FINGERPRINT && type != STUN_ATTR_MESSAGE_INTEGRITY_SHA256;
	return 0;
}

/* Walks the attributes of a message whose header is valid. */
static int stun_parse_attrs(struct stun_msg *m, const char **why)
{
	const uint8_t *buf = m->buf;
	size_t off = STUN_HEADER_LEN, count = 0;

	while (off < m->len) {
		size_t left = m->len - off;
		uint16_t type, alen;
		int rc;

		if (m->fp_off != 0) {
			*why = "attribute after FINGERPRINT";
			return STUN_PARSE_MALFORMED;
		}
		if (++count > STUN_MAX_ATTRS) {
			*why = "too many attributes";
			return STUN_PARSE_MALFORMED;
		}
		/* left is a multiple of 4 and > 0, so the 4-byte header fits. */
		type = get16(buf + off);
		alen = get16(buf + off + 2);
		if (pad4(alen) > left - 4) {
			*why = "attribute runs past the end of the message";
			return STUN_PARSE_MALFORMED;
		}
		if (!stun_attr_ignored(m, type)) {
			rc = stun_take_attr(m, type, alen, buf + off + 4, why);
			if (rc != STUN_PARSE_OK)
				return rc;
			if (type == STUN_ATTR_MESSAGE_INTEGRITY)
				m->mi_off = off;
			else if (type == STUN_ATTR_MESSAGE_INTEGRITY_SHA256)
				m->mi256_off = off;
			else if (type == STUN_ATTR_FINGERPRINT)
				m->fp_off = off;
		}
		off += 4 + pad4(alen);
	}
	return STUN_PARSE_OK;
}

int stun_msg_parse(struct stun_msg *m, const uint8_t *buf, size_t len, const char **err)
{
	const char *why = "ok";
	uint16_t t;
	int rc;

	memset(m, 0, sizeof(*m));
	if (!stun_header_ok(buf, len, &why)) {
		rc = STUN_PARSE_NOT_STUN;
		goto out;
	}
	m->buf = buf;
	m->len = len;
	t = get16(buf);
	/* Type bits: M11..M7 C1 M6..M4 C0 M3..M0 (RFC 8489 §5). */
	m->method = (uint16_t)((t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2));
	m->cls = (uint8_t)(((t >> 4) & 1) | ((t >> 7) & 2));
	memcpy(m->tid, buf + 8, STUN_TID_LEN);
	rc = stun_parse_attrs(m, &why);
	if (rc == STUN_PARSE_OK && m->fp_off != 0) {
		/* FINGERPRINT is last, so the length field already covers it. */
		uint32_t want = stun_crc32(buf, m->fp_off) ^ STUN_FINGERPRINT_XOR;

		if (get32(buf + m->fp_off + 4) != want) {
			why = "FINGERPRINT does not match";
			rc = STUN_PARSE_BAD_FINGERPRINT;
		}
	}
out:
	if (err != NULL)
		*err = why;
	return rc;
}

const struct stun_attr *stun_msg_find(const struct stun_msg *m, uint16_t type)
{
	for (size_t i = 0; i < m->nattrs; i++)
		if (m->attrs[i].type == type)
			return &m->attrs[i];
	return NULL;
}

/* Shared by the plain and XOR address decoders; xor_key is cookie||tid or
 * NULL. */
static int stun_decode_addr(const struct stun_attr *a, const uint8_t *xor_key, struct stun_addr *out)
{
	size_t iplen;

	if (a == NULL || a->len < 4)
		return -1;
	if (a->val[1] == STUN_AF_IPV4)
		iplen = 4;
	else if (a->val[1] == STUN_AF_IPV6)
		iplen = 16;
	else
		return -1;
	if (a->len != 4 + iplen)
		return -1;
	memset(out, 0, sizeof(*out));
	out->family = a->val[1];
	out->port = get16(a->val + 2);
	if (xor_key != NULL)
		out->port ^= (uint16_t)(STUN_MAGIC_COOKIE >> 16);
	for (size_t i = 0; i < iplen; i++)
		out->ip[i] = a->val[4 + i] ^ (xor_key != NULL ? xor_key[i] : 0);
	return 0;
}

/* cookie||tid, the XOR mask of RFC 8489 §14.2. */
static void stun_xor_key(const uint8_t tid[STUN_TID_LEN], uint8_t key[16])
{
	put32(key, STUN_MAGIC_COOKIE);
	memcpy(key + 4, tid, STUN_TID_LEN);
}

int stun_attr_xor_addr(const struct stun_msg *m, const struct stun_attr *a, struct stun_addr *out)
{
	uint8_t key[16];

	if (m == NULL)
		return -1;
	stun_xor_key(m->tid, key);
	return stun_decode_addr(a, key, out);
}

int stun_attr_addr(const struct stun_attr *a, struct stun_addr *out)
{
	return stun_decode_addr(a, NULL, out);
}

int stun_attr_u32(const struct stun_attr *a, uint32_t *out)
{
	if (a == NULL || a->len != 4)
		return -1;
	*out = get32(a->val);
	return 0;
}

int stun_attr_error_code(const struct stun_attr *a, int *code, const char **reason, size_t *reason_len)
{
	int cls, num;

	if (a == NULL || a->len < 4)
		return -1;
	cls = a->val[2] & 0x07;
	num = a->val[3];
	if (cls < 3 || cls > 6 || num > 99)
		return -1;
	*code = cls * 100 + num;
	*reason = (const char *)a->val + 4;
	*reason_len = a->len - 4u;
	return 0;
}

/* ---- integrity ---------------------------------------------------------- */

int stun_msg_check_integrity(const struct stun_msg *m, const uint8_t *key, size_t keylen)
{
	uint8_t hdr[STUN_HEADER_LEN], mac[STUN_MI256_LEN];
	enum stun_hmac_alg digest;
	size_t off, vlen;

	if (m->mi256_off != 0) {
		off = m->mi256_off;
		digest = STUN_HMAC_SHA256;
	} else if (m->mi_off != 0) {
		off = m->mi_off;
		digest = STUN_HMAC_SHA1;
	} else {
		return -1;
	}
	/* The parser checked off + 4 + vlen <= len and the value length. */
	vlen = get16(m->buf + off + 2);
	memcpy(hdr, m->buf, STUN_HEADER_LEN);
	put16(hdr + 2, (uint16_t)(off + 4 + vlen - STUN_HEADER_LEN));
	if (stun_hmac(digest, key, keylen, hdr, STUN_HEADER_LEN, m->buf + STUN_HEADER_LEN, off - STUN_HEADER_LEN, mac,
		      m->mi256_off != 0 ? STUN_MI256_LEN : STUN_MI_LEN) != 0)
		return 0;
	/* A truncated MESSAGE-INTEGRITY-SHA256 is compared on its own length. */
	return CRYPTO_memcmp(mac, m->buf + off + 4, vlen) == 0 ? 1 : 0;
}

int stun_long_term_key(int alg, const char *username, const char *realm, const char *password,
		       uint8_t out[32])
{
	char prealm[1024], ppw[1024];
	const char *parts[5] = { username, ":", prealm, ":", ppw };
	const EVP_MD *md;

	if (alg == STUN_PW_ALG_MD5)
		md = EVP_md5();
	else if (alg == STUN_PW_ALG_SHA256)
		md = EVP_sha256();
	else
		return -1;
	if (username == NULL || realm == NULL || password == NULL)
		return -1;
	/* key = H(username ":" OpaqueString(realm) ":" OpaqueString(password)) */
	if (stun_opaque_string(realm, prealm, sizeof(prealm)) < 0 || stun_opaque_string(password, ppw, sizeof(ppw)) < 0)
		return -1;
	return stun_digest_strs(md, parts, 5, out);
}

void stun_userhash(const char *username, const char *realm, uint8_t out[32])
{
	const char *parts[3] = { username, ":", realm };

	if (username == NULL || realm == NULL || stun_digest_strs(EVP_sha256(), parts, 3, out) != 32)
		memset(out, 0, 32);
}

const char *stun_error_reason(int code)
{
	switch (code) {
	case 300: return "Try Alternate";
	case 400: return "Bad Request";
	case 401: return "Unauthenticated";
	case 403: return "Forbidden";
	case 405: return "Mobility Forbidden";
	case 420: return "Unknown Attribute";
	case 437: return "Allocation Mismatch";
	case 438: return "Stale Nonce";
	case 440: return "Address Family not Supported";
	case 441: return "Wrong Credentials";
	case 442: return "Unsupported Transport Protocol";
	case 443: return "Peer Address Family Mismatch";
	case 446: return "Connection Already Exists";
	case 447: return "Connection Timeout or Failure";
	case 486: return "Allocation Quota Reached";
	case 487: return "Role Conflict";
	case 500: return "Server Error";
	case 508: return "Insufficient Capacity";
	default: return "Error";
	}
}

/* ---- building ----------------------------------------------------------- */

void stun_build_init(struct stun_builder *b, uint8_t *buf, size_t cap, uint16_t method, uint8_t cls,
		     const uint8_t tid[STUN_TID_LEN])
{
	uint16_t t;

	b->buf = buf;
	b->cap = cap;
	b->len = 0;
	b->err = 0;
	if (buf == NULL || cap < STUN_HEADER_LEN || method > 0x0FFF || cls > 3) {
		b->err = 1;
		return;
	}
	t = (uint16_t)((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) |
		       ((cls & 1) << 4) | ((cls & 2) << 7));
	put16(buf, t);
	put16(buf + 2, 0);
	put32(buf + 4, STUN_MAGIC_COOKIE);
	if (tid != NULL)
		memcpy(buf + 8, tid, STUN_TID_LEN);
	else
		memset(buf + 8, 0, STUN_TID_LEN);
	b->len = STUN_HEADER_LEN;
}

/* Reserves an attribute of vlen value bytes (zeroed, zero-padded) and updates
 * the header length so the buffer is always a well-formed message. Returns a
 * pointer to the value, or NULL (and sets b->err) when it does not fit. */
static uint8_t *stun_build_reserve(struct stun_builder *b, uint16_t type, size_t vlen)
{
	size_t need;
	uint8_t *p;

	if (b->err)
		return NULL;
	need = 4 + pad4(vlen);
	if (vlen > 0xFFFF || need > b->cap - b->len || b->len + need > STUN_MAX_MSG_LEN) {
		b->err = 1;
		return NULL;
	}
	p = b->buf + b->len;
	put16(p, type);
	put16(p + 2, (uint16_t)vlen);
	memset(p + 4, 0, pad4(vlen));
	b->len += need;
	put16(b->buf + 2, (uint16_t)(b->len - STUN_HEADER_LEN));
	return p + 4;
}

int stun_build_attr(struct stun_builder *b, uint16_t type, const void *val, size_t len)
{
	uint8_t *p = stun_build_reserve(b, type, len);

	if (p == NULL)
		return -1;
	if (len > 0)
		memcpy(p, val, len);
	return 0;
}

int stun_build_str(struct stun_builder *b, uint16_t type, const char *s)
{
	if (s == NULL) {
		b->err = 1;
		return -1;
	}
	return stun_build_attr(b, type, s, strlen(s));
}

int stun_build_u32(struct stun_builder *b, uint16_t type, uint32_t v)
{
	uint8_t *p = stun_build_reserve(b, type, 4);

	if (p == NULL)
		return -1;
	put32(p, v);
	return 0;
}

int stun_build_xor_addr(struct stun_builder *b, uint16_t type, const struct stun_addr *a)
{
	uint8_t key[16], *p;
	size_t iplen;

	if (b->err)
		return -1;
	if (a == NULL || (a->family != STUN_AF_IPV4 && a->family != STUN_AF_IPV6)) {
		b->err = 1;
		return -1;
	}
	iplen = a->family == STUN_AF_IPV4 ? 4 : 16;
	p = stun_build_reserve(b, type, 4 + iplen);
	if (p == NULL)
		return -1;
	stun_xor_key(b->buf + 8, key);
	p[1] = a->family;
	put16(p + 2, a->port ^ (uint16_t)(STUN_MAGIC_COOKIE >> 16));
	for (size_t i = 0; i < iplen; i++)
		p[4 + i] = a->ip[i] ^ key[i];
	return 0;
}

int stun_build_error(struct stun_builder *b, int code, const char *reason)
{
	size_t rlen;
	uint8_t *p;

	if (b->err)
		return -1;
	if (reason == NULL)
		reason = stun_error_reason(code);
	rlen = strlen(reason);
	if (code < 300 || code > 699 || rlen > 762) {
		b->err = 1;
		return -1;
	}
	p = stun_build_reserve(b, STUN_ATTR_ERROR_CODE, 4 + rlen);
	if (p == NULL)
		return -1;
	p[2] = (uint8_t)(code / 100);
	p[3] = (uint8_t)(code % 100);
	memcpy(p + 4, reason, rlen);
	return 0;
}

int stun_build_unknown(struct stun_builder *b, const uint16_t *types, size_t n)
{
	uint8_t *p;

	if (n > 0xFFFF / 2) {
		b->err = 1;
		return -1;
	}
	p = stun_build_reserve(b, STUN_ATTR_UNKNOWN_ATTRIBUTES, 2 * n);
	if (p == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		put16(p + 2 * i, types[i]);
	return 0;
}

/* Appends an HMAC attribute: reserving it first puts the header length where
 * §14.5/§14.6 want it (covering the new attribute) before hashing. */
static int stun_build_hmac(struct stun_builder *b, uint16_t type, enum stun_hmac_alg digest, size_t maclen,
			   const uint8_t *key, size_t keylen)
{
	uint8_t *p = stun_build_reserve(b, type, maclen);
	size_t off;

	if (p == NULL)
		return -1;
	off = (size_t)(p - 4 - b->buf);
	if (stun_hmac(digest, key, keylen, b->buf, STUN_HEADER_LEN, b->buf + STUN_HEADER_LEN, off - STUN_HEADER_LEN, p,
		      maclen) != 0) {
		b->err = 1;
		return -1;
	}
	return 0;
}

int stun_build_integrity(struct stun_builder *b, const uint8_t *key, size_t keylen)
{
	return stun_build_hmac(b, STUN_ATTR_MESSAGE_INTEGRITY, STUN_HMAC_SHA1, STUN_MI_LEN, key, keylen);
}

int stun_build_integrity_sha256(struct stun_builder *b, const uint8_t *key, size_t keylen)
{
	return stun_build_hmac(b, STUN_ATTR_MESSAGE_INTEGRITY_SHA256, STUN_HMAC_SHA256, STUN_MI256_LEN, key,
			       keylen);
}

int stun_build_fingerprint(struct stun_builder *b)
{
	uint8_t *p = stun_build_reserve(b, STUN_ATTR_FINGERPRINT, 4);

	if (p == NULL)
		return -1;
	put32(p, stun_crc32(b->buf, (size_t)(p - 4 - b->buf)) ^ STUN_FINGERPRINT_XOR);
	return 0;
}

size_t stun_build_finish(struct stun_builder *b)
{
	return b->err ? 0 : b->len;
}

/* ---- ChannelData -------------------------------------------------------- */

int turn_channel_data_parse(const uint8_t *buf, size_t len, uint16_t *channel, uint16_t *dlen)
{
	uint16_t ch, n;

	if (buf == NULL || len < TURN_CHANNEL_HDR)
		return -1;
	ch = get16(buf);
	n = get16(buf + 2);
	if (ch < TURN_CHANNEL_MIN || ch > TURN_CHANNEL_MAX_RFC5766 || (size_t)n > len - TURN_CHANNEL_HDR)
		return -1;
	*channel = ch;
	*dlen = n;
	return 0;
}
