"""Compiled by mypy --strict in the test suite (never run): the package's
types read as the docs say, and refuse what they should. A needless
``type: ignore`` fails the check, so each refused case proves a refusal."""

from __future__ import annotations

import asyncio

from chronos import (AsyncClient, ChronosError, Client, Job, PermanentError, RetryAfter, Worker,
                     parse_callback, parse_unsigned_callback, verify_signature)
from chronos.types import Callback, CallbackEvent, FanOut
from chronos.types import Job as JobAnswer
from chronos.types import (ApiKey, CreatedInvite, CreatedOrganization, Domain, DomainStatus, Membership,
                            Organization, Page, Queue, QueuePublished, Role, Schedule, Scope, SkippedRun)


def client_calls(client: Client) -> None:
    job: JobAnswer = client.create_job({"name": "Greet", "handler": "hello", "payload": {"name": "Ada"},
                                        "delay": {"value": 2, "unit": "hour"}})
    status: str = job["status"]
    page: Page[JobAnswer] = client.list_jobs(status=["queued", "running"], limit=10)
    cursor: str | None = page["next_cursor"]
    schedule: Schedule = client.create_schedule({"cron": "0 9 * * 1-5", "handler": "report",
                                                 "timezone": "America/New_York"})
    client.pause_schedule(schedule["id"])
    for leased in client.poll({"handlers": ["hello"], "wait_seconds": 30}):
        token: str = leased["lease"]["token"]
        client.extend(token, 60)
        client.ack(token, {"done": True})
    client.fail({"token": "t", "error": "no", "retryable": False})
    client.poll({"handlers": ["x"], "wait": 1})  # type: ignore[typeddict-unknown-key]
    workers: list[str] = [w["worker_id"] for w in client.list_workers()]
    timeout: float | None = client.timeout
    print(workers, timeout, client.base_url)
    client.create_job({"name": "x", "delay": {"value": 2, "unit": "fortnight"}})  # type: ignore[typeddict-item]
    client.create_job({"name": "x", "handlr": "typo"})  # type: ignore[typeddict-unknown-key]
    client.list_jobs(status="done")  # type: ignore[arg-type]
    try:
        client.get_job(job["id"])
    except ChronosError as e:
        code: str = e.code
        http: int | None = e.status
    print(status, cursor, code, http)


def queue_calls(client: Client) -> None:
    queue: Queue = client.create_queue({"name": "email-sends", "concurrency": 5, "failure_mode": "block"})
    limit: int | None = client.update_queue(queue["name"], {"concurrency": None, "retries": 7})["concurrency"]
    stats = client.get_queue(queue["name"]).get("stats")
    queued: int | None = stats["queued"] if stats else None
    keyed: JobAnswer = client.create_job({"name": "n", "handler": "h", "queue": queue["name"],
                                          "concurrency_key": "customer-42"})
    key: str | None = keyed["concurrency_key"]
    accepted: QueuePublished = client.publish(queue["name"], {"body": "hi", "delay": 60,
                                                              "concurrency_key": "customer-42"})
    accepted_id: str = accepted["fan_out_id"] if "fan_out" in accepted else accepted["message_id"]
    keyed_schedule: Schedule = client.create_schedule({"name": "s", "handler": "h", "cron": "@daily",
                                                       "queue": queue["name"],
                                                       "concurrency_key": "customer-42"})
    schedule_key: str | None = keyed_schedule["concurrency_key"]
    names: list[str] = [q["name"] for q in client.list_queues()]
    client.pause_queue(queue["name"])
    client.delete_queue(queue["name"], force=True)
    client.create_queue({"name": "q", "ordering": "random"})  # type: ignore[typeddict-item]
    client.publish("q", {"url": "https://x.test", "retries": 3})  # type: ignore[typeddict-unknown-key]
    client.delete_queue("q", True)  # type: ignore[call-arg]
    print(limit, queued, key, accepted, accepted_id, schedule_key, names)


def fan_out_calls(client: Client) -> None:
    group = client.create_target_group({"name": "regional-webhooks"})
    member = client.add_member(group["id"], {"target_url": "https://eu.example.com/hook",
                                             "headers": {"X-Region": "eu"}})
    urls: list[str] = [m["target_url"] for m in client.list_members(group["id"])]
    client.rename_target_group(group["id"], "regions")
    client.remove_member(group["id"], member["id"])
    published = client.send_message({"default_target_group_id": group["id"], "body": "{}",
                                     "callback_queue_id": "outcomes"})
    if "fan_out" in published:
        fan_out: FanOut = client.get_fan_out(published["fan_out_id"])
        codes: list[int | None] = [r["http_status"] for r in fan_out["results"]]
        print(fan_out["status"] != "running", codes)
    else:
        print(published["message_id"])
    client.delete_target_group(group["id"])
    client.add_member(group["id"], {"url": "https://x.test"})  # type: ignore[typeddict-item, typeddict-unknown-key]
    client.create_target_group({"name": "g", "members": []})  # type: ignore[typeddict-unknown-key]
    print(urls)


