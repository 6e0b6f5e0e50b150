# nsdi-tracker image. Issue 4 adds the daemon, the /data volume, HEALTHCHECK and the status port.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1

WORKDIR /src
COPY pyproject.toml README.md nsdi-tracker.toml ./
COPY nsdi_tracker ./nsdi_tracker
COPY watchlists ./watchlists
RUN pip install . && rm -rf /src

RUN useradd --system --create-home --home-dir /home/nsdi nsdi
USER nsdi
WORKDIR /home/nsdi

# Mount your own config folder and select it: -e NSDI_TRACKER_CONFIG=/config/nsdi-tracker.toml
ENTRYPOINT ["nsdi-tracker"]
CMD ["check"]
