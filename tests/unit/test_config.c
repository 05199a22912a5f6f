/* test_config.c -- unit tests for config.c: defaults, the libconfig file,
 * command-line overrides, error messages and cross-key validation. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
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

/* By path: an autoconf build puts its own config.h on the include path first. */
#include "../../src/config.h"

#define NELEM(v) ((int)(sizeof(v) / sizeof((v)[0])))
#define ARGC(v) (NELEM(v) - 1)  /* argv-style arrays end with NULL */

/* Every key the file and the command line accept. */
static const char *const all_keys[] = {
	"listening-ip", "listening-port", "tls-listening-port", "relay-ip", "external-ip",
	"min-port", "max-port", "realm", "user", "lt-cred-mech", "stale-nonce",
	"max-allocate-lifetime", "default-allocate-lifetime", "permission-lifetime",
	"channel-lifetime", "denied-peer-ip", "allowed-peer-ip", "allow-loopback-peers", "no-udp",
	/* limits against abuse (docs/limits.md) */
	"user-quota", "total-quota", "max-bps", "bps-capacity", "max-permissions", "max-channels",
	"allocate-rate-per-ip", "unauthorized-rate-per-ip", "reservation-lifetime",
	"no-tcp", "no-tls", "no-stun", "relay-threads", "log-file", "verbose", "pidfile", "software",
	"prometheus", "prometheus-port", "prometheus-ip", "drain-timeout", /* issue 11 */
	"proc-user", "proc-group", "syslog",
};
#define N_KEYS (sizeof(all_keys) / sizeof(all_keys[0]))

/* A temp file holding text; the fixture unlinks it. */
struct fixture {
	char path[64];
	struct config c;
	char err[512];
};

