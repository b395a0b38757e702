"""The network guard of the CI's Azure CLI and SDK runs (tests/cli/azure_cli_flow.sh).

Put this directory on PYTHONPATH and set IDLAB_NET_GUARD_LOG=FILE: every Python process then
refuses, and appends to FILE, each name lookup and each connection to anything other than
loopback (127.0.0.0/8, ::1, localhost). Through the local cloud's HTTPS proxy a tool connects
to the proxy on 127.0.0.1 only and sends Azure's host names inside CONNECT, so it never has a
reason to resolve or reach one itself; the flow asserts that FILE stays empty.
"""

import os
import socket

_LOG = os.environ.get("IDLAB_NET_GUARD_LOG")


def _loopback(host):
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    h = str(host).strip("[]").lower()
    return h in ("localhost", "::1", "ip6-localhost") or h.startswith("127.")


def _refuse(what, host, port):
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(f"pid {os.getpid()}: {what} {host}:{port}\n")
    raise OSError(f"idlab network guard: {what} of {host}:{port} refused (loopback only)")


_getaddrinfo = socket.getaddrinfo


def getaddrinfo(host, port, *args, **kwargs):
    if not _loopback(host):
        _refuse("name lookup", host, port)
    return _getaddrinfo(host, port, *args, **kwargs)


def _by_name(original, what):
    def lookup(host, *args, **kwargs):
        if not _loopback(host):
            _refuse(what, host, "")
        return original(host, *args, **kwargs)

    return lookup


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _checked(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
        _refuse("connection", address[0], address[1])


def connect(self, address):
    _checked(self, address)
    return _connect(self, address)


def connect_ex(self, address):
    _checked(self, address)
    return _connect_ex(self, address)


socket.getaddrinfo = getaddrinfo
socket.gethostbyname = _by_name(socket.gethostbyname, "name lookup")
socket.gethostbyname_ex = _by_name(socket.gethostbyname_ex, "name lookup")
socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
