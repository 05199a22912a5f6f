/* test_signal_sio.c -- unit tests for the Socket.IO v5 packets of the
 * socket.io endpoint (signal_sio): parsing (namespaces, ack ids, binary
 * packets, bad input), encoding, and the event <-> room message mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "signal/signal_sio.h"

static int parse(const char *text, struct signal_sio_pkt *p, const char **why)
{
	return signal_sio_parse(text, strlen(text), 32, p, why);
}

static void test_parse(void **state)
{
	struct signal_sio_pkt p;
	const char *why = NULL;

	(void)state;
	assert_int_equal(parse("0", &p, &why), 0);
	assert_int_equal(p.type, SIGNAL_SIO_CONNECT);
	assert_string_equal(p.nsp, "/");
	assert_null(p.data);
	assert_int_equal(parse("0{\"token\":\"x\"}", &p, &why), 0);
	assert_true(json_is_object(p.data));
	json_decref(p.data);
	assert_int_equal(parse("0/admin,", &p, &why), 0);
	assert_string_equal(p.nsp, "/admin");
	assert_int_equal(parse("2[\"offer\",{\"sdp\":\"v=0\"}]", &p, &why), 0);
	assert_int_equal(p.type, SIGNAL_SIO_EVENT);
	assert_int_equal(p.ack, -1);
	assert_int_equal(json_array_size(p.data), 2);
	json_decref(p.data);
	assert_int_equal(parse("212[\"join\",\"r\"]", &p, &why), 0);
	assert_int_equal(p.ack, 12);
	json_decref(p.data);
	assert_int_equal(parse("2/chat,7[\"x\"]", &p, &why), 0);
	assert_string_equal(p.nsp, "/chat");
	assert_int_equal(p.ack, 7);
	json_decref(p.data);
	assert_int_equal(parse("51-3[\"up\",{\"_placeholder\":true,\"num\":0}]", &p, &why), 0);
	assert_int_equal(p.type, SIGNAL_SIO_BINARY_EVENT);
	assert_int_equal(p.ack, 3);
	assert_null(p.data);
	assert_int_equal(parse("5[\"x\"]", &p, &why), -1);
	assert_int_equal(parse("", &p, &why), -1);
	assert_int_equal(parse("9", &p, &why), -1);
	assert_int_equal(parse("2[\"x\"", &p, &why), -1);
	assert_string_equal(why, "invalid JSON");
	assert_int_equal(parse("21234567890123456[\"x\"]", &p, &why), -1);
	assert_int_equal(parse("2{\"a\":1,\"a\":2}", &p, &why), -1);
	assert_int_equal(signal_sio_parse("2[[[[[1]]]]]", 12, 3, &p, &why), -1);
	assert_string_equal(why, "too deep");
}

static void test_encode(void **state)
{
	json_t *d = json_pack("[s, {s:s}]", "joined", "id", "ab");
	char *s;

	(void)state;
	s = signal_sio_encode(SIGNAL_SIO_EVENT, NULL, -1, d);
	assert_string_equal(s, "42[\"joined\",{\"id\":\"ab\"}]");
	free(s);
	s = signal_sio_encode(SIGNAL_SIO_ACK, "/", 5, d);
	assert_string_equal(s, "435[\"joined\",{\"id\":\"ab\"}]");
	free(s);
	json_decref(d);
	d = json_pack("{s:s}", "message", "Invalid namespace");
	s = signal_sio_encode(SIGNAL_SIO_CONNECT_ERROR, "/admin", -1, d);
	assert_string_equal(s, "44/admin,{\"message\":\"Invalid namespace\"}");
	free(s);
	json_decref(d);
	s = signal_sio_encode(SIGNAL_SIO_DISCONNECT, NULL, -1, NULL);
	assert_string_equal(s, "41");
	free(s);
}

static void check_json(json_t *j, const char *want)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static void test_to_room(void **state)
{
	const char *why = NULL;
	json_t *args, *m;

	(void)state;
	/* one object without "type": merged, a client "from" dropped */
	args = json_loads("[\"rtc_offer\",{\"to\":\"p2\",\"from\":\"fake\",\"offer\":{\"sdp\":\"v=0\"}}]", 0, NULL);
	m = signal_sio_to_room(args, &why);
	check_json(m, "{\"offer\":{\"sdp\":\"v=0\"},\"to\":\"p2\",\"type\":\"rtc_offer\"}");
	json_decref(m);
	json_decref(args);
	/* an RTCSessionDescription has a "type": kept under "args" */
	args = json_loads("[\"offer\",{\"type\":\"offer\",\"sdp\":\"v=0\"}]", 0, NULL);
	m = signal_sio_to_room(args, &why);
	check_json(m, "{\"args\":[{\"sdp\":\"v=0\",\"type\":\"offer\"}],\"type\":\"offer\"}");
	json_decref(m);
	json_decref(args);
	/* several arguments; "to" lifted from the first */
	args = json_loads("[\"candidate\",{\"to\":\"p3\",\"c\":1},2]", 0, NULL);
	m = signal_sio_to_room(args, &why);
	check_json(m, "{\"args\":[{\"c\":1,\"to\":\"p3\"},2],\"to\":\"p3\",\"type\":\"candidate\"}");
	json_decref(m);
	json_decref(args);
	args = json_loads("[\"bye\"]", 0, NULL);
	m = signal_sio_to_room(args, &why);
	check_json(m, "{\"args\":[],\"type\":\"bye\"}");
	json_decref(m);
	json_decref(args);
	args = json_loads("[1,2]", 0, NULL);
	assert_null(signal_sio_to_room(args, &why));
	json_decref(args);
	args = json_loads("[\"\"]", 0, NULL);
	assert_null(signal_sio_to_room(args, &why));
	json_decref(args);
}

static void test_from_room(void **state)
{
	json_t *msg, *ev;

	(void)state;
	msg = json_loads("{\"type\":\"rtc_offer\",\"to\":\"p2\",\"offer\":1,\"from\":\"p1\"}", 0, NULL);
	ev = signal_sio_from_room(msg);
	check_json(ev, "[\"rtc_offer\",{\"from\":\"p1\",\"offer\":1,\"to\":\"p2\"}]");
	json_decref(ev);
	json_decref(msg);
	msg = json_loads("{\"type\":\"offer\",\"args\":[{\"type\":\"offer\",\"sdp\":\"x\"},2],\"from\":\"p1\"}", 0, NULL);
	ev = signal_sio_from_room(msg);
	check_json(ev, "[\"offer\",{\"from\":\"p1\",\"sdp\":\"x\",\"type\":\"offer\"},2]");
	json_decref(ev);
	json_decref(msg);
	msg = json_loads("{\"type\":\"peer-joined\",\"id\":\"p9\"}", 0, NULL);
	ev = signal_sio_from_room(msg);
	check_json(ev, "[\"peer-joined\",{\"id\":\"p9\"}]");
	json_decref(ev);
	json_decref(msg);
	msg = json_loads("{\"id\":\"p9\"}", 0, NULL);
	assert_null(signal_sio_from_room(msg));
	json_decref(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_to_room),
		cmocka_unit_test(test_from_room),
	};

	return cmocka_run_group_tests_name("signal_sio", tests, NULL, NULL);
}
