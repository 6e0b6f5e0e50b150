"""The commands that draw: the live `dashboard` and the `demo` with its dashboard."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from nsdi_tracker.cli.common import EXIT_OK, arun, where
from nsdi_tracker.core.clock import utcnow
from nsdi_tracker.core.errors import ConfigError


def serve(args: argparse.Namespace) -> int:
    from nsdi_tracker.service.publish import Publisher
    from nsdi_tracker.service.publish import serve as serve_forever
    from nsdi_tracker.settings.config import DEFAULT_LISTEN, parse_listen
    from nsdi_tracker.settings.keys import BASE_PATH

    config, path = where(args, need_config=False, only_for_db=True)
    listen_text = args.listen or (str(config.listen) if config and config.listen else None)
    listen = parse_listen(
        listen_text or DEFAULT_LISTEN, "--listen", lambda key, why: ConfigError(f"{key}: {why}")
    )
    base = args.base_path if args.base_path is not None else config.base_path if config else ""
    base = base.rstrip("/")
    if base and not BASE_PATH.fullmatch(base):
        raise ConfigError(
            f"--base-path: {base!r} must be a path such as /nsdi (letters, digits, - . _ ~)"
        )
    arun(serve_forever(Publisher(path, base_path=base), listen))
    return EXIT_OK


def dashboard(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console
    from rich.live import Live

    from nsdi_tracker.ui.dashboard import read, render

    config, path = where(args, need_config=False)
    interval = config.schedule.interval if config else None

    def frame(width: int, height: int) -> Any:
        return render(read(path, utcnow(), interval, (width, height)), width, height)

    console = Console()
    if args.once or not console.is_terminal:
        _dashboard_frame(path, interval, args.width or console.width)
        return EXIT_OK
    try:
        with Live(console=console, screen=True, auto_refresh=False) as live:
            while True:
                live.update(frame(console.size.width, console.size.height), refresh=True)
                time.sleep(max(args.refresh, 0.2))
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def demo(args: argparse.Namespace) -> int:
    import tempfile

    from rich.console import Console

    from nsdi_tracker import demo as replay
    from nsdi_tracker.ui import logs

    if args.speed <= 0 or args.rounds < 1:
        raise ConfigError("--speed must be above 0 and --rounds at least 1")
    listen = None
    if args.listen != "off":
        from nsdi_tracker.settings.config import parse_listen

        parsed = parse_listen(args.listen, "--listen", lambda k, why: ConfigError(f"{k}: {why}"))
        listen = replay.free_listen(str(parsed))
    folder = args.dir or Path(tempfile.mkdtemp(prefix="nsdi-demo-"))
    console = Console()
    live = console.is_terminal and not args.no_dashboard
    folder.mkdir(parents=True, exist_ok=True)
    if live:
        replay.quiet_logs(folder)
    else:
        logs.setup("warning", "text")

    def draw(database: Path, interval: float) -> asyncio.Future[None]:
        return asyncio.ensure_future(_live_dashboard(console, database, interval, 0.5))

    result = arun(
        replay.run(
            folder,
            speed=args.speed,
            rounds=args.rounds,
            say=(lambda _: None) if live else print,
            while_running=draw if live else None,
            events_file=True,
            listen=listen,
        )
    )
    if live:
        _dashboard_frame(result.database, None, console.width)
    print(f"demo finished after {result.rounds} rounds.")
    print(f"  database:   {result.database}   (nsdi-tracker dashboard --db {result.database})")
    print(f"  change log: {result.csv}")
    if result.events is not None:
        print(f"  events:     {result.events}")
    print(f"  the page:   nsdi-tracker serve --db {result.database}")
    return EXIT_OK


async def _live_dashboard(console: Any, database: Path, interval: float, every: float) -> None:
    from rich.live import Live

    from nsdi_tracker.ui.dashboard import read, render

    def snap() -> Any:
        if not database.exists():  # the daemon has not created it yet
            return None
        return read(database, utcnow(), interval, tuple(console.size))

    # Live draws on its own thread: drawing on the event loop would delay the replies the
    # demo's resolvers are timing.
    with Live(console=console, screen=True, refresh_per_second=4) as live:
        while True:
            shot = await asyncio.to_thread(snap)
            if shot is not None:
                live.update(render(shot, *console.size))
            await asyncio.sleep(every)


def _dashboard_frame(database: Path, interval: float | None, width: int) -> None:
    """One frame to stdout at `width` columns (no height: every row that fits the rules)."""
    from rich.console import Console

    from nsdi_tracker.ui.dashboard import read, render

    Console(width=width).print(render(read(database, utcnow(), interval), width, None))