static void write_conf(struct fixture *f, const char *text)
{
	int fd;

	strcpy(f->path, "/tmp/turnstone-test-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	config_defaults(&f->c);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->path[0] != '\0')
		unlink(f->path);
	config_free(&f->c);
	free(f);
	return 0;
}

/* Loads f->path (written by write_conf) plus extra arguments. */
static int load_with(struct fixture *f, char **extra, int nextra)
{
	char *argv[32] = { "turnstone", "-c", f->path };
	int help = -1, rc;

	assert_true(nextra <= 28);
	for (int i = 0; i < nextra; i++)
		argv[3 + i] = extra[i];
	rc = config_load(&f->c, 3 + nextra, argv, &help, f->err, sizeof(f->err));
	assert_int_equal(help, 0);
	return rc;
}

static int permits(const struct config *c, const char *ip)
{
	struct stun_addr a;

	memset(&a, 0, sizeof(a));
	a.family = strchr(ip, ':') ? STUN_AF_IPV6 : STUN_AF_IPV4;
	assert_int_equal(inet_pton(a.family == STUN_AF_IPV6 ? AF_INET6 : AF_INET, ip, a.ip), 1);
	return turn_policy_permits(c->policy, &a);
}

/* Asserts that err starts with "PATH:LINE: " and contains want. */
static void assert_err_at(const struct fixture *f, int line, const char *want)
{
	char prefix[128];

	snprintf(prefix, sizeof(prefix), "%s:%d: ", f->path, line);
	if (strncmp(f->err, prefix, strlen(prefix)) != 0 || strstr(f->err, want) == NULL)
		fail_msg("error '%s' lacks '%s' or '%s'", f->err, prefix, want);
}

static void test_defaults(void **state)
{
	struct config *c = &((struct fixture *)*state)->c;

	assert_int_equal(c->listening_port, 3478);
	assert_int_equal(c->tls_listening_port, 5349);
	assert_int_equal(c->min_port, 49152);
	assert_int_equal(c->max_port, 65535);
	assert_string_equal(c->realm, "turnstone");
	assert_int_equal(c->stale_nonce, 600);
	assert_int_equal(c->max_allocate_lifetime, 3600);
	assert_int_equal(c->default_allocate_lifetime, 600);
	assert_int_equal(c->permission_lifetime, 300);
	assert_int_equal(c->channel_lifetime, 600);
	assert_true(c->relay_threads >= 1);
	assert_non_null(c->software);
	assert_true(strncmp(c->software, "turnstone", 9) == 0);
	assert_non_null(c->policy);
	assert_int_equal(c->n_listening_ip, 0);
	assert_int_equal(c->n_users, 0);
	assert_int_equal(c->lt_cred_mech, 0);
	assert_int_equal(c->no_udp + c->no_tcp + c->no_tls + c->no_stun + c->verbose, 0);
	assert_null(c->log_file);
	assert_null(c->config_file);
	assert_int_equal(permits(c, "10.0.0.1"), 0);
	assert_int_equal(permits(c, "127.0.0.1"), 0);
}

static void test_file_every_type(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;

	write_conf(f, "listening-ip = \"127.0.0.1\";\n"
		      "relay-ip = [\"192.0.2.1\", \"2001:db8::1\"];\n"
		      "listening-port = 3479;\n"
		      "external-ip = \"203.0.113.5/192.0.2.1\";\n"
		      "realm = \"example.org\";\n"
		      "user = [\"alice:secret\", \"bob:pw:with:colons\"];\n"
		      "verbose = true;\n"
		      "no-stun = true;\n"
		      "relay-threads = 3;\n"
		      "log-file = \"/tmp/ts.log\";\n"
		      "software = \"\";\n"
		      "denied-peer-ip = \"8.8.8.0/24\";\n"
		      "allowed-peer-ip = [\"10.1.0.0-10.1.255.255\", \"fd00::/8\"];\n"
		      "allow-loopback-peers = true;\n");
	assert_int_equal(load_with(f, NULL, 0), 0);
	assert_string_equal(c->config_file, f->path);
	assert_int_equal(c->n_listening_ip, 1);
	assert_string_equal(c->listening_ip[0], "127.0.0.1");
	assert_int_equal(c->n_relay_ip, 2);
	assert_string_equal(c->relay_ip[1], "2001:db8::1");
	assert_int_equal(c->listening_port, 3479);
	assert_string_equal(c->external_ip, "203.0.113.5/192.0.2.1");
	assert_string_equal(c->realm, "example.org");
	assert_int_equal(c->n_users, 2);
	assert_string_equal(c->users[0].name, "alice");
	assert_string_equal(c->users[0].password, "secret");
	assert_string_equal(c->users[1].name, "bob");
	assert_string_equal(c->users[1].password, "pw:with:colons");
	assert_int_equal(c->lt_cred_mech, 1);  /* implied by users */
	assert_int_equal(c->verbose, 1);
	assert_int_equal(c->no_stun, 1);
	assert_int_equal(c->no_udp, 0);
	assert_int_equal(c->relay_threads, 3);
	assert_string_equal(c->log_file, "/tmp/ts.log");
	assert_null(c->software);  /* "" omits SOFTWARE */
	assert_int_equal(c->min_port, 49152);  /* untouched default */
	assert_int_equal(permits(c, "8.8.8.8"), 0);
	assert_int_equal(permits(c, "8.8.9.8"), 1);
	assert_int_equal(permits(c, "10.1.2.3"), 1);
	assert_int_equal(permits(c, "10.2.0.1"), 0);
	assert_int_equal(permits(c, "fd12::1"), 1);
	assert_int_equal(permits(c, "127.0.0.1"), 1);
	assert_int_equal(permits(c, "::ffff:127.0.0.1"), 1);
	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), 0);
}

static void test_cmdline_overrides_file(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;
	char *extra[] = { "--min-port=50001", "--realm", "cli.example", "--listening-ip=::1",
			  "--verbose=false", "--no-udp", "--no-tcp=true", "--user=carol:pw3",
			  "--denied-peer-ip=1.1.1.1", "-v" };

	write_conf(f, "min-port = 50000;\n"
		      "realm = \"file.example\";\n"
		      "listening-ip = [\"192.0.2.1\", \"192.0.2.2\"];\n"
		      "verbose = true;\n"
		      "no-tcp = false;\n"
		      "user = \"alice:pw1\";\n"
		      "denied-peer-ip = \"9.9.9.9\";\n");
	assert_int_equal(load_with(f, extra, NELEM(extra)), 0);
	assert_int_equal(c->min_port, 50001);
	assert_string_equal(c->realm, "cli.example");
	/* A list on the command line replaces the file's list... */
	assert_int_equal(c->n_listening_ip, 1);
	assert_string_equal(c->listening_ip[0], "::1");
	assert_int_equal(c->n_users, 1);
	assert_string_equal(c->users[0].name, "carol");
	/* ...but peer ranges accumulate. */
	assert_int_equal(permits(c, "9.9.9.9"), 0);
	assert_int_equal(permits(c, "1.1.1.1"), 0);
	assert_int_equal(c->verbose, 1);  /* -v comes after --verbose=false */
	assert_int_equal(c->no_udp, 1);
	assert_int_equal(c->no_tcp, 1);
}

