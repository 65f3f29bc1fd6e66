"""Whether a browser says a request comes from another site: Tornado 6.6's algorithm, never raising.

The browser's ``Sec-Fetch-Site`` is trusted first (``same-origin`` and
``none``, a typed URL, pass); without it, an ``Origin`` that names this host
passes. Anything else passes only if ``trusted(origin)`` says so. Clients that
are not browsers send neither header and pass: they cannot be tricked into a
request. Tornado's own check raises on an ``Origin`` that is not a URL (a 500);
here such an origin is simply not ours.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import tornado.httputil


def cross_site_refusal(
    headers: tornado.httputil.HTTPHeaders, trusted: Callable[[str], bool] = lambda origin: False
) -> str | None:
    """Why the request must be refused as cross-site, or None when it may go on."""
    site = headers.get("Sec-Fetch-Site")
    origin = headers.get("Origin")
    if site is not None:
        site = site.strip().lower()
        if site in ("same-origin", "none"):
            return None
        if origin and trusted(origin):
            return None
        return f"Sec-Fetch-Site: {site}, Origin: {origin!r}"
    if origin is None or origin_is_host(origin, headers.get("Host", "")) or trusted(origin):
        return None
    return f"Origin: {origin!r}"


def origin_is_host(origin: str, host: str) -> bool:
    """Whether ``origin`` (``scheme://host[:port]``) names ``host`` (the Host header, port included)."""
    try:
        netloc = urlsplit(origin.strip()).netloc
    except ValueError:
        return False
    return netloc.lower() == host.strip().lower()
