"""Errors the SDK raises, and the ones a handler raises to steer its retries."""

from __future__ import annotations

from typing import Optional


class ChronosError(Exception):
    """An error from the Chronos server (or the SDK talking to it).

    ``code`` is the server's stable code (``not_found``,
    ``validation_failed``, ``idempotency_key_conflict`` …, or
    ``unreachable`` when no answer came); ``status`` the HTTP status, or
    ``None`` without an answer; ``field`` the request field at fault, when
    the server named one.
    """

    def __init__(
        self,
        message: str,
        code: str,
        status: Optional[int] = None,
        field: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.field = field

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.message, self.code, self.status, self.field))

    def __repr__(self) -> str:
        return f"ChronosError(code={self.code!r}, status={self.status!r}, message={self.message!r})"


class PermanentError(Exception):
    """Raise it from a handler to fail the job for good: no retry."""


class RetryAfter(Exception):
    """Raise it from a handler to be retried after ``seconds``, not the backoff."""

    def __init__(self, seconds: float, message: Optional[str] = None) -> None:
        super().__init__(message if message is not None else f"retry in {seconds} s")
        self.seconds = seconds
