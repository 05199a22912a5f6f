/* stun_prep.c -- OpaqueString preparation of credentials (see stun_prep.h). */
#include "stun/stun_prep.h"

#include <stdint.h>
#include <string.h>

/* Decodes one UTF-8 sequence at s (n bytes left). Returns its length and
 * sets *cp, or 0 when it is not valid UTF-8 (RFC 3629). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len, i;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static int disallowed(uint32_t c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f) || (c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) == 0xfffe;
}

/* Unicode general category Zs other than U+0020 (RFC 8265 §4.2.1 maps them to U+0020). */
static int other_space(uint32_t c)
{
	return c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x202f || c == 0x205f ||
	       c == 0x3000;
}

int stun_opaque_string(const char *in, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = strlen(in), i = 0, o = 0, l;
	uint32_t c;

	if (n == 0)
		return -1;
	while (i < n) {
		if ((l = utf8_next(s + i, n - i, &c)) == 0 || disallowed(c))
			return -1;
		if (other_space(c)) {
			if (o + 1 >= cap)
				return -1;
			out[o++] = ' ';
		} else {
			if (o + l >= cap)
				return -1;
			memcpy(out + o, s + i, l);
			o += l;
		}
		i += l;
	}
	out[o] = '\0';
	return (int)o;
}

int stun_opaque_ok(const unsigned char *s, size_t len)
{
	size_t i = 0, l;
	uint32_t c;

	if (len == 0)
		return 0;
	while (i < len) {
		if ((l = utf8_next(s + i, len - i, &c)) == 0 || disallowed(c) || other_space(c))
			return 0;
		i += l;
	}
	return 1;
}
