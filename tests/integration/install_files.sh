#!/bin/bash
# tests/integration/install_files.sh -- what "make install" ships besides the
# binaries (issue 11): the systemd unit passes systemd-analyze verify and has
# the hardening keys, the manual pages render without groff warnings, and
# turnstone.conf(5) documents every key "turnstone --help" lists. Speaks TAP.
. "$TOP_SRCDIR/tests/lib/common.sh"

tap_plan 7
: "${TOP_BUILDDIR:=$(pwd)}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-install.XXXXXX")
register_tmp "$TMP"
UNIT=$TOP_BUILDDIR/etc/turnstone.service

# ---- the systemd unit ---------------------------------------------------
if [ -f "$UNIT" ] && grep -qE '^ExecStart=/.*/turnstone -c /.*/turnstone.conf$' "$UNIT" && ! grep -q '@' "$UNIT"; then
	tap_ok "etc/turnstone.service is generated with absolute paths"
else
	tap_fail "etc/turnstone.service is generated with absolute paths" "$(cat "$UNIT" 2>&1)"
fi
missing=
for k in 'ExecReload=/bin/kill -HUP $MAINPID' 'AmbientCapabilities=CAP_NET_BIND_SERVICE' \
	'ProtectSystem=strict' 'NoNewPrivileges=yes' 'LimitNOFILE=1048576'; do
	grep -qxF "$k" "$UNIT" 2>/dev/null || missing="$missing [$k]"
done
if [ -z "$missing" ]; then tap_ok "the unit has reload, capability and hardening keys"; else tap_fail "the unit has reload, capability and hardening keys" "missing:$missing"; fi
# systemd-analyze checks the unit's syntax and every key's value (it prints,
# but does not fail, on an unknown key or bad value, so any output fails).
# It runs without a running systemd; ExecStart must exist, so point it at
# the binary under test.
if require_tool systemd-analyze; then
	sed -e "s|^ExecStart=[^ ]*|ExecStart=$TURNSTONE_BIN|" "$UNIT" >"$TMP/turnstone.service"
	out=$(systemd-analyze verify --man=no "$TMP/turnstone.service" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
		tap_ok "systemd-analyze verify: no complaint"
	else
		tap_fail "systemd-analyze verify: no complaint" "rc $rc" "$out"
	fi
else
	tap_fail "systemd-analyze verify: no complaint" "systemd-analyze not installed (Debian package systemd)"
fi

# ---- manual pages -------------------------------------------------------
for page in turnstone.8 turnstone.conf.5 turnstone-admin.8; do
	out=$(groff -man -ww -z "$TOP_SRCDIR/docs/$page" 2>&1)
	if [ -z "$out" ] && require_tool groff; then tap_ok "$page renders without groff warnings"; else tap_fail "$page renders without groff warnings" "$out"; fi
done
keys=$("$TURNSTONE_BIN" --help | sed -n 's/^  --\([a-z0-9_-]*\).*/\1/p' | grep -v '^config$\|^help$\|^check-config$')
undoc=
for k in $keys; do
	esc=$(printf '%s' "$k" | sed 's/-/\\\\-/g')
	grep -qE "^\.B[IR] \"$esc = " "$TOP_SRCDIR/docs/turnstone.conf.5" || undoc="$undoc $k"
done
if [ -n "$keys" ] && [ -z "$undoc" ]; then
	tap_ok "turnstone.conf(5) documents all $(echo $keys | wc -w) keys of turnstone --help"
else
	tap_fail "turnstone.conf(5) documents every key of turnstone --help" "not documented:$undoc"
fi

tap_finish
