"""Domain-name normalisation: one canonical spelling for every watched name."""

from __future__ import annotations

import ipaddress
import re
from typing import Final

import dns.exception
import dns.name

from nsdi_tracker.core.errors import InvalidName

# Letters, digits, hyphen; underscore is tolerated because real hostnames carry it.
_LABEL_TEXT: Final = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_LABEL: Final = re.compile(rf"^{_LABEL_TEXT}$")
# A name already in canonical form (ASCII hostname labels): what nearly every line of a
# million-name list is, checked without dnspython.
_CANONICAL: Final = re.compile(rf"(?:{_LABEL_TEXT}\.)*{_LABEL_TEXT}")


def normalize(text: str) -> str:
    """Return the canonical form of a domain name: lower case, punycode, no trailing dot.

    Raises InvalidName with the reason when the text is not a hostname one can watch.
    """
    raw = text.strip()
    bare = (raw[:-1] if raw.endswith(".") else raw).lower()
    if (
        raw.isascii()
        and len(bare) <= 253
        and _CANONICAL.fullmatch(bare)
        and not bare.replace(".", "").isdigit()  # all digits: an IP address, or not a name
    ):
        return bare
    if not raw:
        raise InvalidName("empty name")
    if any(ch.isspace() for ch in raw):
        raise InvalidName(f"{raw!r} contains white space")
    bare = raw[:-1] if raw.endswith(".") else raw
    if not bare or bare.startswith(".") or ".." in bare:
        raise InvalidName(f"{raw!r} has an empty label")
    if "\\" in bare:
        raise InvalidName(f"{raw!r} contains a backslash escape")
    if "*" in bare:
        raise InvalidName(f"{raw!r} is a wildcard, not a name")
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        pass
    else:
        raise InvalidName(f"{raw!r} is an IP address, not a domain name")
    try:
        name = dns.name.from_text(bare.lower())
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise InvalidName(f"{raw!r}: {exc or type(exc).__name__}") from None
    ascii_text = name.to_text(omit_final_dot=True).lower()
    for label in ascii_text.split("."):
        if not _LABEL.match(label):
            raise InvalidName(f"{raw!r}: label {label!r} is not a valid hostname label")
    if ascii_text.replace(".", "").isdigit():
        raise InvalidName(f"{raw!r} is all digits")
    return ascii_text
