#!/bin/bash
# tests/docker/image.sh -- docker/Dockerfile builds an image that starts and
# answers STUN (issue 11). Uses podman (Debian's package; no daemon). No
# image registry is needed: the base image is a debootstrap'ed Debian 12
# (minbase) imported with "podman import", cached as a tarball under the
# build directory; the image's apt-get still needs the Debian mirror.
# Where no container engine can run, this test fails, saying why.
# Speaks TAP; the container uses host networking and 127.0.0.1 only.
. "$TOP_SRCDIR/tests/lib/common.sh"

tap_plan 6
: "${TOP_BUILDDIR:=$(pwd)}"
CACHE=${TURNSTONE_DOCKER_CACHE:-$TOP_BUILDDIR/docker-cache}
BASE_TAR=$CACHE/bookworm-minbase.tar
BASE_IMG=localhost/turnstone-test-base:bookworm
IMG=localhost/turnstone-test:latest
NAME=turnstone-test-$$
TMP=$(mktemp -d "${TMPDIR:-/tmp}/turnstone-docker.XXXXXX")
register_tmp "$TMP"

# crun cannot raise rlimits without CAP_SYS_RESOURCE, and podman's defaults
# are above what an unprivileged CI sandbox may have: ask for what we have.
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
ULIMITS=(--ulimit "nofile=$NOFILE:$NOFILE" --ulimit nproc=4096:4096)
WRAP=no

# pod ARGS... : podman, in a private mount namespace without the cgroup v2
# hierarchy when the host mixes v1 and v2 ("hybrid", which crun refuses).
pod() {
	if [ "$WRAP" = yes ]; then
		unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified && exec podman "$@"' podman "$@"
	else
		podman "$@"
	fi
}

DANGLING_BEFORE=
cleanup_container() {
	local id
	pod rm -f "$NAME" >/dev/null 2>&1
	# the build stage and the image this build replaced: keep the disk bounded
	for id in $(podman images -q -f dangling=true 2>/dev/null); do
		case " $DANGLING_BEFORE " in *" $id "*) ;; *) podman rmi -f "$id" >/dev/null 2>&1 ;; esac
	done
}
trap 'rc=$?; cleanup_container; (exit $rc); _common_cleanup' EXIT

# ---- 1: an engine that can run a container -------------------------------
engine_ok=no
if ! require_tool podman || ! require_tool debootstrap; then
	tap_fail "podman can run a container" "needs the Debian packages podman and debootstrap"
else
	mkdir -p "$CACHE"
	if [ ! -s "$BASE_TAR" ]; then
		echo "# debootstrap --variant=minbase bookworm (cached in $BASE_TAR)"
		if debootstrap --variant=minbase bookworm "$TMP/rootfs" http://deb.debian.org/debian >"$TMP/deboot.log" 2>&1 &&
			tar -C "$TMP/rootfs" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"; then
			:
		else
			tap_diag "debootstrap failed:" "$(tail -n 20 "$TMP/deboot.log")"
		fi
		rm -rf "$TMP/rootfs"
	fi
	if [ -s "$BASE_TAR" ] && { podman image exists "$BASE_IMG" || podman import "$BASE_TAR" "$BASE_IMG" >/dev/null 2>&1; }; then
		out=$(pod run --rm --network=host "${ULIMITS[@]}" "$BASE_IMG" echo container-ok 2>&1)
		if [ "$out" != container-ok ] && printf '%s' "$out" | grep -q "hybrid mode" && command -v unshare >/dev/null; then
			tap_diag "podman: $out" "retrying without the cgroup v2 mount (private mount namespace)"
			WRAP=yes
			out=$(pod run --rm --network=host "${ULIMITS[@]}" "$BASE_IMG" echo container-ok 2>&1)
		fi
		if [ "$out" = container-ok ]; then
			engine_ok=yes
			tap_ok "podman can run a container (host network)"
		else
			tap_fail "podman can run a container" "podman run --rm --network=host ${ULIMITS[*]} $BASE_IMG: $out"
		fi
	else
		tap_fail "podman can run a container" "no base image: debootstrap or podman import failed"
	fi
fi

# ---- 2: the image builds -----------------------------------------------
built=no
if [ "$engine_ok" = yes ]; then
	DANGLING_BEFORE=$(podman images -q -f dangling=true 2>/dev/null | xargs)
	if pod build --network=host "${ULIMITS[@]}" --build-arg BASE="$BASE_IMG" --build-arg RUNTIME_BASE="$BASE_IMG" \
		-f "$TOP_SRCDIR/docker/Dockerfile" -t "$IMG" "$TOP_SRCDIR" >"$TMP/build.log" 2>&1; then
		built=yes
		tap_ok "docker/Dockerfile builds"
	else
		tap_fail "docker/Dockerfile builds" "$(tail -n 40 "$TMP/build.log")"
	fi
else
	tap_fail "docker/Dockerfile builds" "not run: no container engine"
fi

# ---- 3-6: it starts, answers Binding over UDP and TCP, not as root ------
if [ "$built" = yes ]; then
	PORT=$(free_udp_port) || die "no free port"
	RB=$(free_port_range 100) || die "no free relay range"
	pod run -d --name "$NAME" --network=host "${ULIMITS[@]}" -e TURNSTONE_SECRET=0123456789abcdef "$IMG" \
		--listening-ip=127.0.0.1 --listening-port="$PORT" --min-port="$RB" --max-port=$((RB + 99)) \
		>"$TMP/run.log" 2>&1
	if wait_stun_ready "$PORT" 127.0.0.1 20; then
		tap_ok "the container answers a STUN Binding on 127.0.0.1:$PORT"
	else
		tap_fail "the container answers a STUN Binding on 127.0.0.1:$PORT" "$(cat "$TMP/run.log")" \
			"$(pod logs "$NAME" 2>&1 | tail -n 30)"
	fi
	if wait_tcp_ready "$PORT" 127.0.0.1 5; then
		tap_ok "the container accepts TCP on $PORT"
	else
		tap_fail "the container accepts TCP on $PORT"
	fi
	logs=$(pod logs "$NAME" 2>&1)
	if printf '%s\n' "$logs" | grep -q "turnstone ready" && ! printf '%s\n' "$logs" | grep -qi "error"; then
		tap_ok "its log says ready, no error (default configuration works)"
	else
		tap_fail "its log says ready, no error" "$logs"
	fi
	# the entrypoint execs the server: the container's main process
	pid=$(pod inspect --format '{{.State.Pid}}' "$NAME" 2>/dev/null)
	st=$(grep -E '^(Name|Uid):' "/proc/$pid/status" 2>/dev/null)
	if printf '%s\n' "$st" | grep -qx 'Name:\sturnstone' && printf '%s\n' "$st" | grep -qE '^Uid:\s+[1-9][0-9]*\s'; then
		tap_ok "the server is the container's main process and not root"
	else
		tap_fail "the server is the container's main process and not root" "pid '$pid': $st"
	fi
else
	for t in "STUN Binding" "TCP" "log" "user"; do
		tap_fail "container: $t" "not run: no image"
	done
fi

cleanup_container
tap_finish
