"""Forward compatibility (proto/vectors/forward.json): the SDK reads what a
newer server sends — fields it does not know, at any depth, and frames of a
kind it does not know — played by stand-ins that send the vectors; and the
real server still refuses unknown fields in what clients send."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any, Dict, List, Tuple

import pytest

from chronos import ChronosError, Client, Job, Worker
from conftest import VECTORS, Server
from standin import WsStandIn, http_stand_in

V = json.loads((VECTORS / "forward.json").read_text())


def known(value: Any) -> Any:
    """``value`` without its ``added_later`` fields, at every depth."""
    if isinstance(value, dict):
        return {k: known(v) for k, v in value.items() if k != "added_later"}
    if isinstance(value, list):
        return [known(v) for v in value]
    return value


def frame(kind: str, action: str | None = None) -> Dict[str, Any]:
    return next(f for f in V["frames"] if f["type"] == kind and (action is None or f.get("action") == action))


def test_the_client_reads_answers_holding_fields_it_does_not_know() -> None:
    answers = V["answers"]

    def route(method: str, path: str) -> Tuple[int, Any]:
        if method == "GET" and path == f"/v1/jobs/{answers['job']['id']}":
            return 200, answers["job"]
        if method == "GET" and path.startswith("/v1/jobs?"):
            return 200, answers["jobs"]
        if method == "GET" and path.endswith("/executions"):
            return 200, answers["executions"]
        if method == "POST" and path == "/v1/workers/poll":
            return 200, answers["leased"]
        return 404, answers["error"]

    with http_stand_in(route) as url:
        client = Client(url, "chrns_test")
        assert client.get_job(answers["job"]["id"]) == known(answers["job"])
        assert client.list_jobs(limit=2) == known(answers["jobs"])
        assert client.list_executions(answers["job"]["id"]) == known(answers["executions"])
        assert client.poll({"handlers": ["send-email"]}) == known(answers["leased"]["data"])
        with pytest.raises(ChronosError) as caught:
            client.get_job("01a20b10-0000-7000-8000-000000000099")
        assert (caught.value.code, caught.value.status) == (answers["error"]["error"]["code"], 404)


def test_the_worker_runs_a_job_frame_holding_fields_it_does_not_know() -> None:
    job = frame("job")
    token = job["lease"]["token"]
    stand_in = WsStandIn()
    worker = Worker(stand_in.url, "chrns_test", handle_signals=False)
    seen: List[Job] = []

    @worker.handle("send-email")
    def send_email(j: Job) -> Dict[str, Any]:
        seen.append(j)
        j.extend(120)  # its answer holds unknown fields too
        return {"to": j.payload["userId"]}

    errors: List[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        stand_in.accept()
        hello = stand_in.next()
        assert (hello["type"], hello["handlers"]) == ("hello", ["send-email"])
        stand_in.send(frame("welcome"))
        assert worker.wait_connected(15)
        for unknown in V["unknown_frames"]:
            stand_in.send(unknown)
        stand_in.send(job)
        assert stand_in.next() == {"type": "extend", "token": token, "seconds": 120}
        stand_in.send(frame("accepted", "extend"))
        assert stand_in.next() == {"type": "ack", "token": token, "result": {"to": "usr_123"}}
        (got,) = seen
        assert (got.id, got.payload, got.attempt) == (job["job"]["id"], job["job"]["payload"], 1)
        worker.stop()
        assert stand_in.next() == {"type": "drain"}
        thread.join(15)
        assert not thread.is_alive(), "run() did not return after stop()"
    finally:
        stand_in.close()
    assert not errors, errors


def test_the_server_refuses_unknown_fields_in_what_clients_send(server: Server) -> None:
    assert len(V["requests"]) >= 5
    for r in V["requests"]:
        request = urllib.request.Request(
            server.url + r["path"], data=json.dumps(r["body"]).encode(), method="POST",
            headers={"Authorization": f"Bearer {server.admin_key}", "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request)
        body = json.load(caught.value)
        assert caught.value.code == 400, body
        assert (body["error"]["code"], body["error"]["field"]) == ("unknown_field", r["field"]), body