static void test_cmdline_repeats(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;
	char *argv[] = { "turnstone", "--user=alice:one", "--listening-ip=127.0.0.1", "--user",
			 "bob:two", "--listening-ip=::1", "--listening-ip", "0.0.0.0",
			 "--max-port=60000", NULL };
	int help = -1;

	assert_int_equal(config_load(c, ARGC(argv), argv, &help, f->err, sizeof(f->err)), 0);
	assert_int_equal(help, 0);
	assert_null(c->config_file);
	assert_int_equal(c->n_users, 2);
	assert_string_equal(c->users[1].name, "bob");
	assert_string_equal(c->users[1].password, "two");
	assert_int_equal(c->lt_cred_mech, 1);
	assert_int_equal(c->n_listening_ip, 3);
	assert_string_equal(c->listening_ip[0], "127.0.0.1");
	assert_string_equal(c->listening_ip[2], "0.0.0.0");
	assert_int_equal(c->max_port, 60000);
	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), 0);
}

static void test_bad_syntax(void **state)
{
	struct fixture *f = *state;

	write_conf(f, "# comment\nrealm = \"x\";\nmin-port = ;\n");
	assert_int_equal(load_with(f, NULL, 0), -1);
	assert_err_at(f, 3, "syntax error");
}

static void test_bad_value(void **state)
{
	struct fixture *f = *state;
	char want[256];

	write_conf(f, "realm = \"x\";\n\nmin-port = \"abc\";\n");
	assert_int_equal(load_with(f, NULL, 0), -1);
	snprintf(want, sizeof(want), "%s:3: key 'min-port': must be an integer 1..65535", f->path);
	assert_string_equal(f->err, want);
}

static void test_bad_values_various(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *want;
	} cases[] = {
		{ "max-port = 70000;\n", 1, "key 'max-port': must be an integer 1..65535" },
		{ "\nverbose = 1;\n", 2, "key 'verbose': must be true or false" },
		{ "realm = 5;\n", 1, "key 'realm': must be a string" },
		{ "realm = \"\";\n", 1, "key 'realm': must not be empty" },
		{ "relay-threads = 0;\n", 1, "key 'relay-threads': must be an integer 1..1024" },
		{ "listening-ip = [\"1.2.3.4\",\n  \"nope\"];\n", 1, "key 'listening-ip': item 2: 'nope' is not an IP" },
		{ "listening-ip = 5;\n", 1, "key 'listening-ip': must be a string or a list" },
		{ "relay-ip = (\"1.2.3.4\",\n 7);\n", 1, "key 'relay-ip': item 2: must be a string" },
		{ "\nrelay-ip = [1, 2];\n", 2, "key 'relay-ip': item 1: must be a string" },
		{ "external-ip = \"1.2.3.4/x\";\n", 1, "key 'external-ip'" },
		{ "stale-nonce = 1.5;\n", 1, "key 'stale-nonce': must be an integer" },
		{ "min-port = 99999999999L;\n", 1, "key 'min-port': must be an integer" },
		{ "no-tls = { a = 1; };\n", 1, "key 'no-tls': must be true or false" },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		config_free(&f->c);
		config_defaults(&f->c);
		if (f->path[0] != '\0')
			unlink(f->path);
		write_conf(f, cases[i].text);
		if (load_with(f, NULL, 0) != -1)
			fail_msg("case %zu loaded: %s", i, cases[i].text);
		assert_err_at(f, cases[i].line, cases[i].want);
	}
}

