#!/usr/bin/env bash
# Browser test (TAP): like relay.sh, but headless Chromium reaches turnstone
# over TCP only (turn:127.0.0.1:PORT?transport=tcp), and getStats() must show
# relayProtocol "tcp" on both peers' selected relay candidates.
# See relay.sh for the environment it reads.
exec bash "$(dirname "${BASH_SOURCE[0]}")/relay.sh" --transport tcp "$@"
