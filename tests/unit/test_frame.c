/* test_frame.c -- unit tests for STUN/ChannelData framing on a byte stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "stun/stun_frame.h"
#include "stun/stun_msg.h"

/* A Binding request with one SOFTWARE attribute: 20 + 8 bytes. */
static size_t binding(uint8_t *buf, uint8_t tid0)
{
	uint8_t tid[STUN_TID_LEN] = { tid0 };
	struct stun_builder b;

	stun_build_init(&b, buf, 256, STUN_METHOD_BINDING, STUN_CLASS_REQUEST, tid);
	stun_build_str(&b, STUN_ATTR_SOFTWARE, "test");
	return stun_build_finish(&b);
}

/* Feeds stream[0..len) in chunks of at most step bytes to a framer like the
 * server's and counts complete messages; -1 on a framing error. */
static int count_frames(const uint8_t *stream, size_t len, size_t step, size_t *lens, int max)
{
	uint8_t buf[4096];
	size_t have = 0, fed = 0;
	struct stun_frame f;
	int n = 0, rc;

	while (fed < len || have > 0) {
		size_t take = len - fed < step ? len - fed : step;

		memcpy(buf + have, stream + fed, take);
		have += take;
		fed += take;
		while ((rc = stun_frame_next(buf, have, &f)) == 1 && f.frame_len <= have) {
			if (n < max)
				lens[n] = f.msg_len;
			n++;
			memmove(buf, buf + f.frame_len, have - f.frame_len);
			have -= f.frame_len;
		}
		if (rc < 0)
			return -1;
		if (take == 0)
			break; /* incomplete tail */
	}
	return n;
}

static void test_one_byte_at_a_time(void **state)
{
	uint8_t s[512];
	size_t n = binding(s, 1), lens[4];

	n += binding(s + n, 2);
	assert_int_equal(count_frames(s, n, 1, lens, 4), 2);
	assert_int_equal(lens[0], 28);
	assert_int_equal(lens[1], 28);
}

static void test_many_in_one_chunk(void **state)
{
	uint8_t s[4096];
	size_t n = 0, lens[64];
	int i;

	for (i = 0; i < 50; i++)
		n += binding(s + n, (uint8_t)i);
	assert_int_equal(count_frames(s, n, n, lens, 64), 50);
	/* and split at awkward places */
	assert_int_equal(count_frames(s, n, 7, lens, 64), 50);
	assert_int_equal(count_frames(s, n, 33, lens, 64), 50);
}

static void test_channel_data_padding(void **state)
{
	/* 5 data bytes padded to 8, then a Binding request */
	uint8_t s[256] = { 0x40, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0 };
	size_t n = 12, lens[4];
	struct stun_frame f;

	n += binding(s + n, 3);
	assert_int_equal(stun_frame_next(s, n, &f), 1);
	assert_true(f.channel_data);
	assert_int_equal(f.msg_len, 9);
	assert_int_equal(f.frame_len, 12);
	assert_int_equal(count_frames(s, n, 1, lens, 4), 2);
	assert_int_equal(lens[0], 9);
	assert_int_equal(lens[1], 28);
	/* already aligned: no padding */
	s[3] = 8;
	assert_int_equal(stun_frame_next(s, n, &f), 1);
	assert_int_equal(f.frame_len, 12);
	assert_int_equal(f.msg_len, 12);
	/* empty ChannelData is 4 bytes */
	s[3] = 0;
	assert_int_equal(stun_frame_next(s, 4, &f), 1);
	assert_int_equal(f.frame_len, 4);
}

static void test_unpadded_channel_data_desynchronises(void **state)
{
	/* Without padding the next message starts 3 bytes early: the framer
	 * must not take it for a message (it would swallow the client's next
	 * request); here the bytes it sees are not a valid start. */
	uint8_t s[256] = { 0x40, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o' };
	size_t n = 9, lens[4];

	n += binding(s + n, 4);
	/* the frame claims 12 bytes: 3 of the Binding header are eaten, and
	 * what follows does not start with a valid header */
	assert_int_equal(count_frames(s, n, n, lens, 4), -1);
}

static void test_length_that_lies(void **state)
{
	uint8_t s[64];
	size_t n = binding(s, 5), lens[4];
	struct stun_frame f;

	/* STUN length not a multiple of 4 */
	s[3] = 13;
	assert_int_equal(stun_frame_next(s, n, &f), -1);
	/* a length longer than what arrives: complete frame never seen */
	s[3] = 0x40;
	assert_int_equal(stun_frame_next(s, n, &f), 1);
	assert_true(f.frame_len > n);
	assert_int_equal(count_frames(s, n, 1, lens, 4), 0);
	/* bad magic cookie */
	s[3] = 8;
	s[4] ^= 0xff;
	assert_int_equal(stun_frame_next(s, n, &f), -1);
	s[4] ^= 0xff;
	/* top bits 10 and 11 are neither STUN nor ChannelData */
	s[0] = 0x80;
	assert_int_equal(stun_frame_next(s, n, &f), -1);
	s[0] = 0xC0;
	assert_int_equal(stun_frame_next(s, n, &f), -1);
	/* too little to tell */
	assert_int_equal(stun_frame_next(s, 3, &f), 0);
}

static void test_maximum_lengths(void **state)
{
	uint8_t s[8] = { 0x00, 0x01, 0xff, 0xfc, 0x21, 0x12, 0xa4, 0x42 };
	struct stun_frame f;

	assert_int_equal(stun_frame_next(s, sizeof(s), &f), 1);
	assert_int_equal(f.frame_len, 20 + 65532);
	s[0] = 0x4f;
	s[2] = 0xff;
	s[3] = 0xff;
	assert_int_equal(stun_frame_next(s, sizeof(s), &f), 1);
	assert_int_equal(f.msg_len, 4 + 65535);
	assert_int_equal(f.frame_len, 4 + 65536);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_byte_at_a_time),
		cmocka_unit_test(test_many_in_one_chunk),
		cmocka_unit_test(test_channel_data_padding),
		cmocka_unit_test(test_unpadded_channel_data_desynchronises),
		cmocka_unit_test(test_length_that_lies),
		cmocka_unit_test(test_maximum_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
