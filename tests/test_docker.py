"""The Dockerfile says what the README and CI's replay of it (docker/smoke.py) rely on."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def load_smoke() -> object:
    spec = importlib.util.spec_from_file_location("smoke", REPO / "docker" / "smoke.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["smoke"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_dockerfile_runs_the_daemon_unprivileged_with_health_and_a_data_volume() -> None:
    """Non-root USER, tini, CMD `nsdi-tracker run`, HEALTHCHECK `nsdi-tracker health`, the
    database under the /data volume, the status port exposed and listened on, SIGTERM."""
    smoke: object = load_smoke()
    image = smoke.parse((REPO / "Dockerfile").read_text())  # type: ignore[attr-defined]
    assert image.user not in ("root", "0", "")
    assert image.entrypoint == ["tini", "--"]
    assert image.cmd == ["nsdi-tracker", "run"]
    assert image.healthcheck == ["nsdi-tracker", "health"]
    assert image.stopsignal == "SIGTERM"
    assert Path(image.env["NSDI_TRACKER_DB"]).parent.as_posix() in image.volumes
    assert image.env["NSDI_TRACKER_LISTEN"].endswith(":" + image.expose[0])
    assert image.env["NSDI_TRACKER_CONFIG"] == "/config/nsdi-tracker.toml"
    assert any("docker/install.sh" in run for run in image.runs)
    assert image.env["PATH"].startswith("/opt/nsdi-tracker/bin:")
    compose = (REPO / "docker-compose.yml").read_text()
    assert ":/data" in compose and f":{image.expose[0]}" in compose and "restart:" in compose


def test_reroot_moves_only_the_image_folders() -> None:
    """The replay moves /opt/nsdi-tracker, /config and /data under its scratch root, and
    nothing that merely starts with the same letters."""
    smoke: object = load_smoke()
    reroot = smoke.reroot  # type: ignore[attr-defined]
    root = Path("/tmp/r")
    assert reroot("/data/nsdi-tracker.db", root) == "/tmp/r/data/nsdi-tracker.db"
    assert reroot("/opt/nsdi-tracker/bin:/usr/bin", root) == "/tmp/r/opt/nsdi-tracker/bin:/usr/bin"
    assert reroot("/database/x:/configs", root) == "/database/x:/configs"


def test_the_image_and_ci_install_the_locked_versions() -> None:
    """Issue 14, defect 14: dependencies had no upper bounds and no lock. Every dependency in
    pyproject.toml has a range up to its next major version; constraints.txt pins each of
    them (and everything they pull in) to one version; `make venv` (CI), docker/install.sh
    (the image and its replay) and the Dockerfile use it; the base names its Debian release."""
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in ("notify", "fast"):
        wanted += project["optional-dependencies"][extra]
    pinned = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", version), line
            pinned[name.lower().replace("_", "-")] = version
    for requirement in wanted:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement)
        assert name is not None and "<" in requirement, f"{requirement}: no upper bound"
        assert name[0].lower().replace("_", "-") in pinned, f"{name[0]} is not in constraints.txt"
    assert "-c constraints.txt" in (REPO / "Makefile").read_text()
    assert '-c "$SRC/constraints.txt"' in (REPO / "docker" / "install.sh").read_text()
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "constraints.txt" in dockerfile and "ARG BASE=python:3.11-slim-bookworm" in dockerfile


def test_the_fleet_compose_file_and_its_configs(monkeypatch: object, tmp_path: Path) -> None:
    """docker-compose.fleet.yml: the official postgres image, the collector and a probe from
    the image, each config it mounts present and valid (tokens from the environment, as the
    compose file passes them), and the image has what a collector needs."""
    import pytest
    import yaml

    from nsdi_tracker.delivery.sinks import KINDS
    from nsdi_tracker.settings.collector import load_collector
    from nsdi_tracker.settings.config import load_config

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    compose = yaml.safe_load((REPO / "docker-compose.fleet.yml").read_text())
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["collector"]["command"][:2] == ["nsdi-tracker", "collector"]
    assert services["collector"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    mounted = {}
    for name in ("collector", "probe"):
        for volume in services[name]["volumes"]:
            source, target = volume.split(":")[:2]
            if source.startswith("./"):
                assert (REPO / source).is_file(), source
                mounted[target] = REPO / source
    for key in services["collector"]["environment"]:
        monkeypatch.setenv(key, "a-token-long-enough-0123456789" if "PROBE" in key else "x")
    monkeypatch.setenv("NSDI_FLEET_TOKEN", "a-token-long-enough-0123456789")
    collector = load_collector(mounted[services["collector"]["command"][-1]], KINDS)
    assert collector.listen.host == "0.0.0.0" and str(collector.listen.port) in str(
        services["collector"]["ports"]
    )
    probe_config = services["probe"]["environment"]["NSDI_TRACKER_CONFIG"]
    # the image's /config/watchlists are the repository's watchlists
    text = mounted[probe_config].read_text().replace("/config/watchlists/", f"{REPO}/watchlists/")
    (tmp_path / "probe.toml").write_text(text)
    config = load_config(tmp_path / "probe.toml", KINDS)
    assert config.fleet is not None and config.fleet.name == "fleet"
    assert "fleet" in (REPO / "docker" / "install.sh").read_text().split("[fast,")[1]
