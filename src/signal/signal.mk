# src/signal/signal.mk -- included by Makefile.am: the WebSocket signaling
# endpoint and the demo video-call page (issue 5, docs/signaling.md).

src_turnstone_SOURCES += \
	src/signal/signal_server.c src/signal/signal_server.h \
	src/signal/signal_conn.c src/signal/signal_conn.h \
	src/signal/signal_http.c src/signal/signal_http.h \
	src/signal/signal_room.c src/signal/signal_room.h \
	src/signal/signal_ice.c src/signal/signal_ice.h \
	src/signal/signal_iplimit.c src/signal/signal_iplimit.h \
	src/signal/signal_bus.c src/signal/signal_bus.h \
	src/signal/signal_eio.c src/signal/signal_eio.h \
	src/signal/signal_sio.c src/signal/signal_sio.h \
	src/signal/signal_session.c src/signal/signal_session.h
src_turnstone_LDADD += $(WSLAY_LIBS) $(JANSSON_LIBS)

# The HTTP request-head parser, handshake check and file mapping are pure.
UNIT_TESTS += tests/unit/test_signal_http
tests_unit_test_signal_http_SOURCES = tests/unit/test_signal_http.c src/signal/signal_http.c
tests_unit_test_signal_http_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_signal_http_LDADD = $(UNIT_LDADD)
UNIT_TESTS += tests/unit/test_signal_iplimit
tests_unit_test_signal_iplimit_SOURCES = tests/unit/test_signal_iplimit.c src/signal/signal_iplimit.c
tests_unit_test_signal_iplimit_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_signal_iplimit_LDADD = $(UNIT_LDADD)
# socket.io: Engine.IO framing and Socket.IO packets / event mapping are pure.
UNIT_TESTS += tests/unit/test_signal_eio tests/unit/test_signal_sio
tests_unit_test_signal_eio_SOURCES = tests/unit/test_signal_eio.c src/signal/signal_eio.c src/signal/signal_http.c
tests_unit_test_signal_eio_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_signal_eio_LDADD = $(UNIT_LDADD)
tests_unit_test_signal_sio_SOURCES = tests/unit/test_signal_sio.c src/signal/signal_sio.c src/signal/signal_http.c
tests_unit_test_signal_sio_CFLAGS = $(UNIT_CFLAGS)
tests_unit_test_signal_sio_LDADD = $(UNIT_LDADD) $(JANSSON_LIBS)

# GET / falls back to the source tree's page when run from the build tree.
AM_CPPFLAGS += -DTURNSTONE_SRCDIR='"$(abs_top_srcdir)"'

# The demo page, served from signaling-root (default $(datadir)/turnstone/www).
wwwdir = $(datadir)/turnstone/www
dist_www_DATA = share/www/index.html share/www/app.js share/www/style.css

# Protocol tests with the npm "ws" client, and the two-browser video call.
INTEGRATION_TESTS += tests/signaling/protocol.sh tests/signaling/tls.sh tests/signaling/call.sh \
	tests/signaling/secure.sh tests/signaling/fleet.sh tests/signaling/fleet_call.sh \
	tests/signaling/sio.sh tests/signaling/sio-call.sh
EXTRA_DIST += \
	tests/signaling/package.json tests/signaling/package-lock.json \
	tests/signaling/common.sh tests/signaling/lib.mjs tests/signaling/protocol.sh tests/signaling/protocol.mjs \
	tests/signaling/call.sh tests/signaling/call.mjs tests/signaling/tls.sh tests/signaling/tls.mjs \
	tests/signaling/secure.sh tests/signaling/secure.mjs tests/signaling/fleet.sh tests/signaling/fleet.mjs tests/signaling/fleet_call.sh \
	tests/signaling/secure.sh tests/signaling/secure.mjs tests/signaling/sio.sh tests/signaling/sio.mjs \
	tests/signaling/chromium.mjs tests/signaling/sio-call.sh tests/signaling/sio-call.mjs \
	tests/signaling/sio-page/index.html tests/signaling/sio-page/app.js
