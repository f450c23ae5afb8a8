"""The blocking Client and the AsyncClient against a real server: jobs,
batches, schedules, messages, the error envelope, and a forked process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from chronos import AsyncClient, ChronosError, Client
from conftest import VECTORS, Server, finished


def test_jobs_round_trip(client: Client) -> None:
    job = client.create_job({"name": "Send follow-up", "handler": "send-email",
                             "payload": {"to": "ada@example.com"},
                             "delay": {"value": 2, "unit": "hour"}})
    assert job["status"] == "scheduled"
    assert job["payload"] == {"to": "ada@example.com"}
    assert client.get_job(job["id"]) == job

    listed = client.list_jobs(status="scheduled", handler="send-email")
    assert [j["id"] for j in listed["data"]] == [job["id"]]
    assert client.list_jobs(status=["queued", "running"], handler="send-email")["data"] == []

    cancelled = client.cancel_job(job["id"])
    assert cancelled["status"] == "cancelled"
    retried = client.retry_job(job["id"])
    assert retried["status"] == "queued"
    assert client.list_executions(job["id"]) == {"data": [], "next_cursor": None}


def test_list_pages_with_a_cursor(client: Client) -> None:
    made = [client.create_job({"name": f"page {i}", "handler": "pages"})["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        page = client.list_jobs(handler="pages", limit=2, cursor=cursor)
        seen += [j["id"] for j in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)


def test_a_batch_answers_item_by_item(client: Client) -> None:
    # The second fits the schema but is more than ten years ahead: refused alone.
    items = client.create_jobs([{"name": "a", "handler": "batch"},
                                {"name": "b", "handler": "batch",
                                 "delay": {"value": 100000, "unit": "week"}}])
    assert items[0]["job"]["name"] == "a"
    assert items[1]["error"]["code"] == "validation_failed"
    assert items[1]["error"]["field"] == "delay.value"


def test_error_vectors_arrive_as_chronos_errors(server: Server, client: Client) -> None:
    vectors = json.loads((VECTORS / "errors.json").read_text())
    client.create_job({"name": "k", "handler": "h", "idempotency_key": "vector-key",
                       "delay": {"value": 1, "unit": "hour"}})
    cases = {
        "get_unknown_job": lambda: client.get_job("01a20b10-0000-7000-8000-000000000099"),
        "timeout_zero": lambda: client.create_job({"name": "x", "handler": "h", "timeout": 0}),
        "bad_key": lambda: Client(server.url, "chrns_0000000000000000_00").list_jobs(),
        "idempotency_conflict": lambda: client.create_job(
            {"name": "k", "handler": "h", "idempotency_key": "vector-key"}),
    }
    checked = 0
    for v in vectors["errors"]:
        if not v["case"]:
            continue
        with pytest.raises(ChronosError) as caught:
            cases[v["case"]]()
        e = caught.value
        assert (e.code, e.status, e.field) == (
            v["body"]["error"]["code"], v["status"], v["body"]["error"].get("field")), v["case"]
        assert e.message == str(e)
        checked += 1
    assert checked == len(cases)


def test_what_the_sdk_refuses_before_sending(client: Client, server: Server) -> None:
    with pytest.raises(ValueError, match="nmae"):
        client.create_job({"nmae": "typo", "handler": "h"})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(ValueError, match="id"):
        client.get_job("not-a-uuid")
    with pytest.raises(TypeError):
        client.create_job({"name": "x", "handler": "h", "payload": object()})
    with pytest.raises(ChronosError) as caught:
        Client("http://127.0.0.1:9", server.admin_key, timeout=2).list_jobs()
    assert caught.value.code == "unreachable" and caught.value.status is None


def test_schedules(client: Client) -> None:
    schedule = client.create_schedule({"name": "Every minute", "handler": "tick",
                                       "interval": {"value": 1, "unit": "minute"}})
    assert schedule["status"] == "active" and schedule["next_run_at"]
    assert client.get_schedule(schedule["id"])["name"] == "Every minute"
    assert schedule["id"] in [s["id"] for s in client.list_schedules(status="active")["data"]]
    assert len(client.next_runs(schedule["id"], 3)) == 3

    paused = client.pause_schedule(schedule["id"])
    assert paused["status"] == "paused"
    assert not {"enabled", "schedule_type", "schedule", "timeout_ms", "retries"} & set(paused)
    job = client.trigger_schedule(schedule["id"])
    assert job["schedule_id"] == schedule["id"] and job["handler"] == "tick"
    assert client.list_schedule_executions(schedule["id"], limit=10) == {"data": [], "next_cursor": None}
    assert client.resume_schedule(schedule["id"])["status"] == "active"
    renamed = client.update_schedule(schedule["id"], {"name": "Renamed"})
    assert renamed["name"] == "Renamed"
    assert client.archive_schedule(schedule["id"])["status"] == "archived"
    client.delete_schedule(schedule["id"])
    with pytest.raises(ChronosError) as caught:
        client.get_schedule(schedule["id"])
    assert caught.value.status == 404


def test_queues(client: Client) -> None:
    created = client.create_queue({"name": "py-sends", "concurrency": 5,
                                   "default_target_url": "https://api.example.com/send"})
    assert (created["name"], created["concurrency"], created["max_retries"]) == ("py-sends", 5, 3)
    assert (created["ordering"], created["failure_mode"], created["status"]) == ("fifo", "continue", "active")
    assert "stats" not in created
    assert {"default", "py-sends"} <= {q["name"] for q in client.list_queues()}
    with pytest.raises(ChronosError) as caught:
        client.create_queue({"name": "py-sends"})
    assert (caught.value.code, caught.value.status) == ("queue_exists", 409)

    # Only what the patch gives changes; None removes a limit.
    changed = client.update_queue("py-sends", {"retries": 7})
    assert (changed["concurrency"], changed["max_retries"]) == (5, 7)
    assert client.update_queue("py-sends", {"concurrency": None})["concurrency"] is None
    with pytest.raises(ValueError, match="retires"):
        client.update_queue("py-sends", {"retires": 1})  # type: ignore[typeddict-unknown-key]
    assert client.pause_queue("py-sends")["status"] == "paused"
    assert client.resume_queue("py-sends")["status"] == "active"
    assert client.unblock_queue("py-sends")["blocked"] is False

    # A message goes to the queue's default target, with its retries.
    accepted = client.publish("py-sends", {"body": "hello", "delay": 3600})
    assert accepted["queue"] == "py-sends"
    message = client.get_job(accepted["message_id"])
    assert (message["queue"], message["max_retries"]) == ("py-sends", 7)
    assert message["run_at"] == accepted["scheduled_at"]

    # A pull job in the queue, with a concurrency key.
    keyed = client.create_job({"name": "keyed", "handler": "py-send", "queue": "py-sends",
                               "concurrency_key": "customer-42"})
    assert (keyed["queue"], keyed["concurrency_key"]) == ("py-sends", "customer-42")
    assert client.get_job(keyed["id"]) == keyed
    assert client.create_job({"name": "plain", "handler": "py-send"})["concurrency_key"] is None
    with pytest.raises(ChronosError) as caught:
        client.create_job({"name": "k", "handler": "h", "concurrency_key": ""})
    assert caught.value.field == "concurrency_key"

    stats = client.get_queue("py-sends")["stats"]
    assert (stats["queued"], stats["running"], stats["scheduled"]) == (1, 0, 1)
    with pytest.raises(ChronosError) as caught:
        client.get_queue("typo")
    assert (caught.value.code, caught.value.status) == ("queue_not_found", 404)
    with pytest.raises(ChronosError) as caught:
        client.create_job({"name": "n", "handler": "h", "queue": "typo"})
    assert (caught.value.code, caught.value.field) == ("queue_not_found", "queue")
    with pytest.raises(ValueError, match="queue name"):
        client.pause_queue("..")
    with pytest.raises(ChronosError) as caught:
        client.delete_queue("py-sends")
    assert (caught.value.code, caught.value.status) == ("queue_not_empty", 409)
    client.delete_queue("py-sends", force=True)
    with pytest.raises(ChronosError) as caught:
        client.get_queue("py-sends")
    assert caught.value.code == "queue_not_found"
    assert client.get_job(keyed["id"])["status"] == "cancelled"
    with pytest.raises(ChronosError) as caught:
        client.delete_queue("default", force=True)
    assert caught.value.code == "default_queue"


def test_the_worker_endpoints_over_http(client: Client, server: Server, worker_key: str) -> None:
    http = Client(server.url, worker_key)
    a = client.create_job({"name": "a", "handler": "python-http", "max_retries": 0})
    b = client.create_job({"name": "b", "handler": "python-http", "max_retries": 0})
    leased = http.poll({"handlers": ["python-http"], "max_jobs": 2, "wait_seconds": 5})
    lease = {item["job"]["id"]: item["lease"] for item in leased}
    assert sorted(lease) == sorted([a["id"], b["id"]])
    extended = http.extend(lease[a["id"]]["token"], 600)
    assert extended["token"] == lease[a["id"]]["token"]
    assert extended["expires_at"] > lease[a["id"]]["expires_at"]
    done = http.ack(lease[a["id"]]["token"], {"sent": True})
    assert (done["status"], done["result"]) == ("completed", {"sent": True})
    failed = http.fail({"token": lease[b["id"]]["token"], "error": "no such customer", "retryable": False})
    assert (failed["status"], failed["last_error"]) == ("failed", "no such customer")
    assert http.poll({"handlers": ["python-http"]}) == []
    with pytest.raises(ValueError, match="token"):
        http.ack("not-a-token")
    with pytest.raises(ValueError, match="hanlders"):
        http.poll({"hanlders": ["x"]})  # type: ignore[typeddict-unknown-key]


def test_a_message_is_delivered_as_given(client: Client) -> None:
    received: list = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            length = int(self.headers["Content-Length"])
            received.append(self.rfile.read(length))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    try:
        accepted = client.send_message({"url": f"http://127.0.0.1:{hook.server_port}/hook",
                                        "body": '{"order": 42}'})
        assert set(accepted) == {"message_id", "scheduled_at"}
        assert finished(client, accepted["message_id"])["status"] == "completed"
        assert received == [b'{"order": 42}']
    finally:
        hook.shutdown()


def test_forked_children_use_the_parents_client(client: Client, server: Server) -> None:
    # Forks while another thread keeps the SDK's runtime busy, as a web
    # server's threads would: a child must never inherit a lock held by a
    # thread that does not exist there. Each child has 10 s.
    busy = threading.Event()

    def keep_busy() -> None:
        other = Client(server.url, server.admin_key)
        while not busy.is_set():
            other.list_jobs(limit=1)

    thread = threading.Thread(target=keep_busy)
    thread.start()
    try:
        for _ in range(50):
            pid = os.fork()
            if pid == 0:  # the child: exit 0 only if both clients work
                code = 1
                try:
                    a = client.create_job({"name": "from a child", "handler": "forked"})
                    b = Client(server.url, server.admin_key).get_job(a["id"])
                    code = 0 if b["id"] == a["id"] else 2
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 10
            while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    raise AssertionError("a forked child hung")
                time.sleep(0.005)
            assert os.waitstatus_to_exitcode(done[1]) == 0
    finally:
        busy.set()
        thread.join()
    assert len(client.list_jobs(handler="forked", limit=100)["data"]) == 50


async def test_the_async_client(server: Server) -> None:
    client = AsyncClient(server.url, server.admin_key)
    jobs = await asyncio.gather(*(client.create_job({"name": f"async {i}", "handler": "async-made"})
                                  for i in range(20)))
    assert len({j["id"] for j in jobs}) == 20
    got = await client.get_job(jobs[0]["id"])
    assert got["name"].startswith("async ")
    page = await client.list_jobs(handler="async-made", limit=100)
    assert len(page["data"]) == 20
    assert (await client.cancel_job(jobs[0]["id"]))["status"] == "cancelled"
    with pytest.raises(ChronosError) as caught:
        await client.get_job("01a20b10-0000-7000-8000-000000000099")
    assert (caught.value.code, caught.value.status) == ("not_found", 404)
    schedule = await client.create_schedule({"name": "async", "cron": "0 9 * * 1-5",
                                             "timezone": "Europe/London", "handler": "h"})
    assert (await client.pause_schedule(schedule["id"]))["status"] == "paused"
    assert len(await client.next_runs(schedule["id"])) == 10
    assert (await client.list_schedule_executions(schedule["id"]))["data"] == []
    assert await client.list_workers() == []
    await client.delete_schedule(schedule["id"])

    queue = await client.create_queue({"name": "py-async", "concurrency": 2})
    assert queue["concurrency"] == 2
    keyed = await client.create_job({"name": "k", "handler": "async-keyed", "queue": "py-async",
                                     "concurrency_key": "customer-7"})
    assert (keyed["queue"], keyed["concurrency_key"]) == ("py-async", "customer-7")
    assert (await client.update_queue("py-async", {"ordering": "lifo"}))["ordering"] == "lifo"
    assert (await client.pause_queue("py-async"))["status"] == "paused"
    assert (await client.resume_queue("py-async"))["status"] == "active"
    assert not (await client.unblock_queue("py-async"))["blocked"]
    assert "py-async" in [q["name"] for q in await client.list_queues()]
    accepted = await client.publish("py-async", {"url": "https://api.example.com/hook", "delay": 3600})
    assert accepted["queue"] == "py-async"
    assert (await client.get_queue("py-async"))["stats"]["scheduled"] == 1
    await client.delete_queue("py-async", force=True)
    with pytest.raises(ChronosError) as caught:
        await client.get_queue("py-async")
    assert caught.value.code == "queue_not_found"


async def test_cancelling_an_await_drops_its_request(server: Server) -> None:
    # A server that reads the request and never answers: the request is
    # dropped when the awaiting task is cancelled, which closes the connection.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    loop = asyncio.get_running_loop()
    client = AsyncClient(f"http://127.0.0.1:{silent.getsockname()[1]}", server.admin_key)
    task = asyncio.ensure_future(client.list_jobs(limit=1))
    conn, _ = await loop.run_in_executor(None, silent.accept)
    conn.settimeout(10)
    assert b"GET /v1/jobs" in await loop.run_in_executor(None, conn.recv, 65536)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await loop.run_in_executor(None, conn.recv, 1) == b""  # closed by the client
    conn.close()
    silent.close()


async def test_a_cancelled_await_leaves_the_client_usable(server: Server) -> None:
    client = AsyncClient(server.url, server.admin_key)
    task = asyncio.ensure_future(client.list_jobs(limit=1))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "data" in await client.list_jobs(limit=1)
