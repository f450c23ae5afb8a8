"""Verified domains and schedules' skipped runs against a real server. No
challenge is served here: verifying fails, saying so."""

from __future__ import annotations

import pytest

from chronos import AsyncClient, ChronosError, Client
from conftest import Server


def test_a_domain_is_added_listed_read_not_verified_and_deleted(client: Client) -> None:
    # A URL is normalized to its host; the answer holds both challenges.
    added = client.add_domain("https://API.Example.test/hook")
    assert (added["domain"], added["status"], added["method"]) == ("api.example.test", "pending", None)
    well_known, txt = added["verification"]["well_known"], added["verification"]["dns_txt"]
    assert well_known["url"] == "https://api.example.test/.well-known/chronos-verification.txt"
    assert (txt["name"], txt["type"], txt["value"]) == (
        "_chronos-verification.api.example.test", "TXT", well_known["content"])

    assert client.list_domains() == [added]
    assert client.get_domain(added["id"]) == added
    with pytest.raises(ChronosError) as caught:
        client.verify_domain("api.example.test")
    assert (caught.value.code, caught.value.status) == ("verification_failed", 422)
    with pytest.raises(ChronosError) as caught:
        client.verify_domain("other.example.test")
    assert caught.value.code == "not_found"

    assert client.delete_domain(added["id"]) is None
    assert client.list_domains() == []
    with pytest.raises(ChronosError) as caught:
        client.get_domain(added["id"])
    assert caught.value.code == "not_found"
    with pytest.raises(ValueError, match="id"):
        client.get_domain("not-a-uuid")


def test_a_schedules_skipped_runs(client: Client) -> None:
    schedule = client.create_schedule({"name": "report", "handler": "report",
                                       "interval": {"value": 1, "unit": "day"}})
    assert "warning" not in schedule
    assert client.list_skipped_runs(schedule["id"], limit=10) == {"data": [], "next_cursor": None}
    with pytest.raises(ChronosError) as caught:
        client.list_skipped_runs("0193a0a0-0000-7000-8000-000000000000")
    assert (caught.value.code, caught.value.status) == ("not_found", 404)


async def test_the_async_client_manages_domains(server: Server) -> None:
    client = AsyncClient(server.url, server.admin_key)
    added = await client.add_domain("async.example.test")
    assert added["status"] == "pending"
    assert added in await client.list_domains()
    assert await client.get_domain(added["id"]) == added
    with pytest.raises(ChronosError) as caught:
        await client.verify_domain("async.example.test")
    assert caught.value.code == "verification_failed"
    await client.delete_domain(added["id"])
    assert added not in await client.list_domains()
    schedule = await client.create_schedule({"name": "r", "handler": "r", "interval": {"value": 1, "unit": "day"}})
    assert (await client.list_skipped_runs(schedule["id"]))["data"] == []
