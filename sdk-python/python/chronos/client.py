"""The REST client: ``Client`` blocks, ``AsyncClient`` awaits. Both are the
Rust SDK's client underneath; while one waits for the server, the GIL is
released."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, List, Optional, Sequence

from . import _native
from .types import (
    BatchItem,
    Execution,
    Job,
    JobStatusFilter,
    MessageAccepted,
    NewJob,
    NewMessage,
    NewSchedule,
    Page,
    Schedule,
    ScheduleStatus,
)


def _args(**args: Any) -> str:
    return json.dumps({k: v for k, v in args.items() if v is not None})


class Client:
    """A client of the Chronos server at ``url`` (e.g. ``http://127.0.0.1:7070``),
    with an API key. Every method blocks until the server answers and raises
    ``ChronosError`` on an error answer. Safe to share between threads, and
    to use in a process forked after it was made."""

    def __init__(self, url: str, api_key: str, *, timeout: Optional[float] = None) -> None:
        self._native = _native.NativeClient(url, api_key, timeout)

    def _call(self, op: str, **args: Any) -> Any:
        return json.loads(self._native.call(op, _args(**args)))

    def create_job(self, job: NewJob) -> Job:
        """Creates a job (``POST /v1/jobs``); it is durable when this returns."""
        return self._call("create_job", job=job)

    def create_jobs(self, jobs: Sequence[NewJob]) -> List[BatchItem]:
        """Creates up to 1000 jobs in one request; one item per job, in order."""
        return self._call("create_jobs", jobs=list(jobs))

    def get_job(self, id: str) -> Job:
        return self._call("get_job", id=id)

    def list_jobs(
        self,
        *,
        status: Optional[JobStatusFilter] = None,
        handler: Optional[str] = None,
        queue: Optional[str] = None,
        schedule_id: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Job]:
        """A page of jobs, newest first. ``schedule_id="null"`` lists one-off jobs."""
        return self._call("list_jobs", status=status, handler=handler, queue=queue,
                          schedule_id=schedule_id, limit=limit, cursor=cursor)

    def cancel_job(self, id: str) -> Job:
        return self._call("cancel_job", id=id)

    def retry_job(self, id: str) -> Job:
        """Runs a failed or cancelled job again, from attempt 1."""
        return self._call("retry_job", id=id)

    def list_executions(
        self, id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Execution]:
        """A job's attempts, newest first."""
        return self._call("list_executions", id=id, limit=limit, cursor=cursor)

    def send_message(self, message: NewMessage) -> MessageAccepted:
        """Sends a one-shot HTTP request, now or later (``POST /v1/messages``)."""
        return self._call("send_message", message=message)

    def create_schedule(self, schedule: NewSchedule) -> Schedule:
        return self._call("create_schedule", schedule=schedule)

    def get_schedule(self, id: str) -> Schedule:
        return self._call("get_schedule", id=id)

    def list_schedules(
        self,
        *,
        status: Optional[ScheduleStatus] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Schedule]:
        return self._call("list_schedules", status=status, limit=limit, cursor=cursor)

    def update_schedule(self, id: str, patch: NewSchedule) -> Schedule:
        """Changes the fields ``patch`` gives."""
        return self._call("update_schedule", id=id, patch=patch)

    def delete_schedule(self, id: str) -> None:
        """Deletes a schedule; the jobs it made stay."""
        self._call("delete_schedule", id=id)

    def pause_schedule(self, id: str) -> Schedule:
        return self._call("pause_schedule", id=id)

    def resume_schedule(self, id: str) -> Schedule:
        return self._call("resume_schedule", id=id)

    def archive_schedule(self, id: str) -> Schedule:
        return self._call("archive_schedule", id=id)

    def trigger_schedule(self, id: str) -> Job:
        """Fires a schedule now, paused or not; returns the job it made."""
        return self._call("trigger_schedule", id=id)

    def next_runs(self, id: str, count: int = 10) -> List[str]:
        return self._call("next_runs", id=id, count=count)

    def list_schedule_executions(
        self, id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Execution]:
        return self._call("list_schedule_executions", id=id, limit=limit, cursor=cursor)


def settle_later(
    loop: asyncio.AbstractEventLoop, future: "asyncio.Future[Any]"
) -> Callable[[Any, Optional[BaseException]], None]:
    """A callback, called from another thread, that settles ``future`` on ``loop``."""

    def settle(value: Any, error: Optional[BaseException]) -> None:
        if future.done():  # the awaiting task was cancelled
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def done(value: Any, error: Optional[BaseException]) -> None:
        try:
            loop.call_soon_threadsafe(settle, value, error)
        except RuntimeError:  # the loop has closed: nobody is waiting
            pass

    return done


class AsyncClient:
    """``Client`` for asyncio: the same methods, each a coroutine. Requests
    run on the SDK's own threads; the event loop never blocks on them."""

    def __init__(self, url: str, api_key: str, *, timeout: Optional[float] = None) -> None:
        self._native = _native.NativeClient(url, api_key, timeout)

    async def _call(self, op: str, **args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Optional[str]] = loop.create_future()
        pending = self._native.call_async(op, _args(**args), settle_later(loop, future))
        try:
            text = await future
        except asyncio.CancelledError:
            pending.cancel()  # the request is dropped, not left running
            raise
        return json.loads(text or "null")

    async def create_job(self, job: NewJob) -> Job:
        """Creates a job (``POST /v1/jobs``); it is durable when this returns."""
        return await self._call("create_job", job=job)

    async def create_jobs(self, jobs: Sequence[NewJob]) -> List[BatchItem]:
        """Creates up to 1000 jobs in one request; one item per job, in order."""
        return await self._call("create_jobs", jobs=list(jobs))

    async def get_job(self, id: str) -> Job:
        return await self._call("get_job", id=id)

    async def list_jobs(
        self,
        *,
        status: Optional[JobStatusFilter] = None,
        handler: Optional[str] = None,
        queue: Optional[str] = None,
        schedule_id: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Job]:
        """A page of jobs, newest first. ``schedule_id="null"`` lists one-off jobs."""
        return await self._call("list_jobs", status=status, handler=handler, queue=queue,
                                schedule_id=schedule_id, limit=limit, cursor=cursor)

    async def cancel_job(self, id: str) -> Job:
        return await self._call("cancel_job", id=id)

    async def retry_job(self, id: str) -> Job:
        """Runs a failed or cancelled job again, from attempt 1."""
        return await self._call("retry_job", id=id)

    async def list_executions(
        self, id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Execution]:
        """A job's attempts, newest first."""
        return await self._call("list_executions", id=id, limit=limit, cursor=cursor)

    async def send_message(self, message: NewMessage) -> MessageAccepted:
        """Sends a one-shot HTTP request, now or later (``POST /v1/messages``)."""
        return await self._call("send_message", message=message)

    async def create_schedule(self, schedule: NewSchedule) -> Schedule:
        return await self._call("create_schedule", schedule=schedule)

    async def get_schedule(self, id: str) -> Schedule:
        return await self._call("get_schedule", id=id)

    async def list_schedules(
        self,
        *,
        status: Optional[ScheduleStatus] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Schedule]:
        return await self._call("list_schedules", status=status, limit=limit, cursor=cursor)

    async def update_schedule(self, id: str, patch: NewSchedule) -> Schedule:
        """Changes the fields ``patch`` gives."""
        return await self._call("update_schedule", id=id, patch=patch)

    async def delete_schedule(self, id: str) -> None:
        """Deletes a schedule; the jobs it made stay."""
        await self._call("delete_schedule", id=id)

    async def pause_schedule(self, id: str) -> Schedule:
        return await self._call("pause_schedule", id=id)

    async def resume_schedule(self, id: str) -> Schedule:
        return await self._call("resume_schedule", id=id)

    async def archive_schedule(self, id: str) -> Schedule:
        return await self._call("archive_schedule", id=id)

    async def trigger_schedule(self, id: str) -> Job:
        """Fires a schedule now, paused or not; returns the job it made."""
        return await self._call("trigger_schedule", id=id)

    async def next_runs(self, id: str, count: int = 10) -> List[str]:
        return await self._call("next_runs", id=id, count=count)

    async def list_schedule_executions(
        self, id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Execution]:
        return await self._call("list_schedule_executions", id=id, limit=limit, cursor=cursor)