static void test_bad_cmdline_values(void **state)
{
	static const struct {
		char *arg;
		const char *want;
	} cases[] = {
		{ "--min-port=abc", "command line: --min-port=abc: must be an integer 1..65535" },
		{ "--min-port=", "command line: --min-port=: must be an integer 1..65535" },
		{ "--min-port= 5", "command line: --min-port= 5: must be an integer 1..65535" },
		{ "--min-port=0", "command line: --min-port=0: must be an integer 1..65535" },
		{ "--min-port=12x", "command line: --min-port=12x: must be an integer 1..65535" },
		{ "--min-port=99999999999999999999", "must be an integer 1..65535" },
		{ "--no-udp=maybe", "command line: --no-udp=maybe: must be true or false" },
		{ "--listening-ip=localhost", "command line: --listening-ip=localhost: 'localhost' is not an IP address" },
		{ "--allowed-peer-ip=10.0.0.1/33", "command line: --allowed-peer-ip=10.0.0.1/33: '10.0.0.1/33'" },
		{ "--bogus=1", "command line: unknown option '--bogus'" },
		{ "--bogus", "command line: unknown option '--bogus'" },
		{ "stray", "command line: unexpected argument 'stray'" },
		{ "-x", "command line: unexpected argument '-x'" },
		{ "--realm", "command line: --realm needs a value" },
		{ "-c", "command line: -c needs a file name" },
	};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { "turnstone", cases[i].arg, NULL };
		config_free(&f->c);
		config_defaults(&f->c);
		assert_int_equal(config_load(&f->c, 2, argv, NULL, f->err, sizeof(f->err)), -1);
		if (strstr(f->err, cases[i].want) == NULL)
			fail_msg("%s: got '%s', want '%s'", cases[i].arg, f->err, cases[i].want);
	}
}

static void test_unknown_key(void **state)
{
	struct fixture *f = *state;

	write_conf(f, "realm = \"x\";\nfoo = 1;\n");
	assert_int_equal(load_with(f, NULL, 0), -1);
	assert_err_at(f, 2, "unknown key 'foo'");
}

/* coturn's turnserver.conf: key=value, "key value", bare booleans, quotes,
 * repeated list keys, coturn's value spellings; file:line:key errors. */
static void test_coturn_format(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;

	write_conf(f, "# coturn\n"
		      "listening-port=3479\n"
		      "  tls-listening-port 5350\n"
		      "listening-ip=127.0.0.1\n"
		      "listening-ip = ::1\n"
		      "realm=\"example.org\"\n"
		      "fingerprint\n"
		      "lt-cred-mech\n"
		      "no-tcp-relay\n"
		      "allow-loopback-peers=off\n"
		      "no-tls=no\n"
		      "verbose=1\n"
		      "user=alice:pw=with=equals\n"
		      "user=ninefingers:0xbc807ee29df3c9ffa736523fb2c4e8ee\n"
		      "relay-threads=0\n"
		      "stale-nonce\n"
		      "cipher-list=\"DEFAULT\"\n"
		      "CA-file=/tmp/ca.pem\n"
		      "prod\n"
		      "log-file=stdout\n"
		      "denied-peer-ip=83.166.64.0-83.166.95.255\n"
		      "no-cli\n"
		      "cli-password=qwerty\n"
		      "no-cli\n"
		      "external-ip=203.0.113.1/192.0.2.1\n"
		      "external-ip=203.0.113.2/192.0.2.2\n");
	assert_int_equal(load_with(f, NULL, 0), 0);
	assert_int_equal(c->coturn_format, 1);
	assert_int_equal(c->listening_port, 3479);
	assert_int_equal(c->tls_listening_port, 5350);
	assert_int_equal(c->n_listening_ip, 2);
	assert_string_equal(c->listening_ip[1], "::1");
	assert_string_equal(c->realm, "example.org");
	assert_int_equal(c->fingerprint, 1);
	assert_int_equal(c->lt_cred_mech, 1);
	assert_int_equal(c->no_tcp_relay, 1);
	assert_int_equal(c->allow_loopback_peers, 0);
	assert_int_equal(c->no_tls, 0);
	assert_int_equal(c->verbose, 1);
	assert_int_equal(c->n_users, 2);
	assert_string_equal(c->users[0].password, "pw=with=equals");
	assert_true(c->relay_threads >= 1);
	assert_int_equal(c->stale_nonce, 600);
	assert_string_equal(c->cipher_list, "DEFAULT");
	assert_string_equal(c->ca_file, "/tmp/ca.pem");
	assert_null(c->software);
	assert_null(c->log_file);
	assert_int_equal(permits(c, "83.166.70.1"), 0);
	/* no-cli twice and cli-password: one warning line per key, at the first line */
	assert_non_null(c->warnings);
	assert_non_null(strstr(c->warnings, ":22: key 'no-cli' accepted without effect"));
	assert_non_null(strstr(c->warnings, ":23: key 'cli-password' accepted without effect"));
	assert_null(strstr(strstr(c->warnings, "'no-cli'") + 1, "'no-cli'"));
	assert_null(strstr(c->warnings, "qwerty"));
	assert_int_equal(c->n_external_ip, 2);
	assert_string_equal(c->external_ips[1], "203.0.113.2/192.0.2.2");
	assert_ptr_equal(c->external_ip, c->external_ips[0]);
}

