"""Which ``Host`` headers this server answers: a defence against DNS rebinding.

A page on ``attacker.example`` whose name the attacker re-points at
127.0.0.1 reaches a server on this machine as a same-origin request, with
``Host: attacker.example``. The browser always sends the name it resolved, so
refusing names we do not know refuses the attack. Always allowed: IP
addresses (a browser whose origin is an IP address is on a page that address
served, i.e. ours) and ``localhost`` (with its subdomains, which resolve to
loopback by RFC 6761). ``server.allowed_hosts`` adds names: ``engine.example``
exactly, ``.example`` a domain and its subdomains, ``*`` anything. A request
without a Host header (HTTP/1.0) is not a browser's and passes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def host_name(header: str) -> str:
    """The name in a Host header, without its port, lower case and without a trailing dot."""
    text = header.strip().lower()
    if text.startswith("["):  # [IPv6]:port
        return text[1 : text.find("]")] if "]" in text else text
    name, _, _port = text.partition(":") if text.count(":") == 1 else (text, "", "")
    return name.rstrip(".")


class AllowedHosts:
    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names = tuple(n.strip().lower().rstrip(".") for n in names if n.strip())
        self.any = "*" in self.names

    def allows(self, header: str | None) -> bool:
        if header is None or self.any:
            return True
        name = host_name(header)
        if name == "localhost" or name.endswith(".localhost") or _is_ip(name):
            return True
        for allowed in self.names:
            if name == allowed or (
                allowed.startswith(".") and (name.endswith(allowed) or name == allowed[1:])
            ):
                return True
        return False


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
