"""The worker: the Rust SDK's (one WebSocket, leases, heartbeats, reconnects,
draining), its handlers Python functions.

Jobs run on an asyncio event loop: an ``async def`` handler as a task on it,
a plain function in a thread pool of ``concurrency`` threads, so one slow
handler never holds up the others. A handler's return value is the job's
result; an exception fails the attempt with its message and traceback.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import signal
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Optional, TypeVar

from . import _native
from .client import settle_later
from .errors import PermanentError, RetryAfter

#: Jobs a worker runs at once unless told otherwise: the Rust SDK's default.
DEFAULT_CONCURRENCY = 4

#: How long jobs in hand get to finish after a stop, by default, in seconds.
DEFAULT_SHUTDOWN_GRACE_SECONDS = 30.0

# A handler: a function of the Job, plain or async.
Handler = TypeVar("Handler", bound="Callable[[Job], Any]")


class CancelEvent(threading.Event):
    """Set when the job is cancelled, or when the worker stops and the grace
    period ran out: the handler should stop soon after. A ``threading.Event``
    (``is_set()``, ``wait(timeout)``) that ``async`` handlers can also await
    with ``wait_async()``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        self._waiters: "list[asyncio.Future[None]]" = []

    def set(self) -> None:
        super().set()
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop has closed: no one awaits
            pass

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def wait_async(self) -> None:
        """Waits, without blocking the event loop, until the event is set."""
        if self.is_set():
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        if self.is_set():  # set between the check and the append
            self._wake()
        await waiter