def account_calls(admin: Client) -> None:
    created: CreatedOrganization = admin.create_org({"name": "Mon Org", "slug": "mon-org"})
    org_key: str = created["api_key"]["key"]
    org: Organization = admin.update_org(created["slug"], {"name": "Our Org"})
    role: Role | None = org.get("role")
    scopes: list[Scope] = ["jobs:write", "monitors:write", "instance:admin"]
    key = admin.create_org_api_key(org["slug"], {"name": "emails", "scopes": scopes,
                                                 "expires_at": "2030-01-01T00:00:00Z", "queues": ["emails"]})
    keys: list[ApiKey] = admin.list_org_api_keys(org["slug"])
    revoked_at: str | None = admin.revoke_api_key(key["id"])["revoked_at"]
    admin.create_api_key({"name": "ci"})
    invite: CreatedInvite = admin.create_invite(org["slug"], {"email": "dev@example.com", "role": "admin"})
    accepted = admin.accept_invite({"token": invite["token"], "name": "Dev",
                                    "password": "correct horse battery staple"})
    members: list[Membership] = admin.list_org_members(org["slug"])
    admin.update_org_member(org["slug"], accepted["user"]["id"], "viewer")
    admin.remove_org_member(org["slug"], accepted["user"]["id"])
    pending: bool = any(i["status"] == "pending" for i in admin.list_invites(org["slug"]))
    admin.revoke_invite(org["slug"], admin.resend_invite(org["slug"], invite["id"])["id"])
    admin.delete_org(org["slug"])
    admin.update_org_member(org["slug"], accepted["user"]["id"], "superuser")  # type: ignore[arg-type]
    admin.create_api_key({"name": "x", "scopes": ["jobs:delete"]})  # type: ignore[list-item]
    admin.create_org({"name": "No slug"})  # type: ignore[typeddict-item]
    print(org_key, role, keys, revoked_at, members, pending)


def domain_calls(admin: Client, schedule_id: str) -> None:
    added: Domain = admin.add_domain("https://api.example.com/hook")
    txt: str = added["verification"]["dns_txt"]["value"]
    status: DomainStatus = admin.verify_domain(added["domain"])["status"]
    ids: list[str] = [d["id"] for d in admin.list_domains()]
    verified_at: str | None = admin.get_domain(added["id"])["verified_at"]
    admin.delete_domain(added["id"])
    skipped: Page[SkippedRun] = admin.list_skipped_runs(schedule_id, limit=10)
    spent: str | None = skipped["data"][0]["error"].get("domain")
    warning: str | None = admin.get_schedule(schedule_id).get("warning")
    admin.add_domain({"domain": "api.example.com"})  # type: ignore[arg-type]
    admin.list_skipped_runs(schedule_id, 10)  # type: ignore[call-arg]
    print(txt, status, ids, verified_at, spent, warning)


async def async_calls(client: AsyncClient) -> None:
    job: JobAnswer = await client.create_job({"name": "Greet", "handler": "hello"})
    jobs = await asyncio.gather(*(client.get_job(job["id"]) for _ in range(3)))
    first: JobAnswer = jobs[0]
    queue: Queue = await client.resume_queue("email-sends")
    await client.delete_queue(queue["name"], force=True)
    orgs: list[Organization] = await client.list_orgs()
    await client.delete_org(orgs[0]["slug"])
    domains: list[Domain] = await client.list_domains()
    await client.delete_domain(domains[0]["id"])
    skipped: Page[SkippedRun] = await client.list_skipped_runs(first["id"])
    print(first["id"], skipped["next_cursor"])


def worker_code(worker: Worker) -> None:
    @worker.handle("sync")
    def sync_handler(job: Job) -> dict[str, str]:
        job.extend(60)
        if job.cancelled.is_set():
            raise PermanentError("cancelled")
        return {"greeted": str(job.payload["name"])}

    @worker.handle("async")
    async def async_handler(job: Job) -> None:
        await job.extend_async(60)
        await job.cancelled.wait_async()
        raise RetryAfter(30)

    sync_handler(job=None)  # type: ignore[arg-type]

    @worker.handle("two-arguments")  # type: ignore[type-var]
    def not_a_handler(a: int, b: int) -> None: ...
    worker.run()


def receiver(secret: str, headers: dict[str, str], body: bytes) -> bool:
    return verify_signature(secret, headers, body, tolerance_seconds=60)


def callback_receiver(headers: dict[str, str], body: bytes) -> None:
    callback: Callback = parse_callback(["whsec_new", "whsec_old"], headers, body, tolerance_seconds=60)
    if "results" in callback:
        failed: list[str] = [r["target_url"] for r in callback["results"] if r["status"] == "failed"]
        print(failed)
    else:
        event: CallbackEvent = callback
        code: int | None = event["http_status"]
        print(code, event["attempts"])
    parse_unsigned_callback(body.decode())
    parse_callback("whsec_x", headers, body, now="now")  # type: ignore[arg-type]
