# nsdi-tracker: the daemon, for running unattended for months.
#   docker build -t nsdi-tracker .
#   docker run -d --name nsdi -v nsdi-data:/data -p 127.0.0.1:8080:8080 nsdi-tracker
# Your own config folder: -v ./my-config:/config:ro (nsdi-tracker.toml plus its watchlists).
# CI replays docker/install.sh and this file's ENV, USER, ENTRYPOINT, CMD and HEALTHCHECK
# (docker/smoke.py); keep them in step.
# The Python minor and the Debian release are named: `python:3.11-slim` moved from bookworm
# to trixie under everyone's feet. A digest pin is one build argument away for those who want
# it (README, "Docker"); the tag is kept so that a rebuild picks up the base's security fixes.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1

COPY pyproject.toml constraints.txt README.md nsdi-tracker.toml hatch_build.py /src/
COPY nsdi_tracker /src/nsdi_tracker
COPY watchlists /src/watchlists
COPY docker/install.sh /src/docker/install.sh
# tini as PID 1: forwards SIGTERM to the daemon and reaps children. gcc only while installing:
# the package build compiles the hot path with mypyc (hatch_build.py), then gcc goes, in the
# same layer.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini gcc libc6-dev \
    && sh /src/docker/install.sh /src && rm -rf /src \
    && apt-get purge -y --auto-remove gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

ENV PATH=/opt/nsdi-tracker/bin:$PATH \
    NSDI_TRACKER_CONFIG=/config/nsdi-tracker.toml \
    NSDI_TRACKER_DB=/data/nsdi-tracker.db \
    NSDI_TRACKER_LISTEN=0.0.0.0:8080

VOLUME ["/data"]
USER nsdi
WORKDIR /data
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=60s --timeout=15s --start-period=120s --retries=3 \
    CMD ["nsdi-tracker", "health"]

ENTRYPOINT ["tini", "--"]
CMD ["nsdi-tracker", "run"]
