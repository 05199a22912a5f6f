#!/usr/bin/env bash
# admin.sh -- turnstone-admin against a private redis-server: the stored
# schema (checked with redis-cli and independent md5sum/openssl), TTLs,
# listing, secrets, REST API credentials, kill messages, exit codes, and
# compatibility with coturn's own turnadmin. TAP output.
set -u
. "$TOP_SRCDIR/tests/lib/common.sh"
. "$TOP_SRCDIR/tests/lib/redis.sh"

ADMIN=${TURNSTONE_ADMIN_BIN:-${TOP_BUILDDIR:-$TOP_SRCDIR/build}/src/turnstone-admin}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-admin.XXXXXX") || exit 1
register_tmp "$tmp"

tap_plan 40

[ -x "$ADMIN" ] || die "turnstone-admin not built at $ADMIN"
start_redis || die "cannot start redis-server"
R="redis://127.0.0.1:$REDIS_PORT/0"
REALM=example.org

out= err= rc=
# run ARGS...: turnstone-admin; sets out, err, rc
run() {
    out=$("$ADMIN" "$@" 2>"$tmp/err")
    rc=$?
    err=$(cat "$tmp/err")
}

# check NAME COND: ok if the shell condition COND (a string, evaluated now)
# holds, else diagnostics with the last run's output
check() {
    local name=$1
    if eval "$2"; then
        tap_ok "$name"
    else
        tap_fail "$name" "exit $rc; stdout: $out" "stderr: $err"
    fi
}

