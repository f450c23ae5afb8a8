"""The SDK against sdk-rust/manifest.json, the Rust SDK's surface: Client
(and its asyncio twin, AsyncClient) has exactly the Rust client's methods
and properties, and the Client and Worker take the Rust SDK's defaults."""

from __future__ import annotations

import inspect
import json
from typing import Any, Dict, Set

from chronos import AsyncClient, Client, Worker
from conftest import ROOT, Server

MANIFEST = json.loads((ROOT / "sdk-rust" / "manifest.json").read_text())


def surface(cls: type) -> Dict[str, Set[str]]:
    public = {n: v for n, v in vars(cls).items() if not n.startswith("_")}
    return {
        "methods": {n for n, v in public.items() if inspect.isfunction(v)},
        "properties": {n for n, v in public.items() if isinstance(v, property)},
    }


def test_the_clients_methods_and_properties_are_the_rust_clients() -> None:
    assert set(MANIFEST["only_in"]["python"]) == {"AsyncClient"}
    for cls in (Client, AsyncClient):
        got = surface(cls)
        assert got["methods"] == set(MANIFEST["client"]["methods"]), cls
        assert got["properties"] == set(MANIFEST["client"]["properties"]), cls
    # The twin's methods are coroutines.
    for name in MANIFEST["client"]["methods"]:
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name)), name
        assert not inspect.iscoroutinefunction(getattr(Client, name)), name


def test_the_clients_defaults_are_the_rust_sdks(server: Server) -> None:
    defaults: Dict[str, Any] = MANIFEST["client"]["defaults"]
    for cls in (Client, AsyncClient):
        assert inspect.signature(cls).parameters["timeout"].default == defaults["timeout_seconds"]
        assert inspect.signature(cls.next_runs).parameters["count"].default == defaults["next_runs_count"]
        client = cls(server.url, server.admin_key)
        assert (client.timeout, client.base_url) == (defaults["timeout_seconds"], server.url + "/")
        assert cls(server.url, "k", timeout=2.5).timeout == 2.5
        assert cls(server.url, "k", timeout=None).timeout is None
    client = Client(server.url, server.admin_key)
    schedule = client.create_schedule({"name": "manifest", "handler": "h", "cron": "*/5 * * * *"})
    assert len(client.next_runs(schedule["id"])) == defaults["next_runs_count"]
    # The native client's own default is the Rust SDK's too.
    assert len(client._native.next_runs(schedule["id"]).wait()) == defaults["next_runs_count"]


def test_the_workers_options_and_defaults_are_the_rust_sdks(server: Server) -> None:
    worker = MANIFEST["worker"]
    parameters = inspect.signature(Worker).parameters
    assert list(parameters) == ["url", "api_key", *worker["options"]]
    for option, default in worker["defaults"].items():
        assert parameters[option].default == default, option
    assert parameters["worker_id"].default is None  # generated
    settings = Worker(server.url, "k")._native.settings()
    assert (settings["concurrency"], settings["shutdown_grace_seconds"]) == (
        worker["defaults"]["concurrency"], worker["defaults"]["shutdown_grace_seconds"])
    # Left out, the native worker takes the Rust SDK's defaults by itself.
    from chronos import _native
    assert _native.NativeWorker(server.url, "k").settings() == {
        "concurrency": worker["defaults"]["concurrency"], "worker_id": None,
        "shutdown_grace_seconds": worker["defaults"]["shutdown_grace_seconds"]}
    given = Worker(server.url, "k", 7, worker_id="w-7", shutdown_grace_seconds=5, handle_signals=False)
    assert given._native.settings() == {"concurrency": 7, "worker_id": "w-7", "shutdown_grace_seconds": 5.0}
    assert given._handle_signals is False
