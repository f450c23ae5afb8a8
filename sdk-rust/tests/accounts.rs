//! What admin tooling does with the client, against a real server on both
//! stores: organizations, their API keys, members and invites, with the
//! instance administrator's key (the one a fresh server prints, which holds
//! `instance:admin`) and with an organization's own key.

mod common;

use chrono::{SubsecRound, Utc};
use chronos::{
    AcceptInvite, ApiKey, Client, CreateApiKey, CreateInvite, CreateOrganization, InviteStatus,
    NewJob, Role, Scope, Timestamp, UpdateOrganization,
};
use chronos_test_support::both_stores;
use common::{SdkClients, StoreKind, TestServer};
use std::collections::HashSet;
use uuid::Uuid;

both_stores!(
    manages_organizations_keys_members_and_invites,
    refuses_what_the_server_refuses,
);

/// Long enough, and not a common password.
const PASSWORD: &str = "correct horse battery staple";

fn new_org(name: &str, slug: &str) -> CreateOrganization {
    CreateOrganization {
        name: name.into(),
        slug: slug.into(),
    }
}

fn accept(token: &str, name: Option<&str>) -> AcceptInvite {
    AcceptInvite {
        token: token.into(),
        name: name.map(Into::into),
        password: Some(PASSWORD.into()),
    }
}

fn ids(keys: &[ApiKey]) -> HashSet<&str> {
    keys.iter().map(|k| k.id.as_str()).collect()
}

