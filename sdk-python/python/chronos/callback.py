"""Reading callbacks: the outcome of a delivery (or of a whole fan-out) that
Chronos publishes onto a message's ``callback_queue_id``, delivered by that
queue to your endpoint as a JSON body, signed when the queue has a signing
secret."""

from __future__ import annotations

import time
from typing import Optional, Sequence, Union

from . import _native
from .signature import REPLAY_WINDOW_SECONDS, Headers, _header
from .types import Callback

#: The raw body as a web framework gives it.
RawBody = Union[bytes, bytearray, memoryview, str]


def _bytes(raw_body: RawBody) -> bytes:
    return raw_body.encode("utf-8") if isinstance(raw_body, str) else bytes(raw_body)


def parse_callback(
    secret: Union[str, Sequence[str]],
    headers: Headers,
    raw_body: RawBody,
    tolerance_seconds: int = REPLAY_WINDOW_SECONDS,
    *,
    now: Optional[int] = None,
) -> Callback:
    """A callback request, verified and read.

    The request must be signed with ``secret``, the callback queue's signing
    secret (or any of a list of them), its ``Chronos-Timestamp`` within
    ``tolerance_seconds`` of ``now`` (default: the clock), as
    ``verify_signature`` checks; then ``raw_body`` (the bytes received) is
    read as one delivery's outcome (a ``CallbackEvent``) or a fan-out's
    group callback (a ``GroupCallbackEvent``, the one with ``"results"``),
    without the fields this version does not know.

    Raises ``ChronosError`` with ``code`` ``invalid_signature`` (answer 401,
    act on nothing), or ``invalid_callback`` for a body that is not a
    callback.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    when = int(time.time()) if now is None else int(now)
    return _native.parse_callback(
        secrets,
        _header(headers, "Chronos-Signature"),
        _header(headers, "Chronos-Timestamp"),
        _bytes(raw_body),
        int(tolerance_seconds),
        when,
    )


def parse_unsigned_callback(raw_body: RawBody) -> Callback:
    """A callback's body read without a signature check: only for a callback
    queue without a signing secret. Raises ``ChronosError``
    (``invalid_callback``) for a body that is not a callback."""
    return _native.parse_unsigned_callback(_bytes(raw_body))
