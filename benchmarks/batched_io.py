"""Would batched UDP I/O (Linux's sendmmsg and recvmmsg) pay here? CPU per datagram on loopback.

Python's socket module has neither call, so this reaches them through ctypes, with a batch's
messages prepared once (as a compiled pool would) and only each query's bytes copied in. It
sends N datagrams of a query's size to a socket of its own on 127.0.0.1, one `send` at a time
and then BATCH at a time, and reads them back one `recv_into` at a time and then BATCH at a
time, and prints the process CPU time per datagram of each; and of the batched calls with no
per-message Python work around them, the floor a C extension could reach. Linux only; nothing
leaves the machine. `python benchmarks/batched_io.py [N]`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import sys
import time

BATCH = 32
SIZE = 40  # about a question for a name of twenty characters
WINDOW = 256  # datagrams sent before they are read back: well within the receive buffer


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _Msghdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_Iovec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _Mmsghdr(ctypes.Structure):
    _fields_ = [("hdr", _Msghdr), ("len", ctypes.c_uint)]


def _batch(size: int) -> tuple[ctypes.Array[_Mmsghdr], list[ctypes.Array[ctypes.c_char]]]:
    """BATCH message headers, each over a buffer of its own."""
    headers = (_Mmsghdr * BATCH)()
    vectors = (_Iovec * BATCH)()
    buffers = [ctypes.create_string_buffer(size) for _ in range(BATCH)]
    for k, buf in enumerate(buffers):
        vectors[k].base = ctypes.addressof(buf)
        vectors[k].len = size
        headers[k].hdr.iov = ctypes.pointer(vectors[k])
        headers[k].hdr.iovlen = 1
    return headers, buffers


def main(n: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    query = os.urandom(SIZE)
    buf = bytearray(512)
    out, out_bufs = _batch(SIZE)
    into, _ = _batch(512)
    send, recv = tx.send, rx.recv_into
    sent = {"send": 0.0, "sendmmsg": 0.0, "sendmmsg, the call alone": 0.0}
    read = {"recv_into": 0.0, "recvmmsg": 0.0, "recvmmsg, the call alone": 0.0}
    for _ in range(n // WINDOW):
        t = time.process_time()
        for _ in range(WINDOW):
            send(query)
        sent["send"] += time.process_time() - t
        t = time.process_time()
        for _ in range(WINDOW):
            recv(buf)
        read["recv_into"] += time.process_time() - t
        # with each message's bytes copied in and out, as a pool would; then the calls alone,
        # the floor a C extension could reach
        for copying, label in ((True, ""), (False, ", the call alone")):
            t = time.process_time()
            for _ in range(WINDOW // BATCH):
                if copying:
                    for out_buf in out_bufs:
                        ctypes.memmove(out_buf, query, SIZE)
                if libc.sendmmsg(tx.fileno(), out, BATCH, 0) != BATCH:
                    raise OSError(ctypes.get_errno(), "sendmmsg")
            sent["sendmmsg" + label] += time.process_time() - t
            t = time.process_time()
            for _ in range(WINDOW // BATCH):
                if libc.recvmmsg(rx.fileno(), into, BATCH, 0, None) != BATCH:
                    raise OSError(ctypes.get_errno(), "recvmmsg")
                if copying:
                    for k in range(BATCH):
                        bytes(ctypes.string_at(into[k].hdr.iov[0].base, into[k].len))
            read["recvmmsg" + label] += time.process_time() - t
    count = n // WINDOW * WINDOW
    for name, spent in (*sent.items(), *read.items()):
        print(f"{name:>24}: {spent / count * 1e6:.2f} us CPU a datagram ({count:,} datagrams)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
