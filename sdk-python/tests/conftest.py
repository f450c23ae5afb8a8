"""A real ``chronos serve`` for the tests: the binary cargo built, on the
embedded store in a temporary directory and a free port; and helpers to run
a worker and wait for jobs."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from chronos import Client, Job, Worker

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CHRONOS_BIN") or ROOT / "target" / "debug" / "chronos")
VECTORS = ROOT / "proto" / "vectors"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running server: its ``url`` and the ``admin_key`` it printed."""

    def __init__(self, args: List[str]) -> None:
        if not BIN.exists():
            raise RuntimeError(
                f"no chronos binary at {BIN}: run `cargo build -p chronos-server` (or set CHRONOS_BIN)")
        self.dir = tempfile.mkdtemp(prefix="chronos-python-")
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if k not in ("CHRONOS_DATABASE_URL", "CHRONOS_DATA_DIR", "CHRONOS_LISTEN")}
        env["CHRONOS_LOG"] = "warn"
        self.log = open(os.path.join(self.dir, "server.log"), "w+")
        self.process = subprocess.Popen(
            [str(BIN), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", self.dir, *args],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{port}"
        self.admin_key = self._wait_until_up()

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def _wait_until_up(self) -> str:
        deadline = time.monotonic() + 20
        key: Optional[str] = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"chronos serve exited: {self.output()}")
            found = re.search(r"chrns_[0-9a-f]+_[0-9a-f]+", self.output())
            key = key or (found.group(0) if found else None)
            if key:
                try:
                    with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as r:
                        if r.status == 200:
                            return key
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"chronos serve did not start: {self.output()}")

    def worker_key(self) -> str:
        """A new key with the ``worker`` scope."""
        request = urllib.request.Request(
            f"{self.url}/v1/api-keys",
            data=json.dumps({"name": "python worker", "scopes": ["worker"]}).encode(),
            headers={"Authorization": f"Bearer {self.admin_key}", "Content-Type": "application/json"},
            method="POST")
        with urllib.request.urlopen(request) as r:
            return json.load(r)["key"]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server(["--allow-private-targets"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server: Server) -> Client:
    return Client(server.url, server.admin_key)


@pytest.fixture(scope="module")
def worker_key(server: Server) -> str:
    return server.worker_key()


def finished(client: Client, id: str, within: float = 15) -> "dict":
    """Waits until the job is completed, failed or cancelled."""
    deadline = time.monotonic() + within
    while True:
        job = client.get_job(id)
        if job["status"] in ("completed", "failed", "cancelled"):
            return dict(job)
        if time.monotonic() > deadline:
            raise AssertionError(f"job {id} still {job['status']} after {within} s")
        time.sleep(0.05)


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    """Runs ``worker`` in a thread of its own until the block ends, then
    stops it and waits for ``run()`` to return."""
    errors: List[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert worker.wait_connected(15), f"the worker did not connect: {errors}"
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(60)
        assert not thread.is_alive(), "run() did not return after stop()"
    assert not errors, errors


def wait_for(predicate, within: float = 15, what: str = "the condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s")
        time.sleep(0.02)


__all__ = ["Job", "Server", "VECTORS", "finished", "running", "wait_for"]
