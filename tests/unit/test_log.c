/* test_log.c -- unit tests for the log layer: escaping of client strings,
 * control bytes in whole lines, log-file reopen, rate limiting. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

static void test_escape(void **state)
{
	char out[LOG_ESCAPE_LEN(32)];
	const char in[] = "a\r\nb\x1b\\\x7f\xc3\xa9";

	assert_string_equal(log_escape(in, sizeof(in) - 1, out, sizeof(out)),
			    "a\\x0d\\x0ab\\x1b\\x5c\\x7f\\xc3\\xa9");
	/* a NUL inside the given length is escaped, not an end */
	assert_string_equal(log_escape("x\0y", 3, out, sizeof(out)), "x\\x00y");
	assert_string_equal(LOG_ESC("plain user@example.org"), "plain user@example.org");
}

static void test_escape_truncates(void **state)
{
	char out[6];

	/* no partial \xHH: "ab" + "\x0d" would need 6 + NUL */
	assert_string_equal(log_escape("ab\rcd", 5, out, sizeof(out)), "ab");
	assert_string_equal(log_escape("abcdefgh", 8, out, sizeof(out)), "abcde");
	assert_string_equal(log_escape("abc", 3, out, 1), "");
}

/* Reads path into buf (NUL-terminated). */
static void slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, buf, len - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
}

static void test_line_has_no_control_bytes_and_reopen(void **state)
{
	char dir[] = "/tmp/turnstone-test-log-XXXXXX", path[64], old[72], buf[4096];
	const char *p;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/log", dir);
	snprintf(old, sizeof(old), "%s/log.1", dir);
	assert_int_equal(log_open(path), 0);
	/* a caller that forgot LOG_ESC still cannot start a line */
	log_info("user '%s'", "x\r\n2030-01-01T00:00:00Z error: forged");
	slurp(path, buf, sizeof(buf));
	assert_non_null(strstr(buf, "info: user 'x\\x0d\\x0a2030-01-01T00:00:00Z error: forged'\n"));
	for (p = buf; *p != '\0'; p++)
		assert_true(*p == '\n' || (unsigned char)*p >= 0x20);
	assert_int_equal((int)(strchr(buf, '\n') - buf), (int)strlen(buf) - 1);

	assert_int_equal(rename(path, old), 0);
	assert_int_equal(log_reopen(), 0);
	log_info("after");
	slurp(path, buf, sizeof(buf));
	assert_non_null(strstr(buf, "info: after\n"));
	slurp(old, buf, sizeof(buf));
	assert_null(strstr(buf, "after"));
	assert_int_equal(log_open(NULL), 0);
	unlink(path);
	unlink(old);
	rmdir(dir);
}

static void test_ratelimit(void **state)
{
	_Atomic int64_t last = 0;

	assert_int_equal(log_ratelimit(&last, 10), 1);
	assert_int_equal(log_ratelimit(&last, 10), 0);
	assert_int_equal(log_ratelimit(&last, 10), 0);
	last = last - 11; /* as if 11 s passed */
	assert_int_equal(log_ratelimit(&last, 10), 1);
	assert_int_equal(log_ratelimit(&last, 10), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_truncates),
		cmocka_unit_test(test_line_has_no_control_bytes_and_reopen),
		cmocka_unit_test(test_ratelimit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
