#!/bin/sh
# docker/entrypoint.sh -- starts turnstone with the image's configuration and
# the REST API secret from $TURNSTONE_SECRET (made up and printed if unset).
# Arguments are passed on: docker run ... turnstone --verbose
set -e
if [ -z "${TURNSTONE_SECRET:-}" ]; then
	TURNSTONE_SECRET=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	echo "turnstone-entrypoint: TURNSTONE_SECRET not set; this run's REST API secret is $TURNSTONE_SECRET" >&2
fi
exec /usr/bin/turnstone -c /etc/turnstone/turnstone.conf --static-auth-secret="$TURNSTONE_SECRET" "$@"
