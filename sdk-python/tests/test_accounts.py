"""Organizations, API keys, members and invites against a real server, with
the instance administrator's key (the one a fresh server prints, which
holds ``instance:admin``) and with an organization's own key."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chronos import AsyncClient, ChronosError, Client
from conftest import Server

#: Long enough, and not a common password.
PASSWORD = "correct horse battery staple"


def test_organizations_their_keys_members_and_invites(server: Server) -> None:
    admin = Client(server.url, server.admin_key)

    # An organization, and its first admin key, shown this once.
    created = admin.create_org({"name": "Py Org", "slug": "py-org"})
    assert (created["slug"], created["name"], "role" in created) == ("py-org", "Py Org", False)
    first_key = created["api_key"]
    assert first_key["scopes"] == ["admin"]
    assert first_key["key"].startswith(f"chrns_{first_key['id']}_")
    org = {k: v for k, v in created.items() if k != "api_key"}
    assert admin.get_org("py-org") == org
    with pytest.raises(ChronosError) as caught:
        admin.create_org({"name": "Again", "slug": "py-org"})
    assert (caught.value.code, caught.value.status) == ("slug_taken", 409)
    with pytest.raises(ValueError, match="owner"):
        admin.create_org({"name": "x", "slug": "py-x", "owner": "me"})  # type: ignore[typeddict-unknown-key]

    own = Client(server.url, first_key["key"])
    assert own.list_orgs() == [org]
    assert [o["slug"] for o in admin.list_orgs()] == ["default"]

    renamed = admin.update_org("py-org", {"name": "Our Py Org", "slug": "our-py-org"})
    assert (renamed["id"], renamed["slug"], renamed["name"]) == (org["id"], "our-py-org", "Our Py Org")
    with pytest.raises(ChronosError) as caught:
        admin.get_org("py-org")
    assert caught.value.code == "not_found"
    slug = "our-py-org"

    # A key limited to one queue, that expires: made with the organization's own key.
    expires = (datetime.now(timezone.utc) + timedelta(days=30)).replace(microsecond=0)
    expires_at = expires.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    limited = own.create_api_key({"name": "emails only", "scopes": ["jobs:write"],
                                  "expires_at": expires_at, "queues": ["emails"]})
    assert (limited["name"], limited["scopes"], limited["queues"]) == ("emails only", ["jobs:write"], ["emails"])
    assert (limited["expires_at"], limited["revoked_at"]) == (expires_at, None)
    emails_only = Client(server.url, limited["key"])
    with pytest.raises(ChronosError) as caught:
        emails_only.create_job({"name": "n", "handler": "h", "queue": "default"})
    assert (caught.value.code, caught.value.status) == ("queue_not_allowed", 403)

    # One made by the instance administrator, naming the organization.
    workers = admin.create_org_api_key(slug, {"name": "workers", "scopes": ["worker", "monitors:write"]})
    assert workers["scopes"] == ["worker", "monitors:write"]
    assert (workers["expires_at"], workers["queues"]) == (None, None)

    # A new organization is on the plan that limits nothing.
    usage = own.usage()
    assert (usage["plan"]["name"], usage["day"]["used"], usage["day"]["limit"]) == ("unlimited", 0, None)
    assert usage["month"]["resets_at"] >= usage["day"]["resets_at"]

    keys = own.list_api_keys()
    assert sorted(k["id"] for k in keys) == sorted([first_key["id"], limited["id"], workers["id"]])
    assert sorted(k["id"] for k in admin.list_org_api_keys(slug)) == sorted(k["id"] for k in keys)
    assert all("key" not in k for k in keys), "never a secret"
    # The list shows when a key was last used: the refused request above.
    listed = next(k for k in keys if k["id"] == limited["id"])
    assert listed["last_used_at"]
    assert listed == {**{k: v for k, v in limited.items() if k != "key"},
                      "last_used_at": listed["last_used_at"]}

    revoked = own.revoke_api_key(limited["id"])
    assert revoked["id"] == limited["id"] and revoked["revoked_at"]
    with pytest.raises(ChronosError) as caught:
        emails_only.list_orgs()
    assert caught.value.status == 401

    # An invite: a link to hand over, and its token.
    invite = admin.create_invite(slug, {"email": "dev@example.com", "role": "member"})
    assert (invite["email"], invite["role"], invite["status"]) == ("dev@example.com", "member", "pending")
    assert "/invite#" in invite["url"] and invite["url"].endswith(invite["token"])
    assert invite["mailed"] is False

    accepted = own.accept_invite({"token": invite["token"], "name": "Dev", "password": PASSWORD})
    user = accepted["user"]
    assert (user["email"], user["name"]) == ("dev@example.com", "Dev")
    assert (accepted["organization"]["id"], accepted["organization"].get("role")) == (org["id"], "member")
    assert accepted["csrf_token"]
    with pytest.raises(ChronosError) as caught:
        own.accept_invite({"token": invite["token"], "password": PASSWORD})
    assert (caught.value.code, caught.value.status) == ("not_found", 404)

    members = own.list_org_members(slug)
    assert [(m["user_id"], m["email"], m["role"]) for m in members] == [(user["id"], "dev@example.com", "member")]
    promoted = admin.update_org_member(slug, user["id"], "admin")
    assert promoted["role"] == "admin"
    assert own.list_org_members(slug) == [promoted]
    with pytest.raises(ValueError, match="role"):
        admin.update_org_member(slug, user["id"], "boss")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="user_id"):
        admin.update_org_member(slug, "not-a-user", "viewer")

    # A second invite, resent (a new link; the old one stops working), then revoked.
    second = own.create_invite(slug, {"email": "ops@example.com", "role": "viewer"})
    resent = own.resend_invite(slug, second["id"])
    assert (resent["id"], resent["status"]) == (second["id"], "pending")
    assert resent["token"] != second["token"] and "/invite#" in resent["url"]
    with pytest.raises(ChronosError) as caught:
        own.accept_invite({"token": second["token"], "password": PASSWORD})
    assert caught.value.code == "not_found"
    withdrawn = own.revoke_invite(slug, second["id"])
    assert (withdrawn["id"], withdrawn["status"]) == (second["id"], "revoked")
    assert withdrawn["revoked_at"]
    with pytest.raises(ChronosError) as caught:
        own.accept_invite({"token": resent["token"], "password": PASSWORD})
    assert caught.value.code == "not_found"
    with pytest.raises(ChronosError) as caught:
        own.resend_invite(slug, second["id"])
    assert caught.value.code == "not_found"
    assert [(i["id"], i["status"]) for i in admin.list_invites(slug)] == [
        (second["id"], "revoked"), (invite["id"], "accepted")]

    admin.remove_org_member(slug, user["id"])
    assert own.list_org_members(slug) == []
    with pytest.raises(ChronosError) as caught:
        admin.remove_org_member(slug, user["id"])
    assert caught.value.code == "not_found"

    # Deleting it: an owner's, or the instance administrator's; its keys go with it.
    with pytest.raises(ChronosError) as caught:
        own.delete_org(slug)
    assert (caught.value.code, caught.value.status) == ("owner_only", 403)
    admin.delete_org(slug)
    with pytest.raises(ChronosError) as caught:
        admin.get_org(slug)
    assert caught.value.code == "not_found"
    with pytest.raises(ChronosError) as caught:
        own.list_orgs()
    assert caught.value.status == 401
    with pytest.raises(ChronosError) as caught:
        admin.delete_org("default")
    assert (caught.value.code, caught.value.status) == ("instance_admin_org", 409)


def test_slugs_are_one_path_segment(client: Client) -> None:
    for slug in ("a/b", "x?y", "nobody"):
        with pytest.raises(ChronosError) as caught:
            client.get_org(slug)
        assert (caught.value.code, caught.value.status) == ("not_found", 404), slug
    for slug in (".", ".."):
        with pytest.raises(ValueError, match="organization slug"):
            client.list_org_members(slug)
    with pytest.raises(ChronosError) as caught:
        client.revoke_api_key("no/such/key")
    assert caught.value.status == 404


async def test_the_async_client_manages_an_organization(server: Server) -> None:
    admin = AsyncClient(server.url, server.admin_key)
    created = await admin.create_org({"name": "Py Async", "slug": "py-async"})
    key = await admin.create_org_api_key("py-async", {"name": "ci", "scopes": ["jobs:read"]})
    assert key["scopes"] == ["jobs:read"]
    assert {k["id"] for k in await admin.list_org_api_keys("py-async")} == {created["api_key"]["id"], key["id"]}
    own = AsyncClient(server.url, created["api_key"]["key"])
    assert [k["id"] for k in await own.list_api_keys()] != []
    assert (await own.usage())["plan"]["name"] == "unlimited"
    assert (await own.revoke_api_key(key["id"]))["revoked_at"]
    made = await own.create_api_key({"name": "more"})
    assert made["scopes"] == ["admin"]

    invite = await admin.create_invite("py-async", {"email": "async@example.com"})
    assert invite["role"] == "member" and "/invite#" in invite["url"]
    resent = await admin.resend_invite("py-async", invite["id"])
    accepted = await own.accept_invite({"token": resent["token"], "password": PASSWORD})
    (member,) = await own.list_org_members("py-async")
    assert member["user_id"] == accepted["user"]["id"]
    assert (await admin.update_org_member("py-async", member["user_id"], "viewer"))["role"] == "viewer"
    await admin.remove_org_member("py-async", member["user_id"])
    other = await admin.create_invite("py-async", {"email": "other@example.com", "role": "admin"})
    assert (await admin.revoke_invite("py-async", other["id"]))["status"] == "revoked"
    assert [i["status"] for i in await admin.list_invites("py-async")] == ["revoked", "accepted"]
    assert (await admin.update_org("py-async", {"name": "Renamed"}))["name"] == "Renamed"
    assert (await own.get_org("py-async"))["name"] == "Renamed"
    assert [o["slug"] for o in await own.list_orgs()] == ["py-async"]
    await admin.delete_org("py-async")
    with pytest.raises(ChronosError) as caught:
        await admin.get_org("py-async")
    assert caught.value.code == "not_found"
