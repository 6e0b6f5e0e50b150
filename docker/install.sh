#!/bin/sh
# The image's install steps. The Dockerfile runs this; CI (docker/smoke.py) runs it too, in
# a scratch folder, so that what the image does is exercised where no Docker engine runs.
#   install.sh SRC    SRC: a checkout of nsdi-tracker
# Folders (the image's defaults): NSDI_APP=/opt/nsdi-tracker (virtualenv), NSDI_DATA=/data
# (the database volume), NSDI_CONFIG=/config (config and watchlists, mount your own over it).
set -eu
SRC=${1:?usage: install.sh SRC}
APP=${NSDI_APP:-/opt/nsdi-tracker}
DATA=${NSDI_DATA:-/data}
CONFIG=${NSDI_CONFIG:-/config}
RUN_AS=${NSDI_USER:-nsdi}
PYTHON=${PYTHON:-python3}

"$PYTHON" -m venv "$APP"
# The exact versions CI tested (constraints.txt), not whatever is newest on the day.
"$APP/bin/pip" install --no-cache-dir --disable-pip-version-check --quiet \
    -c "$SRC/constraints.txt" "$SRC[fast,fleet]"

mkdir -p "$DATA" "$CONFIG/watchlists"
cp "$SRC/nsdi-tracker.toml" "$CONFIG/"
cp "$SRC"/watchlists/*.toml "$CONFIG/watchlists/"

# A system user with no home and no shell owns the data volume; the config stays root's.
if [ "$(id -u)" = 0 ]; then
    id "$RUN_AS" >/dev/null 2>&1 || useradd --uid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_AS"
    chown "$RUN_AS" "$DATA"
fi
