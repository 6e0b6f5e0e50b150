#!/bin/sh
# Installs Unbound from Debian for the integration test; it is never started as a service.
set -e
command -v unbound >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "tests need Unbound: run 'sudo apt-get install unbound' (Debian/Ubuntu) and retry" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends unbound >/dev/null
# The package enables a system service; the tests start their own instances.
(systemctl disable --now unbound 2>/dev/null || service unbound stop 2>/dev/null) || true
command -v unbound >/dev/null
