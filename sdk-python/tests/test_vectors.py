"""The shared vectors in proto/vectors: every push signature case verifies
as it says, and every worker-protocol job frame becomes a handler's Job."""

from __future__ import annotations

import asyncio
import json

from chronos import Job, Worker, verify_signature
from conftest import VECTORS


def test_signature_vectors_verify_as_they_say() -> None:
    vectors = json.loads((VECTORS / "signature.json").read_text())
    assert vectors["cases"]
    for case in vectors["cases"]:
        headers = {"Chronos-Signature": case["signature"], "Chronos-Timestamp": case["timestamp"]}
        for body in (case["body"], case["body"].encode()):
            got = verify_signature(case["secret"], headers, body,
                                   vectors["window_seconds"], now=case["now"])
            assert got == case["valid"], case["about"]


def test_job_frames_become_a_handlers_job() -> None:
    vectors = json.loads((VECTORS / "worker.json").read_text())
    frames = [f for f in vectors["server"] if f["type"] == "job"]
    assert frames
    native = Worker("http://127.0.0.1:1", "chrns_x")._native
    loop = asyncio.new_event_loop()
    try:
        for frame in frames:
            data = frame["job"]
            job = Job(data, native, loop)
            assert (job.id, job.name, job.payload, job.attempt) == (
                data["id"], data["name"], data["payload"], data["attempt"])
            assert (job.max_retries, job.timeout) == (data["max_retries"], data["timeout"])
            assert job.handler == (data["handler"] or "")
            assert frame["lease"]["token"] and frame["lease"]["expires_at"]
    finally:
        loop.close()
