#!/bin/sh
# tests/lib/npm_ci.sh DIR PKG... -- runs `npm ci` in DIR when any PKG is
# missing from DIR/node_modules, under an exclusive lock on DIR/.npm-ci.lock.
# make -j runs several tests that share one node_modules: without the lock a
# second `npm ci` wipes node_modules while the first test's node runs from it.
# Prints npm's output as TAP comments when it ran; exits 0 when every PKG is
# installed afterwards, 1 otherwise.
dir=$1; shift
# A read-only DIR (make distcheck's source tree) is only checked: npm ci
# could not write there either.
if [ -w "$dir" ]; then
	exec 9>"$dir/.npm-ci.lock"
	flock 9 || exit 1
fi
present() {
	for p in "$@"; do [ -f "$dir/node_modules/$p/package.json" ] || return 1; done
}
if ! present "$@"; then
	echo "# node_modules incomplete: running npm ci in $dir"
	(cd "$dir" && npm ci --no-audit --no-fund --no-update-notifier) 2>&1 | sed -e 's/^/# /'
fi
present "$@"
