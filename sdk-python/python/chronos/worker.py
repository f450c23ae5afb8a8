"""The worker: the Rust SDK's (one WebSocket, leases, heartbeats, reconnects,
draining), its handlers Python functions.

Jobs run on an asyncio event loop: an ``async def`` handler as a task on it,
a plain function in a thread pool of ``concurrency`` threads, so one slow
handler never holds up the others. A handler's return value is the job's
result; an exception fails the attempt with its message and traceback.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import json
import queue
import signal
import threading
import traceback
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar, cast

from . import _native
from .client import settle_later
from .errors import PermanentError, RetryAfter

#: Jobs a worker runs at once unless told otherwise: the Rust SDK's default.
DEFAULT_CONCURRENCY = 4

#: How long jobs in hand get to finish after a stop, by default, in seconds.
DEFAULT_SHUTDOWN_GRACE_SECONDS = 30.0

# A handler: a function of the Job, plain or async.
Handler = TypeVar("Handler", bound="Callable[[Job], Any]")


# A job for the loop to start: its handler (None if there is none), the
# job, and where its outcome goes.
_Start = Tuple[Optional[Callable[["Job"], Any]], "Job", _native.Settle]


class _HandlerThreads:
    """Up to ``size`` threads that run plain handlers, started as needed.

    A queue and the threads that take from it: ThreadPoolExecutor's
    bookkeeping for each call (a Future, a semaphore) costs several times a
    no-op handler. As with the executor, a thread still running a handler
    at interpreter exit is waited for."""

    def __init__(self, size: int, name: str) -> None:
        self._queue: "queue.SimpleQueue[Optional[Tuple[Callable[..., None], Tuple[Any, ...]]]]" = (
            queue.SimpleQueue())
        self._size = size
        self._name = name
        self._threads: List[threading.Thread] = []
        # One entry per thread waiting for work (a list's append and pop are
        # atomic).
        self._idle: List[None] = []
        self._lock = threading.Lock()
        self._closed = False
        _handler_threads.add(self)

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        if self._closed:
            raise RuntimeError("the worker's handler threads have stopped")
        self._queue.put((fn, args))
        if len(self._idle) < self._queue.qsize():
            self._grow()

    def shutdown(self) -> None:
        """Lets each thread end once the work queued before is done."""
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._queue.put(None)

    def _grow(self) -> None:
        with self._lock:
            if self._closed or len(self._threads) >= self._size:
                return
            # Not a daemon, whatever thread starts it (the SDK's dispatching
            # thread is one to Python).
            thread = threading.Thread(target=self._work, name=f"{self._name}_{len(self._threads)}",
                                      daemon=False)
            thread.start()
            self._threads.append(thread)

    def _work(self) -> None:
        work, idle = self._queue, self._idle
        while True:
            idle.append(None)
            item = work.get()
            idle.pop()
            if item is None:
                return
            # Work left and no thread waiting for it.
            if len(idle) < work.qsize():
                self._grow()
            fn, args = item
            fn(*args)


_handler_threads: "weakref.WeakSet[_HandlerThreads]" = weakref.WeakSet()


def _stop_handler_threads() -> None:
    for threads in list(_handler_threads):
        threads.shutdown()


# Before the interpreter joins its threads at exit (where
# concurrent.futures stops its executors' threads too).
getattr(threading, "_register_atexit", atexit.register)(_stop_handler_threads)


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
        self._loop = loop
        self._native = native

    @property
    def cancelled(self) -> CancelEvent:
        """Set when the job is cancelled (see ``CancelEvent``)."""
        # Made on first use: most jobs never look, and an Event costs more
        # than the rest of the job. setdefault is atomic, so a handler's
        # thread and a cancellation racing here get the same one.
        event = self.__dict__.get("_cancelled")
        if event is None:
            event = self.__dict__.setdefault("_cancelled", CancelEvent(self._loop))
        return cast(CancelEvent, event)

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
        self._is_async: Dict[str, bool] = {}
        self._running: Dict[str, Job] = {}
        self._outcomes: List[Tuple[_native.Settle, str]] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._pool: Optional[_HandlerThreads] = None
        self._connected = threading.Event()

    def handle(self, name: str) -> Callable[[Handler], Handler]:
        """Registers the decorated function as the handler of jobs named
        ``name``: ``def f(job)`` or ``async def f(job)``."""

        def register(fn: Handler) -> Handler:
            self._native.handle(name)
            self._handlers[name] = fn
            self._is_async[name] = inspect.iscoroutinefunction(fn)
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
        self._pool = _HandlerThreads(self._concurrency, "chronos-handler")
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
            self._pool.shutdown()
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

    def _dispatch(self, jobs_json: str, settles: "List[_native.Settle]") -> None:
        """Starts a batch of jobs: ``settles[i]`` settles the i-th of the
        JSON array ``jobs_json``."""
        loop = self._loop
        pool = self._pool
        assert loop is not None and pool is not None
        native, running, handlers, is_async = self._native, self._running, self._handlers, self._is_async
        jobs = [Job(data, native, loop) for data in json.loads(jobs_json)]
        # Registered here, before any of them runs, so a cancellation that
        # comes at once still finds it.
        for job in jobs:
            running[job.id] = job
        on_loop: List[_Start] = []
        try:
            for job, settle in zip(jobs, settles):
                fn = handlers.get(job.handler)
                if fn is None or is_async[job.handler]:
                    on_loop.append((fn, job, settle))
                else:
                    # Straight to the pool: the loop has no part in a plain
                    # function's run, so it is not woken for one.
                    pool.submit(self._run_sync, fn, job, settle)
            if on_loop:
                # One wake-up of the loop for the whole batch.
                loop.call_soon_threadsafe(self._start, on_loop)
        except BaseException:
            for job in jobs:
                running.pop(job.id, None)
            raise

    def _cancel(self, job_id: str) -> None:
        job = self._running.get(job_id)
        if job is not None:
            job.cancelled.set()

    # In the thread pool ----------------------------------------------------

    def _run_sync(self, fn: Callable[[Job], Any], job: Job, settle: _native.Settle) -> None:
        try:
            result = fn(job)
            if inspect.isawaitable(result):
                loop = self._loop
                assert loop is not None
                awaited: List[_Start] = [(_awaited(result), job, settle)]
                loop.call_soon_threadsafe(self._start, awaited)
                return
            outcome = _ok(result)
        except BaseException as e:  # noqa: BLE001 - every failure is reported
            # Not raised on: this thread has no caller to take it, and goes
            # on to the next job.
            outcome = _failure(e)
        self._running.pop(job.id, None)
        settle(outcome)

    # On the event loop -----------------------------------------------------

    def _start(self, batch: "List[_Start]") -> None:
        loop = asyncio.get_running_loop()
        for fn, job, settle in batch:
            loop.create_task(self._run_job(fn, job, settle))

    async def _run_job(self, fn: Optional[Callable[[Job], Any]], job: Job,
                       settle: _native.Settle) -> None:
        try:
            if fn is None:
                raise RuntimeError(f"this worker has no handler for {job.handler!r}")
            outcome = _ok(await fn(job))
        except BaseException as e:  # noqa: BLE001 - every failure is reported
            outcome = _failure(e)
            if not isinstance(e, Exception):
                settle(outcome)
                raise
        finally:
            self._running.pop(job.id, None)
        # Outcomes go back together at the end of this turn of the loop:
        # sent in a row, they wake the Rust SDK's threads once, not each.
        outcomes = self._outcomes
        outcomes.append((settle, outcome))
        if len(outcomes) == 1:
            asyncio.get_running_loop().call_soon(self._settle_all)

    def _settle_all(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        for settle, outcome in outcomes:
            settle(outcome)


def _awaited(awaitable: Any) -> Callable[[Job], Any]:
    """An async handler that awaits what a plain one returned."""

    async def wait(job: Job) -> Any:
        return await awaitable

    return wait


#: ``_ok(None)``, the result of most handlers, made once.
_OK_NONE = json.dumps({"ok": None})


def _ok(result: Any) -> str:
    if result is None:
        return _OK_NONE
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
