"""`python -m nsdi_tracker.sim`: a national and a reference resolver on loopback, and a config
folder that points at them, for trying the daemon (or the Docker image's entry command) with
no network. Runs until SIGTERM or SIGINT.

    python -m nsdi_tracker.sim --out /tmp/try           # writes /tmp/try/nsdi-tracker.toml
    echo youtube.com > /tmp/try/removed                 # the national resolver drops it
    nsdi-tracker run -c /tmp/try/nsdi-tracker.toml
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from nsdi_tracker.sim import CONTROL_ADDRESSES, SimResolver, answer, answering, nxdomain

DOMAINS = {
    "youtube.com": "142.250.74.46",
    "www.bbc.com": "151.101.0.81",
    "meduza.io": "104.18.30.1",
    "wikipedia.org": "185.15.59.224",
}


def config_text(
    national: str, reference: str, interval: float = 5, listen: str = "", extra: str = ""
) -> str:
    head = f"controls = {list(CONTROL_ADDRESSES)}\n".replace("'", '"')
    head += 'watchlists = ["watchlist.txt"]\ndatabase = "nsdi-tracker.db"  # beside this file\n'
    head += f"interval = {interval:g}\n{extra}\n"
    if listen:
        head += f'[http]\nlisten = "{listen}"\n'
    resolvers = [("nsdi-sim", "national", national), ("reference-sim", "reference", reference)]
    return head + "".join(
        f'\n[[resolver]]\nname = "{name}"\nrole = "{role}"\naddress = "{address}"\n'
        "timeout = 0.5\nretries = 1\n"
        for name, role, address in resolvers
    )


async def serve(out: Path, interval: float, listen: str, extra: str) -> None:
    national = answering({**CONTROL_ADDRESSES, **DOMAINS})
    reference = answering({**CONTROL_ADDRESSES, **DOMAINS})
    async with SimResolver(national) as nat, SimResolver(reference) as ref:
        config = write_folder(out, config_text(nat.address, ref.address, interval, listen, extra))
        print(f"national {nat.address}, reference {ref.address}; config {config}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        while not stop.is_set():
            removed = removed_names(out / "removed")
            for name, addr in DOMAINS.items():
                national.set(name, nxdomain() if name in removed else answer(addr))
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)


def write_folder(out: Path, config_toml: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "watchlist.txt").write_text("\n".join(DOMAINS) + "\n", encoding="utf-8")
    config = out / "nsdi-tracker.toml"
    tmp = config.with_suffix(".tmp")
    tmp.write_text(config_toml, encoding="utf-8")
    tmp.replace(config)  # whoever waits for the file never reads half of it
    return config


def removed_names(path: Path) -> set[str]:
    try:
        return set(path.read_text(encoding="utf-8").split())
    except OSError:
        return set()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nsdi_tracker.sim", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="config folder to write")
    parser.add_argument("--interval", type=float, default=5, help="seconds (default 5)")
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        help="the status server address to write into the config ('' for none)",
    )
    parser.add_argument("--extra", default="", help="TOML lines added to the top of the config")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.out, args.interval, args.listen, args.extra))


if __name__ == "__main__":
    main()
