#!/bin/bash
# bench/coturn.sh SRC_DIR [OUT_DIR]
#
# Builds coturn's turnserver from a source checkout (for the bench: coturn
# 4.17.1, git tag 4.17.1 of github.com/coturn/coturn) with optimisation, and
# copies the binary to OUT_DIR/bin/turnserver (default build/coturn/). Then:
#   bench/run.sh --turnserver build/coturn/bin/turnserver
#
# coturn's hand-written configure writes its Makefile into the current
# directory and builds with -g only, so the build runs inside SRC_DIR (keep
# that checkout outside this repository; nothing of coturn is committed here)
# with CFLAGS=-O2. Installs nothing: it names the Debian packages missing.
set -eu
if [ $# -lt 1 ] || [ ! -x "$1/configure" ]; then
    echo "usage: bench/coturn.sh SRC_DIR [OUT_DIR]  (SRC_DIR: a coturn source checkout)" >&2
    exit 2
fi
SRC=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${2:-$HERE/../build/coturn}
case "$SRC/" in
"$(cd "$HERE/.." && pwd)"/*) echo "bench/coturn.sh: keep the coturn checkout outside this repository" >&2; exit 2 ;;
esac

missing=()
for p in libevent-dev libssl-dev libhiredis-dev libmicrohttpd-dev libsqlite3-dev pkg-config make gcc; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench/coturn.sh: missing: ${missing[*]}" >&2
    echo "bench/coturn.sh: install with: apt-get install -y ${missing[*]}" >&2
    exit 2
fi

mkdir -p "$OUT/bin"
OUT=$(cd "$OUT" && pwd)
cd "$SRC"
echo "bench/coturn.sh: building $(git describe --tags 2>/dev/null || echo "$SRC") in $SRC" >&2
CFLAGS=-O2 ./configure >"$OUT/configure.log" 2>&1 || { echo "configure failed, see $OUT/configure.log" >&2; exit 1; }
make -j"$(nproc)" bin/turnserver >"$OUT/make.log" 2>&1 || { echo "make failed, see $OUT/make.log" >&2; exit 1; }
cp bin/turnserver "$OUT/bin/turnserver"
echo "bench/coturn.sh: $OUT/bin/turnserver ($("$OUT/bin/turnserver" --version 2>/dev/null | tail -1))" >&2
