"""The hot path's DNS codec: build a query, read a reply into a Summary, in a few microseconds.

dnspython's message objects cost 100-1000 us per reply (every record becomes objects), which
caps a sweep at a few thousand queries a second. This module reads only what an observation
needs: header, question, the answer section's A/AAAA/CNAME records, whether the authority
section has an SOA (and its owner), and EDNS Extended DNS Errors. Anything it does not fully
understand (DNSSEC records, unusual names, types or classes, several OPT records, IPv4-mapped
IPv6, an unknown rcode, malformed data) raises Unreadable and `wire.parse_reply` hands the
bytes to dnspython. A differential test holds the two paths to the same Summary.
"""

from __future__ import annotations

import functools
import struct
from typing import Final, NamedTuple

from nsdi_tracker.core.model import Authority, Flags, Summary, new_record

A, NS, CNAME, SOA, OPT, AAAA = 1, 2, 5, 6, 41, 28
# DNSSEC records (RRSIG, NSEC, NSEC3, DS, DNSKEY), which signed zones send because we set the
# DO bit, go to dnspython: it checks their data strictly (no compression in NSEC, digest
# sizes), and a reader that skipped it would accept what dnspython rejects.
QTYPES: Final = {"A": A, "AAAA": AAAA}
IN: Final = 1
EDE: Final = 15
QR, AA, TC, RD, RA, AD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020
RCODES: Final = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
                 5: "REFUSED", 6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH",
                 10: "NOTZONE", 16: "BADVERS"}  # fmt: skip
_SAFE: Final = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")
SAFE_NAME: Final = _SAFE | {ord(".")}  # the bytes of a dotted name this reader and make_query take
_HEADER: Final = struct.Struct("!HHHHHH")
_RR: Final = struct.Struct("!HHIH")
EDNS_PAYLOAD: Final = 1232
_MAX_HOPS: Final = 16  # compression pointers in one name, as dnspython allows


class Query(NamedTuple):
    """One question as sent: its ID, name and type, and the wire bytes."""

    id: int
    qname: str  # lower case, as the watchlist holds it
    qtype: str  # "A" or "AAAA"
    rdtype: int
    qname_key: bytes  # the name as fastwire compares it: lower-case dotted, no final dot
    wire: bytes
    question: bytes  # the question section as sent: a reply that echoes it byte for byte


class NotOurs(Exception):
    """The message does not answer the query (ID, opcode or question differ, a TC reply to
    another question, or it is malformed): it is counted as ignored and the wait goes on."""


class Truncated(Exception):
    """TC is set on a reply to our question: ask again over TCP."""


class Unreadable(Exception):
    """Beyond this reader (escapes, IPv6 forms, DNSSEC data, malformed): dnspython decides."""


_MISMATCH: Final = "id, opcode or question does not match the query"


