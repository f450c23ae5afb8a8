"""The shapes the REST API takes and answers, as ``TypedDict``s.

Requests are plain dicts (a type checker checks their keys); answers are
the server's JSON, decoded. Field names are the API's (docs/api.md).
Timestamps are RFC 3339 strings.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Generic, List, Literal, Optional, TypeVar, Union, final

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypeAlias, TypedDict
else:  # pragma: no cover
    from typing_extensions import NotRequired, TypeAlias, TypedDict

JobStatus: TypeAlias = Literal["scheduled", "queued", "running", "completed", "failed", "cancelled"]
ExecutionStatus: TypeAlias = Literal["running", "completed", "failed", "timed_out", "released"]
CallbackOn: TypeAlias = Literal["outcome", "every_attempt"]
ScheduleStatus: TypeAlias = Literal["active", "paused", "archived"]
TimeUnit: TypeAlias = Literal["second", "minute", "hour", "day", "week"]
HttpMethod: TypeAlias = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
QueueOrdering: TypeAlias = Literal["fifo", "lifo"]
FailureMode: TypeAlias = Literal["continue", "block", "pause"]
QueueState: TypeAlias = Literal["active", "paused"]
FanOutStatus: TypeAlias = Literal["running", "all_succeeded", "partial", "all_failed"]
CallbackStatus: TypeAlias = Literal["succeeded", "failed"]
Scope: TypeAlias = Literal["admin", "jobs:read", "jobs:write", "worker", "monitors:write", "instance:admin"]
"""What a key (or a person's role) may do in its organization: ``admin``
everything there; ``jobs:write`` includes ``jobs:read``; ``worker`` only the
worker routes; ``monitors:write`` signals and manages monitors.
``instance:admin`` reaches no organization's data, but creates
organizations on a server whose signup is closed and manages any."""
Role: TypeAlias = Literal["viewer", "member", "admin", "owner"]
"""A person's role in an organization: ``viewer`` reads, ``member`` also
writes jobs and monitors, ``admin`` holds ``admin``, ``owner`` also makes
owners and deletes the organization."""
InviteStatus: TypeAlias = Literal["pending", "accepted", "revoked", "expired"]
DomainStatus: TypeAlias = Literal["pending", "verified", "lapsed"]
"""Where a domain's proof stands: ``lapsed`` once its daily checks failed
for a week (verify it again)."""


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
    concurrency_key: NotRequired[str]
    priority: NotRequired[int]
    delivery: NotRequired[Delivery]


class Job(TypedDict):
    id: str
    name: str
    handler: Optional[str]
    payload: Any
    status: JobStatus
    queue: str
    concurrency_key: Optional[str]
    priority: int
    delivery: Delivery
    run_at: str
    attempt: int
    max_retries: int
    timeout: int
    schedule_id: Optional[str]
    fire_at: NotRequired[Optional[str]]
    idempotency_key: Optional[str]
    held_reason: NotRequired[str]
    fan_out_id: NotRequired[str]
    callback_queue_id: NotRequired[str]
    result: NotRequired[Any]
    last_error: Optional[str]
    created_at: str
    updated_at: str
    finished_at: Optional[str]


class ErrorDetail(TypedDict):
    code: str
    message: str
    field: NotRequired[str]
    window: NotRequired[Literal["day", "month"]]
    """``quota_exceeded`` and ``unverified_domain_limit``: the window spent."""
    limit: NotRequired[int]
    used: NotRequired[int]
    resets_at: NotRequired[str]
    domain: NotRequired[str]
    """``unverified_domain_limit``: the (registrable) domain whose daily ten
    are spent."""


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
    response_body_encoding: NotRequired[Literal["utf-8", "base64"]]
    error: Optional[str]
    duration_ms: Optional[int]
    started_at: str
    finished_at: Optional[str]


class NewMessage(TypedDict):
    """``POST /v1/messages``: a one-shot HTTP request, now or later, to
    ``url``; or one to each member of the target group
    ``default_target_group_id`` (a fan-out). Give exactly one of the two."""

    url: NotRequired[str]
    default_target_group_id: NotRequired[str]
    method: NotRequired[HttpMethod]
    headers: NotRequired[Dict[str, str]]
    body: NotRequired[str]
    delay: NotRequired[int]
    scheduled_at: NotRequired[str]
    deduplication_id: NotRequired[str]
    retries: NotRequired[int]
    signing_secret_id: NotRequired[str]
    concurrency_key: NotRequired[str]
    callback_queue_id: NotRequired[str]
    callback_on: NotRequired[CallbackOn]


@final  # so that `"fan_out" in answer` tells it from a FanOutAccepted
class MessageAccepted(TypedDict):
    message_id: str
    scheduled_at: str


class FanOutAccepted(TypedDict):
    """The answer to a publish that fanned out across a target group: one
    message per member, in the members' order."""

    fan_out: Literal[True]
    fan_out_id: str
    message_ids: List[str]
    count: int
    queue: str
    scheduled_at: str


class NewQueue(TypedDict):
    """``POST /v1/queues`` (docs/queues.md): ``name``, and the settings to
    change from the defaults (one job at a time, 3 retries, fifo,
    ``continue``)."""

    name: str
    concurrency: NotRequired[Optional[int]]
    retries: NotRequired[int]
    ordering: NotRequired[QueueOrdering]
    failure_mode: NotRequired[FailureMode]
    rate_limit: NotRequired[int]
    rate_period_seconds: NotRequired[int]
    key_concurrency: NotRequired[int]
    key_rate_limit: NotRequired[int]
    key_rate_period_seconds: NotRequired[int]
    signing_secret_id: NotRequired[str]
    default_target_url: NotRequired[str]
    default_target_group_id: NotRequired[str]
    callback_queue_id: NotRequired[str]
    callback_on: NotRequired[CallbackOn]


class QueuePatch(TypedDict, total=False):
    """``PATCH /v1/queues/{name}``: only the fields given change; ``None``
    removes a limit or a default."""

    concurrency: Optional[int]
    retries: int
    ordering: QueueOrdering
    failure_mode: FailureMode
    rate_limit: Optional[int]
    rate_period_seconds: Optional[int]
    key_concurrency: Optional[int]
    key_rate_limit: Optional[int]
    key_rate_period_seconds: Optional[int]
    signing_secret_id: Optional[str]
    default_target_url: Optional[str]
    default_target_group_id: Optional[str]
    callback_queue_id: Optional[str]
    callback_on: CallbackOn


class QueueStats(TypedDict):
    """What a queue holds now (``get_queue`` only)."""

    running: int
    queued: int
    scheduled: int
    oldest_queued_at: Optional[str]
    waiting_for_handler: Optional[str]


class Queue(TypedDict):
    """A queue, as every queue route answers it."""

    id: str
    name: str
    concurrency: Optional[int]
    max_retries: int
    ordering: QueueOrdering
    failure_mode: FailureMode
    status: QueueState
    rate_limit: Optional[int]
    rate_period_seconds: Optional[int]
    key_concurrency: Optional[int]
    key_rate_limit: Optional[int]
    key_rate_period_seconds: Optional[int]
    signing_secret_id: Optional[str]
    default_target_url: Optional[str]
    default_target_group_id: Optional[str]
    callback_queue_id: Optional[str]
    callback_on: CallbackOn
    blocked: bool
    blocked_message_count: int
    created_at: str
    updated_at: str
    stats: NotRequired[QueueStats]
    warning: NotRequired[str]
    """On create, when ``default_target_url``'s domain is not verified and
    the plan requires it: that target takes ten jobs a day until it is."""


class QueueMessage(TypedDict, total=False):
    """``POST /v1/queues/{name}/messages``: the fields of ``NewMessage`` but
    ``retries`` and ``signing_secret_id``, which come from the queue;
    ``url`` defaults to the queue's ``default_target_url``."""

    url: str
    method: HttpMethod
    headers: Dict[str, str]
    body: str
    delay: int
    scheduled_at: str
    deduplication_id: str
    concurrency_key: str
    callback_queue_id: str
    callback_on: CallbackOn
    default_target_group_id: str


@final  # so that `"fan_out" in answer` tells it from a FanOutAccepted
class QueueMessageAccepted(TypedDict):
    message_id: str
    queue: str
    scheduled_at: str


class NewTargetGroup(TypedDict):
    """``POST /v1/target-groups``: a named set of endpoints a publish fans
    out to; ``name`` unique in the organization, 1 to 200 characters."""

    name: str


class TargetGroup(TypedDict):
    id: str
    name: str
    created_at: str
    updated_at: str


class NewMember(TypedDict):
    """``POST /v1/target-groups/{id}/members``: an endpoint of a group. Its
    ``headers`` go with every delivery to it, winning over the message's."""

    target_url: str
    method: NotRequired[HttpMethod]
    headers: NotRequired[Dict[str, str]]


class Member(TypedDict):
    """An endpoint of a group; sensitive headers read ``***redacted***``."""

    id: str
    target_url: str
    method: HttpMethod
    headers: Dict[str, str]
    created_at: str


class FanOutResult(TypedDict):
    """One delivery of a fan-out. ``status``: ``succeeded``, ``failed`` or
    ``cancelled`` once it ended; ``scheduled``, ``queued`` or ``running``
    before."""

    message_id: str
    target_url: str
    status: str
    http_status: Optional[int]


class FanOut(TypedDict):
    """``GET /v1/fan-outs/{id}``: a fan-out and each of its deliveries now."""

    id: str
    target_group_id: str
    queue: str
    status: FanOutStatus
    count: int
    succeeded: int
    failed: int
    callback_queue_id: Optional[str]
    created_at: str
    finished_at: Optional[str]
    results: List[FanOutResult]


@final  # so that `"results" in callback` tells it from a GroupCallbackEvent
class CallbackEvent(TypedDict):
    """A callback: one delivery's outcome, once it ended for good."""

    message_id: str
    fan_out_id: Optional[str]
    status: CallbackStatus
    http_status: Optional[int]
    response_body: Optional[str]
    response_body_encoding: str
    response_truncated: bool
    attempts: int
    error: Optional[str]
    url: str
    method: HttpMethod
    created_at: str
    finished_at: Optional[str]
    final: bool


class GroupCallbackEvent(TypedDict):
    """A fan-out's group callback, once its last delivery ended."""

    fan_out_id: str
    status: FanOutStatus
    results: List[FanOutResult]


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
    concurrency_key: str
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
    concurrency_key: Optional[str]
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
    warning: NotRequired[str]
    """On create, when its push target's domain is not verified and the
    plan requires it: that target takes ten jobs a day until it is."""


class SkippedRun(TypedDict):
    """A fire of a schedule that made no job: its organization's quota was
    spent."""

    id: str
    schedule_id: str
    fire_at: str
    """The due time that was skipped."""
    error: ErrorDetail
    """What a create would have answered: ``quota_exceeded`` or
    ``unverified_domain_limit``."""
    created_at: str


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


class NewOrganization(TypedDict):
    """``POST /v1/orgs``: ``slug`` is 2 to 63 lowercase letters, digits and
    hyphens, not starting with a hyphen; it names the organization in URLs."""

    name: str
    slug: str


class OrganizationPatch(TypedDict, total=False):
    """``PATCH /v1/orgs/{slug}``: only the fields given change."""

    name: str
    slug: str
    plan: str
    """The instance administrator's alone to change."""


class Plan(TypedDict):
    """A plan's limits; ``None`` limits nothing."""

    name: str
    messages_per_day: Optional[int]
    messages_per_month: Optional[int]
    min_interval_seconds: Optional[int]
    max_retries: Optional[int]
    verify_domains: bool


class UsageWindow(TypedDict):
    """One window's count."""

    used: int
    limit: Optional[int]
    resets_at: str


class Usage(TypedDict):
    """``usage()``: the plan, and the UTC day's and month's counts."""

    plan: Plan
    day: UsageWindow
    month: UsageWindow


class Organization(TypedDict):
    """An organization; ``role`` is the caller's in it, when the caller is a
    person (never for a key)."""

    id: str
    slug: str
    name: str
    created_at: str
    plan: str
    """What it may use: ``unlimited`` until the operator gives it another."""
    role: NotRequired[Role]


class WellKnownChallenge(TypedDict):
    """A file to serve over HTTPS: ``content`` at ``url``
    (``https://{domain}/.well-known/chronos-verification.txt``)."""

    url: str
    content: str


class DnsTxtChallenge(TypedDict):
    """A TXT record to publish: ``name`` (``_chronos-verification.{domain}``)
    holding ``value``."""

    name: str
    type: Literal["TXT"]
    value: str


class DomainVerification(TypedDict):
    """The two ways to prove a domain: either will do."""

    well_known: WellKnownChallenge
    dns_txt: DnsTxtChallenge


class Domain(TypedDict):
    """A domain of the organization. Verifying a registrable domain
    (``example.com``) covers its subdomains."""

    id: str
    domain: str
    status: DomainStatus
    verification: DomainVerification
    method: Optional[Literal["well_known", "dns_txt"]]
    """The challenge the last passing check found."""
    verified_at: Optional[str]
    checked_at: Optional[str]
    """The last check, by ``verify_domain`` or the daily one."""
    last_error: Optional[str]
    """Why the last check failed, if it did."""
    created_at: str


class NewApiKey(TypedDict):
    """``POST /v1/api-keys`` and ``POST /v1/orgs/{slug}/api-keys``:
    ``scopes`` default to ``["admin"]`` (``instance:admin`` only from a key
    that holds it); ``expires_at`` (RFC 3339, in the future) never when left
    out; ``queues``, the only queues the key may use, every queue when left
    out."""

    name: str
    scopes: NotRequired[List[Scope]]
    expires_at: NotRequired[str]
    queues: NotRequired[List[str]]


class ApiKey(TypedDict):
    """An API key as listed: never its secret. ``id`` is the public part of
    the key (``chrns_<id>_…``)."""

    id: str
    name: str
    scopes: List[Scope]
    created_at: str
    revoked_at: Optional[str]
    expires_at: Optional[str]
    last_used_at: Optional[str]
    queues: Optional[List[str]]


class CreatedApiKey(ApiKey):
    """The answer to creating a key: the only time ``key`` (the full key)
    is shown; the server keeps only a hash."""

    key: str


class CreatedOrganization(Organization):
    """The answer to ``create_org``: the organization and its first admin
    key, shown this once."""

    api_key: CreatedApiKey


class User(TypedDict):
    """A person."""

    id: str
    email: str
    name: Optional[str]
    created_at: str


class Membership(TypedDict):
    """A person's membership of an organization."""

    user_id: str
    email: str
    name: Optional[str]
    role: Role
    joined_at: str


class NewInvite(TypedDict):
    """``POST /v1/orgs/{slug}/invites``: ``role`` defaults to ``member``;
    only an owner invites owners."""

    email: str
    role: NotRequired[Role]


class Invite(TypedDict):
    """An invite; its token is never shown again after the answer that
    created (or resent) it."""

    id: str
    email: str
    role: Role
    status: InviteStatus
    created_at: str
    expires_at: str
    accepted_at: Optional[str]
    revoked_at: Optional[str]


class CreatedInvite(Invite):
    """The answer to ``create_invite`` and ``resend_invite``: ``url`` is the
    single-use link to hand over (``{public-url}/invite#<token>``), ``token``
    the token it carries, ``mailed`` whether the server also e-mailed it."""

    url: str
    token: str
    mailed: bool


class AcceptInvite(TypedDict):
    """``POST /v1/invites/accept``: someone new gives a ``password`` (at
    least 10 characters, not a common one) and may give a ``name``; someone
    with an account gives theirs."""

    token: str
    name: NotRequired[str]
    password: NotRequired[str]


class InviteAccepted(TypedDict):
    """The answer to ``accept_invite``: the person, the organization with
    their ``role``, and the session's CSRF token (the session cookie is not
    kept by the client)."""

    user: User
    organization: Organization
    csrf_token: str


T = TypeVar("T")


class Page(TypedDict, Generic[T]):
    """One page of a list; pass ``next_cursor`` back for the next."""

    data: List[T]
    next_cursor: Optional[str]


JobStatusFilter: TypeAlias = Union[JobStatus, List[JobStatus]]

MessagePublished: TypeAlias = Union[FanOutAccepted, MessageAccepted]
"""What ``send_message`` returns: one message, or a fan-out (``"fan_out" in answer``)."""

QueuePublished: TypeAlias = Union[FanOutAccepted, QueueMessageAccepted]
"""What ``publish`` returns: one message, or a fan-out (``"fan_out" in answer``)."""

Callback: TypeAlias = Union[CallbackEvent, GroupCallbackEvent]
"""What a callback queue delivers: a group callback is the one with ``"results"``."""
