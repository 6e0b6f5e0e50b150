"""Credentials kept out of logs and stored errors.

Sink URLs carry secrets in every part: `user:password@`, `?token=`, a Slack or Discord
webhook's path, a Telegram bot token as an Apprise URL's host. A URL that is logged or stored
is cut down to what identifies the receiver without letting anyone post to it: an http(s) URL
to its scheme, host and port; any other URL (Apprise's `tgram://`, `mailto://`...) to its
scheme. In free text (exception messages, other libraries' log lines) every URL loses its user
information and query values, and the sink URLs the config names are cut down as above.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

# scheme://[userinfo@]rest, where rest runs to the next blank or quote.
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*)://([^\s\"'<>]*)")
_USERINFO = re.compile(r"^[^/?#@]*@")
HIDDEN = "***"
_NO_SCHEME = "(no scheme)"
# Schemes whose URLs carry no secret in their host or path: DNS transports, web pages. Any
# other (Apprise has hundreds: tgram://BOT_TOKEN/CHAT) is cut down to its scheme in free text.
_PLAIN = frozenset({"http", "https", "udp", "tcp", "tls", "dns", "file"})


def url(text: str) -> str:
    """A sink URL as it may be shown: `https://host:port/…`, `tgram://…`."""
    shown_scheme = scheme(text)
    if shown_scheme not in ("http://", "https://"):
        return f"{shown_scheme}…" if shown_scheme != _NO_SCHEME else "(a URL without a scheme)"
    try:
        parts = urlsplit(text.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return f"{shown_scheme}…"
    if not host:
        return f"{shown_scheme}…"
    shown = f"[{host}]" if ":" in host else host
    if port is not None:
        shown += f":{port}"
    rest = text.strip().split(parts.netloc, 1)[-1]
    return f"{shown_scheme}{shown}" + ("/…" if rest not in ("", "/") else "/")


def scheme(text: str) -> str:
    """The URL's scheme alone, for messages about a URL that must not be shown."""
    head, sep, _ = text.strip().partition("://")
    ok = (
        sep and head.isascii() and head.replace("+", "").replace(".", "").replace("-", "").isalnum()
    )
    return f"{head.lower()}://" if ok else _NO_SCHEME


def scrub(text: str, known: Iterable[str] = ()) -> str:
    """`text` with each known sink URL cut down (see `url`) and every other URL stripped of
    its user information and query values."""
    for secret in sorted(set(known), key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, url(secret))
    return _URL.sub(_scrub_one, text)


def _scrub_one(match: re.Match[str]) -> str:
    if match[1].lower() not in _PLAIN:
        return f"{match[1]}://…"
    rest = _USERINFO.sub(f"{HIDDEN}@", match[2])
    head, sep, query = rest.partition("?")
    if sep:
        fields = (f"{k}={HIDDEN}" if eq else HIDDEN for k, eq, _ in _fields(query))
        rest = head + "?" + "&".join(fields)
    return f"{match[1]}://{rest}"


def _fields(query: str) -> Iterable[tuple[str, str, str]]:
    return (part.partition("=") for part in query.split("&"))
