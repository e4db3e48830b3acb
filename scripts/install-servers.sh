#!/bin/sh
# Install the servers the test suite runs against (redis-server + redis-cli, memcached,
# saslpasswd2, the SASL PLAIN plugin, libmemcached for pylibmc), but only what is
# missing: a second run does nothing. Needs root and apt-get; otherwise it only says
# what is missing, and the tests that need a missing server are skipped (failed in CI).
set -eu

PACKAGES="redis-server memcached sasl2-bin libsasl2-modules libmemcached-dev"

missing=""
for cmd in redis-server redis-cli memcached saslpasswd2; do
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing $cmd"
done
for pkg in libsasl2-modules libmemcached-dev; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in
        *" installed") ;;
        *) missing="$missing $pkg" ;;
    esac
done

if [ -z "$missing" ]; then
    echo "install-servers: everything is installed"
    exit 0
fi

echo "install-servers: missing:$missing"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-servers: not root or no apt-get; install them yourself:" >&2
    echo "  apt-get install -y $PACKAGES" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # the package list is meant to split into words
apt-get install -y --no-install-recommends $PACKAGES
