/* test_signal_http.c -- unit tests of the signaling endpoint's HTTP side:
 * request-head parsing, header tokens, the RFC 6455 §4.2.2 accept key and
 * the static file mapping (no directory traversal). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "signal/signal_http.h"

static struct signal_http_req req;

#define HEAD(s) signal_http_parse((s), strlen(s), &req)

static void test_parse(void **state)
{
	assert_int_equal(HEAD("GET /ws?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade:  websocket \r\nX-Empty:\r\n"), 0);
	assert_string_equal(req.method, "GET");
	assert_string_equal(req.target, "/ws?x=1");
	assert_int_equal(req.version_minor, 1);
	assert_int_equal(req.nhdr, 3);
	assert_string_equal(signal_http_header(&req, "upgrade"), "websocket");
	assert_string_equal(signal_http_header(&req, "X-EMPTY"), "");
	assert_null(signal_http_header(&req, "Origin"));
	assert_int_equal(HEAD("GET / HTTP/1.0\n"), 0); /* bare LF accepted */
}

static void test_parse_errors(void **state)
{
	char big[SIGNAL_HTTP_MAX_HEAD + 64];
	char many[SIGNAL_HTTP_MAX_HEADERS * 8 + 64];
	size_t i, n;

	assert_int_equal(HEAD("GET /\r\n"), 400);
	assert_int_equal(HEAD("GET x HTTP/1.1\r\n"), 400);
	assert_int_equal(HEAD("G(T / HTTP/1.1\r\n"), 400);
	assert_int_equal(HEAD("GET / HTTP/2.0\r\n"), 505);
	assert_int_equal(HEAD("GET / FTP/1.1\r\n"), 400);
	assert_int_equal(HEAD("GET / HTTP/1.1\r\nNo colon\r\n"), 400);
	assert_int_equal(HEAD("GET / HTTP/1.1\r\nA: b\r\n folded\r\n"), 400);
	assert_int_equal(HEAD("GET / HTTP/1.1\r\nBad Name: b\r\n"), 400);
	assert_int_equal(signal_http_parse("GET / HTTP/1.1\r\n\0", 17, &req), 400);
	memset(big, 'a', sizeof(big));
	assert_int_equal(signal_http_parse(big, sizeof(big), &req), 431);
	n = (size_t)snprintf(many, sizeof(many), "GET / HTTP/1.1\r\n");
	for (i = 0; i <= SIGNAL_HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "H%zu: 1\r\n", i);
	assert_int_equal(signal_http_parse(many, n, &req), 431);
}

static void test_tokens(void **state)
{
	assert_true(signal_http_has_token("keep-alive, Upgrade", "upgrade"));
	assert_true(signal_http_has_token("Upgrade", "upgrade"));
	assert_false(signal_http_has_token("upgraded", "upgrade"));
	assert_false(signal_http_has_token(NULL, "upgrade"));
}