static void test_coturn_errors(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *want;
	} cases[] = {
		{ "user=a:b\nfoo=1\n", 2, "unknown key 'foo' (neither turnstone's nor coturn's)" },
		{ "user=a:b\n\nmysql-userdb=\"host=x\"\n", 3, "key 'mysql-userdb': coturn's key, not supported "
								 "by turnstone: no MySQL user database: put users in Redis" },
		{ "no-auth\n", 1, "key 'no-auth': coturn's key, not supported by turnstone: turnstone never "
				   "runs an open relay" },
		{ "verbose=maybe\n", 1, "key 'verbose': must be a boolean" },
		{ "# c\nlistening-port=http\n", 2, "key 'listening-port': must be an integer 1..65535" },
		{ "relay-ip=eth0\n", 1, "key 'relay-ip': 'eth0' is not an IP address" },
		{ "user=nopassword\n", 1, "key 'user': must be \"name:password\"" },
	};

	for (int i = 0; i < NELEM(cases); i++) {
		struct fixture *f = *state;

		config_free(&f->c);
		config_defaults(&f->c);
		if (f->path[0] != '\0')
			unlink(f->path);
		write_conf(f, cases[i].text);
		assert_int_equal(load_with(f, NULL, 0), -1);
		assert_err_at(f, cases[i].line, cases[i].want);
	}
}

/* The format is told apart by syntax: libconfig-only constructs pick
 * libconfig; a file with none of them reads the same either way. */
static void test_format_detection(void **state)
{
	static const struct {
		const char *text;
		int coturn;
	} cases[] = {
		{ "realm = \"x\";\n", 0 },
		{ "listening-ip = [\"127.0.0.1\"]\nrealm = \"x\"\n", 0 },
		{ "// c\nverbose = true\n", 0 },
		{ "realm: \"x\"\n", 0 },
		{ "verbose = true\nrealm = \"x\"\n", 1 },
		{ "verbose\nrealm=x\n", 1 },
		{ "verbose\nne=[1|2|3]\nweb-admin-ip=[::1]\n", 1 },
		{ "listening-ip = [ \"127.0.0.1\",\n \"::1\" ]\nrealm = \"x\"\n", 0 },
	};

	for (int i = 0; i < NELEM(cases); i++) {
		struct fixture *f = *state;

		config_free(&f->c);
		config_defaults(&f->c);
		if (f->path[0] != '\0')
			unlink(f->path);
		write_conf(f, cases[i].text);
		if (load_with(f, NULL, 0) != 0)
			fail_msg("case %d: %s", i, f->err);
		assert_int_equal(f->c.coturn_format, cases[i].coturn);
		assert_int_equal(f->c.verbose + (f->c.realm != NULL && strcmp(f->c.realm, "x") == 0) > 0, 1);
	}
}

static void test_key_class(void **state)
{
	const char *note;

	(void)state;
	assert_int_equal(config_key_class("listening-port", NULL), CONFIG_KEY_IMPLEMENTED);
	assert_int_equal(config_key_class("CA-file", &note), CONFIG_KEY_IMPLEMENTED);
	assert_non_null(strstr(note, "ca-file"));
	assert_int_equal(config_key_class("web-admin", NULL), CONFIG_KEY_NO_EFFECT);
	assert_int_equal(config_key_class("no-auth", &note), CONFIG_KEY_REFUSED);
	assert_non_null(strstr(note, "use-auth-secret"));
	assert_int_equal(config_key_class("no-such-key", NULL), CONFIG_KEY_UNKNOWN);
}

