# src/admin/admin.mk -- included by Makefile.am: turnstone-admin and the Redis
# credential modules (issue 4).

# Pure: TURN REST API credentials (HMAC-SHA1 passwords), linked by everyone.
src_libturnstone_a_SOURCES += src/auth/auth_rest.c src/auth/auth_rest.h
# Pure: signaling join tokens (HMAC-SHA256), for the server and signaling-token.
src_libturnstone_a_SOURCES += src/auth/auth_token.c src/auth/auth_token.h

# UNIT_TESTS feeds both check_PROGRAMS and TESTS in Makefile.am.
UNIT_TESTS += tests/unit/test_rest
tests_unit_test_rest_SOURCES = tests/unit/test_rest.c
tests_unit_test_rest_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_rest_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_auth_token
tests_unit_test_auth_token_SOURCES = tests/unit/test_auth_token.c
tests_unit_test_auth_token_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_auth_token_LDADD = $(UNIT_LDADD)

# The asynchronous Redis client needs libevent and hiredis, so it is kept out
# of the pure library: the server, turnstone-admin (for the conninfo parser)
# and the probe link it.
noinst_LIBRARIES += src/libturnstone_redis.a
src_libturnstone_redis_a_SOURCES = src/auth/auth_redis.c src/auth/auth_redis.h
REDIS_LIBS = src/libturnstone_redis.a $(HIREDIS_LIBS) $(LIBEVENT_LIBS)

bin_PROGRAMS += src/turnstone-admin
src_turnstone_admin_SOURCES = src/admin/turnstone-admin.c src/admin/admin_client.c src/admin/admin_client.h
src_turnstone_admin_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
src_turnstone_admin_LDADD = $(REDIS_LIBS) $(CORE_LIBS) $(JANSSON_LIBS)
dist_man8_MANS = docs/turnstone-admin.8

INTEGRATION_TESTS += tests/integration/admin.sh

# tests/integration/redis_client.sh drives auth_redis through this probe.
check_PROGRAMS += tests/tools/redis_probe
tests_tools_redis_probe_SOURCES = tests/tools/redis_probe.c
tests_tools_redis_probe_LDADD = $(REDIS_LIBS) $(CORE_LIBS)
INTEGRATION_TESTS += tests/integration/redis_client.sh