def encode_name(name: str) -> bytes:
    """A lower-case name (as watchlists hold them) in wire format; ValueError if it cannot be."""
    out = bytearray()
    for label in name.rstrip(".").split(".") if name not in ("", ".") else []:
        raw = label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad label in {name!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    if len(out) > 255:
        raise ValueError(f"{name!r} is too long")
    return bytes(out)


def build_query(qid: int, qname_wire: bytes, rdtype: int) -> bytes:
    """What dnspython's make_query(use_edns=0, payload=1232, want_dnssec=True) sends: RD set,
    one question, an OPT record with the DO bit."""
    return (
        qid.to_bytes(2, "big")
        + _QUERY_FLAGS_COUNTS
        + qname_wire
        + rdtype.to_bytes(2, "big")
        + _CLASS_AND_OPT
    )


# A query's header after its ID (RD; one question, one additional record), and what follows
# the question's type: its class, then the OPT record (root owner, payload size, DO bit).
_QUERY_FLAGS_COUNTS: Final = _HEADER.pack(0, RD, 1, 0, 0, 1)[2:]
_CLASS_AND_OPT: Final = IN.to_bytes(2, "big") + b"\x00" + _RR.pack(OPT, EDNS_PAYLOAD, 0x8000, 0)


def question_of(wire: bytes) -> bytes:
    """The question section of a query we built (one question, no compression)."""
    pos = 12
    while wire[pos]:
        pos += 1 + wire[pos]
    return wire[12 : pos + 5]


def read(query: Query, data: bytes, qid: int = -1) -> Summary:
    """The Summary of a reply to `query` (sent with ID `qid`, if not its own); raises
    NotOurs, Truncated or Unreadable."""
    try:
        return _read(query, data, query.id if qid < 0 else qid)
    except (struct.error, IndexError, ValueError):
        raise Unreadable from None  # malformed, or beyond this reader: dnspython decides


def _read(query: Query, data: bytes, qid: int) -> Summary:
    """Long because it is the hot path: it runs once per reply, and each helper it were split
    into would cost a call per reply. The header and each record's fixed part are read byte
    by byte: compiled, that is a few machine instructions, where struct is a call and a tuple."""
    if len(data) < 12:
        raise Unreadable
    flags = (data[2] << 8) | data[3]
    if ((data[0] << 8) | data[1]) != qid or not flags & QR or (flags >> 11) & 0xF != 0:
        raise NotOurs(_MISMATCH)
    if data[4] or data[5] != 1:
        raise Unreadable  # not one question
    an = (data[6] << 8) | data[7]
    records = an + ((data[8] << 8) | data[9]) + ((data[10] << 8) | data[11])
    authority_from = an + ((data[8] << 8) | data[9])  # records before this: answer, authority
    question = query.question
    pos = 12 + len(question)
    key = query.qname_key
    exact = data.startswith(question, 12) and SAFE_NAME.issuperset(key)
    if exact:
        known = {12: key}  # the question as we sent it: pointers to it need no walk
    else:  # another case (0x20), or another question: read it
        known = {}
        name, pos = _name(data, 12, known)
        rdtype, rdclass = struct.unpack_from("!HH", data, pos)
        pos += 4
        if name != query.qname_key or rdtype != query.rdtype or rdclass != IN:
            raise NotOurs(_MISMATCH)
    if flags & TC:
        raise Truncated
    asked = query.rdtype
    answers: list[tuple[bytes, int, int, bytes | int]] = []  # owner, type, ttl, rdata or pos
    direct = True  # every answer is of the asked type, owned by the asked name
    soa_zone: bytes | None = None
    ede: list[tuple[int, str]] = []
    ext_rcode = 0
    opts = 0
    for i in range(records):
        # The owner is read only where it matters (answers, an authority SOA); elsewhere it
        # is only checked, which is most of the records a server adds (NS, glue).
        start = pos
        first = data[pos]
        if first >= 0xC0 and (((first & 0x3F) << 8) | data[pos + 1]) in known:
            pos += 2  # a pointer to a name already read: the common case
        else:
            pos = _walk(data, pos)[0]
        rtype = (data[pos] << 8) | data[pos + 1]
        rclass = (data[pos + 2] << 8) | data[pos + 3]
        ttl = (data[pos + 4] << 24) | (data[pos + 5] << 16) | (data[pos + 6] << 8) | data[pos + 7]
        rdlen = (data[pos + 8] << 8) | data[pos + 9]
        pos += 10
        if ttl > 0x7FFFFFFF and rtype != OPT:
            ttl = 0  # RFC 2181 section 8: a TTL with the top bit set means zero
        end = pos + rdlen
        if end > len(data):
            raise Unreadable
        if rtype == OPT:
            opts += 1
            if i < authority_from or first != 0 or opts > 1:
                raise Unreadable  # an OPT outside the additional section, or a second one
            ext_rcode = ttl >> 24
            if (ttl >> 16) & 0xFF:  # an EDNS version we did not ask for
                raise Unreadable
            ede += _ede(data, pos, end)
        elif rclass != IN:
            raise Unreadable
        elif rtype in (A, AAAA):
            if rdlen != (4 if rtype == A else 16):
                raise Unreadable
            if i < an:
                owner = key if first == 0xC0 and data[start + 1] == 12 else None
                if owner is None:
                    owner = _name(data, start, known)[0]
                direct = direct and owner == key and rtype == asked
                answers.append((owner, rtype, ttl, data[pos:end]))
        elif rtype == CNAME and i < an:
            target, after = _name(data, pos, known)
            if after != end:
                raise Unreadable
            direct = False
            answers.append((_name(data, start, known)[0], CNAME, ttl, target))
        elif rtype in (CNAME, NS):
            if _walk(data, pos)[0] != end:
                raise Unreadable
        elif rtype == SOA:
            if _walk(data, _walk(data, pos)[0])[0] + 20 != end:
                raise Unreadable
            if an <= i < authority_from and soa_zone is None:
                # Mostly a pointer into the question (its zone): that name is a tail of ours.
                j = (((first & 0x3F) << 8) | data[start + 1]) - 12 if first >= 0xC0 else -1
                if exact and 0 < j < len(key) and key[j - 1] == 0x2E:
                    soa_zone = key[j:]
                else:
                    soa_zone = _name(data, start, known)[0]
        else:
            raise Unreadable  # DNSSEC data, or a type this reader does not know
        pos = end
    if pos != len(data):
        raise Unreadable  # trailing bytes: dnspython says what that is
    rcode = (ext_rcode << 4) | (flags & 0xF)
    text = RCODES.get(rcode)
    if text is None:
        raise Unreadable
    if not answers:
        addresses: tuple[str, ...] = ()
        chain: tuple[str, ...] = ()
        min_ttl: int | None = None
    elif direct and len(answers) == 1:  # the commonest answer of all
        _, _, min_ttl, rdata = answers[0]
        addresses, chain = (_address(rdata),), ()  # type: ignore[arg-type]
    elif direct:  # no chain to follow: every address answers the question
        addresses = tuple(sorted({_address(rd) for _, _, _, rd in answers}))  # type: ignore[arg-type]
        chain, min_ttl = (), min([ttl for _, _, ttl, _ in answers])
    else:
        addresses, chain, min_ttl = _follow(answers, key, asked)
    fields = (
        text,
        _FLAGS[(flags & AA) >> 10 | (flags & RA) >> 6 | (flags & AD) >> 3],
        addresses,
        chain,
        min_ttl,
        _NO_AUTHORITY if soa_zone is None else _authority(soa_zone),
        tuple(ede) if ede else (),
    )
    return new_record(Summary, fields)  # type: ignore[no-any-return]


def _flag_table() -> tuple[Flags, ...]:
    """The 8 Flags a reply can have, by (AA, RA, AD) as three bits: immutable, so shared."""
    return tuple(Flags(aa=bool(i & 1), tc=False, ra=bool(i & 2), ad=bool(i & 4)) for i in range(8))


_FLAGS: Final = _flag_table()
_NO_AUTHORITY: Final = Authority()


@functools.lru_cache(maxsize=4096)
def _authority(soa_zone: bytes) -> Authority:
    """NSEC and NSEC3 records are read by dnspython, so `nsec` is always False here."""
    return Authority(soa=True, nsec=False, soa_zone=_text(soa_zone) or ".")


def _follow(
    answers: list[tuple[bytes, int, int, bytes | int]], qname: bytes, rdtype: int
) -> tuple[tuple[str, ...], tuple[str, ...], int | None]:
    """As wire._follow: from qname through CNAMEs to the asked type's addresses."""
    current = qname
    chain: list[str] = []
    ttls: list[int] = []
    for _ in range(16):
        found = [(ttl, rd) for owner, t, ttl, rd in answers if owner == current and t == rdtype]
        if found:
            ttls.append(min(ttl for ttl, _ in found))
            texts = {_address(rd) for _, rd in found}  # type: ignore[arg-type]
            return tuple(sorted(texts)), tuple(chain), min(ttls)
        aliases = [(ttl, rd) for owner, t, ttl, rd in answers if owner == current and t == CNAME]
        if not aliases:
            break
        if len(aliases) > 1:
            raise Unreadable
        ttl, target = aliases[0]
        ttls.append(ttl)
        assert isinstance(target, bytes)
        current = target
        chain.append(_text(target) or ".")  # the root, as dnspython writes it
    return (), tuple(chain), (min(ttls) if ttls else None)


def _address(rdata: bytes) -> str:
    if len(rdata) == 4:
        return f"{rdata[0]}.{rdata[1]}.{rdata[2]}.{rdata[3]}"
    if rdata[:12] in (b"\x00" * 10 + b"\xff\xff", b"\x00" * 12):
        raise Unreadable  # IPv4-mapped or -compatible: dnspython writes those its own way
    import ipaddress

    return ipaddress.IPv6Address(rdata).compressed


def _name(data: bytes, pos: int, known: dict[int, bytes]) -> tuple[bytes, int]:
    """A name as lower-case dotted bytes without the final dot (b"" for the root), and the
    position after it. Its structure is checked by _walk; a pointer to a name already read
    (`known`: offset to name) ends the walk at once."""
    first = data[pos]
    if first >= 0xC0:
        target = ((first & 0x3F) << 8) | data[pos + 1]
        tail = known.get(target)
        if tail is not None and target < pos:
            return tail, pos + 2
    end, hops = _walk(data, pos)
    start = pos
    labels: list[bytes] = []
    while n := data[pos]:
        if n >= 0xC0:
            tail = known.get(((n & 0x3F) << 8) | data[pos + 1])
            if tail is not None:
                if tail:
                    labels.append(tail)
                break
            pos = ((n & 0x3F) << 8) | data[pos + 1]
            continue
        label = data[pos + 1 : pos + 1 + n].lower()
        if not _SAFE.issuperset(label):
            raise Unreadable  # escapes and odd bytes: dnspython's text form decides
        labels.append(label)
        pos += 1 + n
    name = b".".join(labels)
    if hops < _MAX_HOPS:  # a later pointer may come back to it (one more hop)
        known[start] = name
    return name, end


def _walk(data: bytes, pos: int) -> tuple[int, int]:
    """The position after a name and how many pointers it follows, its structure checked
    as dnspython checks it: label sizes; each pointer below the one before it (the first
    below the name), at most 16 of them; what a pointer reaches ending before the part that
    pointed to it; at most 255 bytes in all."""
    end = -1
    hops = 0
    length = 0
    start = biggest = pos  # the part being read starts here; pointers must go below this
    limit = len(data)  # bytes of this part must end before here
    while True:
        if pos >= limit:
            raise Unreadable
        n = data[pos]
        if n == 0:
            pos += 1
            break
        if n >= 0xC0:
            if pos + 1 >= limit:
                raise Unreadable
            if end < 0:
                end = pos + 2
            target = ((n & 0x3F) << 8) | data[pos + 1]
            hops += 1
            if target >= biggest or hops > _MAX_HOPS:
                raise Unreadable
            limit = start  # what the pointer reaches may not run into the part before it
            biggest = start = pos = target
            continue
        if n > 63 or pos + 1 + n >= limit:
            raise Unreadable
        length += n + 1
        if length > 254:
            raise Unreadable
        pos += 1 + n
    return (end if end >= 0 else pos), hops


def _text(name: bytes) -> str:
    return name.decode("ascii")


def _ede(data: bytes, pos: int, end: int) -> list[tuple[int, str]]:
    out = []
    while pos < end:
        code, length = struct.unpack_from("!HH", data, pos)
        pos += 4
        if pos + length > end:
            raise Unreadable
        if code == EDE:
            if length < 2:
                raise Unreadable
            (info,) = struct.unpack_from("!H", data, pos)
            raw = data[pos + 2 : pos + length]
            if b"\x00" in raw:
                raise Unreadable
            out.append((info, raw.decode("utf-8")))  # UnicodeDecodeError: a ValueError
        pos += length
    return out
