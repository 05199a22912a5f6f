/* stun_prep.h -- preparation of long-term credential strings (RFC 8489
 * §9.2.2 with the OpaqueString profile of RFC 8265 §4.2, which replaced
 * RFC 5389's SASLprep).
 *
 * Pure code. What is done: the string must be valid UTF-8 (no overlong
 * forms, surrogates or noncharacters) without control characters (U+0000-
 * U+001F, U+007F-U+009F) and not empty; non-ASCII spaces (Unicode Zs) become
 * U+0020. What is not done: NFC normalisation (no Unicode tables without a
 * library; input is taken as already NFC, as ASCII and nearly all typed text
 * is) and the check for unassigned code points. For ASCII the profile is the
 * identity plus the control-character rejection, and that is exact.
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
