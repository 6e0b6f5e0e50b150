"""Config loading: defaults, the shipped file, and errors that name file and key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nsdi_tracker.core.errors import ConfigError
from nsdi_tracker.core.model import Role, Transport
from nsdi_tracker.delivery.sinks import KINDS
from nsdi_tracker.settings.config import config_path, load_config, shipped_dir

REF = '[[resolver]]\nname = "ref"\nrole = "reference"\naddress = "127.0.0.1:5300"\n'
NAT = '[[resolver]]\nname = "nat"\nrole = "national"\naddress = "127.0.0.1"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_shipped_config_has_the_field_defaults() -> None:
    """Both NSDI resolvers, Yandex observed, three references over UDP and DoH."""
    config = load_config(config_path(None, environ={}), KINDS)
    by_name = {r.name: r for r in config.resolvers}
    assert by_name["nsdi-a"].host == "195.208.4.1" and by_name["nsdi-a"].role is Role.NATIONAL
    assert by_name["nsdi-b"].host == "195.208.5.1"
    assert by_name["yandex"].role is Role.OBSERVED
    refs = config.by_role(Role.REFERENCE)
    assert {r.transport for r in refs} == {Transport.UDP, Transport.DOH}
    assert {r.host for r in refs} >= {"8.8.8.8", "1.1.1.1", "9.9.9.9", "dns.google"}
    assert "ya.ru" in config.controls
    assert [p.name for p in config.watchlists] == ["nsdi-2026-02.toml"]


def test_config_path_precedence(tmp_path: Path) -> None:
    """--config wins over $NSDI_TRACKER_CONFIG, which wins over the shipped file."""
    assert config_path("a.toml", {"NSDI_TRACKER_CONFIG": "b.toml"}) == Path("a.toml")
    assert config_path(None, {"NSDI_TRACKER_CONFIG": "b.toml"}) == Path("b.toml")
    assert config_path(None, {}) == shipped_dir() / "nsdi-tracker.toml"


def test_addresses_and_defaults(tmp_path: Path) -> None:
    """Address forms, default ports and limits, normalised controls, sinkhole networks."""
    text = (
        'sinkholes = ["203.0.113.0/24"]\ncontrols = ["Ya.RU."]\n' + NAT + REF
        + '[[resolver]]\nname = "v6"\nrole = "observed"\naddress = "[::1]:5353"\n'
        + 'transport = "tcp"\n'
        + '[[resolver]]\nname = "bare6"\nrole = "observed"\naddress = "::1"\n'
        + '[[resolver]]\nname = "dot"\nrole = "reference"\naddress = "127.0.0.1"\n'
        + 'transport = "dot"\n'
        + '[[resolver]]\nname = "doh"\nrole = "reference"\n'
        + 'address = "https://localhost:8443/dns-query"\ntransport = "doh"\nqps = 5\n'
    )  # fmt: skip
    config = load_config(write(tmp_path, text), KINDS)
    r = {x.name: x for x in config.resolvers}
    assert (r["nat"].port, r["nat"].timeout, r["nat"].retries) == (53, 2.0, 2)
    assert (r["ref"].host, r["ref"].port) == ("127.0.0.1", 5300)
    assert (r["v6"].host, r["v6"].port) == ("::1", 5353)
    assert (r["bare6"].host, r["bare6"].port) == ("::1", 53)
    assert r["dot"].port == 853
    assert (r["doh"].host, r["doh"].port, r["doh"].qps) == ("localhost", 8443, 5.0)
    assert config.controls == ("ya.ru",)
    assert str(config.sinkholes[0]) == "203.0.113.0/24"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("resolver = 1\n", "resolver", "at least one"),
        (NAT, "resolver", "role = 'reference'"),
        (REF, "resolver", "role = 'national'"),
        ("colour = 1\n" + NAT + REF, "colour", "unknown key"),
        (NAT.replace('address = "127.0.0.1"\n', "") + REF, "resolver[0] (nat).address", "missing"),
        (NAT.replace('"nat"', '"Nat_1"') + REF, "resolver[0].name", "[a-z0-9-]"),
        (NAT.replace("national", "nationl") + REF, "resolver[0] (nat).role", "not one of"),
        (
            NAT.replace('"127.0.0.1"', '"dns.google"') + REF,
            "resolver[0] (nat).address",
            "IP address",
        ),
        (
            NAT.replace('"127.0.0.1"', '"127.0.0.1:99999"') + REF,
            "resolver[0] (nat).address",
            "port",
        ),
        (NAT + 'transport = "doh"\n' + REF, "resolver[0] (nat).address", "https://"),
        (NAT + "timeout = -1\n" + REF, "resolver[0] (nat).timeout", "number"),
        (NAT + "retries = 1.5\n" + REF, "resolver[0] (nat).retries", "whole number"),
        (NAT + "tls_name = 'x'\n" + REF, "resolver[0] (nat).tls_name", "dot"),
        (NAT + "bogus = 1\n" + REF, "resolver[0] (nat).bogus", "unknown key"),
        (NAT + REF.replace('"ref"', '"nat"'), "resolver[1].name", "duplicate"),
        ('watchlists = ["missing.txt"]\n' + NAT + REF, "watchlists[0]", "no such file"),
        ('controls = ["bad name"]\n' + NAT + REF, "controls[0]", "white space"),
        ('sinkholes = ["300.1.1.1"]\n' + NAT + REF, "sinkholes[0]", "not an IP"),
        ("[[resolver]\n", "", "invalid TOML"),
        ("interval = 0\n" + NAT + REF, "interval", "number from 1"),
        ("interval = 10\njitter = 10\n" + NAT + REF, "jitter", "less than interval"),
        (
            "interval = 10\njitter = 2\nround_timeout = 9\n" + NAT + REF,
            "round_timeout",
            "rounds would overlap",
        ),
        ("grace = -1\n" + NAT + REF, "grace", "number"),
        ("http = 1\n" + NAT + REF, "http", "must be a table"),
        ("[http]\nport = 80\n" + NAT + REF, "http.port", "unknown key"),
        ('[http]\nlisten = "localhost:80"\n' + NAT + REF, "http.listen", "IP address"),
        ('[http]\nlisten = "127.0.0.1:70000"\n' + NAT + REF, "http.listen", "0-65535"),
        ('[http]\nbase_path = "nsdi/"\n' + NAT + REF, "http.base_path", "must be a path"),
        ('[fleet]\ncollector = "ftp://x"\n' + NAT + REF, "fleet.collector", "http"),
        (
            '[fleet]\ncollector = "http://c"\nprobe = "p1"\ntoken = "short"\n' + NAT + REF,
            "fleet.token",
            "at least 16",
        ),
        (
            '[fleet]\ncollector = "http://c"\ncolour = 1\n' + NAT + REF,
            "fleet.colour",
            "unknown key",
        ),
        ('[[sink]]\ntype = "fleet"\n' + NAT + REF, "sink[0].type", "[fleet] table"),
    ],
)
def test_errors_name_file_and_key(tmp_path: Path, text: str, key: str, problem: str) -> None:
    """Each mistake is reported with the file, the key and what is wrong."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, KINDS)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}")
    assert problem in message


