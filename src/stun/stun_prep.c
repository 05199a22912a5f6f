/* stun_prep.c -- OpaqueString preparation of credentials (see stun_prep.h).
 * Unicode tables (normalisation, general categories, properties) come from
 * GNU libunistring. */
#include "stun/stun_prep.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

/* RFC 8264 §9.9 OldHangulJamo: conjoining Jamo (Hangul_Syllable_Type L, V, T). */
static int old_hangul_jamo(ucs4_t c)
{
	return (c >= 0x1100 && c <= 0x11ff) || (c >= 0xa960 && c <= 0xa97c) || (c >= 0xd7b0 && c <= 0xd7c6) ||
	       (c >= 0xd7cb && c <= 0xd7fb);
}

/* 1 when c may appear in a FreeformClass string (RFC 8264 §4.3, §8): letters,
 * marks, digits and other numbers, punctuation, symbols and the ASCII space
 * (compatibility forms included). Refused: controls, PrecisIgnorableProperties
 * (default-ignorable code points and noncharacters), OldHangulJamo,
 * unassigned code points, and the rest (format, private use, surrogates,
 * line/paragraph separators). ZWJ/ZWNJ (CONTEXTJ) are refused too: their
 * context rule is not implemented, so the stricter answer is given. */
static int freeform_ok(ucs4_t c)
{
	if (c == 0x20)
		return 1;
	if (uc_is_property_default_ignorable_code_point(c) || uc_is_property_not_a_character(c) ||
	    old_hangul_jamo(c))
		return 0;
	return uc_is_general_category(c, uc_general_category_or(
						  uc_general_category_or(UC_LETTER, UC_MARK),
						  uc_general_category_or(uc_general_category_or(UC_NUMBER, UC_PUNCTUATION),
									 UC_SYMBOL)));
}

/* Unicode general category Zs other than U+0020 (RFC 8265 §4.2.1 maps them to U+0020). */
static int other_space(ucs4_t c)
{
	return c != 0x20 && uc_is_general_category(c, UC_SPACE_SEPARATOR);
}

int stun_opaque_string(const char *in, char *out, size_t cap)
{
	const uint8_t *s = (const uint8_t *)in, *p;
	size_t n = strlen(in), i = 0, m = 0, outlen;
	uint8_t *mapped, *nfc;
	ucs4_t c;
	int l;

	if (n == 0)
		return -1;
	/* Printable ASCII is FreeformClass, maps to itself and is NFC already:
	 * such a string (most credentials) is kept as it is, without the
	 * Unicode tables (test_opaque_string_ascii checks the two agree). */
	while (i < n && s[i] >= 0x20 && s[i] < 0x7f)
		i++;
	if (i == n) {
		if (n + 1 > cap)
			return -1;
		memcpy(out, in, n + 1);
		return (int)n;
	}
	i = 0;
	if (u8_check(s, n) != NULL)
		return -1;
	if ((mapped = malloc(n)) == NULL)
		return -1;
	/* 1. additional mapping: non-ASCII spaces to U+0020 */
	while (i < n) {
		l = u8_mbtouc(&c, s + i, n - i);
		if (other_space(c)) {
			mapped[m++] = ' ';
		} else {
			memcpy(mapped + m, s + i, (size_t)l);
			m += (size_t)l;
		}
		i += (size_t)l;
	}
	/* 2. normalisation: NFC */
	nfc = u8_normalize(UNINORM_NFC, mapped, m, NULL, &outlen);
	free(mapped);
	if (nfc == NULL)
		return -1;
	/* 3. the string class, on the result */
	for (p = nfc; p < nfc + outlen; p += l) {
		l = u8_mbtouc(&c, p, (size_t)(nfc + outlen - p));
		if (!freeform_ok(c)) {
			free(nfc);
			return -1;
		}
	}
	if (outlen == 0 || outlen + 1 > cap) {
		free(nfc);
		return -1;
	}
	memcpy(out, nfc, outlen);
	out[outlen] = '\0';
	free(nfc);
	return (int)outlen;
}

int stun_opaque_ok(const unsigned char *s, size_t len)
{
	char in[514], out[514];

	/* USERNAME is at most 513 bytes (RFC 8489 §14.3); prepared must equal given */
	if (len == 0 || len >= sizeof(in) || memchr(s, 0, len) != NULL)
		return 0;
	memcpy(in, s, len);
	in[len] = '\0';
	return stun_opaque_string(in, out, sizeof(out)) == (int)len && memcmp(in, out, len) == 0;
}