class Job:
    """A job as its handler gets it."""

    id: str
    name: str
    handler: str
    payload: Any
    attempt: int
    max_retries: int
    timeout: int
    schedule_id: Optional[str]
    cancelled: CancelEvent

    def __init__(self, data: Dict[str, Any], native: _native.NativeWorker,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.id = data["id"]
        self.name = data["name"]
        self.handler = data.get("handler") or ""
        self.payload = data.get("payload")
        self.attempt = data["attempt"]
        self.max_retries = data["max_retries"]
        self.timeout = data["timeout"]
        self.schedule_id = data.get("schedule_id")
        self.cancelled = CancelEvent(loop)
        self._native = native

    def extend(self, seconds: int) -> None:
        """Moves this attempt's deadline to ``seconds`` from now, for work
        known to outlast the job's ``timeout``. Blocks until the server
        answers; raises ``ChronosError`` if the lease is lost."""
        self._native.extend(self.id, seconds)

    async def extend_async(self, seconds: int) -> None:
        """``extend`` for ``async`` handlers: awaits the server's answer."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._native.extend_async(self.id, seconds, settle_later(loop, future))
        await future

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, handler={self.handler!r}, attempt={self.attempt})"


class Worker:
    """Runs jobs for the handlers registered with ``@worker.handle(name)``.

    ``url`` is the server (``http://…``), ``api_key`` a key with the
    ``worker`` scope. ``concurrency`` jobs run at once. At a stop, jobs in
    hand get ``shutdown_grace_seconds`` to finish before they are cancelled
    and handed back. ``handle_signals``: SIGINT and SIGTERM drain the worker
    (when it runs in the main thread). The defaults are the Rust SDK's
    (sdk-rust/manifest.json).

    Make workers after forking, not before: a worker runs in the process
    that started it.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        concurrency: int = DEFAULT_CONCURRENCY,
        *,
        worker_id: Optional[str] = None,
        shutdown_grace_seconds: float = DEFAULT_SHUTDOWN_GRACE_SECONDS,
        handle_signals: bool = True,
    ) -> None:
        self._native = _native.NativeWorker(
            url, api_key, concurrency, worker_id, shutdown_grace_seconds)
        self._concurrency = concurrency
        self._handle_signals = handle_signals
        self._handlers: Dict[str, Callable[[Job], Any]] = {}
        self._running: Dict[str, Job] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._pool: Optional[ThreadPoolExecutor] = None
        self._connected = threading.Event()

    def handle(self, name: str) -> Callable[[Handler], Handler]:
        """Registers the decorated function as the handler of jobs named
        ``name``: ``def f(job)`` or ``async def f(job)``."""

        def register(fn: Handler) -> Handler:
            self._native.handle(name)
            self._handlers[name] = fn
            return fn

        return register

    def run(self) -> None:
        """Runs until stopped (``stop()``, SIGINT or SIGTERM), on an event
        loop of its own; returns once jobs in hand are done or handed back.
        Raises ``ChronosError`` if the server refuses the worker."""
        asyncio.run(self.run_async())

    async def run_async(self) -> None:
        """``run`` inside a running event loop: ``async`` handlers run on it."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="chronos-handler")
        exited: asyncio.Future[None] = loop.create_future()
        signals = self._listen_for_signals(loop)
        try:
            self._native.start(
                self._dispatch,
                self._cancel,
                self._connected.set,
                lambda error: settle_later(loop, exited)(None, error),
            )
            try:
                await asyncio.shield(exited)
            except asyncio.CancelledError:
                # The task running us was cancelled (Ctrl-C in asyncio.run):
                # drain as for a stop, then let the cancellation go on.
                self.stop()
                await exited
                raise
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            self._pool.shutdown(wait=False)
            self._connected.clear()

    def stop(self) -> None:
        """Starts a graceful stop, from any thread: no new jobs; jobs in hand
        get the grace period to finish. ``run`` returns once it is done.
        Before ``run``, the worker stops as soon as it has connected."""
        self._native.stop()

    def wait_connected(self, timeout: Optional[float] = None) -> bool:
        """Blocks until the server has welcomed the worker (or ``timeout``)."""
        return self._connected.wait(timeout)

    def _listen_for_signals(self, loop: asyncio.AbstractEventLoop) -> "list[signal.Signals]":
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return []
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.stop)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not on this platform
                pass
        return installed

    # Called by the Rust SDK's threads ------------------------------------

    def _dispatch(self, name: str, job_json: str, settle: _native.Settle) -> None:
        loop = self._loop
        assert loop is not None
        job = Job(json.loads(job_json), self._native, loop)
        # Registered here, before the loop runs it, so a cancellation that
        # comes at once still finds it.
        self._running[job.id] = job
        try:
            loop.call_soon_threadsafe(self._start, self._handlers[name], job, settle)
        except BaseException:
            self._running.pop(job.id, None)
            raise

    def _cancel(self, job_id: str) -> None:
        job = self._running.get(job_id)
        if job is not None:
            job.cancelled.set()

    # On the event loop -----------------------------------------------------

    def _start(self, fn: Callable[[Job], Any], job: Job, settle: _native.Settle) -> None:
        asyncio.ensure_future(self._run_job(fn, job, settle))

    async def _run_job(self, fn: Callable[[Job], Any], job: Job, settle: _native.Settle) -> None:
        try:
            if inspect.iscoroutinefunction(fn):
                result = await fn(job)
            else:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self._pool, fn, job)
                if inspect.isawaitable(result):
                    result = await result
            outcome = _ok(result)
        except BaseException as e:  # noqa: BLE001 - every failure is reported
            outcome = _failure(e)
            if not isinstance(e, Exception):
                settle(outcome)
                raise
        finally:
            self._running.pop(job.id, None)
        settle(outcome)


def _ok(result: Any) -> str:
    try:
        return json.dumps({"ok": result})
    except (TypeError, ValueError) as e:
        return json.dumps({"error": {"message": f"the result is not JSON: {e}", "permanent": True}})


def _failure(e: BaseException) -> str:
    if isinstance(e, PermanentError):
        return json.dumps({"error": {"message": str(e), "permanent": True}})
    if isinstance(e, RetryAfter):
        return json.dumps({"error": {"message": str(e), "retry_in": e.seconds}})
    if isinstance(e, asyncio.CancelledError):
        return json.dumps({"error": {"message": "the handler was cancelled"}})
    trace = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    message = f"{type(e).__name__}: {e}\n\n{trace}"
    return json.dumps({"error": {"message": message}})
