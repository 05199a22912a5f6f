#!/usr/bin/env bash
# config_errors.sh -- the server refuses bad configuration before it starts:
# exit code 2 and a "turnstone: ..." message naming the file, line and key.
# TAP output. Needs $TURNSTONE_BIN (set by `make check`).
set -u

bin=${TURNSTONE_BIN:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-config.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

if [ -z "$bin" ] || [ ! -x "$bin" ]; then
	echo "# TURNSTONE_BIN ('$bin') is not an executable: every case will fail"
fi

t=0
rc=0
out=

# run ARGS...: runs the server; sets rc and out (stdout and stderr). The
# timeout guards against a case that wrongly starts a server.
run() {
	out=$(timeout 10 "$bin" "$@" 2>&1 </dev/null)
	rc=$?
}

# expect NAME RC SUBSTRING...: checks the last run's exit code and output.
expect() {
	local name=$1 want=$2 bad=0 s
	shift 2
	[ "$rc" = "$want" ] || bad=1
	for s in "$@"; do
		case $out in
		*"$s"*) ;;
		*) bad=1 ;;
		esac
	done
	t=$((t + 1))
	if [ $bad = 0 ]; then
		echo "ok $t - $name"
	else
		echo "not ok $t - $name"
		echo "#   exit code $rc (want $want), output:"
		printf '%s\n' "$out" | sed 's/^/#     /'
	fi
}

# refute NAME SUBSTRING: the last run exited 2 without SUBSTRING in its output.
refute() {
	t=$((t + 1))
	case $rc:$out in
	2:*"$2"*) echo "not ok $t - $1" ;;
	2:*) echo "ok $t - $1" ;;
	*) echo "not ok $t - $1 (exit code $rc, want 2)" ;;
	esac
}

echo "1..11"

missing=$tmp/does-not-exist.conf
run -c "$missing"
expect "nonexistent -c file: exit 2, names the file" 2 "turnstone: " "$missing"

f=$tmp/syntax.conf
printf '# line 1\nrealm = "x";\nmin-port = ;\n' >"$f"
run -c "$f"
expect "syntax error: exit 2, names file and line" 2 "turnstone: " "$f:3:" "syntax error"

f=$tmp/badvalue.conf
printf 'realm = "x";\nmin-port = "abc";\n' >"$f"
run -c "$f"
expect "min-port = \"abc\": exit 2, names file, line and key" 2 "$f:2:" "min-port"

f=$tmp/unknown.conf
printf 'realm = "x";\n\nbogus-key = 1;\n' >"$f"
run --config="$f"
expect "unknown key in the file: exit 2" 2 "$f:3:" "unknown key 'bogus-key'"

f=$tmp/baduser.conf
printf 'user = ["alice:pw1",\n  "nocolonsecret"];\n' >"$f"
run -c "$f"
expect "bad user: exit 2, names file, line and key" 2 "$f:1:" "'user'"
refute "bad user: the value is not echoed" "nocolonsecret"

f=$tmp/badrange.conf
printf 'user = "alice:pw1";\ndenied-peer-ip = "10.0.0.1/33";\n' >"$f"
run -c "$f"
expect "bad peer range: exit 2, names file, line and key" 2 "$f:2:" "denied-peer-ip"

f=$tmp/nousers.conf
printf 'realm = "example.org";\nmin-port = 50000;\n' >"$f"
run -c "$f"
expect "no users: exit 2, refuses an open relay" 2 "turnstone: " "open relay"

run --min-port=abc --user=alice:pw1
expect "bad command-line value: exit 2" 2 "command line: --min-port=abc" "1..65535"

run --bogus-option=1 --user=alice:pw1
expect "unknown command-line option: exit 2" 2 "bogus-option"

run --help
expect "--help: exit 0 and lists the keys" 0 "usage" "--listening-port" "--allowed-peer-ip"