is_json() { printf '%s' "$out" | python3 -c 'import json,sys; json.load(sys.stdin)' 2>/dev/null; }
# jget EXPR: evaluates a python expression on the JSON in $out (as j)
jget() { printf '%s' "$out" | python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
md5hex() { printf '%s' "$1" | md5sum | cut -d' ' -f1; }

# ---- user add / schema
run --redis "$R" --realm "$REALM" user add alice --password 's3cret pw'
check "user add exits 0" '[ "$rc" = 0 ]'
stored=$(rcli GET "turn/realm/$REALM/user/alice/key")
want=$(md5hex "alice:$REALM:s3cret pw")
check "stored key is hex MD5(user:realm:password)" '[ "$stored" = "$want" ]'
check "no TTL without --ttl" '[ "$(rcli TTL "turn/realm/$REALM/user/alice/key")" = -1 ]'

# ---- --ttl
run --redis "$R" --realm "$REALM" user add tmpuser --password pw --ttl 2
ttl=$(rcli TTL "turn/realm/$REALM/user/tmpuser/key")
check "--ttl 2 sets a TTL of 1..2 s (got $ttl)" '[ "$rc" = 0 ] && [ "$ttl" -ge 1 ] && [ "$ttl" -le 2 ]'
sleep 3
check "the --ttl key is gone after 3 s" '[ "$(rcli EXISTS "turn/realm/$REALM/user/tmpuser/key")" = 0 ]'

# ---- list
run --redis "$R" --realm "$REALM" user add bob --password pw2
run --redis "$R" --realm other.realm user add carol --password pw3
run --redis "$R" --realm "$REALM" user list
want=$(printf 'alice\nbob')
check "user list shows the realm's users, sorted" '[ "$rc" = 0 ] && [ "$out" = "$want" ]'
run --redis "$R" --realm "$REALM" --json user list
check "user list --json parses" 'is_json'
got=$(jget '",".join(j["users"]), j["count"], j["realm"]')
check "user list --json: users and count" '[ "$got" = "alice,bob 2 $REALM" ]'
run --redis "$R" --realm other.realm user list
check "user list is per realm" '[ "$out" = carol ]'
# SCAN must not take the realm as a glob pattern
run --redis "$R" --realm 'ex*' user list
check "a realm with glob characters matches literally" '[ "$rc" = 0 ] && [ -z "$out" ]'

# ---- del
run --redis "$R" --realm "$REALM" user del bob
check "user del exits 0" '[ "$rc" = 0 ]'
check "user del removed the key" '[ "$(rcli EXISTS "turn/realm/$REALM/user/bob/key")" = 0 ]'
run --redis "$R" --realm "$REALM" user del bob
check "user del of a missing user exits 1 with a message" '[ "$rc" = 1 ] && [[ $err == *"no user"*bob* ]]'
run --redis "$R" --realm "$REALM" --json user add dave --password x
check "user add --json parses" 'is_json'

# ---- secrets
run --redis "$R" --realm "$REALM" secret add 'north wind'
check "secret add exits 0" '[ "$rc" = 0 ]'
run --redis "$R" --realm "$REALM" secret add south
got=$(rcli SMEMBERS "turn/realm/$REALM/secret" | sort | tr '\n' ,)
check "secret add stores in the set turn/realm/R/secret" '[ "$got" = "north wind,south," ]'
run --redis "$R" --realm "$REALM" secret list
want=$(printf 'north wind\nsouth')
check "secret list" '[ "$out" = "$want" ]'
run --redis "$R" --realm "$REALM" --json secret list
check "secret list --json parses" 'is_json'
run --redis "$R" --realm "$REALM" secret del south
check "secret del removes it" '[ "$rc" = 0 ] && [ "$(rcli SISMEMBER "turn/realm/$REALM/secret" south)" = 0 ]'
run --redis "$R" --realm "$REALM" secret del south
check "secret del of a missing secret exits 1" '[ "$rc" = 1 ]'

# ---- credential (secret from Redis)
now=$(date +%s)
run --redis "$R" --realm "$REALM" credential webuser --ttl 600
user=$(printf '%s\n' "$out" | sed -n 's/^username: //p')
pass=$(printf '%s\n' "$out" | sed -n 's/^password: //p')
exp=${user%%:*}
check "credential username is EXPIRY:USER with expiry ~ now+600 ($user)" '[ "${user#*:}" = webuser ] && [ "$exp" -ge $((now + 599)) ] && [ "$exp" -le $((now + 605)) ]'
want=$(printf '%s' "$user" | openssl dgst -sha1 -hmac 'north wind' -binary | base64)
check "credential password = base64(HMAC-SHA1(secret, username))" '[ -n "$pass" ] && [ "$pass" = "$want" ]'
run --redis "$R" --realm "$REALM" --json credential webuser --host 192.0.2.7
check "credential --json parses" 'is_json'
got=$(jget '" ".join(j["iceServers"][0]["urls"])')
check "iceServers lists stun, turn udp/tcp and turns URLs" '[ "$got" = "stun:192.0.2.7:3478 turn:192.0.2.7:3478 turn:192.0.2.7:3478?transport=tcp turns:192.0.2.7:5349?transport=tcp" ]'
got=$(jget 'j["iceServers"][0]["credential"] == j["password"] and j["iceServers"][0]["username"] == j["username"]')
check "iceServers carries the same username/credential" '[ "$got" = True ]'

# ---- credential and Redis from a configuration file (coturn conninfo format)
cat >"$tmp/ts.conf" <<EOF
realm = "conf.realm";
listening-ip = ["127.0.0.1"];
listening-port = 3500;
use-auth-secret = true;
static-auth-secret = ["from-config"];
rest-api-separator = "_";
redis-userdb = "ip=127.0.0.1 port=$REDIS_PORT dbname=0 connect_timeout=2";
EOF
now=$(date +%s)
run -c "$tmp/ts.conf" --json credential eve
u=$(jget 'j["username"]')
want=$(printf '%s' "$u" | openssl dgst -sha1 -hmac 'from-config' -binary | base64)
got=$(jget 'j["password"]')
check "credential with -c: static-auth-secret, separator '_' ($u)" '[ "${u#*_}" = eve ] && [ "${u%%_*}" -ge $((now + 86399)) ] && [ "$got" = "$want" ]'
got=$(jget '" ".join(j["iceServers"][0]["urls"])')
check "credential with -c: URLs from listening-ip/port, no turns without cert" '[ "$got" = "stun:127.0.0.1:3500 turn:127.0.0.1:3500 turn:127.0.0.1:3500?transport=tcp" ]'
run -c "$tmp/ts.conf" user add frank --password pw
check "-c: redis-userdb (coturn format) and realm from the file" '[ "$rc" = 0 ] && [ "$(rcli GET turn/realm/conf.realm/user/frank/key)" = "$(md5hex frank:conf.realm:pw)" ]'

# ---- session kill / user del --kill: a subscriber gets the user name
python3 - "$REDIS_PORT" "turnstone/realm/$REALM/kill" >"$tmp/sub.out" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$%d\r\n%s\r\n" % (len(sys.argv[2]), sys.argv[2].encode()))
buf = b""
deadline = time.time() + 8
while time.time() < deadline and buf.count(b"message") < 2:
    d = s.recv(4096)
    if not d:
        break
    buf += d
# each message is *3 $7 message $N channel $N payload: print the payloads
parts = buf.split(b"\r\n")
for i, p in enumerate(parts):
    if p == b"message":
        print(parts[i + 4].decode())
EOF
subpid=$!
register_pid "$subpid"
for _ in $(seq 50); do
    [ "$(rcli PUBSUB NUMSUB "turnstone/realm/$REALM/kill" | tail -n 1)" = 1 ] && break
    sleep 0.1
done
run --redis "$R" --realm "$REALM" session kill alice
check "session kill reaches 1 subscriber" '[ "$rc" = 0 ] && [[ $out == *"sent to 1 "* ]]'
run --redis "$R" --realm "$REALM" --json user del dave --kill
got=$(jget 'j["kill_receivers"], j["deleted"]')
check "user del --kill deletes and publishes" '[ "$rc" = 0 ] && [ "$got" = "1 True" ]'
wait "$subpid"
got=$(tr '\n' ' ' <"$tmp/sub.out")
check "the subscriber received alice then dave" '[ "$got" = "alice dave " ]'

# ---- usage errors: exit 2
run
check "no command: exit 2" '[ "$rc" = 2 ]'
run --redis "$R" frobnicate
check "unknown command: exit 2" '[ "$rc" = 2 ] && [[ $err == *"unknown command"* ]]'
run --redis "$R" user add x --ttl abc --password p
check "--ttl abc: exit 2" '[ "$rc" = 2 ]'
run --redis "$R" user add x --password p --kill
check "an option of another command: exit 2" '[ "$rc" = 2 ]'
run --redis "$R" user del
check "missing argument: exit 2" '[ "$rc" = 2 ]'
run user list --help
check "user list --help: exit 0 with usage" '[ "$rc" = 0 ] && [[ $out == *"usage:"*"user list"* ]]'

# ---- Redis down: exit 1 with a clear message (a port nothing listens on)
deadport=$(free_udp_port)
run --redis "redis://127.0.0.1:$deadport" user list
check "Redis unreachable: exit 1, message names host:port" '[ "$rc" = 1 ] && [[ $err == *"127.0.0.1:$deadport"* ]]'

# ---- coturn's turnadmin writes the same schema
if require_tool turnadmin; then
    # turnadmin logs to /var/log/turn_*.log or stdout; its output is not checked
    turnadmin -a -N "ip=127.0.0.1 port=$REDIS_PORT dbname=0" -u bob -r "$REALM" -p pw >"$tmp/turnadmin.out" 2>&1
    tarc=$?
    run --redis "$R" --realm "$REALM" user list
    check "turnadmin -a user is listed by turnstone-admin user list" '[ "$tarc" = 0 ] && printf "%s\n" "$out" | grep -qx bob'
    check "turnadmin stores GET turn/realm/R/user/bob/key = hex MD5(bob:R:pw)" '[ "$(rcli GET "turn/realm/$REALM/user/bob/key")" = "$(md5hex "bob:$REALM:pw")" ]'
else
    tap_fail "turnadmin (coturn) not installed: cannot check compatibility"
    tap_fail "turnadmin (coturn) not installed"
fi

tap_finish

