#!/bin/sh
# Installs Unbound from Debian for the integration test. The tests start their own instances
# on loopback; the packaged service is never started (it would query the root servers).
set -e
command -v unbound >/dev/null 2>&1 || [ -x /usr/sbin/unbound ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "tests need Unbound: run 'sudo apt-get install unbound' (Debian/Ubuntu) and retry" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 tells Debian's maintainer scripts not to start services.
own_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=1
fi
trap '[ -n "$own_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends unbound >/dev/null
[ -x /usr/sbin/unbound ]
