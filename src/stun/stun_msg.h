/* stun_msg.h -- STUN message codec (RFC 8489) with the TURN attributes (RFC 8656).
 *
 * Pure code: byte buffers in, parsed views and built messages out. No sockets,
 * no event loop. Digests (HMAC-SHA1, HMAC-SHA256, MD5, SHA-256, CRC-32) come
 * from OpenSSL's libcrypto and zlib-free CRC code here.
 *
 * Byte order: every multi-byte field inside a message buffer is network order;
 * every integer passed to or returned from these functions is host order.
 */
#ifndef TURNSTONE_STUN_MSG_H
#define TURNSTONE_STUN_MSG_H

#include <stddef.h>
#include <stdint.h>

#define STUN_HEADER_LEN      20
#define STUN_MAGIC_COOKIE    0x2112A442u
#define STUN_TID_LEN         12
#define STUN_MAX_ATTRS       48      /* more attributes than this: message rejected */
#define STUN_MAX_MSG_LEN     65535   /* bytes, whole message with header */
#define STUN_FINGERPRINT_XOR 0x5354554Eu

/* Message classes (RFC 8489 §5), already decoded from the type field. */
enum stun_class {
	STUN_CLASS_REQUEST = 0,
	STUN_CLASS_INDICATION = 1,
	STUN_CLASS_SUCCESS = 2,
	STUN_CLASS_ERROR = 3,
};

/* Methods (RFC 8489 §18.2, RFC 8656 §17). */
enum stun_method {
	STUN_METHOD_BINDING = 0x001,
	TURN_METHOD_ALLOCATE = 0x003,
	TURN_METHOD_REFRESH = 0x004,
	TURN_METHOD_SEND = 0x006,
	TURN_METHOD_DATA = 0x007,
	TURN_METHOD_CREATE_PERMISSION = 0x008,
	TURN_METHOD_CHANNEL_BIND = 0x009,
	TURN_METHOD_CONNECT = 0x00A,            /* RFC 6062 §6.1 */
	TURN_METHOD_CONNECTION_BIND = 0x00B,
	TURN_METHOD_CONNECTION_ATTEMPT = 0x00C,
};

/* Attribute types (RFC 8489 §18.3, RFC 8656 §18). */
enum stun_attr_type {
	STUN_ATTR_MAPPED_ADDRESS = 0x0001,
	STUN_ATTR_USERNAME = 0x0006,
	STUN_ATTR_MESSAGE_INTEGRITY = 0x0008,
	STUN_ATTR_ERROR_CODE = 0x0009,
	STUN_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
	TURN_ATTR_CHANNEL_NUMBER = 0x000C,
	TURN_ATTR_LIFETIME = 0x000D,
	TURN_ATTR_XOR_PEER_ADDRESS = 0x0012,
	TURN_ATTR_DATA = 0x0013,
	STUN_ATTR_REALM = 0x0014,
	STUN_ATTR_NONCE = 0x0015,
	TURN_ATTR_XOR_RELAYED_ADDRESS = 0x0016,
	TURN_ATTR_REQUESTED_ADDRESS_FAMILY = 0x0017,
	TURN_ATTR_EVEN_PORT = 0x0018,
	TURN_ATTR_REQUESTED_TRANSPORT = 0x0019,
	TURN_ATTR_DONT_FRAGMENT = 0x001A,
	STUN_ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C,
	STUN_ATTR_PASSWORD_ALGORITHM = 0x001D,
	STUN_ATTR_USERHASH = 0x001E,
	STUN_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
	TURN_ATTR_RESERVATION_TOKEN = 0x0022,
	TURN_ATTR_CONNECTION_ID = 0x002A,     /* RFC 6062 §6.2 */
	STUN_ATTR_PRIORITY = 0x0024,          /* ICE, RFC 8445 */
	STUN_ATTR_USE_CANDIDATE = 0x0025,     /* ICE */
	/* comprehension-optional range 0x8000-0xFFFF */
	TURN_ATTR_ADDITIONAL_ADDRESS_FAMILY = 0x8000,
	TURN_ATTR_ADDRESS_ERROR_CODE = 0x8001,
	STUN_ATTR_PASSWORD_ALGORITHMS = 0x8002,
	STUN_ATTR_ALTERNATE_DOMAIN = 0x8003,
	TURN_ATTR_ICMP = 0x8004,
	STUN_ATTR_SOFTWARE = 0x8022,
	STUN_ATTR_ALTERNATE_SERVER = 0x8023,
	STUN_ATTR_FINGERPRINT = 0x8028,
	STUN_ATTR_ICE_CONTROLLED = 0x8029,
	STUN_ATTR_ICE_CONTROLLING = 0x802A,
	STUN_ATTR_RESPONSE_ORIGIN = 0x802B,
	STUN_ATTR_OTHER_ADDRESS = 0x802C,
};

