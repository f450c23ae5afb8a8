"""Checking that a push request came from Chronos."""

from __future__ import annotations

import time
from typing import Any, Iterable, Mapping, Optional, Tuple, Union

#: Request headers: any mapping (a dict, Flask's or Starlette's headers), or
#: (name, value) pairs as ASGI gives them.
Headers = Union[Mapping[Any, Any], Iterable[Tuple[Any, Any]]]

from . import _native

#: How old a request's timestamp may be, by default (seconds).
REPLAY_WINDOW_SECONDS = 300


def _header(headers: Headers, name: str) -> Optional[str]:
    items: Iterable[Tuple[Any, Any]] = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if key.lower() == name.lower():
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            return value if isinstance(value, str) else None
    return None


def verify_signature(
    secret: str,
    headers: Headers,
    raw_body: Union[bytes, bytearray, memoryview, str],
    tolerance_seconds: int = REPLAY_WINDOW_SECONDS,
    *,
    now: Optional[int] = None,
) -> bool:
    """Whether a push request is signed by ``secret`` and recent.

    ``headers``: the request's headers, any mapping (a dict, Flask's
    ``request.headers``, Starlette's ``request.headers``) or a list of
    pairs; names match in any case. ``raw_body``: the bytes received, before
    any JSON parsing (re-serialized JSON does not verify). During a secret's
    rotation window the ``Chronos-Signature`` header carries two signatures;
    either verifies. ``Chronos-Timestamp`` must be within
    ``tolerance_seconds`` of ``now`` (default: the clock), which refuses
    replays of old requests.
    """
    signature = _header(headers, "Chronos-Signature")
    timestamp = _header(headers, "Chronos-Timestamp")
    if signature is None or timestamp is None:
        return False
    body = raw_body.encode("utf-8") if isinstance(raw_body, str) else bytes(raw_body)
    when = int(time.time()) if now is None else int(now)
    return _native.verify(secret, signature, timestamp, body, int(tolerance_seconds), when)
