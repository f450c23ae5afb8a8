"""verify_signature against signatures made here with Python's own hmac."""

from __future__ import annotations

import hashlib
import hmac
import time

from chronos import REPLAY_WINDOW_SECONDS, verify_signature

SECRET = "whsec_test_secret"
BODY = b'{"handler":"hello","payload":{"name":"Ada"},"job_id":"j1","attempt":1}'


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def headers(signature: str, timestamp: int) -> dict:
    return {"Chronos-Signature": signature, "Chronos-Timestamp": str(timestamp),
            "Chronos-Message-Id": "j1"}


def test_a_signed_request_verifies() -> None:
    now = int(time.time())
    h = headers(sign(SECRET, now, BODY), now)
    assert verify_signature(SECRET, h, BODY)
    assert verify_signature(SECRET, h, BODY.decode())
    lower = {k.lower(): v for k, v in h.items()}
    assert verify_signature(SECRET, lower, memoryview(BODY))
    assert verify_signature(SECRET, list(h.items()), BODY)  # a list of pairs, as ASGI has


def test_tampering_a_wrong_secret_or_an_old_timestamp_is_refused() -> None:
    now = int(time.time())
    h = headers(sign(SECRET, now, BODY), now)
    assert not verify_signature(SECRET, h, BODY.replace(b"Ada", b"Eve"))
    assert not verify_signature("whsec_other", h, BODY)
    old = now - REPLAY_WINDOW_SECONDS - 1
    assert not verify_signature(SECRET, headers(sign(SECRET, old, BODY), old), BODY)
    assert verify_signature(SECRET, headers(sign(SECRET, old, BODY), old), BODY,
                            tolerance_seconds=REPLAY_WINDOW_SECONDS + 60)
    assert not verify_signature(SECRET, {"Chronos-Timestamp": str(now)}, BODY)
    assert not verify_signature(SECRET, headers("v1=00", now), BODY)


def test_either_signature_of_a_rotation_verifies() -> None:
    now = int(time.time())
    both = f"{sign('whsec_new', now, BODY)},{sign('whsec_old', now, BODY)}"
    assert verify_signature("whsec_new", headers(both, now), BODY)
    assert verify_signature("whsec_old", headers(both, now), BODY)
    assert not verify_signature("whsec_neither", headers(both, now), BODY)
