/* stun_prep.h -- preparation of long-term credential strings (RFC 8489
 * §9.2.2 with the OpaqueString profile of RFC 8265 §4.2, which replaced
 * RFC 5389's SASLprep).
 *
 * Pure code (Unicode tables from libunistring). In order: the string must be
 * valid UTF-8 and not empty; non-ASCII spaces (Unicode Zs) become U+0020;
 * the result is normalised to NFC; then every code point must be allowed
 * by the FreeformClass (RFC 8264 §4.3): controls, default-ignorable code
 * points, noncharacters, Old Hangul Jamo, unassigned code points, format,
 * private-use and separator characters other than the space are refused, as
 * are ZWJ/ZWNJ (their CONTEXTJ rule is not implemented). For ASCII the
 * profile is the identity plus the refusal of control characters.
 */
#ifndef TURNSTONE_STUN_PREP_H
#define TURNSTONE_STUN_PREP_H

#include <stddef.h>

/* Writes the prepared form of the NUL-terminated in into out[0..cap) (NUL-
 * terminated; never longer than in). Returns its length in bytes, or -1
 * when the profile refuses in or it does not fit. */
int stun_opaque_string(const char *in, char *out, size_t cap);

/* 1 when the len bytes at s are a string the profile accepts unchanged
 * (used for USERNAME, which the client prepared), else 0. */
int stun_opaque_ok(const unsigned char *s, size_t len);

#endif