static void test_ws_accept(void **state)
{
	char accept[29];
	char *origins[] = {"https://a.example", "http://b.example"};
	const char *ok = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
			 "Origin: HTTP://B.example\r\n";

	assert_int_equal(HEAD(ok), 0);
	assert_int_equal(signal_http_ws_check(&req, NULL, 0, accept), 0);
	assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 §1.3 */
	assert_int_equal(signal_http_ws_check(&req, origins, 2, accept), 0);
	assert_int_equal(signal_http_ws_check(&req, origins, 1, accept), 403);
	assert_int_equal(HEAD("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n"), 0);
	assert_int_equal(signal_http_ws_check(&req, NULL, 0, accept), 426);
	assert_int_equal(HEAD("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			      "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\nSec-WebSocket-Version: 13\r\n"), 0);
	assert_int_equal(signal_http_ws_check(&req, NULL, 0, accept), 400);
	assert_int_equal(HEAD("POST /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"), 0);
	assert_int_equal(signal_http_ws_check(&req, NULL, 0, accept), 400);
	assert_int_equal(HEAD("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n"
			      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"), 0);
	assert_int_equal(signal_http_ws_check(&req, NULL, 0, accept), 400);
}

static void test_map_file(void **state)
{
	char path[256];
	static const char *const refused[] = {"/../etc/passwd", "/a/../../x.html", "/./index.html", "//x.html",
					      "/.hidden.js", "/index.html/", "/%2e%2e/x.html", "/x", "/x.exe",
					      "/dir.js/x", "/a\\b.js", "", "x.html"};
	size_t i;

	assert_string_equal(signal_http_map_file("/srv/www", "/", path, sizeof(path)), "text/html; charset=utf-8");
	assert_string_equal(path, "/srv/www/index.html");
	assert_string_equal(signal_http_map_file("/srv/www", "/app.js?v=2", path, sizeof(path)),
			    "text/javascript; charset=utf-8");
	assert_string_equal(path, "/srv/www/app.js");
	assert_non_null(signal_http_map_file("/srv/www", "/css/style.css", path, sizeof(path)));
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		assert_null(signal_http_map_file("/srv/www", refused[i], path, sizeof(path)));
	assert_null(signal_http_map_file("/a/very/long/root", "/index.html", path, 10));
}

static void test_query_and_bearer(void **state)
{
	char v[64];
	char *origins[] = {"https://a.example"};

	assert_int_equal(signal_http_query_param("/ice-servers?token=1%3Aa%3Ar+x%2B:mac", "token", v, sizeof(v)), 1);
	assert_string_equal(v, "1:a:r x+:mac");
	assert_int_equal(signal_http_query_param("/p?x=1&token=abc&y=2", "token", v, sizeof(v)), 1);
	assert_string_equal(v, "abc");
	assert_int_equal(signal_http_query_param("/p?xtoken=1&token=", "token", v, sizeof(v)), 1);
	assert_string_equal(v, "");
	assert_int_equal(signal_http_query_param("/p?token=a#token=b", "token", v, sizeof(v)), 1);
	assert_string_equal(v, "a");
	assert_int_equal(signal_http_query_param("/p?tok=1", "token", v, sizeof(v)), 0);
	assert_int_equal(signal_http_query_param("/p#?token=1", "token", v, sizeof(v)), 0);
	assert_int_equal(signal_http_query_param("/p", "token", v, sizeof(v)), 0);
	assert_int_equal(signal_http_query_param("/p?token=%4", "token", v, sizeof(v)), -1);
	assert_int_equal(signal_http_query_param("/p?token=%zz", "token", v, sizeof(v)), -1);
	assert_int_equal(signal_http_query_param("/p?token=%00", "token", v, sizeof(v)), -1);
	assert_int_equal(signal_http_query_param("/p?token=abcdef", "token", v, 4), -1);

	assert_int_equal(HEAD("GET /ice-servers HTTP/1.1\r\nAuthorization: bearer  tok:en\r\n"), 0);
	assert_string_equal(signal_http_bearer(&req), "tok:en");
	assert_int_equal(HEAD("GET /ice-servers HTTP/1.1\r\nAuthorization: Basic eDp5\r\n"), 0);
	assert_null(signal_http_bearer(&req));
	assert_int_equal(HEAD("GET /ice-servers HTTP/1.1\r\n"), 0);
	assert_null(signal_http_bearer(&req));

	assert_true(signal_http_origin_allowed("HTTPS://A.example", origins, 1));
	assert_false(signal_http_origin_allowed("https://a.example.evil", origins, 1));
	assert_false(signal_http_origin_allowed("https://a.example", origins, 0));
}

static void test_json_depth(void **state)
{
	const char *flat = "{\"type\":\"x\",\"a\":[1,{\"b\":2}]}";      /* depth 3 */
	const char *strs = "{\"s\":\"[[[[{{{{\\\"[[[[\",\"t\":\"\\\\\"}"; /* brackets in strings */
	char deep[200];

	assert_false(signal_json_too_deep(flat, strlen(flat), 3));
	assert_true(signal_json_too_deep(flat, strlen(flat), 2));
	assert_false(signal_json_too_deep(strs, strlen(strs), 1));
	memset(deep, '[', 100);
	memset(deep + 100, ']', 100);
	assert_true(signal_json_too_deep(deep, sizeof(deep), 99));
	assert_false(signal_json_too_deep(deep, sizeof(deep), 100));
	/* sequential, not nested: depth stays 1 */
	assert_false(signal_json_too_deep("[][][][]", 8, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_ws_accept),
		cmocka_unit_test(test_map_file),
		cmocka_unit_test(test_query_and_bearer),
		cmocka_unit_test(test_json_depth),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
