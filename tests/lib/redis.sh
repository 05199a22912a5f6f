# tests/lib/redis.sh -- a private redis-server for one test script.
# Source it after common.sh:  . "$TOP_SRCDIR/tests/lib/common.sh"; . "$TOP_SRCDIR/tests/lib/redis.sh"
#
#   start_redis [PORT]  start redis-server on 127.0.0.1 (random free port unless
#                       given), no persistence, in a temp dir; sets REDIS_PORT,
#                       REDIS_PID, REDIS_DIR. Returns 1 if it is not answering
#                       PING within 5 s. Killed on EXIT by common.sh.
#   kill_redis          SIGKILL it (the kernel closes its connections)
#   rcli ARGS...        redis-cli against it (raw output)
#
# Never touches any other Redis: only the PID it started, only 127.0.0.1.

REDIS_PORT=
REDIS_PID=
REDIS_DIR=

start_redis() {
    require_tool redis-server || return 1
    require_tool redis-cli || return 1
    REDIS_PORT=${1:-$(free_udp_port)} || return 1
    if [ -z "$REDIS_DIR" ]; then
        REDIS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-redis.XXXXXX") || return 1
        register_tmp "$REDIS_DIR"
    fi
    with_pdeathsig redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
        --save '' --appendonly no --dir "$REDIS_DIR" --daemonize no \
        --logfile "$REDIS_DIR/redis.log" </dev/null >/dev/null 2>&1 &
    REDIS_PID=$!
    register_pid "$REDIS_PID"
    local i
    for i in $(seq 50); do
        if [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ]; then
            return 0
        fi
        kill -0 "$REDIS_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "# redis-server on port $REDIS_PORT did not come up; its log:"
    sed 's/^/#   /' "$REDIS_DIR/redis.log" 2>/dev/null | tail -n 20
    return 1
}

kill_redis() {
    [ -n "$REDIS_PID" ] || return 0
    kill -KILL "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
    REDIS_PID=
    return 0
}

rcli() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --raw "$@"
}
