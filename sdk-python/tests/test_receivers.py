"""docs/python-sdk.md's push receivers, run as written: its FastAPI and Flask
examples get a request signed as the server signs one, a tampered copy,
and an unsigned one, through each framework's own test client."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import types
from typing import Any, Dict

import pytest

from conftest import ROOT

SECRET = "whsec_receiver_test"
BODY = b'{"handler": "hello", "payload": {"name": "Ada"}, "job_id": "01a2", "attempt": 1}'


def example(framework: str) -> types.ModuleType:
    """The docs' example for ``framework``, loaded as a module."""
    doc = (ROOT / "docs" / "python-sdk.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, re.S)
    (code,) = [b for b in blocks if f"from {framework} import" in b]
    module = types.ModuleType(f"docs_{framework}_example")
    exec(compile(code, f"docs/python-sdk.md ({framework})", "exec"), module.__dict__)
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
