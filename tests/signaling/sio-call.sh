#!/usr/bin/env bash
# End-to-end socket.io video call test (TAP): call.sh with sio-call.mjs and
# a page directory made of tests/signaling/sio-page/ (a tutorial-style
# socket.io page) plus socket.io-client's browser bundle
# (node_modules/socket.io-client/dist/socket.io.min.js, copied at test time),
# served by turnstone as signaling-root: two headless Chromium contexts
# call each other relay-only through /socket.io/ and TURN.
call_js=sio-call.mjs
prepare_root() {
  page_root="$workdir/www"
  mkdir -p "$page_root" &&
    cp "$sig_dir/sio-page/index.html" "$sig_dir/sio-page/app.js" "$page_root/" &&
    cp "$node_dir/node_modules/socket.io-client/dist/socket.io.min.js" "$page_root/"
}
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/call.sh"
