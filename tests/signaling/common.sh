# tests/signaling/common.sh -- sourced by protocol.sh, call.sh and tls.sh: TAP
# helpers, npm ci, free ports, starting turnstone with signaling on
# 127.0.0.1 and stopping it (by PID) on exit.
#
# Environment: TURNSTONE_BIN, TOP_SRCDIR, TOP_BUILDDIR as in tests/browser.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=${TOP_SRCDIR:-$(cd "$here/../.." && pwd)}
top=$(cd "$top" && pwd)
build=${TOP_BUILDDIR:-$top}
sig_dir="$top/tests/signaling"
util="$top/tests/browser/util.mjs"
server_bin=${TURNSTONE_BIN:-$build/src/turnstone}

t=0
failed=0
server_pid=""
node_pid=""
extra_pids=()   # more servers a script started (stop_server moves them here)
workdir=""

say()    { printf '%s\n' "$*"; }
diag()   { sed -e 's/^/# /'; }
ok()     { t=$((t + 1)); say "ok $t - $1"; }
not_ok() { t=$((t + 1)); say "not ok $t - $1"; failed=1; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid" 2>/dev/null
    wait "$node_pid" 2>/dev/null
  fi
  local p
  for p in "${extra_pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; fi
  done
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 30); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
      say "# server pid $server_pid ignored SIGTERM for 3 s; sending SIGKILL"
      kill -KILL "$server_pid" 2>/dev/null
    fi
    wait "$server_pid" 2>/dev/null
    say "# server pid $server_pid exit status after SIGTERM: $?"
    if compgen -G "$build/sanitizer/*san.$server_pid*" >/dev/null; then
      for f in "$build"/sanitizer/*san."$server_pid"*; do
        say "# ---- sanitizer report $f ----"
        diag <"$f"
      done
      [ "$rc" != 0 ] || rc=1
    fi
  fi
  if [ "$failed" != 0 ] || [ "$rc" != 0 ]; then
    if [ -n "$workdir" ] && [ -s "$workdir/server.log" ]; then
      say "# ---- server log (last 150 lines) ----"
      tail -n 150 "$workdir/server.log" | diag
    fi
    [ "$rc" != 0 ] || rc=1
  fi
  [ -n "$workdir" ] && rm -rf "$workdir"
  exit "$rc"
}

# The first three checks every script here starts with.
pre_common=("node is installed" "ws, playwright-core and socket.io-client are installed in tests/signaling/node_modules"
            "server binary exists and is executable")

# tap_begin MJS: MJS (a script in tests/signaling) prints the rest of the
# tests; with pre[] (our own checks, first) and post (our last check) set,
# checks that node runs, counts MJS's tests and prints the plan.
tap_begin() {
  js=$1
  if ! command -v node >/dev/null 2>&1; then
    say "1..1"; not_ok "${pre[0]}"; exit 1
  fi
  n_js=$(node "$sig_dir/$js" --count 2>"$workdir/count.err")
  if ! [[ "$n_js" =~ ^[0-9]+$ ]]; then
    say "1..1"; not_ok "$js --count works"; diag <"$workdir/count.err"; exit 1
  fi
  say "1..$((${#pre[@]} + n_js + 1))"
}

# Prints the node script's TAP lines from stdin numbered on after ours.
renumber() {
  local l
  while IFS= read -r l; do
    if [[ "$l" =~ ^(ok|not\ ok)\ ([0-9]+)(.*)$ ]]; then
      say "${BASH_REMATCH[1]} $((BASH_REMATCH[2] + t))${BASH_REMATCH[3]}"
    elif ! [[ "$l" =~ ^1\.\. ]]; then
      say "$l"
    fi
  done
}

# Emits every remaining test as failed (we cannot get that far) and exits.
fail_rest() {
  while [ "$t" -lt "${#pre[@]}" ]; do not_ok "${pre[$t]}"; say "# not reached: $1"; done
  node "$sig_dir/$js" --fail-all "$1" | renumber
  t=$((t + n_js)); not_ok "$post"; exit 1
}

# The pre_common checks: node (already known to run), npm ci, the binary.
tap_prereqs() {
  ok "${pre[0]}"
  if npm_setup; then ok "${pre[1]}"; else not_ok "${pre[1]}"; fail_rest "npm ci failed"; fi
  if [ -x "$server_bin" ] && [ -f "$server_bin" ]; then ok "${pre[2]}"; else
    not_ok "${pre[2]}"; say "# $server_bin missing"; fail_rest "no server binary"; fi
}

# npm ci into tests/signaling (or a copy in the build tree when the source
# tree is read-only). Sets node_dir. Returns 0 when ws and playwright-core load.
npm_setup() {
  node_dir=$sig_dir
  if [ ! -f "$sig_dir/node_modules/ws/package.json" ] && [ ! -w "$sig_dir" ]; then
    node_dir="$build/tests/signaling"
    mkdir -p "$node_dir" && cp "$sig_dir"/package.json "$sig_dir"/package-lock.json "$sig_dir"/*.mjs "$node_dir/" &&
      chmod u+w "$node_dir"/*
  fi
  "$top/tests/lib/npm_ci.sh" "$node_dir" ws playwright-core socket.io-client
}

# start_server ARGS...: starts $server_bin with ARGS (output in
# ${server_log:-$workdir/server.log}) and waits up to 15 s until GET
# /ice-servers answers on 127.0.0.1:$sig_port (200, or 401 when tokens are
# required). Returns 0 when it does.
start_server() {
  say "# starting: $server_bin $*"
  "$server_bin" "$@" >"${server_log:-$workdir/server.log}" 2>&1 </dev/null &
  server_pid=$!
  local deadline=$((SECONDS + 15))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid"
      say "# server exited early with status $?"
      server_pid=""
      return 1
    fi
    if node -e '
      fetch(process.argv[1]).then(r => process.exit(r.status === 200 || r.status === 401 ? 0 : 1), () => process.exit(1));
      setTimeout(() => process.exit(1), 1000);' "http://127.0.0.1:$sig_port/ice-servers" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}
