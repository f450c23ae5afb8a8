"""The shared vectors in proto/vectors: every push signature case verifies
as it says, every worker-protocol job frame becomes a handler's Job, every
signed callback is verified and read (and every refused one refused with its
code), and a publish's answer comes back as its shape."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, Tuple

import pytest

from chronos import (ChronosError, Client, Job, Worker, parse_callback, parse_unsigned_callback,
                     verify_signature)
from conftest import VECTORS
from standin import http_stand_in

CALLBACKS = json.loads((VECTORS / "callbacks.json").read_text())


def known(value: Any) -> Any:
    """``value`` without its ``added_later`` fields, at every depth."""
    if isinstance(value, dict):
        return {k: known(v) for k, v in value.items() if k != "added_later"}
    if isinstance(value, list):
        return [known(v) for v in value]
    return value


def signed_headers(case: Dict[str, Any]) -> Dict[str, str]:
    names = {"signature": "Chronos-Signature", "timestamp": "Chronos-Timestamp"}
    return {names[k]: case[k] for k in names if case[k] is not None}


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


def test_signed_callbacks_are_verified_and_read_as_their_kind() -> None:
    secret, window = CALLBACKS["secret"], CALLBACKS["window_seconds"]
    assert any(c["kind"] == "group" for c in CALLBACKS["callbacks"])
    for case in CALLBACKS["callbacks"]:
        for body in (case["body"], case["body"].encode()):
            read = parse_callback(secret, signed_headers(case), body, window, now=case["now"])
            assert read == case["event"], case["about"]
            assert ("group" if "results" in read else "delivery") == case["kind"], case["about"]
        assert parse_unsigned_callback(case["body"]) == case["event"], case["about"]


def test_refused_callbacks_say_why() -> None:
    secret, window = CALLBACKS["secret"], CALLBACKS["window_seconds"]
    for case in CALLBACKS["refused"]:
        with pytest.raises(ChronosError) as caught:
            parse_callback([secret], signed_headers(case), case["body"], window, now=case["now"])
        assert (caught.value.code, caught.value.status) == (case["error"], None), case["about"]


def test_a_publish_answers_a_fan_out_or_one_message() -> None:
    assert any(c["fan_out"] for c in CALLBACKS["published"])
    for case in CALLBACKS["published"]:
        def route(method: str, path: str, answer: Any = case["answer"]) -> Tuple[int, Any]:
            if method == "POST" and path in ("/v1/messages", "/v1/queues/regional/messages"):
                return 202, answer
            return 404, {"error": {"code": "not_found", "message": path}}

        with http_stand_in(route) as url:
            client = Client(url, "chrns_test")
            read: Dict[str, Any] = dict(
                client.send_message({"url": "https://api.example.com/hook"}) if case["route"] == "message"
                else client.publish("regional", {}))
        assert read == known(case["answer"]), case["about"]
        assert ("fan_out" in read) == case["fan_out"], case["about"]