async fn manages_organizations_keys_members_and_invites(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    // The first-start key: `admin` in `default`, and `instance:admin`.
    let admin = s.client();

    // An organization, and its first admin key, shown this once.
    let created = admin
        .create_org(&new_org("Mon Org", "mon-org"))
        .await
        .unwrap();
    let org = created.organization.clone();
    assert_eq!(
        (org.slug.as_str(), org.name.as_str(), org.role),
        ("mon-org", "Mon Org", None)
    );
    let first_key = &created.api_key;
    assert_eq!(first_key.api_key.scopes, [Scope::Admin]);
    assert!(
        first_key
            .key
            .starts_with(&format!("chrns_{}_", first_key.api_key.id)),
        "{first_key:?}"
    );
    assert_eq!(admin.get_org("mon-org").await.unwrap(), org);
    let err = admin
        .create_org(&new_org("Again", "mon-org"))
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("slug_taken")));

    // Each key lists its own organization.
    let own = Client::new(&s.base, &first_key.key).unwrap();
    assert_eq!(own.list_orgs().await.unwrap(), std::slice::from_ref(&org));
    let listed: Vec<_> = admin
        .list_orgs()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.slug)
        .collect();
    assert_eq!(listed, ["default"]);

    // Renamed, under a new slug.
    let renamed = admin
        .update_org(
            "mon-org",
            &UpdateOrganization {
                name: Some("Our Org".into()),
                slug: Some("our-org".into()),
                plan: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.id, renamed.slug.as_str(), renamed.name.as_str()),
        (org.id, "our-org", "Our Org")
    );
    assert!(admin.get_org("mon-org").await.unwrap_err().is_not_found());
    let slug = "our-org";
    assert_eq!(own.get_org(slug).await.unwrap(), renamed);

    // A key limited to one queue, that expires; made with the
    // organization's own key (`POST /v1/api-keys`).
    let expires = Timestamp((Utc::now() + chrono::Duration::days(30)).trunc_subsecs(0));
    let limited = own
        .create_api_key(&CreateApiKey {
            scopes: vec![Scope::JobsWrite],
            expires_at: Some(expires),
            queues: Some(vec!["emails".into()]),
            ..CreateApiKey::new("emails only")
        })
        .await
        .unwrap();
    assert_eq!(limited.api_key.name, "emails only");
    assert_eq!(limited.api_key.scopes, [Scope::JobsWrite]);
    assert_eq!(limited.api_key.expires_at, Some(expires));
    assert_eq!(limited.api_key.queues, Some(vec!["emails".to_string()]));
    assert_eq!(limited.api_key.revoked_at, None);
    let emails_only = Client::new(&s.base, &limited.key).unwrap();
    let err = emails_only
        .create_job(&NewJob::new("n", "h").queue("default").build())
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("queue_not_allowed"))
    );

    // One made by the instance administrator, naming the organization.
    let workers = admin
        .create_org_api_key(
            slug,
            &CreateApiKey {
                scopes: vec![Scope::Worker, Scope::MonitorsWrite],
                ..CreateApiKey::new("workers")
            },
        )
        .await
        .unwrap();
    assert_eq!(
        workers.api_key.scopes,
        [Scope::Worker, Scope::MonitorsWrite]
    );
    assert_eq!(
        (workers.api_key.expires_at, workers.api_key.queues.as_ref()),
        (None, None)
    );

    // A new organization is on the plan that limits nothing.
    let usage = own.usage().await.unwrap();
    assert_eq!(
        (usage.plan.name.as_str(), usage.day.used, usage.day.limit),
        ("unlimited", 0, None)
    );
    assert!(usage.month.resets_at.0 >= usage.day.resets_at.0);

    // Both lists show the three, never their secrets.
    let keys = own.list_api_keys().await.unwrap();
    assert_eq!(
        ids(&keys),
        HashSet::from([
            first_key.api_key.id.as_str(),
            limited.api_key.id.as_str(),
            workers.api_key.id.as_str()
        ])
    );
    let by_slug = admin.list_org_api_keys(slug).await.unwrap();
    assert_eq!(ids(&by_slug), ids(&keys));
    // The list shows when a key was last used: the refused request above.
    let listed = keys.iter().find(|k| k.id == limited.api_key.id).unwrap();
    assert!(listed.last_used_at.is_some(), "{listed:?}");
    assert_eq!(
        *listed,
        ApiKey {
            last_used_at: listed.last_used_at,
            ..limited.api_key.clone()
        }
    );

    // Revoked, the key is refused.
    let revoked = own.revoke_api_key(&limited.api_key.id).await.unwrap();
    assert_eq!(revoked.id, limited.api_key.id);
    assert!(revoked.revoked_at.is_some(), "{revoked:?}");
    let err = emails_only.list_orgs().await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    let after = own.list_api_keys().await.unwrap();
    let listed = after.iter().find(|k| k.id == limited.api_key.id).unwrap();
    assert_eq!(listed.revoked_at, revoked.revoked_at);

    // An invite: a link to hand over, and its token.
    let invite = admin
        .create_invite(
            slug,
            &CreateInvite {
                email: "dev@example.com".into(),
                role: Role::Member,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (
            invite.invite.email.as_str(),
            invite.invite.role,
            invite.invite.status
        ),
        ("dev@example.com", Role::Member, InviteStatus::Pending)
    );
    assert!(invite.url.contains("/invite#"), "{}", invite.url);
    assert!(invite.url.ends_with(&invite.token), "{invite:?}");
    assert!(!invite.mailed, "no mail server: {invite:?}");

    // Someone new accepts it with a password, and is a member.
    let accepted = own
        .accept_invite(&accept(&invite.token, Some("Dev")))
        .await
        .unwrap();
    let dev = accepted.user.clone();
    assert_eq!(
        (dev.email.as_str(), dev.name.as_deref()),
        ("dev@example.com", Some("Dev"))
    );
    assert_eq!(
        (accepted.organization.id, accepted.organization.role),
        (org.id, Some(Role::Member))
    );
    assert!(!accepted.csrf_token.is_empty());
    let err = own
        .accept_invite(&accept(&invite.token, None))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "a used invite: {err}");

    let members = own.list_org_members(slug).await.unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(
        (
            members[0].user_id,
            members[0].email.as_str(),
            members[0].role
        ),
        (dev.id, "dev@example.com", Role::Member)
    );
    let promoted = admin
        .update_org_member(slug, dev.id, Role::Admin)
        .await
        .unwrap();
    assert_eq!((promoted.user_id, promoted.role), (dev.id, Role::Admin));
    assert_eq!(own.list_org_members(slug).await.unwrap(), [promoted]);

    // A second invite, resent (a new link; the old one stops working),
    // then revoked.
    let second = own
        .create_invite(
            slug,
            &CreateInvite {
                email: "ops@example.com".into(),
                role: Role::Viewer,
            },
        )
        .await
        .unwrap();
    let resent = own.resend_invite(slug, second.invite.id).await.unwrap();
    assert_eq!(
        (resent.invite.id, resent.invite.status),
        (second.invite.id, InviteStatus::Pending)
    );
    assert_ne!(resent.token, second.token);
    assert!(resent.url.contains("/invite#"), "{}", resent.url);
    let err = own
        .accept_invite(&accept(&second.token, None))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "the link before the resend: {err}");
    let withdrawn = own.revoke_invite(slug, second.invite.id).await.unwrap();
    assert_eq!(
        (withdrawn.id, withdrawn.status),
        (second.invite.id, InviteStatus::Revoked)
    );
    assert!(withdrawn.revoked_at.is_some(), "{withdrawn:?}");
    let err = own
        .accept_invite(&accept(&resent.token, None))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "a revoked invite: {err}");
    let err = own.resend_invite(slug, second.invite.id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let statuses: Vec<_> = admin
        .list_invites(slug)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i.status))
        .collect();
    assert_eq!(
        statuses,
        [
            (second.invite.id, InviteStatus::Revoked),
            (invite.invite.id, InviteStatus::Accepted),
        ]
    );

    // The member leaves the organization.
    admin.remove_org_member(slug, dev.id).await.unwrap();
    assert_eq!(own.list_org_members(slug).await.unwrap(), []);
    let err = admin.remove_org_member(slug, dev.id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");

    // Deleting it: an owner's, or the instance administrator's; its keys
    // go with it.
    let err = own.delete_org(slug).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("owner_only")));
    admin.delete_org(slug).await.unwrap();
    assert!(admin.get_org(slug).await.unwrap_err().is_not_found());
    let err = own.list_orgs().await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    let err = admin.delete_org("default").await.unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(409), Some("instance_admin_org"))
    );
}

