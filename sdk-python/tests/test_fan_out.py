"""Target groups, fan-outs and callbacks against a real server that may push
to loopback: a group and its members, a fan-out whose status is read until it
ends, and its callbacks, delivered signed by their queue to a local receiver
that verifies and reads them with ``parse_callback``."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List

import pytest

from chronos import AsyncClient, ChronosError, Client, parse_callback
from conftest import Server, wait_for


class Endpoint:
    """A local HTTP endpoint: records each request (headers and raw body);
    answers ``/fail`` 500, any other path 200."""

    def __init__(self) -> None:
        self.received: List[Dict[str, Any]] = []
        received = self.received

        class Record(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append({"method": self.command, "path": self.path,
                                 "headers": dict(self.headers.items()), "body": self.rfile.read(length)})
                body = b'{"ok":true}'
                self.send_response(500 if self.path == "/fail" else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _answer  # noqa: N815 - http.server's names

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Record)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def at(self, path: str, n: int) -> List[Dict[str, Any]]:
        """The requests to ``path``, once ``n`` have arrived."""
        wait_for(lambda: len([r for r in self.received if r["path"] == path]) >= n, 20,
                 f"{n} requests to {path}")
        return [r for r in self.received if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint()
    try:
        yield e
    finally:
        e.close()


def signing_secret(server: Server) -> Dict[str, Any]:
    request = urllib.request.Request(
        f"{server.url}/v1/signing-secrets", data=json.dumps({"name": "callbacks"}).encode(),
        headers={"Authorization": f"Bearer {server.admin_key}", "Content-Type": "application/json"},
        method="POST")
    with urllib.request.urlopen(request) as r:
        return dict(json.load(r))


def test_target_groups_and_their_members(client: Client) -> None:
    with endpoint() as targets:
        group = client.create_target_group({"name": "py-regional"})
        assert group["name"] == "py-regional"
        assert client.get_target_group(group["id"]) == group
        with pytest.raises(ChronosError) as caught:
            client.create_target_group({"name": "py-regional"})
        assert (caught.value.code, caught.value.status) == ("target_group_exists", 409)
        with pytest.raises(ValueError, match="nmae"):
            client.create_target_group({"nmae": "x"})  # type: ignore[typeddict-unknown-key]
        renamed = client.rename_target_group(group["id"], "py-regions")
        assert (renamed["id"], renamed["name"]) == (group["id"], "py-regions")
        assert any(g["id"] == group["id"] for g in client.list_target_groups())

        eu = client.add_member(group["id"], {"target_url": targets.url("/eu"), "method": "PUT",
                                             "headers": {"Authorization": "Bearer eu"}})
        assert (eu["method"], eu["headers"]) == ("PUT", {"Authorization": "***redacted***"})
        us = client.add_member(group["id"], {"target_url": targets.url("/us")})
        assert [m["id"] for m in client.list_members(group["id"])] == [eu["id"], us["id"]]
        client.remove_member(group["id"], us["id"])
        assert [m["id"] for m in client.list_members(group["id"])] == [eu["id"]]
        with pytest.raises(ChronosError) as caught:
            client.remove_member(group["id"], us["id"])
        assert caught.value.status == 404
        with pytest.raises(ValueError, match="group_id"):
            client.list_members("not-an-id")

        # Onto a queue whose default is the group, a publish fans out.
        client.create_queue({"name": "py-regional", "concurrency": None,
                             "default_target_group_id": group["id"]})
        published = client.publish("py-regional", {"body": "hi"})
        assert "fan_out" in published and published["count"] == 1
        (got,) = targets.at("/eu", 1)
        assert got["method"] == "PUT"
        assert {k.lower(): v for k, v in got["headers"].items()}["authorization"] == "Bearer eu"
        with pytest.raises(ChronosError) as caught:
            client.delete_target_group(group["id"])
        assert caught.value.code == "target_group_in_use"
        client.delete_queue("py-regional", force=True)
        client.delete_target_group(group["id"])
        with pytest.raises(ChronosError) as caught:
            client.get_target_group(group["id"])
        assert caught.value.code == "not_found"


def test_a_fan_out_runs_to_its_end_and_its_signed_callbacks_verify(client: Client, server: Server) -> None:
    with endpoint() as targets, endpoint() as receiver:
        secret = signing_secret(server)
        client.create_queue({"name": "py-outcomes", "concurrency": None,
                             "signing_secret_id": secret["id"],
                             "default_target_url": receiver.url("/callbacks")})
        group = client.create_target_group({"name": "py-pair"})
        ok = client.add_member(group["id"], {"target_url": targets.url("/ok")})
        down = client.add_member(group["id"], {"target_url": targets.url("/fail")})

        published = client.send_message({"default_target_group_id": group["id"],
                                         "body": '{"event": "price.changed"}',
                                         "callback_queue_id": "py-outcomes"})
        assert "fan_out" in published
        assert (published["fan_out"], published["count"], len(published["message_ids"])) == (True, 2, 2)

        deadline = time.monotonic() + 20
        while True:
            fan_out = client.get_fan_out(published["fan_out_id"])
            if fan_out["status"] != "running":
                break
            assert time.monotonic() < deadline, f"still running: {fan_out}"
            time.sleep(0.02)
        assert (fan_out["status"], fan_out["succeeded"], fan_out["failed"]) == ("partial", 1, 1)
        assert fan_out["target_group_id"] == group["id"]
        assert [(r["target_url"], r["status"], r["http_status"]) for r in fan_out["results"]] == [
            (ok["target_url"], "succeeded", 200), (down["target_url"], "failed", 500)]

        # Two member callbacks and the group callback, each signed by the queue.
        got = receiver.at("/callbacks", 3)
        callbacks = [parse_callback(secret["secret"], r["headers"], r["body"]) for r in got]
        for r in got:
            for wrong, body in (("whsec_other", r["body"]), (secret["secret"], r["body"] + b" ")):
                with pytest.raises(ChronosError) as caught:
                    parse_callback(wrong, r["headers"], body)
                assert caught.value.code == "invalid_signature"
        groups = [c for c in callbacks if "results" in c]
        deliveries = {c["url"]: c for c in callbacks if "results" not in c}
        assert len(groups) == 1 and len(deliveries) == 2
        group_event = groups[0]
        assert (group_event["fan_out_id"], group_event["status"]) == (published["fan_out_id"], "partial")
        assert group_event["results"] == fan_out["results"]
        succeeded, failed = deliveries[ok["target_url"]], deliveries[down["target_url"]]
        assert (succeeded["status"], succeeded["http_status"], succeeded["response_body"]) == (
            "succeeded", 200, '{"ok":true}')
        assert succeeded["fan_out_id"] == published["fan_out_id"]
        assert (failed["status"], failed["http_status"], failed["attempts"]) == ("failed", 500, 1)
        assert failed["error"]
        assert sorted(c["message_id"] for c in deliveries.values()) == sorted(published["message_ids"])


async def test_the_async_client_reads_a_fan_out(server: Server) -> None:
    client = AsyncClient(server.url, server.admin_key)
    with endpoint() as targets:
        group = await client.create_target_group({"name": "py-async"})
        await client.add_member(group["id"], {"target_url": targets.url("/a")})
        assert [g["name"] for g in await client.list_target_groups() if g["id"] == group["id"]] == ["py-async"]
        published = await client.send_message({"default_target_group_id": group["id"]})
        assert "fan_out" in published
        targets.at("/a", 1)
        deadline = time.monotonic() + 20
        while (fan_out := await client.get_fan_out(published["fan_out_id"]))["status"] == "running":
            assert time.monotonic() < deadline, f"still running: {fan_out}"
            await asyncio.sleep(0.02)
        assert fan_out["status"] == "all_succeeded"
        assert (await client.rename_target_group(group["id"], "py-async-2"))["name"] == "py-async-2"
        (member,) = await client.list_members(group["id"])
        await client.remove_member(group["id"], member["id"])
        await client.delete_target_group(group["id"])
        with pytest.raises(ChronosError) as caught:
            await client.get_target_group(group["id"])
        assert caught.value.code == "not_found"
