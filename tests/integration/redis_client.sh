#!/usr/bin/env bash
# redis_client.sh -- the asynchronous Redis client (src/auth/auth_redis.c)
# against a private redis-server, driven through tests/tools/redis_probe:
# conninfo parsing, key lookups in coturn's schema, secrets, the kill
# channel, the per-worker cache, Redis killed (fail fast, no hang), hung
# (per-request timeout) and restarted on the same port (reconnect and
# resubscribe without restarting the client). TAP output.
set -u
. "$TOP_SRCDIR/tests/lib/common.sh"
. "$TOP_SRCDIR/tests/lib/redis.sh"

PROBE=${TOP_BUILDDIR:-$TOP_SRCDIR/build}/tests/tools/redis_probe
tmp=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-redisclient.XXXXXX") || exit 1
register_tmp "$tmp"
REALM=example.org

tap_plan 32

[ -x "$PROBE" ] || die "redis_probe not built at $PROBE"

# ---- conninfo parsing (pure)
t() { # t NAME WANT CONNINFO
    local got
    got=$("$PROBE" --parse "$3")
    if [ "$got" = "$2" ]; then tap_ok "$1"; else tap_fail "$1" "got:  $got" "want: $2"; fi
}
t "parse coturn format" "host=10.0.0.1 port=7000 db=3 user= password=pw timeout=2" \
    "ip=10.0.0.1 port=7000 dbname=3 password=pw connect_timeout=2"
t "parse redis:// URL with %-encoded password, [v6] host and db" \
    "host=::1 port=6380 db=2 user= password=p@ss timeout=5" "redis://:p%40ss@[::1]:6380/2"
t "parse URL defaults" "host=localhost port=6379 db=0 user= password= timeout=5" "redis://localhost"
if out=$("$PROBE" --parse "ip=127.0.0.1 colour=blue"); then
    tap_fail "unknown conninfo key is an error" "$out"
else
    tap_ok "unknown conninfo key is an error"
fi

start_redis || die "cannot start redis-server"
md5hex() { printf '%s' "$1" | md5sum | cut -d' ' -f1; }
rcli SET "turn/realm/$REALM/user/alice/key" "$(md5hex "alice:$REALM:pw")" >/dev/null
rcli SET "turn/realm/$REALM/user/broken/key" "not-hex" >/dev/null
rcli SET "turn/realm/$REALM/user/plain/password" "plainpw" >/dev/null
rcli SADD "turn/realm/$REALM/secret" s1 s2 >/dev/null

coproc PROBE_CO { exec "$PROBE" -v "ip=127.0.0.1 port=$REDIS_PORT dbname=0" "$REALM" 2 2>"$tmp/probe.log"; }
# bash unsets PROBE_CO_PID when the coprocess exits: keep a copy
PROBE_PID=$PROBE_CO_PID
register_pid "$PROBE_PID"
exec {PIN}>&"${PROBE_CO[1]}" {POUT}<&"${PROBE_CO[0]}"

KILLS=
# ask LINE PREFIX [TIMEOUT_S]: sends LINE, sets REPLY to the first output
# line starting with PREFIX; "kill ..." lines seen meanwhile go to KILLS.
ask() {
    [ -n "$1" ] && echo "$1" >&"$PIN"
    local end=$((SECONDS + ${3:-5})) line part buf=
    REPLY=
    while [ "$SECONDS" -le "$end" ]; do
        # a read that times out mid-line keeps what it read in part: keep it
        if IFS= read -r -t 1 -u "$POUT" part; then
            line=$buf$part
            buf=
        else
            buf=$buf$part
            continue
        fi
        case $line in
        "$2"*) REPLY=$line; return 0 ;;
        "kill "*) KILLS="$KILLS${line#kill } " ;;
        REENTERED) KILLS="$KILLS(REENTERED) " ;;
        esac
    done
    return 1
}
okif() { # okif NAME COND (string, evaluated now)
    if eval "$2"; then tap_ok "$1"; else tap_fail "$1" "last reply: $REPLY"; fi
}

for _ in $(seq 30); do
    ask connected connected && [ "$REPLY" = "connected 1" ] && break
    sleep 0.1
done
okif "connects" '[ "$REPLY" = "connected 1" ]'

ask "key $REALM alice" "key alice"
okif "found user: status 0 and the stored MD5 key" '[ "$REPLY" != "${REPLY#key alice 0 $(md5hex "alice:$REALM:pw") }" ]'
ask "key $REALM nobody" "key nobody"
okif "missing user: status 1" '[[ $REPLY == "key nobody 1 - "* ]]'
ask "key $REALM broken" "key broken"
okif "a value that is not 32 hex digits: status 1" '[[ $REPLY == "key broken 1 - "* ]]'
okif "... and it is logged" 'grep -q "not 32 hex digits" "$tmp/probe.log"'
ask "key $REALM plain" "key plain"
okif "coturn's .../password fallback: MD5(user:realm:password)" \
    '[[ $REPLY == "key plain 0 $(md5hex "plain:$REALM:plainpw") "* ]]'