static void test_bad_user(void **state)
{
	static const char *const bad[] = { "\"bob\"", "\":pw\"", "\"bob:\"", "[\"a:1\", \"a:2\"]" };
	struct fixture *f = *state;
	char text[128];
	char *argv[] = { "turnstone", "--user=nocolonsecret", NULL };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		config_free(&f->c);
		config_defaults(&f->c);
		if (f->path[0] != '\0')
			unlink(f->path);
		snprintf(text, sizeof(text), "realm = \"x\";\n\nuser = %s;\n", bad[i]);
		write_conf(f, text);
		assert_int_equal(load_with(f, NULL, 0), -1);
		assert_err_at(f, 3, "key 'user'");
	}
	assert_non_null(strstr(f->err, "duplicate user 'a'"));
	assert_null(strstr(f->err, ":2"));  /* passwords are never echoed */

	config_free(&f->c);
	config_defaults(&f->c);
	assert_int_equal(config_load(&f->c, 2, argv, NULL, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "command line: --user: must be \"name:password\""));
	assert_null(strstr(f->err, "secret"));
}

static void test_bad_peer_range(void **state)
{
	struct fixture *f = *state;

	write_conf(f, "allowed-peer-ip = \"10.1.0.0/16\";\n"
		      "denied-peer-ip = [\n  \"1.2.3.4\",\n  \"10.0.0.1/33\"\n];\n");
	assert_int_equal(load_with(f, NULL, 0), -1);
	assert_err_at(f, 2, "key 'denied-peer-ip': item 2: '10.0.0.1/33'");
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	char *argv[] = { "turnstone", "--config=/nonexistent/turnstone.conf", NULL };

	assert_int_equal(config_load(&f->c, 2, argv, NULL, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "/nonexistent/turnstone.conf: cannot open"));
}

static void test_help(void **state)
{
	struct fixture *f = *state;
	char *argv[] = { "turnstone", "--bogus", "-c", "/nonexistent", "--help", NULL };
	char *argv2[] = { "turnstone", "-h", NULL };
	int help = 0;

	assert_int_equal(config_load(&f->c, ARGC(argv), argv, &help, f->err, sizeof(f->err)), 0);
	assert_int_equal(help, 1);
	help = 0;
	assert_int_equal(config_load(&f->c, 2, argv2, &help, f->err, sizeof(f->err)), 0);
	assert_int_equal(help, 1);
}

/* The limits keys: defaults (off, 64, 64, 30) and ranges. */
static void test_limits_keys(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;
	char *argv[] = { "turnstone", "--user-quota=3", "--total-quota=100", "--max-bps=125000",
			 "--bps-capacity=1250000", "--max-permissions=10", "--max-channels=5",
			 "--allocate-rate-per-ip=2", "--unauthorized-rate-per-ip=7", "--reservation-lifetime=5", NULL };
	char *bad_perms[] = { "turnstone", "--max-permissions=65", NULL };
	char *bad_chans[] = { "turnstone", "--max-channels=0", NULL };
	char *bad_rate[] = { "turnstone", "--unauthorized-rate-per-ip=-1", NULL };

	assert_int_equal(c->user_quota, 0);
	assert_int_equal(c->total_quota, 0);
	assert_int_equal(c->max_bps, 0);
	assert_int_equal(c->bps_capacity, 0);
	assert_int_equal(c->max_permissions, 64);
	assert_int_equal(c->max_channels, 64);
	assert_int_equal(c->allocate_rate_per_ip, 0);
	assert_int_equal(c->unauthorized_rate_per_ip, 0);
	assert_int_equal(c->reservation_lifetime, 30);
	assert_int_equal(config_load(c, ARGC(argv), argv, NULL, f->err, sizeof(f->err)), 0);
	assert_int_equal(c->user_quota, 3);
	assert_int_equal(c->total_quota, 100);
	assert_int_equal(c->max_bps, 125000);
	assert_int_equal(c->bps_capacity, 1250000);
	assert_int_equal(c->max_permissions, 10);
	assert_int_equal(c->max_channels, 5);
	assert_int_equal(c->allocate_rate_per_ip, 2);
	assert_int_equal(c->unauthorized_rate_per_ip, 7);
	assert_int_equal(c->reservation_lifetime, 5);
	assert_int_equal(config_load(c, ARGC(bad_perms), bad_perms, NULL, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "max-permissions"));
	assert_int_equal(config_load(c, ARGC(bad_chans), bad_chans, NULL, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "max-channels"));
	assert_int_equal(config_load(c, ARGC(bad_rate), bad_rate, NULL, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "unauthorized-rate-per-ip"));
}

