"""The Worker in this process (run in a thread) against a real server:
sync and async handlers, overlap, failures and retries, extend, cancel,
draining, a refused key."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Dict, List, Tuple

import pytest

from chronos import ChronosError, Client, Job, PermanentError, RetryAfter, Worker
from conftest import Server, finished, running, wait_for


def test_a_sync_handler_runs_a_job_made_by_the_client(
    server: Server, client: Client, worker_key: str
) -> None:
    worker = Worker(server.url, worker_key)
    seen: List[Job] = []

    @worker.handle("greet-sync")
    def greet(job: Job) -> Dict[str, Any]:
        seen.append(job)
        return {"greeted": job.payload["name"], "thread": threading.current_thread().name}

    assert greet.__name__ == "greet"  # the decorator gives the function back
    with running(worker):
        job = client.create_job({"name": "Greet", "handler": "greet-sync", "payload": {"name": "Ada"}})
        done = finished(client, job["id"])
        connected = client.list_workers()
    assert any("greet-sync" in w["handlers"] for w in connected), connected
    assert done["status"] == "completed"
    assert done["result"]["greeted"] == "Ada"
    assert done["result"]["thread"].startswith("chronos-handler")
    (got,) = seen
    assert (got.id, got.name, got.handler, got.attempt) == (job["id"], "Greet", "greet-sync", 1)
    assert got.max_retries == job["max_retries"] and got.timeout == job["timeout"]
    assert not got.cancelled.is_set()


def test_an_async_handler_runs_on_the_event_loop(
    server: Server, client: Client, worker_key: str
) -> None:
    worker = Worker(server.url, worker_key)

    @worker.handle("greet-async")
    async def greet(job: Job) -> Dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"greeted": job.payload["name"], "loop": asyncio.get_running_loop() is not None}

    with running(worker):
        job = client.create_job({"name": "Greet", "handler": "greet-async", "payload": {"name": "Grace"}})
        done = finished(client, job["id"])
    assert done["status"] == "completed"
    assert done["result"] == {"greeted": "Grace", "loop": True}


def test_sync_handlers_overlap(server: Server, client: Client, worker_key: str) -> None:
    worker = Worker(server.url, worker_key, concurrency=4)
    spans: List[Tuple[float, float]] = []

    @worker.handle("slow-sync")
    def slow(job: Job) -> None:
        start = time.monotonic()
        time.sleep(0.5)
        spans.append((start, time.monotonic()))

    with running(worker):
        jobs = [client.create_job({"name": f"slow {i}", "handler": "slow-sync"}) for i in range(4)]
        for job in jobs:
            assert finished(client, job["id"])["status"] == "completed"
    assert len(spans) == 4
    # Every handler started before any ended: the four ran at once.
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans


def test_a_raising_handler_is_retried_with_its_traceback_recorded(
    server: Server, client: Client, worker_key: str
) -> None:
    worker = Worker(server.url, worker_key)

    @worker.handle("flaky")
    def flaky(job: Job) -> str:
        if job.attempt == 1:
            raise ValueError("the first attempt fails")
        return "fine"

    with running(worker):
        job = client.create_job({"name": "flaky", "handler": "flaky", "max_retries": 2})
        done = finished(client, job["id"], within=30)
    assert (done["status"], done["attempt"], done["result"]) == ("completed", 2, "fine")
    executions = client.list_executions(job["id"])["data"]
    assert [e["status"] for e in executions] == ["completed", "failed"]
    error = executions[1]["error"] or ""
    assert error.startswith("ValueError: the first attempt fails")
    assert "Traceback (most recent call last)" in error and "in flaky" in error


def test_permanent_error_fails_without_retry_and_retry_after_retries(
    server: Server, client: Client, worker_key: str
) -> None:
    worker = Worker(server.url, worker_key)

    @worker.handle("doomed")
    async def doomed(job: Job) -> None:
        raise PermanentError("the card was declined")

    @worker.handle("later")
    def later(job: Job) -> int:
        if job.attempt == 1:
            raise RetryAfter(1, "rate limited")
        return job.attempt

    @worker.handle("not-json")
    def not_json(job: Job) -> object:
        return object()

    with running(worker):
        doomed_job = client.create_job({"name": "doomed", "handler": "doomed", "max_retries": 3})
        later_job = client.create_job({"name": "later", "handler": "later", "max_retries": 1})
        odd_job = client.create_job({"name": "odd", "handler": "not-json", "max_retries": 3})
        failed = finished(client, doomed_job["id"])
        retried = finished(client, later_job["id"], within=30)
        odd = finished(client, odd_job["id"])
    assert (failed["status"], failed["attempt"], failed["last_error"]) == (
        "failed", 1, "the card was declined")
    assert (retried["status"], retried["result"]) == ("completed", 2)
    first = client.list_executions(later_job["id"])["data"][-1]
    assert first["error"] == "rate limited"
    assert (odd["status"], odd["attempt"]) == ("failed", 1)
    assert "not JSON" in (odd["last_error"] or "")


def test_extend_keeps_a_long_handler_past_its_timeout(
    server: Server, client: Client, worker_key: str
) -> None:
    worker = Worker(server.url, worker_key)

    @worker.handle("long-sync")
    def long_sync(job: Job) -> str:
        job.extend(30)
        time.sleep(2.5)
        return "done"

    @worker.handle("long-async")
    async def long_async(job: Job) -> str:
        await job.extend_async(30)
        await asyncio.sleep(2.5)
        return "done"

    with running(worker):
        jobs = [client.create_job({"name": h, "handler": h, "timeout": 1, "max_retries": 0})
                for h in ("long-sync", "long-async")]
        results = [finished(client, j["id"], within=30) for j in jobs]
    for job, done in zip(jobs, results):
        assert (done["status"], done["attempt"], done["result"]) == ("completed", 1, "done"), done
        assert len(client.list_executions(job["id"])["data"]) == 1


def test_extend_of_a_job_not_running_here_is_refused(server: Server, worker_key: str) -> None:
    worker = Worker(server.url, worker_key)
    job = Job({"id": "01a20b10-0000-7000-8000-000000000001", "name": "x", "attempt": 1,
               "max_retries": 0, "timeout": 30}, worker._native, asyncio.new_event_loop())
    with pytest.raises(ValueError, match="not running here"):
        job.extend(10)


def test_cancel_sets_job_cancelled(server: Server, client: Client, worker_key: str) -> None:
    worker = Worker(server.url, worker_key)
    started: Dict[str, Job] = {}
    saw: Dict[str, bool] = {}

    @worker.handle("cancel-sync")
    def cancel_sync(job: Job) -> None:
        started["sync"] = job
        saw["sync"] = job.cancelled.wait(20)

    @worker.handle("cancel-async")
    async def cancel_async(job: Job) -> None:
        started["async"] = job
        await asyncio.wait_for(job.cancelled.wait_async(), 20)
        saw["async"] = job.cancelled.is_set()

    with running(worker):
        jobs = {k: client.create_job({"name": k, "handler": f"cancel-{k}"}) for k in ("sync", "async")}
        wait_for(lambda: len(started) == 2, what="both handlers starting")
        for job in jobs.values():
            assert client.cancel_job(job["id"])["status"] == "cancelled"
        wait_for(lambda: len(saw) == 2, what="both handlers seeing the cancel")
    assert saw == {"sync": True, "async": True}
    for job in jobs.values():
        assert client.get_job(job["id"])["status"] == "cancelled"


def test_stop_drains_the_job_in_hand(server: Server, client: Client, worker_key: str) -> None:
    worker = Worker(server.url, worker_key)
    started = threading.Event()

    @worker.handle("drain")
    def drain(job: Job) -> str:
        started.set()
        time.sleep(1)
        return "finished after stop"

    thread = threading.Thread(target=worker.run)
    thread.start()
    job = client.create_job({"name": "drain", "handler": "drain"})
    assert started.wait(15)
    stopped_at = time.monotonic()
    threading.Thread(target=worker.stop).start()  # from another thread
    thread.join(30)
    assert not thread.is_alive()
    assert time.monotonic() - stopped_at < 20
    done = client.get_job(job["id"])
    assert (done["status"], done["result"]) == ("completed", "finished after stop")


async def test_run_async_inside_an_event_loop(server: Server, client: Client, worker_key: str) -> None:
    worker = Worker(server.url, worker_key)
    loop = asyncio.get_running_loop()
    ran_on: List[asyncio.AbstractEventLoop] = []

    @worker.handle("in-loop")
    async def in_loop(job: Job) -> str:
        ran_on.append(asyncio.get_running_loop())
        return "ok"

    task = asyncio.ensure_future(worker.run_async())
    job = await loop.run_in_executor(None, lambda: client.create_job({"name": "x", "handler": "in-loop"}))
    done = await loop.run_in_executor(None, finished, client, job["id"])
    worker.stop()
    await asyncio.wait_for(task, 30)
    assert done["status"] == "completed"
    assert ran_on == [loop]


def test_a_stop_before_run_stops_it_once_connected(server: Server, worker_key: str) -> None:
    worker = Worker(server.url, worker_key)

    @worker.handle("early")
    def early(job: Job) -> None:
        raise AssertionError("no job comes")

    worker.stop()
    worker.run()  # returns by itself
    with pytest.raises(ValueError, match="already started"):
        worker.run()


def test_a_refused_key_ends_run_with_a_chronos_error(server: Server) -> None:
    worker = Worker(server.url, "chrns_0000000000000000_00")

    @worker.handle("never")
    def never(job: Job) -> None:
        raise AssertionError("no job comes")

    with pytest.raises(ChronosError) as caught:
        worker.run()
    assert (caught.value.code, caught.value.status) == ("unauthorized", 401)


def test_settings_are_checked(server: Server, worker_key: str) -> None:
    worker = Worker(server.url, worker_key)
    with pytest.raises(ChronosError, match="at least one handler"):
        worker.run()
    with pytest.raises(ValueError, match="already started"):
        worker.run()