def test_cli_exits_2_on_bad_config_before_any_query(tmp_path: Path) -> None:
    """A bad config exits 2 with the file and key on stderr, and nothing on stdout."""
    path = write(tmp_path, NAT.replace("national", "nationl") + REF)
    env = {**os.environ, "NSDI_TRACKER_CONFIG": str(path)}
    proc = subprocess.run(
        [sys.executable, "-m", "nsdi_tracker", "check", "--json"],
        capture_output=True, text=True, env=env, timeout=30,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"{path}: resolver[0] (nat).role" in proc.stderr


def test_confirm_settings(tmp_path: Path) -> None:
    """confirm takes a number or a per-verdict (or resolver state) table; unknown and bad
    values name the key."""
    from nsdi_tracker.core.model import ResolverState, Verdict
    from nsdi_tracker.judge.confirm import Policy

    base = '[[resolver]]\nname = "n"\nrole = "national"\naddress = "127.0.0.1"\n'
    base += '[[resolver]]\nname = "r"\nrole = "reference"\naddress = "127.0.0.1"\n'
    path = tmp_path / "c.toml"
    path.write_text("confirm = 3\n" + base)
    assert load_config(path, KINDS).confirm == Policy(3)
    path.write_text("confirm = { down = 3, up = 1 }\n" + base)  # a resolver's own health
    policy = load_config(path, KINDS).confirm
    assert (policy.need(ResolverState.DOWN), policy.need(ResolverState.UP)) == (3, 1)
    assert policy.need(Verdict.REMOVED) == 2
    path.write_text("confirm = { default = 4, present = 1 }\n" + base)
    policy = load_config(path, KINDS).confirm
    assert policy.need(Verdict.PRESENT) == 1 and policy.need(Verdict.REMOVED) == 4
    for text, pattern in {
        "confirm = 0\n": r"confirm: 0 must be a whole number from 1",
        "confirm = { gone = 1 }\n": r"confirm\.gone: 'gone' is not one of",
        "confirm = { unknown = 1 }\n": r"confirm\.unknown: unknown rounds never count",
        "retain_days = -1\n": r"retain_days: -1 must be",
        "database = 5\n": r"database: must be a path string",
    }.items():
        path.write_text(text + base)
        with pytest.raises(ConfigError, match=pattern):
            load_config(path, KINDS)
    path.write_text(base.replace('name = "n"', 'name = "national"'))
    with pytest.raises(ConfigError, match=r"resolver\[0\]\.name: 'national' is reserved"):
        load_config(path, KINDS)


def test_database_path_precedence(tmp_path: Path) -> None:
    """--db beats $NSDI_TRACKER_DB beats the config's database (relative to the config file),
    which beats db/nsdi-tracker.db in the working directory."""
    from nsdi_tracker.settings.config import DEFAULT_DB, database_path

    base = '[[resolver]]\nname = "n"\nrole = "national"\naddress = "127.0.0.1"\n'
    base += '[[resolver]]\nname = "r"\nrole = "reference"\naddress = "127.0.0.1"\n'
    path = tmp_path / "c.toml"
    path.write_text('database = "data/x.db"\n' + base)
    config = load_config(path, KINDS)
    env = {"NSDI_TRACKER_DB": "/env.db"}
    assert database_path("/cli.db", config, env) == Path("/cli.db")
    assert database_path(None, config, env) == Path("/env.db")
    assert database_path(None, config, {}) == tmp_path / "data" / "x.db"
    assert database_path(None, None, {}) == DEFAULT_DB == Path("db/nsdi-tracker.db")


def test_schedule_and_listen(tmp_path: Path) -> None:
    """Schedule defaults follow the interval (jitter a tenth up to 30 s, round_timeout 80% of
    what jitter leaves); [http] listens on loopback unless told; --listen beats
    $NSDI_TRACKER_LISTEN beats the config."""
    from nsdi_tracker.settings.config import Listen, Schedule, listen_address

    base = '[[resolver]]\nname = "n"\nrole = "national"\naddress = "127.0.0.1"\n'
    base += '[[resolver]]\nname = "r"\nrole = "reference"\naddress = "127.0.0.1"\n'
    plain = load_config(write(tmp_path, base), KINDS)
    assert plain.schedule == Schedule(300, 30, 216, 20) and plain.listen is None
    short = load_config(write(tmp_path, "interval = 60\n[http]\n" + base), KINDS)
    assert short.schedule == Schedule(60, 6, 43.2, 20)
    assert short.listen == Listen("127.0.0.1", 8080)
    env = {"NSDI_TRACKER_LISTEN": "0.0.0.0:9000"}
    assert listen_address("[::1]:0", short, env) == Listen("::1", 0)
    assert str(listen_address(None, short, env)) == "0.0.0.0:9000"
    assert listen_address(None, plain, {}) is None
    with pytest.raises(ConfigError, match=r"\$NSDI_TRACKER_LISTEN: 'x:1'"):
        listen_address(None, plain, {"NSDI_TRACKER_LISTEN": "x:1"})


def test_pure_core_imports_no_io_library() -> None:
    """The pure modules import without aiohttp, sqlite-utils, rich or APScheduler."""
    code = (
        "import sys; import nsdi_tracker.judge.confirm, nsdi_tracker.rounds.events, "
        "nsdi_tracker.rounds.ledger, nsdi_tracker.judge.classify, nsdi_tracker.settings.config, "
        "nsdi_tracker.service.health; "
        "print(sorted(m for m in ('aiohttp', 'sqlite_utils', 'rich', 'apscheduler') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_fleet_table_is_a_sink_of_changes_that_keeps_a_week(tmp_path: Path) -> None:
    text = (
        '[fleet]\ncollector = "https://collector.example/"\nprobe = "msk-1"\n'
        'token = "0123456789abcdef01"\nasn = 12389\n' + NAT + REF
    )
    config = load_config(write(tmp_path, text), KINDS)
    fleet = config.fleet
    assert fleet is not None and fleet in config.sinks and fleet.name == "fleet"
    assert fleet.give_up_after == 7 * 86_400 and "*" in fleet.scopes
    assert "baseline" not in fleet.events and "removed" in fleet.events
    assert fleet.options.collector == "https://collector.example"  # type: ignore[attr-defined]
    assert "0123456789abcdef01" not in repr(fleet)  # the token never shows