static void test_validate(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;
	char *argv[] = { "turnstone", "--user=alice:pw", NULL };

	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "no credential source"));
	assert_non_null(strstr(f->err, "open relay"));
	/* use-auth-secret without any secret is refused too */
	c->use_auth_secret = 1;
	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "static-auth-secret"));
	c->use_auth_secret = 0;
	c->lt_cred_mech = 1;  /* the flag alone is no credential source */
	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "open relay"));

	assert_int_equal(config_load(c, 2, argv, NULL, f->err, sizeof(f->err)), 0);
	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), 0);

	c->min_port = 60000;
	c->max_port = 50000;
	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "min-port"));
	c->max_port = 60000;  /* a one-port range is fine */
	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), 0);

	c->default_allocate_lifetime = 4000;
	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "default-allocate-lifetime"));
	c->default_allocate_lifetime = 600;

	c->no_udp = c->no_tcp = c->no_tls = 1;
	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "nothing to listen on"));
	c->no_tls = 0;
	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), 0);

	c->no_udp = 0;
	c->tls_listening_port = c->listening_port;
	assert_int_equal(config_validate(c, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "tls-listening-port"));
}

/* Loads with every option set twice (file and command line), then frees:
 * ASan reports anything config_free misses. */
static void test_free_everything(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;
	char *extra[] = { "--listening-ip=::1", "--relay-ip=::1", "--external-ip=192.0.2.9",
			  "--realm=r2", "--user=u:p", "--log-file=/tmp/b", "--pidfile=/tmp/p2",
			  "--software=s2", "--allowed-peer-ip=10.0.0.0/8", "--denied-peer-ip=1.1.1.1" };

	write_conf(f, "listening-ip = [\"1.2.3.4\", \"::\"];\nrelay-ip = \"1.2.3.4\";\n"
		      "external-ip = \"192.0.2.8\";\nrealm = \"r\";\nuser = [\"a:b\", \"c:d\"];\n"
		      "log-file = \"/tmp/a\";\npidfile = \"/tmp/p\";\nsoftware = \"s\";\n"
		      "allowed-peer-ip = \"10.0.0.0/8\";\nallow-loopback-peers = true;\n");
	assert_int_equal(load_with(f, extra, NELEM(extra)), 0);
	assert_string_equal(c->software, "s2");
	config_free(c);
	assert_null(c->policy);
	assert_null(c->realm);
	assert_null(c->config_file);
	assert_int_equal(c->n_users, 0);
	assert_int_equal(c->n_listening_ip, 0);
	config_defaults(c);  /* teardown frees again */
}

