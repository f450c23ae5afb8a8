"""Chronos for Python: run jobs in a worker, create them with a client,
check push signatures, and read callbacks.

    from chronos import Worker

    worker = Worker("http://localhost:8080", "chrns_…")

    @worker.handle("hello")
    def hello(job):
        return {"greeted": job.payload["name"]}

    worker.run()

The client and worker are the Rust SDK's, through a compiled binding; see
docs/python-sdk.md.
"""

import atexit

from . import _native
from ._native import __version__
from .callback import parse_callback, parse_unsigned_callback
from .client import AsyncClient, Client
from .errors import ChronosError, PermanentError, RetryAfter
from .signature import REPLAY_WINDOW_SECONDS, verify_signature
from .worker import CancelEvent, Job, Worker

# The SDK's runtime threads call into Python (handlers, answers); at exit,
# wait for those in progress and let no new one in, before the interpreter
# finalizes under them.
atexit.register(_native._quiesce)

__all__ = [
    "AsyncClient",
    "CancelEvent",
    "ChronosError",
    "Client",
    "Job",
    "PermanentError",
    "REPLAY_WINDOW_SECONDS",
    "RetryAfter",
    "Worker",
    "__version__",
    "parse_callback",
    "parse_unsigned_callback",
    "verify_signature",
]
