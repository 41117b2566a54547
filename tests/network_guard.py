"""A context manager that fails any attempt to open a network connection while it is active."""
from __future__ import annotations

import contextlib
import socket
from typing import Iterator


class NetworkAccessAttempted(AssertionError):
    """Raised in place of a connection; the test fails with the address that was tried."""


@contextlib.contextmanager
def no_network() -> Iterator[list]:
    """Patch socket connect/getaddrinfo; yields the list of attempts (which stays empty when nothing tried)."""
    attempts: list = []
    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect,
        socket.socket.connect_ex,
        socket.getaddrinfo,
    )

    def refuse(kind):
        def refused(*args, **kwargs):
            target = args[1] if kind != "getaddrinfo" and len(args) > 1 else args[0] if args else kwargs
            if isinstance(args[0], socket.socket) and args[0].family == socket.AF_UNIX:
                return (real_connect if kind == "connect" else real_connect_ex)(*args, **kwargs)
            attempts.append((kind, target))
            raise NetworkAccessAttempted(f"network access attempted: {kind} {target!r}")
        return refused

    socket.socket.connect = refuse("connect")
    socket.socket.connect_ex = refuse("connect_ex")
    socket.getaddrinfo = refuse("getaddrinfo")
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = (
            real_connect,
            real_connect_ex,
            real_getaddrinfo,
        )