static char *read_file(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf;
	long n;

	if (fp == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = calloc(1, (size_t)n + 1);
	if (buf != NULL && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	return buf;
}

/* etc/turnstone.conf parses as shipped, documents every key, and still
 * parses and validates with every example setting uncommented. */
static void test_example_conf(void **state)
{
	struct fixture *f = *state;
	const char *top = getenv("TOP_SRCDIR");
	char path[1024], needle[64];
	char *text, *p;

	snprintf(path, sizeof(path), "%s/etc/turnstone.conf", top != NULL ? top : ".");
	text = read_file(path);
	if (text == NULL)
		fail_msg("cannot read %s (set TOP_SRCDIR)", path);
	{
		char *argv[] = { "turnstone", "-c", path, NULL };
		assert_int_equal(config_load(&f->c, 3, argv, NULL, f->err, sizeof(f->err)), 0);
	}
	assert_int_equal(f->c.no_signaling, 0); /* the shipped file turns signaling on */
	for (size_t i = 0; i < N_KEYS; i++) {
		snprintf(needle, sizeof(needle), "\n#%s = ", all_keys[i]);
		if (strstr(text, needle) == NULL)
			fail_msg("etc/turnstone.conf does not document '%s'", all_keys[i]);
	}
	/* Uncomment "#key = value;" lines. */
	for (p = text; (p = strstr(p, "\n#")) != NULL; p++)
		if (p[2] >= 'a' && p[2] <= 'z')
			p[1] = ' ';
	config_free(&f->c);
	config_defaults(&f->c);
	write_conf(f, text);
	free(text);
	assert_int_equal(load_with(f, NULL, 0), 0);
	assert_int_equal(f->c.n_users, 2);
	assert_int_equal(config_validate(&f->c, f->err, sizeof(f->err)), 0);
}

/* The signaling endpoint opens its port only when configured (issue 13):
 * 'signaling' or a signaling-port turn it on, no-signaling wins; and the
 * defaults of the signaling limits. */
static void test_signaling_off_by_default(void **state)
{
	struct fixture *f = *state;
	char *on[] = { "--signaling" };
	char *port[] = { "--signaling-port=9000" };
	char *forced_off[] = { "--signaling-port=9000", "--no-signaling" };
	char *keys[] = { "--signaling-auth-secret=s", "--signaling-open-credentials", "--signaling-max-rooms=3" };

	write_conf(f, "realm = \"r\";\n");
	assert_int_equal(load_with(f, NULL, 0), 0);
	assert_int_equal(f->c.no_signaling, 1);
	assert_int_equal(f->c.signaling_port, 8080);
	assert_int_equal(f->c.signaling_max_conns_per_ip, 50);
	assert_int_equal(f->c.signaling_max_rooms, 10000);
	assert_int_equal(f->c.signaling_output_limit, 1024 * 1024);
	assert_int_equal(f->c.signaling_max_json_depth, 32);
	assert_null(f->c.signaling_auth_secret);
	assert_int_equal(f->c.signaling_open_credentials, 0);
	config_free(&f->c);
	config_defaults(&f->c);
	assert_int_equal(load_with(f, on, NELEM(on)), 0);
	assert_int_equal(f->c.no_signaling, 0);
	assert_int_equal(f->c.signaling_port, 8080);
	config_free(&f->c);
	config_defaults(&f->c);
	assert_int_equal(load_with(f, port, NELEM(port)), 0);
	assert_int_equal(f->c.no_signaling, 0);
	assert_int_equal(f->c.signaling_port, 9000);
	config_free(&f->c);
	config_defaults(&f->c);
	assert_int_equal(load_with(f, forced_off, NELEM(forced_off)), 0);
	assert_int_equal(f->c.no_signaling, 1);
	config_free(&f->c);
	config_defaults(&f->c);
	assert_int_equal(load_with(f, keys, NELEM(keys)), 0);
	assert_string_equal(f->c.signaling_auth_secret, "s");
	assert_int_equal(f->c.signaling_open_credentials, 1);
	assert_int_equal(f->c.signaling_max_rooms, 3);
	assert_int_equal(f->c.no_signaling, 1); /* keys alone do not open the port */
}

static void test_usage_lists_every_key(void **state)
{
	char path[] = "/tmp/turnstone-usage-XXXXXX";
	int fd = mkstemp(path), saved;
	char *text, needle[64];

	assert_true(fd >= 0);
	fflush(stdout);
	saved = dup(1);
	assert_true(dup2(fd, 1) >= 0);
	config_usage("turnstone");
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	close(fd);
	text = read_file(path);
	unlink(path);
	assert_non_null(text);
	assert_non_null(strstr(text, "usage: turnstone"));
	for (size_t i = 0; i < N_KEYS; i++) {
		snprintf(needle, sizeof(needle), "--%s", all_keys[i]);
		if (strstr(text, needle) == NULL)
			fail_msg("usage does not list '%s'", all_keys[i]);
	}
	assert_non_null(strstr(text, "[3478]"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_signaling_off_by_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_every_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_overrides_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmdline_repeats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_syntax, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values_various, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_cmdline_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coturn_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coturn_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_detection, setup, teardown),
		cmocka_unit_test(test_key_class),
		cmocka_unit_test_setup_teardown(test_bad_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_peer_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_help, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_example_conf, setup, teardown),
		cmocka_unit_test(test_usage_lists_every_key),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
