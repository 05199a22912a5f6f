#!/bin/bash
# bench/run.sh [--turnserver PATH] [--quick] [--runs N] [--cases hot,scale,...] [--out DIR]
#              [--limits [--baseline TURNSTONE]] [--veth]
#
# Benchmarks turnstone against coturn and a bare forwarder on 127.0.0.1.
# --veth (root): the UDP cases across a veth pair between two namespaces it
# makes, with turnstone + ebpf-offload as well; results in results/veth.
# coturn is Debian's turnserver (4.6.1); --turnserver PATH adds a coturn
# 4.17.1 build (bench/coturn.sh SRC_DIR), run with its defaults and with its
# fast flags.
# Installs nothing: it says what is missing. See bench/README.md.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
: "${TURNSTONE_BIN:=$TOP/build/src/turnstone}"
: "${BENCH_BUILD:=$TOP/build/bench}"
OUT="$HERE/results"
OUT_SET=
VETH=
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --out) OUT=$2; OUT_SET=1; shift 2 ;;
    --out=*) OUT=${1#--out=}; OUT_SET=1; shift ;;
    --veth) VETH=1; ARGS+=("$1"); shift ;;
    --turnserver)
        [ -x "${2:-}" ] || { echo "bench: --turnserver ${2:-}: not an executable (build it: bench/coturn.sh SRC_DIR)" >&2; exit 2; }
        ARGS+=("$1" "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2 ;;
    *) ARGS+=("$1"); shift ;;
    esac
done

missing=()
for t in turnserver gnuplot cc make python3 openssl; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
done
[ -e /usr/include/openssl/ssl.h ] || missing+=("openssl headers")
if [ -n "$VETH" ]; then
    for t in ip ethtool taskset bpftool; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    [ -z "$OUT_SET" ] && OUT="$HERE/results/veth"
    [ "$(id -u)" = 0 ] || { echo "bench: --veth needs root (namespaces, tc, bpf)" >&2; exit 2; }
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: missing: ${missing[*]}" >&2
    echo "bench: install with: apt-get install -y coturn gnuplot-nox build-essential python3 openssl libssl-dev" \
        "iproute2 ethtool util-linux bpftool" >&2
    exit 2
fi
if [ ! -x "$TURNSTONE_BIN" ]; then
    echo "bench: no turnstone binary at $TURNSTONE_BIN; build it first (cd build && make src/turnstone)" >&2
    echo "bench: or set TURNSTONE_BIN" >&2
    exit 2
fi
mkdir -p "$BENCH_BUILD"
make -s -C "$HERE" OUT="$BENCH_BUILD" >&2
# 10,000 allocations need more than 1024 descriptors per process
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
    echo "bench: only $(ulimit -n) file descriptors (hard limit $(ulimit -Hn)): the 10,000-allocation" >&2
    echo "bench: memory case will not fit; raise the hard limit (limits.conf / systemd LimitNOFILE)" >&2
fi
exec python3 "$HERE/run.py" --out "$OUT" --tsload "$BENCH_BUILD/tsload" --fwd "$BENCH_BUILD/fwd" \
    --turnstone "$TURNSTONE_BIN" ${ARGS[@]+"${ARGS[@]}"}
