"""Who is calling: the API key a request carries, checked against the keys in Redis.

One place for every endpoint: :class:`~tornado_engine.web.base.JsonHandler`
and the WebSocket handler call :func:`identify` in ``prepare`` and keep the
answer as ``handler.caller`` (None when keys are off: everything then behaves
as the original service). A request without a key, or with one that is not
valid, gets 401 with ``WWW-Authenticate: Bearer``; a valid key without the
endpoint's scope gets 403. The key itself is never logged: the WebSocket's
``?token=`` is masked in the access log (:func:`masked_uri`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit

import tornado.httputil
from redis.exceptions import RedisError

from tornado_engine.auth import Caller
from tornado_engine.auth.keyring import KeyRing
from tornado_engine.timeouts import within
from tornado_engine.web.errors import ApiError

log = logging.getLogger(__name__)

TOKEN_PARAMETER = "token"  # noqa: S105 - the parameter's name, not a secret
MASK = "***"
CHECK_TIMEOUT_S = 5
_BEARER = re.compile(r"Bearer[ \t]+([^\s]+)[ \t]*", re.IGNORECASE)
_CHALLENGE = 'Bearer realm="tornado-engine"'


def unauthorized(message: str, error: str = "invalid_request") -> ApiError:
    challenge = _CHALLENGE if error == "invalid_request" else f'{_CHALLENGE}, error="{error}"'
    return ApiError(401, message, headers={"WWW-Authenticate": challenge})


def presented_key(request: tornado.httputil.HTTPServerRequest, allow_query: bool) -> str | None:
    """The key in ``Authorization: Bearer <key>`` (or, where allowed, ``?token=<key>``); None without one."""
    header = request.headers.get("Authorization")
    if header is not None:
        match = _BEARER.fullmatch(header.strip())
        if match is None:
            raise unauthorized("the Authorization header must be 'Bearer <key>'")
        return match.group(1)
    if allow_query:
        tokens = request.query_arguments.get(TOKEN_PARAMETER)
        if tokens:
            return tokens[-1].decode("utf-8", "replace")
    return None


async def identify(
    keyring: KeyRing | None,
    required: bool,
    request: tornado.httputil.HTTPServerRequest,
    scope: str,
    allow_query: bool = False,
) -> Caller | None:
    """The caller, or None when keys are off; ApiError 401, 403 or 503 when the request may not go on."""
    if not required:
        return None
    if keyring is None:
        raise ApiError(503, "API keys cannot be checked: this process has no connection to Redis")
    key = presented_key(request, allow_query)
    where = "Authorization: Bearer <key>" + (f" (or ?{TOKEN_PARAMETER}=<key>)" if allow_query else "")
    if key is None:
        raise unauthorized(f"this server needs an API key: send {where}")
    try:
        caller = await within(CHECK_TIMEOUT_S, keyring.authenticate(key))
    except (RedisError, OSError, asyncio.TimeoutError) as exc:
        log.error("API keys (Redis) unavailable: %s", exc)
        raise ApiError(
            503, "API keys cannot be checked now (Redis is unreachable); try again shortly"
        ) from None
    if caller is None:
        raise unauthorized("the API key is not valid (unknown or revoked)", "invalid_token")
    if not caller.allows(scope):
        raise ApiError(
            403,
            f"the key {caller.name!r} (scopes: {', '.join(sorted(caller.scopes))}) "
            f"lacks the {scope!r} scope this needs",
        )
    return caller


def masked_uri(uri: str) -> str:
    """``uri`` with the value of every ``token`` query parameter written ``***``, for logs."""
    if TOKEN_PARAMETER not in uri:
        return uri
    parts = urlsplit(uri)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if not any(name == TOKEN_PARAMETER for name, _ in pairs):
        return uri
    query = urlencode([(n, MASK if n == TOKEN_PARAMETER else v) for n, v in pairs], safe="*")
    return parts._replace(query=query).geturl()
