#!/bin/sh
# Installs what the tests drive from Debian: Unbound (a real resolver for the integration
# test; the tests start their own instances on loopback, the packaged service is never
# started, as it would query the root servers), tmux (the dashboard's real-terminal test),
# Chromium with its driver (the page's browser tests, headless, on loopback only), and
# PostgreSQL (the fleet's collector tests make their own cluster in a temporary folder, run
# by an unprivileged user; the packaged cluster is never started).
# With arguments (Debian package names), only those: `ensure-tools.sh postgresql`, or
# `ensure-tools.sh gcc` for the compiled build's wheel (make test-compiled).
set -e
need=
if [ $# -gt 0 ]; then
    for pkg in "$@"; do
        case "$pkg" in
            postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need $pkg" ;;
            *) command -v "$pkg" >/dev/null 2>&1 || need="$need $pkg" ;;
        esac
    done
    only=1
fi
[ -n "$only" ] || command -v unbound >/dev/null 2>&1 || [ -x /usr/sbin/unbound ] || need="unbound"
[ -n "$only" ] || command -v tmux >/dev/null 2>&1 || need="$need tmux"
[ -n "$only" ] || [ -x /usr/bin/chromium ] || need="$need chromium"
[ -n "$only" ] || [ -x /usr/bin/chromedriver ] || need="$need chromium-driver"
[ -n "$only" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
[ -z "$need" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "tests need:$need; run 'sudo apt-get install$need' (Debian/Ubuntu) and retry" >&2
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
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
[ -n "$only" ] || { [ -x /usr/sbin/unbound ] && command -v tmux >/dev/null &&
    [ -x /usr/bin/chromedriver ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
