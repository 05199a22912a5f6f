#!/bin/sh
# deps.sh -- install the Debian 12 packages turnstone needs to build and run.
#   scripts/deps.sh          build + run dependencies
#   scripts/deps.sh --test   also what the test suite uses (coturn's client
#                            tools, Chromium, Node.js, Python 3, promtool
#                            from prometheus, Go and pion/turn)
set -e
pkgs="build-essential autoconf automake libtool pkg-config libevent-dev libssl-dev
libhiredis-dev libconfig-dev libcmocka-dev libjansson-dev libwslay-dev libunistring-dev"
# the ebpf-offload fast path (docs/ebpf.md): libbpf, the bpf target, the skeleton
pkgs="$pkgs libbpf-dev clang llvm bpftool"
if [ "${1:-}" = "--test" ]; then
	pkgs="$pkgs coturn redis-server chromium python3 procps iproute2 prometheus"
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || pkgs="$pkgs nodejs npm"
	# systemd-analyze and groff check the unit and manual pages (install_files.sh);
	# prlimit and unshare (util-linux) run descriptors.py and process.sh
	pkgs="$pkgs systemd groff-base util-linux"
	# tests/docker/image.sh builds and runs docker/Dockerfile
	pkgs="$pkgs podman debootstrap"
	# tests/integration/pion.sh: pion/turn's client, built offline in GOPATH mode
	pkgs="$pkgs golang-go golang-github-pion-turn.v2-dev"
	# tests/integration/ebpf.py: checksum offload off on its veth pair, capabilities dropped
	pkgs="$pkgs ethtool libcap2-bin"
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "deps.sh: installing$missing"
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi
