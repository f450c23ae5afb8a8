"""Workers as real Python processes: docs/python-sdk.md's quickstart run as
written and stopped with Ctrl-C (SIGINT), SIGTERM draining the job in hand,
and a worker killed with SIGKILL mid-job whose job then runs in another."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from chronos import Client
from conftest import ROOT, Server, finished


class Process:
    """A Python process running ``code``, its output collected."""

    def __init__(self, code: str, server: Server, worker_key: str, workdir: Path) -> None:
        script = workdir / f"script_{time.monotonic_ns()}.py"
        script.write_text(code)
        self.out = open(workdir / f"{script.stem}.out", "w+")
        env = dict(os.environ, CHRONOS_URL=server.url, CHRONOS_WORKER_KEY=worker_key,
                   PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen([sys.executable, str(script)], cwd=workdir,
                                        stdout=self.out, stderr=subprocess.STDOUT, env=env)

    def output(self) -> str:
        self.out.flush()
        with open(self.out.name) as f:
            return f.read()

    def wait_for(self, text: str, within: float = 20) -> None:
        deadline = time.monotonic() + within
        while text not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(f"exited ({self.process.returncode}) before {text!r}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in:\n{self.output()}")
            time.sleep(0.02)

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.out.close()


@pytest.fixture
def spawn(server: Server, worker_key: str) -> Iterator:  # type: ignore[type-arg]
    started: List[Process] = []
    with tempfile.TemporaryDirectory(prefix="chronos-python-app-") as workdir:
        def start(code: str) -> Process:
            p = Process(code, server, worker_key, Path(workdir))
            started.append(p)
            return p
        yield start
        for p in started:
            p.end()


def test_the_quickstart_runs_as_written_and_stops_on_ctrl_c(spawn, client: Client) -> None:  # type: ignore[no-untyped-def]
    doc = (ROOT / "docs" / "python-sdk.md").read_text()
    found = re.search(r"```python\n(# worker\.py\n.*?)```", doc, re.S)
    assert found, "docs/python-sdk.md has the # worker.py block"
    worker = spawn(found.group(1))
    worker.wait_for("Worker running; waiting for jobs")
    job = client.create_job({"name": "Greet", "handler": "hello", "payload": {"name": "Ada"}})
    worker.wait_for(f"Hello, Ada! (job {job['id']}, attempt 1)")
    done = finished(client, job["id"])
    assert (done["status"], done["result"]) == ("completed", {"greeted": "Ada"})
    worker.process.send_signal(signal.SIGINT)  # Ctrl-C
    assert worker.process.wait(30) == 0, worker.output()


def test_sigterm_lets_the_job_in_hand_finish(spawn, client: Client) -> None:  # type: ignore[no-untyped-def]
    worker = spawn("""
import os, time
from chronos import Worker

worker = Worker(os.environ["CHRONOS_URL"], os.environ["CHRONOS_WORKER_KEY"])

@worker.handle("drain-on-term")
def slow(job):
    print("started", flush=True)
    time.sleep(1.5)
    return "finished"

worker.run()
print("run returned", flush=True)
""")
    job = client.create_job({"name": "slow", "handler": "drain-on-term"})
    worker.wait_for("started")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.process.wait(30) == 0, worker.output()
    assert "run returned" in worker.output()
    done = client.get_job(job["id"])
    assert (done["status"], done["result"], done["attempt"]) == ("completed", "finished", 1)


def test_a_killed_workers_job_runs_again_in_another(spawn, client: Client) -> None:  # type: ignore[no-untyped-def]
    code = """
import os, time
from chronos import Worker

worker = Worker(os.environ["CHRONOS_URL"], os.environ["CHRONOS_WORKER_KEY"])

@worker.handle("survives-kill")
async def job(job):
    print(f"attempt {job.attempt} of {job.id}", flush=True)
    if job.attempt == 1:
        time.sleep(60)  # killed in here
    return {"attempt": job.attempt, "pid": os.getpid()}

worker.run()
"""
    first = spawn(code)
    job = client.create_job({"name": "survivor", "handler": "survives-kill", "max_retries": 2})
    first.wait_for(f"attempt 1 of {job['id']}")
    first.process.kill()
    first.process.wait()
    second = spawn(code)
    second.wait_for(f"attempt 2 of {job['id']}")
    done = finished(client, job["id"], within=30)
    assert done["status"] == "completed"
    assert done["result"] == {"attempt": 2, "pid": second.process.pid}
    executions = client.list_executions(job["id"])["data"]
    assert [e["status"] for e in executions] == ["completed", "failed"]
