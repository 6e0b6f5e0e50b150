#!/bin/sh
# What CI's replay of the image (docker/smoke.py) needs from Debian: tini, the image's init
# (the package the Dockerfile installs), a system Python 3.11 with venv that the image's
# unprivileged user can run (a Python under /root, such as pyenv's, is out of its reach), and
# gcc with that Python's headers, which the image's build compiles its hot path with.
set -e
need=
command -v tini >/dev/null 2>&1 || need="tini"
/usr/bin/python3 -c "import ensurepip, venv" 2>/dev/null || need="$need python3-venv"
command -v gcc >/dev/null 2>&1 || need="$need gcc"
[ -f "$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] \
    || need="$need python3-dev"
[ -z "$need" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "the image replay needs: sudo apt-get install$need" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
