"""verify_signature and parse_callback against signatures made here with
Python's own hmac."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from chronos import (REPLAY_WINDOW_SECONDS, ChronosError, parse_callback, parse_unsigned_callback,
                     verify_signature)

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


GROUP = {"fan_out_id": "01a20b10-0000-7000-8000-000000000010", "status": "all_failed",
         "results": [{"message_id": "01a20b10-0000-7000-8000-000000000011",
                      "target_url": "https://eu.example.com/hook", "status": "failed", "http_status": None}]}


def test_parse_callback_reads_a_signed_callback_with_any_of_several_secrets() -> None:
    now = int(time.time())
    body = json.dumps({**GROUP, "added_later": True}).encode()
    h = headers(sign(SECRET, now, body), now)
    assert parse_callback(SECRET, h, body) == GROUP
    assert parse_callback(["whsec_old", SECRET], list(h.items()), bytearray(body)) == GROUP
    assert parse_unsigned_callback(body.decode()) == GROUP


def test_parse_callback_refuses_what_does_not_verify_or_is_no_callback() -> None:
    now = int(time.time())
    body = json.dumps(GROUP).encode()

    def code(secret: object, h: object, raw: bytes, **options: int) -> str:
        with pytest.raises(ChronosError) as caught:
            parse_callback(secret, h, raw, **options)  # type: ignore[arg-type]
        return caught.value.code

    h = headers(sign(SECRET, now, body), now)
    assert code("whsec_other", h, body) == "invalid_signature"
    assert code(SECRET, {}, body) == "invalid_signature"
    assert code(SECRET, h, body.replace(b"all_failed", b"partial")) == "invalid_signature"
    old = now - REPLAY_WINDOW_SECONDS - 1
    assert code(SECRET, headers(sign(SECRET, old, body), old), body) == "invalid_signature"
    assert parse_callback(SECRET, headers(sign(SECRET, old, body), old), body,
                          REPLAY_WINDOW_SECONDS + 60) == GROUP
    job = BODY
    assert code(SECRET, headers(sign(SECRET, now, job), now), job) == "invalid_callback"
    with pytest.raises(ValueError, match="secrets"):
        parse_callback([], h, body)
    with pytest.raises(ChronosError) as caught:
        parse_unsigned_callback(b"not json")
    assert caught.value.code == "invalid_callback"
