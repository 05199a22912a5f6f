/* test_signal_eio.c -- unit tests for the Engine.IO v4 framing of the
 * socket.io endpoint (signal_eio): path and query checks, the open packet,
 * polling payload splitting, session ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "signal/signal_eio.h"

static void test_path(void **state)
{
	(void)state;
	assert_true(signal_eio_is_path("/socket.io/?EIO=4&transport=polling"));
	assert_true(signal_eio_is_path("/socket.io/"));
	assert_true(signal_eio_is_path("/socket.io"));
	assert_false(signal_eio_is_path("/socket.io/x"));
	assert_false(signal_eio_is_path("/socket.iox"));
	assert_false(signal_eio_is_path("/ws"));
}

static void test_query(void **state)
{
	struct signal_eio_query q;
	const char *why = NULL;
	const char *sid = "0123456789abcdef0123456789abcdef";
	char target[128];

	(void)state;
	assert_int_equal(signal_eio_query_parse("/socket.io/?EIO=4&transport=polling&t=abc", &q, &why), 0);
	assert_int_equal(q.transport, SIGNAL_EIO_POLLING);
	assert_string_equal(q.sid, "");
	snprintf(target, sizeof(target), "/socket.io/?EIO=4&transport=websocket&sid=%s", sid);
	assert_int_equal(signal_eio_query_parse(target, &q, &why), 0);
	assert_int_equal(q.transport, SIGNAL_EIO_WEBSOCKET);
	assert_string_equal(q.sid, sid);
	assert_int_equal(signal_eio_query_parse("/socket.io/?EIO=3&transport=polling", &q, &why), -1);
	assert_string_equal(why, "unsupported protocol version");
	assert_int_equal(signal_eio_query_parse("/socket.io/?transport=polling", &q, &why), -1);
	assert_int_equal(signal_eio_query_parse("/socket.io/?EIO=4", &q, &why), -1);
	assert_string_equal(why, "transport unknown");
	assert_int_equal(signal_eio_query_parse("/socket.io/?EIO=4&transport=flashsocket", &q, &why), -1);
	assert_int_equal(signal_eio_query_parse("/socket.io/?EIO=4&transport=polling&sid=abc", &q, &why), -1);
	assert_string_equal(why, "session ID unknown");
	assert_int_equal(signal_eio_query_parse("/socket.io/?EIO=4&transport=polling&sid=0123456789ABCDEF0123456789abcdef",
						&q, &why), -1);
	assert_int_equal(signal_eio_query_parse("/socket.io/?EIO=4&transport=polling&sid=%zz", &q, &why), -1);
}

static void test_open_packet(void **state)
{
	char out[256];
	int n;

	(void)state;
	n = signal_eio_open_packet(out, sizeof(out), "abc", 1, 25000, 20000, 65536);
	assert_int_equal(n, (int)strlen(out));
	assert_string_equal(out, "0{\"sid\":\"abc\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
				 "\"pingTimeout\":20000,\"maxPayload\":65536}");
	signal_eio_open_packet(out, sizeof(out), "abc", 0, 2500, 2500, 1000);
	assert_non_null(strstr(out, "\"upgrades\":[]"));
	assert_int_equal(signal_eio_open_packet(out, 10, "abc", 1, 1, 1, 1), -1);
}

static void test_payload(void **state)
{
	const char *buf = "4hello\x1e" "2\x1e" "40{}";
	const char *pkt;
	size_t pos = 0, len;

	(void)state;
	assert_int_equal(signal_eio_payload_next(buf, strlen(buf), &pos, &pkt, &len), 1);
	assert_int_equal(len, 6);
	assert_memory_equal(pkt, "4hello", 6);
	assert_int_equal(signal_eio_payload_next(buf, strlen(buf), &pos, &pkt, &len), 1);
	assert_int_equal(len, 1);
	assert_memory_equal(pkt, "2", 1);
	assert_int_equal(signal_eio_payload_next(buf, strlen(buf), &pos, &pkt, &len), 1);
	assert_int_equal(len, 4);
	assert_memory_equal(pkt, "40{}", 4);
	assert_int_equal(signal_eio_payload_next(buf, strlen(buf), &pos, &pkt, &len), 0);
	/* empty payload: nothing; a trailing separator: one empty packet */
	pos = 0;
	assert_int_equal(signal_eio_payload_next("", 0, &pos, &pkt, &len), 0);
	pos = 0;
	assert_int_equal(signal_eio_payload_next("3\x1e", 2, &pos, &pkt, &len), 1);
	assert_int_equal(len, 1);
	assert_int_equal(signal_eio_payload_next("3\x1e", 2, &pos, &pkt, &len), 1);
	assert_int_equal(len, 0);
	assert_int_equal(signal_eio_payload_next("3\x1e", 2, &pos, &pkt, &len), 0);
}

static void test_sid(void **state)
{
	char a[SIGNAL_EIO_SID_LEN + 1], b[SIGNAL_EIO_SID_LEN + 1];
	size_t i;

	(void)state;
	assert_int_equal(signal_eio_sid_new(a), 0);
	assert_int_equal(signal_eio_sid_new(b), 0);
	assert_int_equal(strlen(a), SIGNAL_EIO_SID_LEN);
	assert_string_not_equal(a, b);
	for (i = 0; i < SIGNAL_EIO_SID_LEN; i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	assert_true(signal_eio_sid_hash(a, 1024) < 1024);
	assert_int_equal(signal_eio_sid_hash("00000fff", 1024), 1023);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_open_packet),
		cmocka_unit_test(test_payload),
		cmocka_unit_test(test_sid),
	};

	return cmocka_run_group_tests_name("signal_eio", tests, NULL, NULL);
}
