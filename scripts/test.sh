#!/bin/sh
# test.sh -- set up a fresh Debian 12 machine and run the whole test suite.
#   scripts/test.sh              build in build/ and run `make check`
#   scripts/test.sh --sanitize   the same in build-asan/ with ASan + UBSan
set -e
cd "$(dirname "$0")/.."
scripts/deps.sh --test
dir=build flags=""
if [ "${1:-}" = "--sanitize" ]; then
	dir=build-asan flags="--enable-sanitizers"
fi
[ -x configure ] || ./autogen.sh
mkdir -p "$dir"
cd "$dir"
[ -f Makefile ] || ../configure $flags
make -j2
make -j2 check