ask "secrets $REALM" "secrets"
okif "secrets: SMEMBERS turn/realm/R/secret" '[ "$REPLY" = "secrets 0 2 s1,s2" ]'
ask "secrets nosuch.realm" "secrets"
okif "secrets of a realm without any: status 0, none" '[ "$REPLY" = "secrets 0 0 " ]'
ask cancel cancel
okif "a cancelled request is dropped" '[ "$REPLY" = "cancel 1" ]'

# ---- the cache (TTL 2 s) and kill invalidation
rcli SET "turn/realm/$REALM/user/alice/key" "$(md5hex "alice:$REALM:new")" >/dev/null
ask "cached $REALM alice" "cached alice"
okif "a found key is cached" '[ "$REPLY" = "cached alice 0" ]'
ask "key $REALM alice" "key alice"
okif "within the TTL the cached key answers" '[[ $REPLY == "key alice 0 $(md5hex "alice:$REALM:pw") "* ]]'
rcli PUBLISH "turnstone/realm/$REALM/kill" alice >/dev/null
ask "" "nothing-will-match" 1
okif "a kill message reaches on_kill" '[[ $KILLS == *"alice "* ]]'
ask "cached $REALM alice" "cached alice"
okif "the kill message dropped the cached key" '[ "$REPLY" = "cached alice -1" ]'
ask "key $REALM alice" "key alice"
okif "the next lookup reads Redis again" '[[ $REPLY == "key alice 0 $(md5hex "alice:$REALM:new") "* ]]'
rcli SET "turn/realm/$REALM/user/alice/key" "$(md5hex "alice:$REALM:pw")" >/dev/null
sleep 2.2
ask "key $REALM alice" "key alice"
okif "after the TTL the key is read again" '[[ $REPLY == "key alice 0 $(md5hex "alice:$REALM:pw") "* ]]'

# ---- Redis killed: fail fast, no hang
kill_redis
ask "key $REALM carol" "key carol" 3
ms=${REPLY##* }
okif "Redis killed: get_key answers -1 within 1.5 s (${ms} ms)" '[[ $REPLY == "key carol -1 - "* ]] && [ "$ms" -le 1500 ]'
sleep 0.5
ask "key $REALM dave" "key dave" 3
ms=${REPLY##* }
okif "while down, lookups fail at once (${ms} ms)" '[[ $REPLY == "key dave -1 - "* ]] && [ "$ms" -le 100 ]'
ask "key $REALM alice" "key alice" 3
okif "while down, a fresh cached key still answers" '[[ $REPLY == "key alice 0 $(md5hex "alice:$REALM:pw") "* ]]'
ask connected connected
okif "reports disconnected" '[ "$REPLY" = "connected 0" ]'
sleep 1
okif "the outage is logged once" '[ "$(grep -c "warning: redis 127.0.0.1:$REDIS_PORT: connection lost" "$tmp/probe.log")" = 1 ]'

# ---- restarted on the same port: reconnects without restarting the probe
start_redis "$REDIS_PORT" || tap_diag "redis restart failed"
rcli SET "turn/realm/$REALM/user/alice/key" "$(md5hex "alice:$REALM:pw")" >/dev/null
for _ in $(seq 80); do
    ask connected connected && [ "$REPLY" = "connected 1" ] && break
    sleep 0.1
done
okif "reconnects within the 5 s backoff cap" '[ "$REPLY" = "connected 1" ]'
ask "key $REALM alice" "key alice"
okif "lookups work again" '[[ $REPLY == "key alice 0 $(md5hex "alice:$REALM:pw") "* ]]'
okif "the recovery is logged" 'grep -q "info: redis 127.0.0.1:$REDIS_PORT: connection restored" "$tmp/probe.log"'
KILLS=
for _ in $(seq 50); do
    [ "$(rcli PUBSUB NUMSUB "turnstone/realm/$REALM/kill" | tail -n 1)" = 1 ] && break
    sleep 0.1
done
rcli PUBLISH "turnstone/realm/$REALM/kill" bob >/dev/null
ask "" "nothing-will-match" 1
okif "resubscribed: kill messages arrive after the restart" '[[ $KILLS == *"bob "* ]]'

# ---- hung Redis (SIGSTOP): the per-request timeout answers
kill -STOP "$REDIS_PID"
ask "key $REALM hung" "key hung" 4
ms=${REPLY##* }
kill -CONT "$REDIS_PID"
okif "hung Redis: get_key times out with -1 in about 1 s (${ms} ms)" \
    '[[ $REPLY == "key hung -1 - "* ]] && [ "$ms" -ge 900 ] && [ "$ms" -le 1600 ]'
ask "key $REALM alice" "key alice"
okif "after SIGCONT lookups answer again" '[[ $REPLY == "key alice 0 "* ]]'

okif "no callback was called from inside the call that started it" '[[ $KILLS != *REENTERED* ]] && ! grep -q REENTERED "$tmp/probe.log"'

echo quit >&"$PIN"
wait "$PROBE_PID"
st=$?
okif "the probe frees everything and exits 0 (status $st)" '[ "$st" = 0 ]'
if [ "$TAP_FAILED" -gt 0 ]; then
    tap_diag "probe log:"
    tap_diag "$(tail -n 40 "$tmp/probe.log")"
fi
tap_finish
