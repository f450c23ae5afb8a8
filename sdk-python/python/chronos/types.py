"""The shapes the REST API takes and answers, as ``TypedDict``s.

Requests are plain dicts (a type checker checks their keys); answers are
the server's JSON, decoded. Field names are the API's (docs/api.md).
Timestamps are RFC 3339 strings.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Generic, List, Literal, Optional, TypeVar, Union

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypeAlias, TypedDict
else:  # pragma: no cover
    from typing_extensions import NotRequired, TypeAlias, TypedDict

JobStatus: TypeAlias = Literal["scheduled", "queued", "running", "completed", "failed", "cancelled"]
ExecutionStatus: TypeAlias = Literal["running", "completed", "failed", "timed_out", "released"]
ScheduleStatus: TypeAlias = Literal["active", "paused", "archived"]
TimeUnit: TypeAlias = Literal["second", "minute", "hour", "day", "week"]
HttpMethod: TypeAlias = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class Delay(TypedDict):
    value: int
    unit: TimeUnit


class HttpTarget(TypedDict):
    url: str
    method: NotRequired[HttpMethod]
    headers: NotRequired[Dict[str, str]]


class Delivery(TypedDict):
    """``{"type": "pull"}`` (the default) or ``{"type": "push", "http": …}``."""

    type: Literal["pull", "push"]
    http: NotRequired[HttpTarget]
    signing_secret_id: NotRequired[str]


class NewJob(TypedDict):
    """``POST /v1/jobs``: ``name`` and, for pull delivery, ``handler``."""

    name: str
    handler: NotRequired[str]
    payload: NotRequired[Any]
    delay: NotRequired[Delay]
    scheduled_for: NotRequired[str]
    idempotency_key: NotRequired[str]
    timeout: NotRequired[int]
    max_retries: NotRequired[int]
    queue: NotRequired[str]
    priority: NotRequired[int]
    delivery: NotRequired[Delivery]


class Job(TypedDict):
    id: str
    name: str
    handler: Optional[str]
    payload: Any
    status: JobStatus
    queue: str
    priority: int
    delivery: Delivery
    run_at: str
    attempt: int
    max_retries: int
    timeout: int
    schedule_id: Optional[str]
    fire_at: NotRequired[Optional[str]]
    idempotency_key: Optional[str]
    result: NotRequired[Any]
    last_error: Optional[str]
    created_at: str
    updated_at: str
    finished_at: Optional[str]


class ErrorDetail(TypedDict):
    code: str
    message: str
    field: NotRequired[str]


class BatchItem(TypedDict, total=False):
    """One job of a batch: ``{"job": …}`` if created, ``{"error": …}`` if not."""

    job: Job
    error: ErrorDetail


class Execution(TypedDict):
    id: str
    job_id: str
    attempt: int
    status: ExecutionStatus
    worker_id: Optional[str]
    http_status: Optional[int]
    response_body: Optional[str]
    response_truncated: bool
    error: Optional[str]
    duration_ms: Optional[int]
    started_at: str
    finished_at: Optional[str]


class NewMessage(TypedDict):
    """``POST /v1/messages``: a one-shot HTTP request, now or later."""

    url: str
    method: NotRequired[HttpMethod]
    headers: NotRequired[Dict[str, str]]
    body: NotRequired[str]
    delay: NotRequired[int]
    scheduled_at: NotRequired[str]
    deduplication_id: NotRequired[str]
    retries: NotRequired[int]
    signing_secret_id: NotRequired[str]


class MessageAccepted(TypedDict):
    message_id: str
    scheduled_at: str


class NewSchedule(TypedDict, total=False):
    """``POST /v1/schedules``, in any of its shapes (docs/schedules.md): a
    ``handler`` with ``interval`` or ``cron``, or a ``url`` with a ``body``."""

    name: str
    handler: str
    payload: Any
    interval: Delay
    cron: str
    schedule_type: Literal["interval", "cron"]
    schedule: str
    timezone: str
    delivery: Delivery
    url: str
    method: HttpMethod
    headers: Dict[str, str]
    body: str
    signing_secret_id: str
    timeout: int
    timeout_ms: int
    max_retries: int
    retries: int
    queue: str
    priority: int
    catch_up: Literal["skip", "one", "all"]
    overlap: Literal["allow", "skip", "wait"]
    enabled: bool
    failure_notify: bool


class Schedule(TypedDict):
    """A schedule as ``/v1/schedules`` answers: one shape, whichever request
    shape created it."""

    id: str
    name: str
    status: ScheduleStatus
    cron: Optional[str]
    interval: Optional[Delay]
    timezone: str
    handler: Optional[str]
    payload: Any
    delivery: Delivery
    url: Optional[str]
    method: Optional[HttpMethod]
    headers: Optional[Dict[str, str]]
    body: Optional[str]
    signing_secret_id: Optional[str]
    timeout: int
    max_retries: int
    queue: str
    priority: int
    catch_up: Literal["skip", "one", "all"]
    overlap: Literal["allow", "skip", "wait"]
    failure_notify: bool
    last_status: Optional[JobStatus]
    last_run_at: Optional[str]
    next_run_at: Optional[str]
    next_fire_at: Optional[str]
    created_at: str
    updated_at: str


class ConnectedWorker(TypedDict):
    """A worker connected over WebSocket, as ``GET /v1/workers`` shows it."""

    worker_id: str
    session_id: str
    handlers: List[str]
    max_in_flight: int
    in_flight: int
    sdk: str
    connected_at: str
    last_heartbeat_at: str


class Lease(TypedDict):
    """The right to run one attempt of a job until ``expires_at``."""

    token: str
    expires_at: str


class LeasedJob(TypedDict):
    """A job handed to a worker, with its lease (``poll``)."""

    job: Job
    lease: Lease


class PollRequest(TypedDict):
    """``POST /v1/workers/poll``: due jobs of ``handlers``."""

    handlers: List[str]
    max_jobs: NotRequired[int]
    wait_seconds: NotRequired[int]
    worker_id: NotRequired[str]


class FailRequest(TypedDict):
    """``POST /v1/leases/fail``: the attempt the lease ``token`` holds failed."""

    token: str
    error: NotRequired[str]
    retryable: NotRequired[bool]
    retry_in: NotRequired[int]


T = TypeVar("T")


class Page(TypedDict, Generic[T]):
    """One page of a list; pass ``next_cursor`` back for the next."""

    data: List[T]
    next_cursor: Optional[str]


JobStatusFilter: TypeAlias = Union[JobStatus, List[JobStatus]]