/* PASSWORD-ALGORITHM values (RFC 8489 §18.5). */
enum stun_pw_alg {
	STUN_PW_ALG_MD5 = 0x0001,
	STUN_PW_ALG_SHA256 = 0x0002,
};

/* Transport address without socket headers. port is host order; ip is
 * network order (4 bytes used for IPv4, 16 for IPv6). */
struct stun_addr {
	uint8_t family;  /* STUN_AF_IPV4 or STUN_AF_IPV6 (the STUN wire values) */
	uint16_t port;
	uint8_t ip[16];
};
#define STUN_AF_IPV4 0x01
#define STUN_AF_IPV6 0x02

/* One attribute of a parsed message: a view into the message buffer. */
struct stun_attr {
	uint16_t type;
	uint16_t len;        /* value length in bytes, without padding */
	const uint8_t *val;  /* points into stun_msg.buf */
};

/* A parsed message: views into the caller's buffer, which must outlive it. */
struct stun_msg {
	const uint8_t *buf;
	size_t len;                    /* whole message, header included, bytes */
	uint16_t method;               /* enum stun_method value (12 bits) */
	uint8_t cls;                   /* enum stun_class */
	uint8_t tid[STUN_TID_LEN];
	size_t nattrs;
	struct stun_attr attrs[STUN_MAX_ATTRS];
	/* Offsets (from buf) of the integrity attributes' headers; 0 when absent. */
	size_t mi_off, mi256_off, fp_off;
	/* Unknown comprehension-required attributes (type < 0x8000) seen. The
	 * server answers a request carrying any with 420 + UNKNOWN-ATTRIBUTES. */
	size_t nunknown;
	uint16_t unknown[16];
	/* Set when a known attribute other than XOR-PEER-ADDRESS appears twice
	 * (the server answers 400). Only the first occurrence is in attrs[]. */
	int duplicate;
};

/* Result of stun_msg_parse. */
enum stun_parse_result {
	STUN_PARSE_OK = 0,
	STUN_PARSE_NOT_STUN = -1,   /* not a STUN message at all (bits, cookie, length) */
	STUN_PARSE_MALFORMED = -2,  /* a STUN header, but attributes are broken */
	STUN_PARSE_BAD_FINGERPRINT = -3,
};

/* Parses and validates buf[0..len) (RFC 8489 §5, §6.3, §14, §14.7):
 * top two bits zero, magic cookie, length field a multiple of 4 and equal to
 * len - 20, every attribute inside the message with 4-byte padding, at most
 * STUN_MAX_ATTRS attributes, attributes after MESSAGE-INTEGRITY ignored
 * except MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, FINGERPRINT last and
 * correct when present. Fills *m (views into buf). When err is not NULL it
 * receives a static string saying what was wrong.
 * Returns STUN_PARSE_OK or a negative enum stun_parse_result. */
int stun_msg_parse(struct stun_msg *m, const uint8_t *buf, size_t len, const char **err);

/* Quick test used on the hot path to tell STUN from ChannelData and noise:
 * 1 when buf could be a STUN message (first two bits 0, cookie present,
 * length consistent with len), else 0. */
int stun_msg_is_stun(const uint8_t *buf, size_t len);

/* First attribute of the given type, or NULL. */
const struct stun_attr *stun_msg_find(const struct stun_msg *m, uint16_t type);

/* Decodes an XOR-*-ADDRESS attribute value (RFC 8489 §14.2) using the
 * message's transaction ID for IPv6. Returns 0, or -1 when the value is
 * malformed (bad length or family). */
int stun_attr_xor_addr(const struct stun_msg *m, const struct stun_attr *a, struct stun_addr *out);

/* Decodes a plain MAPPED-ADDRESS-style value. Returns 0 or -1. */
int stun_attr_addr(const struct stun_attr *a, struct stun_addr *out);

/* Decodes a 32-bit attribute value (LIFETIME, ...). Returns 0 or -1 when len != 4. */
int stun_attr_u32(const struct stun_attr *a, uint32_t *out);

/* Decodes ERROR-CODE: *code is class*100+number (300..699), *reason points
 * into the message (not NUL-terminated), *reason_len its length in bytes.
 * Returns 0 or -1. */
int stun_attr_error_code(const struct stun_attr *a, int *code, const char **reason, size_t *reason_len);

/* Verifies MESSAGE-INTEGRITY-SHA256 when present, else MESSAGE-INTEGRITY
 * (RFC 8489 §14.5, §14.6), over the message as received, with key[0..keylen).
 * Returns 1 when valid, 0 when it does not match, -1 when the message has
 * neither attribute. */
