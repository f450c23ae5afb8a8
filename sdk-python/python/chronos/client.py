"""The REST client: ``Client`` blocks, ``AsyncClient`` awaits. Both are the
Rust SDK's client underneath, one native method per operation (the Rust
client's methods, by the same names: sdk-rust/manifest.json); while one
waits for the server, the GIL is released."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, List, Optional, Sequence

from . import _native
from .types import (
    AcceptInvite,
    ApiKey,
    BatchItem,
    ConnectedWorker,
    CreatedApiKey,
    CreatedInvite,
    CreatedOrganization,
    Domain,
    Execution,
    FailRequest,
    FanOut,
    Invite,
    InviteAccepted,
    Job,
    JobStatusFilter,
    Lease,
    LeasedJob,
    Member,
    Membership,
    MessagePublished,
    NewApiKey,
    NewInvite,
    NewJob,
    NewMember,
    NewMessage,
    NewOrganization,
    NewQueue,
    NewSchedule,
    NewTargetGroup,
    Organization,
    OrganizationPatch,
    Page,
    PollRequest,
    Queue,
    QueueMessage,
    QueuePatch,
    QueuePublished,
    Role,
    Schedule,
    ScheduleStatus,
    SkippedRun,
    TargetGroup,
    Usage,
)

#: How long one request may take unless ``timeout`` says otherwise, in
#: seconds: the Rust SDK's default (sdk-rust/manifest.json).
DEFAULT_TIMEOUT = 30.0

#: How many due times ``next_runs`` gives unless ``count`` says otherwise.
DEFAULT_NEXT_RUNS = 10


def _statuses(status: Optional[JobStatusFilter]) -> Optional[List[str]]:
    if status is None:
        return None
    return [status] if isinstance(status, str) else list(status)


class Client:
    """A client of the Chronos server at ``url`` (e.g. ``http://127.0.0.1:7070``),
    with an API key. Every method blocks until the server answers and raises
    ``ChronosError`` on an error answer (``ValueError`` for an argument it
    refuses before sending). ``timeout``: how long one request may take, in
    seconds (``None``: no limit). Safe to share between threads, and to use
    in a process forked after it was made."""

    def __init__(self, url: str, api_key: str, *, timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        self._native = _native.NativeClient(url, api_key, timeout)

    @property
    def base_url(self) -> str:
        """The server's base URL, as the client uses it (ending in ``/``)."""
        return self._native.base_url

    @property
    def timeout(self) -> Optional[float]:
        """How long one request may take, in seconds; ``None`` for no limit."""
        return self._native.timeout

    def create_job(self, job: NewJob) -> Job:
        """Creates a job (``POST /v1/jobs``); it is durable when this returns."""
        return self._native.create_job(job).wait()

    def create_jobs(self, jobs: Sequence[NewJob]) -> List[BatchItem]:
        """Creates up to 1000 jobs in one request; one item per job, in order."""
        return self._native.create_jobs(list(jobs)).wait()

    def get_job(self, id: str) -> Job:
        return self._native.get_job(id).wait()

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
        return self._native.list_jobs(status=_statuses(status), handler=handler, queue=queue,
                                      schedule_id=schedule_id, limit=limit, cursor=cursor).wait()

    def cancel_job(self, id: str) -> Job:
        return self._native.cancel_job(id).wait()

    def retry_job(self, id: str) -> Job:
        """Runs a failed or cancelled job again, from attempt 1."""
        return self._native.retry_job(id).wait()

    def list_executions(
        self, id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Execution]:
        """A job's attempts, newest first."""
        return self._native.list_executions(id, limit=limit, cursor=cursor).wait()

    def send_message(self, message: NewMessage) -> MessagePublished:
        """Sends a one-shot HTTP request, now or later (``POST /v1/messages``);
        one per member for a message naming a target group, whose answer is
        then a fan-out (``"fan_out" in answer``)."""
        return self._native.send_message(message).wait()

    def create_queue(self, queue: NewQueue) -> Queue:
        """Creates a queue (``POST /v1/queues``; a key with the ``admin`` scope)."""
        return self._native.create_queue(queue).wait()

    def get_queue(self, name: str) -> Queue:
        """One queue, with what it holds now (``stats``)."""
        return self._native.get_queue(name).wait()

    def list_queues(self) -> List[Queue]:
        """Every queue of the organization, by name."""
        return self._native.list_queues().wait()

    def update_queue(self, name: str, patch: QueuePatch) -> Queue:
        """Changes the settings ``patch`` gives; ``None`` removes a limit or a default."""
        return self._native.update_queue(name, patch).wait()

    def delete_queue(self, name: str, *, force: bool = False) -> None:
        """Deletes a queue that holds no unfinished job; ``force=True``
        cancels them first."""
        self._native.delete_queue(name, force=force).wait()

    def pause_queue(self, name: str) -> Queue:
        """Nothing more of the queue starts; running jobs finish."""
        return self._native.pause_queue(name).wait()

    def resume_queue(self, name: str) -> Queue:
        return self._native.resume_queue(name).wait()

    def unblock_queue(self, name: str) -> Queue:
        """Starts a queue a dead job blocked (``failure_mode: block``) again."""
        return self._native.unblock_queue(name).wait()

    def publish(self, queue: str, message: QueueMessage) -> QueuePublished:
        """Publishes a message onto a queue (``POST /v1/queues/{name}/messages``):
        it inherits the queue's signing secret, retries and limits. Naming a
        target group (or onto a queue whose default is one), it fans out."""
        return self._native.publish(queue, message).wait()

    def create_target_group(self, group: NewTargetGroup) -> TargetGroup:
        """Creates a target group (``POST /v1/target-groups``; a key with the
        ``admin`` scope): a named set of endpoints a publish fans out to."""
        return self._native.create_target_group(group).wait()

    def get_target_group(self, id: str) -> TargetGroup:
        return self._native.get_target_group(id).wait()

    def list_target_groups(self) -> List[TargetGroup]:
        """Every target group of the organization, oldest first."""
        return self._native.list_target_groups().wait()

    def rename_target_group(self, id: str, name: str) -> TargetGroup:
        return self._native.rename_target_group(id, name).wait()

    def delete_target_group(self, id: str) -> None:
        """Deletes a group and its members; refused (``target_group_in_use``)
        while a queue names it as its default."""
        self._native.delete_target_group(id).wait()

    def add_member(self, group_id: str, member: NewMember) -> Member:
        """Adds an endpoint to a group: it receives the publishes made from now on."""
        return self._native.add_member(group_id, member).wait()

    def list_members(self, group_id: str) -> List[Member]:
        """A group's endpoints, oldest first."""
        return self._native.list_members(group_id).wait()

    def remove_member(self, group_id: str, member_id: str) -> None:
        self._native.remove_member(group_id, member_id).wait()

    def get_fan_out(self, id: str) -> FanOut:
        """A fan-out (the ``fan_out_id`` of a publish) and each of its
        deliveries now: ``running`` until the last one ends."""
        return self._native.get_fan_out(id).wait()

    def create_org(self, org: NewOrganization) -> CreatedOrganization:
        """Creates an organization (``POST /v1/orgs``) with its first admin key,
        shown this once (``api_key["key"]``). On a server whose signup is
        closed (the default), only a key with ``instance:admin`` may."""
        return self._native.create_org(org).wait()

    def list_orgs(self) -> List[Organization]:
        """The caller's organizations: a key's own."""
        return self._native.list_orgs().wait()

    def get_org(self, slug: str) -> Organization:
        return self._native.get_org(slug).wait()

    def update_org(self, slug: str, patch: OrganizationPatch) -> Organization:
        """Renames an organization or changes its slug (``admin``)."""
        return self._native.update_org(slug, patch).wait()

    def delete_org(self, slug: str) -> None:
        """Deletes an organization and everything it owns: an owner, or a key
        with ``instance:admin``."""
        self._native.delete_org(slug).wait()

    def create_api_key(self, key: NewApiKey) -> CreatedApiKey:
        """Creates a key in the client key's own organization (``POST
        /v1/api-keys``, ``admin``); the full key (``key``) is shown this once."""
        return self._native.create_api_key(key).wait()

    def usage(self) -> Usage:
        """The organization's plan, and the jobs it has created this UTC day
        and calendar month (``GET /v1/usage``, ``jobs:read``)."""
        return self._native.usage().wait()

    def add_domain(self, domain: str) -> Domain:
        """Begins verifying a domain (a host name, or a URL: its host;
        ``admin``): the answer holds both challenges (``verification``),
        ``pending``, or ``verified`` if it already is."""
        return self._native.add_domain(domain).wait()

    def verify_domain(self, domain: str) -> Domain:
        """Checks a domain's challenges now (``admin``); either verifies it.
        Raises ``verification_failed`` saying what each found."""
        return self._native.verify_domain(domain).wait()

    def list_domains(self) -> List[Domain]:
        """Every domain of the organization, newest first (all pages)."""
        return self._native.list_domains().wait()

    def get_domain(self, id: str) -> Domain:
        return self._native.get_domain(id).wait()

    def delete_domain(self, id: str) -> None:
        """Forgets a domain (``admin``): where the plan requires verification,
        its push targets are limited again."""
        self._native.delete_domain(id).wait()

    def list_api_keys(self) -> List[ApiKey]:
        """The keys of the client key's own organization, never their secrets."""
        return self._native.list_api_keys().wait()

    def revoke_api_key(self, id: str) -> ApiKey:
        """Revokes a key (its ``id``): requests with it are refused from now on."""
        return self._native.revoke_api_key(id).wait()

    def create_org_api_key(self, slug: str, key: NewApiKey) -> CreatedApiKey:
        """Creates a key in the organization ``slug`` names (``admin`` there, or
        ``instance:admin``)."""
        return self._native.create_org_api_key(slug, key).wait()

    def list_org_api_keys(self, slug: str) -> List[ApiKey]:
        return self._native.list_org_api_keys(slug).wait()

    def list_org_members(self, slug: str) -> List[Membership]:
        """An organization's members and their roles."""
        return self._native.list_org_members(slug).wait()

    def update_org_member(self, slug: str, user_id: str, role: Role) -> Membership:
        """Changes a member's role (``admin``; only an owner makes owners; the
        last owner stays one)."""
        return self._native.update_org_member(slug, user_id, role).wait()

    def remove_org_member(self, slug: str, user_id: str) -> None:
        self._native.remove_org_member(slug, user_id).wait()

    def create_invite(self, slug: str, invite: NewInvite) -> CreatedInvite:
        """Invites someone by e-mail: hand over the answer's ``url``
        (``…/invite#<token>``), single-use for 7 days."""
        return self._native.create_invite(slug, invite).wait()

    def list_invites(self, slug: str) -> List[Invite]:
        """An organization's invites, newest first, with their ``status``."""
        return self._native.list_invites(slug).wait()

    def revoke_invite(self, slug: str, id: str) -> Invite:
        """Withdraws a pending invite: its link stops working."""
        return self._native.revoke_invite(slug, id).wait()

    def resend_invite(self, slug: str, id: str) -> CreatedInvite:
        """A new link for a pending invite (the old one stops working), valid 7
        days more."""
        return self._native.resend_invite(slug, id).wait()

    def accept_invite(self, accept: AcceptInvite) -> InviteAccepted:
        """Accepts an invite with the token of its link; someone new gives a
        ``password`` (at least 10 characters, not a common one)."""
        return self._native.accept_invite(accept).wait()

    def create_schedule(self, schedule: NewSchedule) -> Schedule:
        return self._native.create_schedule(schedule).wait()

    def get_schedule(self, id: str) -> Schedule:
        return self._native.get_schedule(id).wait()

    def list_schedules(
        self,
        *,
        status: Optional[ScheduleStatus] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Schedule]:
        return self._native.list_schedules(status=status, limit=limit, cursor=cursor).wait()

    def update_schedule(self, id: str, patch: NewSchedule) -> Schedule:
        """Changes the fields ``patch`` gives."""
        return self._native.update_schedule(id, patch).wait()

    def delete_schedule(self, id: str) -> None:
        """Deletes a schedule; the jobs it made stay."""
        self._native.delete_schedule(id).wait()

    def pause_schedule(self, id: str) -> Schedule:
        return self._native.pause_schedule(id).wait()

    def resume_schedule(self, id: str) -> Schedule:
        return self._native.resume_schedule(id).wait()

    def archive_schedule(self, id: str) -> Schedule:
        return self._native.archive_schedule(id).wait()

    def trigger_schedule(self, id: str) -> Job:
        """Fires a schedule now, paused or not; returns the job it made."""
        return self._native.trigger_schedule(id).wait()

    def next_runs(self, id: str, count: int = DEFAULT_NEXT_RUNS) -> List[str]:
        """The next ``count`` (1 to 100) times the schedule fires."""
        return self._native.next_runs(id, count).wait()

    def list_schedule_executions(
        self, id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Execution]:
        """The attempts of the jobs a schedule made, newest first."""
        return self._native.list_schedule_executions(id, limit=limit, cursor=cursor).wait()

    def list_skipped_runs(
        self, id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[SkippedRun]:
        """The fires of a schedule that made no job because the quota was
        spent, newest first (the newest 100 are kept)."""
        return self._native.list_skipped_runs(id, limit=limit, cursor=cursor).wait()

    def list_workers(self) -> List[ConnectedWorker]:
        """The workers connected over WebSocket (``GET /v1/workers``)."""
        return self._native.list_workers().wait()

    def poll(self, request: PollRequest) -> List[LeasedJob]:
        """Leases due jobs of ``request["handlers"]`` (a key with the
        ``worker`` scope), waiting up to ``wait_seconds`` for one; empty if
        none came."""
        return self._native.poll(request).wait()

    def ack(self, token: str, result: Any = None) -> Job:
        """Completes the attempt the lease ``token`` holds, storing ``result``."""
        return self._native.ack(token, result).wait()

    def fail(self, request: FailRequest) -> Job:
        """Fails the attempt a lease holds: retried while retries remain,
        unless ``retryable`` is false."""
        return self._native.fail(request).wait()

    def extend(self, token: str, seconds: int) -> Lease:
        """Moves a lease's deadline to ``seconds`` from now."""
        return self._native.extend(token, seconds).wait()


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


async def _answer(call: _native.Call) -> Any:
    """Starts ``call`` and awaits its answer; cancelling the await drops the
    request (its connection is closed)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    call.start(settle_later(loop, future))
    try:
        return await future
    except asyncio.CancelledError:
        call.cancel()
        raise


class AsyncClient:
    """``Client`` for asyncio: the same methods, each a coroutine. Requests
    run on the SDK's own threads; the event loop never blocks on them."""

    def __init__(self, url: str, api_key: str, *, timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:
        self._native = _native.NativeClient(url, api_key, timeout)

    @property
    def base_url(self) -> str:
        """The server's base URL, as the client uses it (ending in ``/``)."""
        return self._native.base_url

    @property
    def timeout(self) -> Optional[float]:
        """How long one request may take, in seconds; ``None`` for no limit."""
        return self._native.timeout

    async def create_job(self, job: NewJob) -> Job:
        """Creates a job (``POST /v1/jobs``); it is durable when this returns."""
        return await _answer(self._native.create_job(job))

    async def create_jobs(self, jobs: Sequence[NewJob]) -> List[BatchItem]:
        """Creates up to 1000 jobs in one request; one item per job, in order."""
        return await _answer(self._native.create_jobs(list(jobs)))

    async def get_job(self, id: str) -> Job:
        return await _answer(self._native.get_job(id))

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
        return await _answer(self._native.list_jobs(
            status=_statuses(status), handler=handler, queue=queue,
            schedule_id=schedule_id, limit=limit, cursor=cursor))

    async def cancel_job(self, id: str) -> Job:
        return await _answer(self._native.cancel_job(id))

    async def retry_job(self, id: str) -> Job:
        """Runs a failed or cancelled job again, from attempt 1."""
        return await _answer(self._native.retry_job(id))

    async def list_executions(
        self, id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Execution]:
        """A job's attempts, newest first."""
        return await _answer(self._native.list_executions(id, limit=limit, cursor=cursor))

    async def send_message(self, message: NewMessage) -> MessagePublished:
        """Sends a one-shot HTTP request, now or later (``POST /v1/messages``);
        one per member for a message naming a target group, whose answer is
        then a fan-out (``"fan_out" in answer``)."""
        return await _answer(self._native.send_message(message))

    async def create_queue(self, queue: NewQueue) -> Queue:
        """Creates a queue (``POST /v1/queues``; a key with the ``admin`` scope)."""
        return await _answer(self._native.create_queue(queue))

    async def get_queue(self, name: str) -> Queue:
        """One queue, with what it holds now (``stats``)."""
        return await _answer(self._native.get_queue(name))

    async def list_queues(self) -> List[Queue]:
        """Every queue of the organization, by name."""
        return await _answer(self._native.list_queues())

    async def update_queue(self, name: str, patch: QueuePatch) -> Queue:
        """Changes the settings ``patch`` gives; ``None`` removes a limit or a default."""
        return await _answer(self._native.update_queue(name, patch))

    async def delete_queue(self, name: str, *, force: bool = False) -> None:
        """Deletes a queue that holds no unfinished job; ``force=True``
        cancels them first."""
        await _answer(self._native.delete_queue(name, force=force))

    async def pause_queue(self, name: str) -> Queue:
        """Nothing more of the queue starts; running jobs finish."""
        return await _answer(self._native.pause_queue(name))

    async def resume_queue(self, name: str) -> Queue:
        return await _answer(self._native.resume_queue(name))

    async def unblock_queue(self, name: str) -> Queue:
        """Starts a queue a dead job blocked (``failure_mode: block``) again."""
        return await _answer(self._native.unblock_queue(name))

    async def publish(self, queue: str, message: QueueMessage) -> QueuePublished:
        """Publishes a message onto a queue (``POST /v1/queues/{name}/messages``):
        it inherits the queue's signing secret, retries and limits. Naming a
        target group (or onto a queue whose default is one), it fans out."""
        return await _answer(self._native.publish(queue, message))

    async def create_target_group(self, group: NewTargetGroup) -> TargetGroup:
        """Creates a target group (``POST /v1/target-groups``; a key with the
        ``admin`` scope): a named set of endpoints a publish fans out to."""
        return await _answer(self._native.create_target_group(group))

    async def get_target_group(self, id: str) -> TargetGroup:
        return await _answer(self._native.get_target_group(id))

    async def list_target_groups(self) -> List[TargetGroup]:
        """Every target group of the organization, oldest first."""
        return await _answer(self._native.list_target_groups())

    async def rename_target_group(self, id: str, name: str) -> TargetGroup:
        return await _answer(self._native.rename_target_group(id, name))

    async def delete_target_group(self, id: str) -> None:
        """Deletes a group and its members; refused (``target_group_in_use``)
        while a queue names it as its default."""
        await _answer(self._native.delete_target_group(id))

    async def add_member(self, group_id: str, member: NewMember) -> Member:
        """Adds an endpoint to a group: it receives the publishes made from now on."""
        return await _answer(self._native.add_member(group_id, member))

    async def list_members(self, group_id: str) -> List[Member]:
        """A group's endpoints, oldest first."""
        return await _answer(self._native.list_members(group_id))

    async def remove_member(self, group_id: str, member_id: str) -> None:
        await _answer(self._native.remove_member(group_id, member_id))

    async def get_fan_out(self, id: str) -> FanOut:
        """A fan-out (the ``fan_out_id`` of a publish) and each of its
        deliveries now: ``running`` until the last one ends."""
        return await _answer(self._native.get_fan_out(id))

    async def create_org(self, org: NewOrganization) -> CreatedOrganization:
        """Creates an organization (``POST /v1/orgs``) with its first admin key,
        shown this once (``api_key["key"]``). On a server whose signup is
        closed (the default), only a key with ``instance:admin`` may."""
        return await _answer(self._native.create_org(org))

    async def list_orgs(self) -> List[Organization]:
        """The caller's organizations: a key's own."""
        return await _answer(self._native.list_orgs())

    async def get_org(self, slug: str) -> Organization:
        return await _answer(self._native.get_org(slug))

    async def update_org(self, slug: str, patch: OrganizationPatch) -> Organization:
        """Renames an organization or changes its slug (``admin``)."""
        return await _answer(self._native.update_org(slug, patch))

    async def delete_org(self, slug: str) -> None:
        """Deletes an organization and everything it owns: an owner, or a key
        with ``instance:admin``."""
        await _answer(self._native.delete_org(slug))

    async def create_api_key(self, key: NewApiKey) -> CreatedApiKey:
        """Creates a key in the client key's own organization (``POST
        /v1/api-keys``, ``admin``); the full key (``key``) is shown this once."""
        return await _answer(self._native.create_api_key(key))

    async def usage(self) -> Usage:
        """The organization's plan, and the jobs it has created this UTC day
        and calendar month (``GET /v1/usage``, ``jobs:read``)."""
        return await _answer(self._native.usage())

    async def add_domain(self, domain: str) -> Domain:
        """Begins verifying a domain (a host name, or a URL: its host;
        ``admin``): the answer holds both challenges (``verification``),
        ``pending``, or ``verified`` if it already is."""
        return await _answer(self._native.add_domain(domain))

    async def verify_domain(self, domain: str) -> Domain:
        """Checks a domain's challenges now (``admin``); either verifies it.
        Raises ``verification_failed`` saying what each found."""
        return await _answer(self._native.verify_domain(domain))

    async def list_domains(self) -> List[Domain]:
        """Every domain of the organization, newest first (all pages)."""
        return await _answer(self._native.list_domains())

    async def get_domain(self, id: str) -> Domain:
        return await _answer(self._native.get_domain(id))

    async def delete_domain(self, id: str) -> None:
        """Forgets a domain (``admin``): where the plan requires verification,
        its push targets are limited again."""
        await _answer(self._native.delete_domain(id))

    async def list_api_keys(self) -> List[ApiKey]:
        """The keys of the client key's own organization, never their secrets."""
        return await _answer(self._native.list_api_keys())

    async def revoke_api_key(self, id: str) -> ApiKey:
        """Revokes a key (its ``id``): requests with it are refused from now on."""
        return await _answer(self._native.revoke_api_key(id))

    async def create_org_api_key(self, slug: str, key: NewApiKey) -> CreatedApiKey:
        """Creates a key in the organization ``slug`` names (``admin`` there, or
        ``instance:admin``)."""
        return await _answer(self._native.create_org_api_key(slug, key))

    async def list_org_api_keys(self, slug: str) -> List[ApiKey]:
        return await _answer(self._native.list_org_api_keys(slug))

    async def list_org_members(self, slug: str) -> List[Membership]:
        """An organization's members and their roles."""
        return await _answer(self._native.list_org_members(slug))

    async def update_org_member(self, slug: str, user_id: str, role: Role) -> Membership:
        """Changes a member's role (``admin``; only an owner makes owners; the
        last owner stays one)."""
        return await _answer(self._native.update_org_member(slug, user_id, role))

    async def remove_org_member(self, slug: str, user_id: str) -> None:
        await _answer(self._native.remove_org_member(slug, user_id))

    async def create_invite(self, slug: str, invite: NewInvite) -> CreatedInvite:
        """Invites someone by e-mail: hand over the answer's ``url``
        (``…/invite#<token>``), single-use for 7 days."""
        return await _answer(self._native.create_invite(slug, invite))

    async def list_invites(self, slug: str) -> List[Invite]:
        """An organization's invites, newest first, with their ``status``."""
        return await _answer(self._native.list_invites(slug))

    async def revoke_invite(self, slug: str, id: str) -> Invite:
        """Withdraws a pending invite: its link stops working."""
        return await _answer(self._native.revoke_invite(slug, id))

    async def resend_invite(self, slug: str, id: str) -> CreatedInvite:
        """A new link for a pending invite (the old one stops working), valid 7
        days more."""
        return await _answer(self._native.resend_invite(slug, id))

    async def accept_invite(self, accept: AcceptInvite) -> InviteAccepted:
        """Accepts an invite with the token of its link; someone new gives a
        ``password`` (at least 10 characters, not a common one)."""
        return await _answer(self._native.accept_invite(accept))

    async def create_schedule(self, schedule: NewSchedule) -> Schedule:
        return await _answer(self._native.create_schedule(schedule))

    async def get_schedule(self, id: str) -> Schedule:
        return await _answer(self._native.get_schedule(id))

    async def list_schedules(
        self,
        *,
        status: Optional[ScheduleStatus] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[Schedule]:
        return await _answer(self._native.list_schedules(status=status, limit=limit, cursor=cursor))

    async def update_schedule(self, id: str, patch: NewSchedule) -> Schedule:
        """Changes the fields ``patch`` gives."""
        return await _answer(self._native.update_schedule(id, patch))

    async def delete_schedule(self, id: str) -> None:
        """Deletes a schedule; the jobs it made stay."""
        await _answer(self._native.delete_schedule(id))

    async def pause_schedule(self, id: str) -> Schedule:
        return await _answer(self._native.pause_schedule(id))

    async def resume_schedule(self, id: str) -> Schedule:
        return await _answer(self._native.resume_schedule(id))

    async def archive_schedule(self, id: str) -> Schedule:
        return await _answer(self._native.archive_schedule(id))

    async def trigger_schedule(self, id: str) -> Job:
        """Fires a schedule now, paused or not; returns the job it made."""
        return await _answer(self._native.trigger_schedule(id))

    async def next_runs(self, id: str, count: int = DEFAULT_NEXT_RUNS) -> List[str]:
        """The next ``count`` (1 to 100) times the schedule fires."""
        return await _answer(self._native.next_runs(id, count))

    async def list_schedule_executions(
        self, id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[Execution]:
        """The attempts of the jobs a schedule made, newest first."""
        return await _answer(self._native.list_schedule_executions(id, limit=limit, cursor=cursor))

    async def list_skipped_runs(
        self, id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None
    ) -> Page[SkippedRun]:
        """The fires of a schedule that made no job because the quota was
        spent, newest first (the newest 100 are kept)."""
        return await _answer(self._native.list_skipped_runs(id, limit=limit, cursor=cursor))

    async def list_workers(self) -> List[ConnectedWorker]:
        """The workers connected over WebSocket (``GET /v1/workers``)."""
        return await _answer(self._native.list_workers())

    async def poll(self, request: PollRequest) -> List[LeasedJob]:
        """Leases due jobs of ``request["handlers"]`` (a key with the
        ``worker`` scope), waiting up to ``wait_seconds`` for one; empty if
        none came."""
        return await _answer(self._native.poll(request))

    async def ack(self, token: str, result: Any = None) -> Job:
        """Completes the attempt the lease ``token`` holds, storing ``result``."""
        return await _answer(self._native.ack(token, result))

    async def fail(self, request: FailRequest) -> Job:
        """Fails the attempt a lease holds: retried while retries remain,
        unless ``retryable`` is false."""
        return await _answer(self._native.fail(request))

    async def extend(self, token: str, seconds: int) -> Lease:
        """Moves a lease's deadline to ``seconds`` from now."""
        return await _answer(self._native.extend(token, seconds))