async fn refuses_what_the_server_refuses(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let admin = s.client();
    // Signup is closed: only a key with `instance:admin` makes
    // organizations.
    let plain = s.client_with_scopes(&["admin"]).await;
    let err = plain
        .create_org(&new_org("Theirs", "theirs"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(403), Some("signup_closed"))
    );
    let err = plain
        .create_api_key(&CreateApiKey {
            scopes: vec![Scope::InstanceAdmin],
            ..CreateApiKey::new("escalate")
        })
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(403), Some("forbidden")));
    let err = admin
        .create_org(&new_org("Bad", "Not A Slug"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert_eq!(err.field(), Some("slug"), "{err}");

    // Slugs are one path segment: `a/b` is an organization not found, not
    // another route; `.` and `..` can't be named in a URL.
    for slug in ["a/b", "x?y", "nobody"] {
        let err = admin.get_org(slug).await.unwrap_err();
        assert!(err.is_not_found(), "{slug}: {err}");
    }
    for slug in [".", ".."] {
        let err = admin.list_org_members(slug).await.unwrap_err();
        assert_eq!(err.code_or_kind(), "invalid_argument", "{err}");
    }
    let err = admin.revoke_api_key("no/such/key").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");

    // Another organization's key reaches nothing of this one.
    let theirs = admin
        .create_org(&new_org("Theirs", "theirs"))
        .await
        .unwrap();
    let them = Client::new(&s.base, &theirs.api_key.key).unwrap();
    for err in [
        them.get_org("default").await.unwrap_err(),
        them.list_org_members("default").await.unwrap_err(),
        them.list_invites("default").await.unwrap_err(),
    ] {
        assert!(err.is_not_found(), "{err}");
    }

    // A password the policy refuses; an unknown token.
    let invite = admin
        .create_invite(
            "theirs",
            &CreateInvite {
                email: "new@example.com".into(),
                role: Role::Viewer,
            },
        )
        .await
        .unwrap();
    let err = admin
        .accept_invite(&AcceptInvite {
            token: invite.token.clone(),
            name: None,
            password: Some("short".into()),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code(), err.field()),
        (Some(422), Some("validation_failed"), Some("password"))
    );
    let err = admin
        .accept_invite(&accept("no-such-token", None))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = admin
        .update_org_member("theirs", Uuid::now_v7(), Role::Viewer)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}