int stun_msg_check_integrity(const struct stun_msg *m, const uint8_t *key, size_t keylen);

/* Long-term credential key (RFC 8489 §9.2.2): MD5 (16 bytes) or SHA-256
 * (32 bytes) of "username:realm:password". The strings are used as given
 * (realm and password prepared with OpaqueString, stun_prep.h; -1 when it
 * refuses one). alg is an
 * enum stun_pw_alg. Returns the key length in bytes, or -1 on a bad alg. */
int stun_long_term_key(int alg, const char *username, const char *realm, const char *password,
		       uint8_t out[32]);

/* USERHASH (RFC 8489 §14.4): SHA-256 of "username:realm" into out. */
void stun_userhash(const char *username, const char *realm, uint8_t out[32]);

/* Default reason phrase for an error code (RFC 8489 §14.8, RFC 8656 §18). */
const char *stun_error_reason(int code);

/* ---- building ---------------------------------------------------------- */

/* A message under construction in a caller-owned buffer. Any overflow sets
 * err; later calls then do nothing and stun_build_finish returns 0. */
struct stun_builder {
	uint8_t *buf;
	size_t cap;   /* bytes */
	size_t len;   /* bytes written so far, header included */
	int err;
};

/* Starts a message: header with method/class/tid, length 0. */
void stun_build_init(struct stun_builder *b, uint8_t *buf, size_t cap, uint16_t method, uint8_t cls,
		     const uint8_t tid[STUN_TID_LEN]);
/* Appends an attribute with len bytes of value, zero padding to 4 bytes. Returns 0 or -1. */
int stun_build_attr(struct stun_builder *b, uint16_t type, const void *val, size_t len);
/* Appends a string attribute (USERNAME, REALM, NONCE, SOFTWARE...). Returns 0 or -1. */
int stun_build_str(struct stun_builder *b, uint16_t type, const char *s);
/* Appends a 32-bit attribute, value host order. Returns 0 or -1. */
int stun_build_u32(struct stun_builder *b, uint16_t type, uint32_t v);
/* Appends an XOR-*-ADDRESS attribute (uses the tid already in the header). Returns 0 or -1. */
int stun_build_xor_addr(struct stun_builder *b, uint16_t type, const struct stun_addr *a);
/* Appends ERROR-CODE; reason NULL means stun_error_reason(code). Returns 0 or -1. */
int stun_build_error(struct stun_builder *b, int code, const char *reason);
/* Appends UNKNOWN-ATTRIBUTES listing n types. Returns 0 or -1. */
int stun_build_unknown(struct stun_builder *b, const uint16_t *types, size_t n);
/* Appends MESSAGE-INTEGRITY (HMAC-SHA1 with key), computed over the message so
 * far with the length field covering the new attribute. Returns 0 or -1. */
int stun_build_integrity(struct stun_builder *b, const uint8_t *key, size_t keylen);
/* Same for MESSAGE-INTEGRITY-SHA256 (32-byte HMAC-SHA256). Returns 0 or -1. */
int stun_build_integrity_sha256(struct stun_builder *b, const uint8_t *key, size_t keylen);
/* Appends FINGERPRINT (CRC-32 xor 0x5354554E); must be the last attribute. Returns 0 or -1. */
int stun_build_fingerprint(struct stun_builder *b);
/* Returns the finished message length in bytes, or 0 if anything overflowed. */
size_t stun_build_finish(struct stun_builder *b);

/* ---- ChannelData (RFC 8656 §12.4) --------------------------------------- */

#define TURN_CHANNEL_MIN 0x4000
#define TURN_CHANNEL_MAX 0x4FFF         /* RFC 8656 §12 */
#define TURN_CHANNEL_MAX_RFC5766 0x7FFF /* RFC 5766's range, still used by some clients */
#define TURN_CHANNEL_HDR 4

/* 1 when the first byte marks ChannelData (top bits 01), else 0. */
static inline int turn_is_channel_data(const uint8_t *buf, size_t len)
{
	return len >= TURN_CHANNEL_HDR && (buf[0] & 0xC0) == 0x40;
}

/* Parses a ChannelData header: *channel and *dlen (host order, bytes of
 * application data). Returns 0 when buf holds at least 4 + dlen bytes and the
 * channel is in 0x4000-0x7FFF (RFC 5766's range: the caller decides which
 * numbers it binds), else -1. Trailing padding is allowed. */
int turn_channel_data_parse(const uint8_t *buf, size_t len, uint16_t *channel, uint16_t *dlen);

#endif
