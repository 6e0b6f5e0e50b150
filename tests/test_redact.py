"""What is left of a URL in a log line or a stored error."""

from __future__ import annotations

import logging

import pytest

from nsdi_tracker.core import redact
from nsdi_tracker.ui import logs


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@hooks.example:8443/services/T0/B0/XXXX?token=abc", "https://hooks.example:8443/…"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
        ("http://[::1]:80/hook", "http://[::1]:80/…"),
        ("tgram://123456:AAtoken/chat", "tgram://…"),
        ("mailto://user:pw@example.com", "mailto://…"),
        ("no scheme at all", "(a URL without a scheme)"),
    ],
)  # fmt: skip
def test_a_sink_url_is_cut_to_what_identifies_the_receiver(url: str, shown: str) -> None:
    assert redact.url(url) == shown


def test_free_text_loses_user_information_query_values_and_known_urls() -> None:
    text = (
        "POST https://u:pw@h.example/x?a=1&flag failed, tgram://1:TOKEN/c and udp://1.2.3.4:53 ok"
    )
    assert redact.scrub(text) == (
        "POST https://***@h.example/x?a=***&*** failed, tgram://… and udp://1.2.3.4:53 ok"
    )
    known = "https://hooks.example/services/SECRETPATH"
    assert (
        redact.scrub(f"HTTP 500 from {known}", [known]) == "HTTP 500 from https://hooks.example/…"
    )


def test_the_log_filter_scrubs_messages_fields_and_tracebacks() -> None:
    logs.hide(["https://hooks.example/services/SECRETPATH"])
    try:
        raise ValueError("bad https://u:PASSWORD@x.example/?k=v")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "sent to %s", (
            "https://hooks.example/services/SECRETPATH",), exc_info=True)  # fmt: skip
        import sys

        record.exc_info = sys.exc_info()
    record.fields = {"error": "apprise: tgram://1:TOKEN/c"}
    assert logs.Redact(traceback_in_message=False).filter(record)
    line = logs.JsonFormatter().format(record)
    # secrets no file path can hold by chance (a checkout's random folder once held "pw")
    assert "SECRETPATH" not in line and "PASSWORD" not in line and "TOKEN" not in line
    assert "https://hooks.example/…" in line and "ValueError" in line and "tgram://…" in line
    logs.hide([])
