#!/usr/bin/env bash
# Browser test (TAP): like relay.sh, but headless Chromium reaches turnstone
# over TLS only (turns:127.0.0.1:TLSPORT?transport=tcp with a self-signed
# certificate made by openssl; Chromium runs with --ignore-certificate-errors),
# and getStats() must show relayProtocol "tls" on both peers' selected relay
# candidates.  See relay.sh for the environment it reads.
exec bash "$(dirname "${BASH_SOURCE[0]}")/relay.sh" --transport tls "$@"
