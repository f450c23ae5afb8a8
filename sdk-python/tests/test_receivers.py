"""The docs' push receivers, run as written: docs/python-sdk.md's FastAPI
and Flask examples get a request signed as the server signs one, a tampered
copy, and an unsigned one, through each framework's own test client; and
docs/push.md's callback receiver (Flask) gets signed callbacks of both
kinds, a tampered one, an unsigned one and a signed body that is no
callback."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import types
from typing import Any, Dict

import pytest

from conftest import ROOT

SECRET = "whsec_receiver_test"
BODY = b'{"handler": "hello", "payload": {"name": "Ada"}, "job_id": "01a2", "attempt": 1}'


def example(framework: str, doc: str = "python-sdk.md") -> types.ModuleType:
    """``docs/{doc}``'s example for ``framework``, loaded as a module."""
    text = (ROOT / "docs" / doc).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    (code,) = [b for b in blocks if f"from {framework} import" in b]
    module = types.ModuleType(f"docs_{framework}_example")
    exec(compile(code, f"docs/{doc} ({framework})", "exec"), module.__dict__)
    return module


def signed(body: bytes, secret: str = SECRET) -> Dict[str, str]:
    now = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Chronos-Signature": f"v1={mac}", "Chronos-Timestamp": now,
            "Chronos-Message-Id": "01a2", "Content-Type": "application/json"}


@pytest.fixture(autouse=True)
def signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHRONOS_SIGNING_SECRET", SECRET)


def statuses(post: Any) -> list:
    tampered = BODY.replace(b"Ada", b"Eve")
    return [
        post(BODY, signed(BODY)),
        post(tampered, signed(BODY)),
        post(BODY, signed(BODY, "whsec_wrong")),
        post(BODY, {"Content-Type": "application/json"}),
    ]


def test_the_fastapi_example(capsys: pytest.CaptureFixture[str]) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(example("fastapi").app)
    post = lambda body, headers: client.post("/hooks/chronos", content=body, headers=headers).status_code  # noqa: E731
    assert statuses(post) == [200, 401, 401, 401]
    assert "Job 01a2 running (attempt 1)" in capsys.readouterr().out


def test_the_flask_example(capsys: pytest.CaptureFixture[str]) -> None:
    client = example("flask").app.test_client()
    post = lambda body, headers: client.post("/hooks/chronos", data=body, headers=headers).status_code  # noqa: E731
    assert statuses(post) == [200, 401, 401, 401]
    assert "Job 01a2 running (attempt 1)" in capsys.readouterr().out


def test_the_callback_receiver_of_push_md(capsys: pytest.CaptureFixture[str]) -> None:
    client = example("flask", "push.md").app.test_client()
    post = lambda body, headers: client.post("/hooks/chronos-callbacks", data=body, headers=headers).status_code  # noqa: E731
    delivery = json.dumps({
        "message_id": "01a20b10-0000-7000-8000-0000000000a3", "fan_out_id": None, "status": "failed", "http_status": 503,
        "response_body": "busy", "response_body_encoding": "utf-8", "response_truncated": False,
        "attempts": 4, "error": "HTTP 503", "url": "https://api.example.com/send-email", "method": "POST",
        "created_at": "2026-12-07T11:20:00.000Z", "finished_at": "2026-12-07T11:21:00.000Z",
    }).encode()
    group = json.dumps({"fan_out_id": "01a20b10-0000-7000-8000-0000000000a4", "status": "partial", "results": [], "added_later": 1}).encode()
    assert post(delivery, signed(delivery)) == 200
    assert post(group, signed(group)) == 200
    assert post(delivery.replace(b"503", b"200"), signed(delivery)) == 401
    assert post(delivery, {"Content-Type": "application/json"}) == 401
    assert post(BODY, signed(BODY)) == 400  # a push job's body, signed: no callback
    out = capsys.readouterr().out
    assert "Message 01a20b10-0000-7000-8000-0000000000a3: failed after 4 attempt(s)" in out
    assert "Fan-out 01a20b10-0000-7000-8000-0000000000a4: partial" in out
