#!/usr/bin/env bash
# signaling-tls test (TAP): makes two self-signed certificates for
# 127.0.0.1 with openssl in a temp dir, starts turnstone on 127.0.0.1 with
# the first as cert/pkey (TURN on random free UDP/TCP and TLS ports, a
# random 200-port relay window, REST secret) and --signaling-tls on another
# random port, then runs tls.mjs: https:// page and /ice-servers and wss://
# rooms with the certificate verified against the test certificate, plain
# http:// refused, and a reload: the second certificate is copied over the
# first, the server gets SIGHUP, new connections must get the new
# certificate while open wss connections keep working.
set -u
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"
trap cleanup EXIT
trap 'say "# interrupted"; failed=1; exit 1' INT TERM HUP
workdir=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-sigtls.XXXXXX") || exit 1

pre=("${pre_common[@]}"
     "openssl makes two self-signed certificates for 127.0.0.1"
     "server starts: https GET /ice-servers and a STUN Binding over TLS answer, verified with the certificate")
post="server is still running after the TLS tests"

tap_begin tls.mjs
tap_prereqs

# ---- two self-signed certificates (EC P-256) for 127.0.0.1 ---------------
cert="$workdir/cert.pem" key="$workdir/key.pem"
cert2="$workdir/cert2.pem" key2="$workdir/key2.pem"
make_cert() { # CERT KEY CN
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$2" -out "$1" -days 2 -subj "/CN=$3" \
    -addext "subjectAltName=IP:127.0.0.1" >>"$workdir/openssl.log" 2>&1 && [ -s "$1" ] && [ -s "$2" ]
}
if ! command -v openssl >/dev/null 2>&1; then
  not_ok "${pre[3]}"; say "# openssl is not installed"; fail_rest "no openssl"
fi
if make_cert "$cert" "$key" 127.0.0.1 && make_cert "$cert2" "$key2" 127.0.0.1 &&
   ! cmp -s "$cert" "$cert2"; then
  ok "${pre[3]}"
  for c in "$cert" "$cert2"; do
    openssl x509 -in "$c" -noout -subject -ext subjectAltName -fingerprint -sha256 2>&1 | diag
  done
else
  not_ok "${pre[3]}"; diag <"$workdir/openssl.log"; fail_rest "could not make the TLS certificates"
fi

# ---- the server ------------------------------------------------------------
read -r relay_min relay_max < <(node "$util" relay-window 200)
turn_port=$(node "$util" free-port udp,tcp "${relay_min:-0}" "${relay_max:-0}")
tls_port=$(node "$util" free-port tcp "${relay_min:-0}" "${relay_max:-0}" "${turn_port:-0}")
sig_port=$(node "$util" free-port tcp "${relay_min:-0}" "${relay_max:-0}" "${turn_port:-0}" "${tls_port:-0}")
if ! [[ "${relay_min:-}" =~ ^[0-9]+$ && "${relay_max:-}" =~ ^[0-9]+$ && "${turn_port:-}" =~ ^[0-9]+$ &&
        "${tls_port:-}" =~ ^[0-9]+$ && "${sig_port:-}" =~ ^[0-9]+$ ]]; then
  not_ok "${pre[4]}"
  say "# could not pick free ports (relay '${relay_min:-}'..'${relay_max:-}', turn '${turn_port:-}', tls '${tls_port:-}', signaling '${sig_port:-}')"
  fail_rest "could not pick free ports"
fi
secret=$(node -e 'console.log(require("crypto").randomBytes(12).toString("hex"))')

# Waits up to 15 s until GET https://127.0.0.1:$sig_port/ice-servers answers
# 200 with the certificate verified against $cert. Returns 0 when it does.
wait_https() {
  local deadline=$((SECONDS + 15))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      wait "$server_pid"
      say "# server exited early with status $?"
      server_pid=""
      return 1
    fi
    if node -e '
      const [port, ca] = process.argv.slice(1);
      require("https").get({ host: "127.0.0.1", port, path: "/ice-servers", agent: false,
                             ca: require("fs").readFileSync(ca), rejectUnauthorized: true },
        r => process.exit(r.statusCode === 200 ? 0 : 1)).on("error", () => process.exit(1));
      setTimeout(() => process.exit(1), 1000);' "$sig_port" "$cert" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  say "# https://127.0.0.1:$sig_port/ice-servers did not answer within 15 s"
  return 1
}

server_args=(
  --listening-ip=127.0.0.1 --listening-port="$turn_port" --tls-listening-port="$tls_port"
  --cert="$cert" --pkey="$key" --relay-ip=127.0.0.1 --min-port="$relay_min" --max-port="$relay_max"
  --realm=turnstone.test --relay-threads=1 --use-auth-secret --static-auth-secret="$secret"
  --signaling-port="$sig_port" --signaling-tls --signaling-root="$top/share/www" --signaling-open-credentials
)
say "# starting: $server_bin ${server_args[*]}"
"$server_bin" "${server_args[@]}" >"$workdir/server.log" 2>&1 </dev/null &
server_pid=$!
if wait_https && node "$util" stun-ping 127.0.0.1 "$tls_port" 3000 tls "$cert" >"$workdir/ping.out" 2>&1; then
  ok "${pre[4]}"
  diag <"$workdir/ping.out"
else
  not_ok "${pre[4]}"; [ -f "$workdir/ping.out" ] && diag <"$workdir/ping.out"; fail_rest "server did not start"
fi

export SIG_PORT=$sig_port TURN_PORT=$turn_port TLS_PORT=$tls_port SECRET=$secret SERVER_PID=$server_pid \
  CERT=$cert PKEY=$key CERT2=$cert2 PKEY2=$key2 INDEX_HTML="$top/share/www/index.html"
(cd "$node_dir" && exec timeout -k 5 120 node tls.mjs) >"$workdir/js.out" 2>&1 &
node_pid=$!
wait "$node_pid"
node_rc=$?
node_pid=""
renumber <"$workdir/js.out"
t=$((t + n_js))
[ "$node_rc" = 0 ] || { failed=1; say "# tls.mjs exited with status $node_rc"; }
if [ "$(grep -cE '^(ok|not ok) ' "$workdir/js.out")" != "$n_js" ]; then
  failed=1; say "# tls.mjs printed the wrong number of results"
fi
if grep -q 'SIGHUP' "$workdir/server.log"; then
  grep -E 'SIGHUP|TLS certificate' "$workdir/server.log" | diag
fi

if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then ok "$post"; else not_ok "$post"; fi
[ "$failed" = 0 ]
