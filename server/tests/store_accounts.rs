//! Organizations, keys and people in the store ([`AccountStore`],
//! [`PeopleStore`]), on both stores, with the test clock: organizations
//! created with their first key and owner in one go (and not at all when
//! the slug is taken), renamed, deleted with all they own; people, their
//! memberships (an organization keeps an owner), sessions (idle and
//! absolute expiry) and invites (single use, expiry, renewal).
//!
//! [`AccountStore`]: chronos_server::store::AccountStore
//! [`PeopleStore`]: chronos_server::store::PeopleStore

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_proto::Role;
use chronos_server::account::keys::new_api_key;
use chronos_server::account::people::{
    Accepted, Acceptor, MemberChange, NewInvite, NewSession, NewUser, SESSION_IDLE, Token,
};
use chronos_server::account::{OrgId, Organization};
use chronos_server::store::{DynStore, NewOrganization, OrgUpdate};
use chronos_test_support::both_stores;
use common::StoreKind;
use conformance::*;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    organizations_come_with_their_key_and_owner,
    deleting_an_organization_deletes_what_it_owns,
    memberships_keep_an_owner,
    sessions_end_idle_or_at_their_end,
    invites_are_single_use_and_expire,
);

const DAY: Duration = Duration::from_secs(24 * 3600);

async fn new_org(store: &DynStore, slug: &str, owner: Option<Uuid>) -> Option<Organization> {
    let id = OrgId(Uuid::now_v7());
    let (key, _) = new_api_key(id, "first", vec![chronos_proto::Scope::Admin]);
    store
        .create_organization_with(NewOrganization {
            id,
            slug: slug.into(),
            name: slug.into(),
            admin_key: key,
            owner,
        })
        .await
        .unwrap()
        .map(|(org, _)| org)
}

async fn user(store: &DynStore, email: &str) -> Uuid {
    store
        .create_user(NewUser {
            id: Uuid::now_v7(),
            email: email.into(),
            name: None,
            password_hash: "$argon2id$not-checked-here".into(),
        })
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn organizations_come_with_their_key_and_owner(kind: StoreKind) {
    let (t, _) = plain(kind).await;
    let ana = user(&t.store, "ana@example.com").await;
    // The same e-mail, differently written, is the same person.
    assert!(
        t.store
            .create_user(NewUser {
                id: Uuid::now_v7(),
                email: " ANA@example.com".into(),
                name: None,
                password_hash: "x".into(),
            })
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        t.store
            .user_by_email("ana@example.com")
            .await
            .unwrap()
            .unwrap()
            .id,
        ana
    );
    let org = new_org(&t.store, "acme", Some(ana)).await.unwrap();
    assert_eq!(
        t.store.organization(org.id).await.unwrap(),
        Some(org.clone())
    );
    assert_eq!(t.store.list_api_keys(org.id).await.unwrap().len(), 1);
    assert_eq!(
        t.store.membership(org.id, ana).await.unwrap(),
        Some(Role::Owner)
    );
    assert!(t.store.has_owner(org.id).await.unwrap());
    // Its default queue came too.
    assert!(t.store.queue(org.id, "default").await.unwrap().is_some());
    // A taken slug creates nothing.
    assert!(new_org(&t.store, "acme", None).await.is_none());
    let anonymous = new_org(&t.store, "nobody-owns", None).await.unwrap();
    assert!(!t.store.has_owner(anonymous.id).await.unwrap());

    match t
        .store
        .update_organization(org.id, Some("Acme Inc"), None)
        .await
        .unwrap()
    {
        OrgUpdate::Updated(o) => {
            assert_eq!((o.name.as_str(), o.slug.as_str()), ("Acme Inc", "acme"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        t.store
            .update_organization(org.id, None, Some("nobody-owns"))
            .await
            .unwrap(),
        OrgUpdate::SlugTaken
    );
    assert_eq!(
        t.store
            .update_organization(OrgId(Uuid::now_v7()), Some("x"), None)
            .await
            .unwrap(),
        OrgUpdate::NotFound
    );
    let belongings = t.store.belongings(ana).await.unwrap();
    assert_eq!(belongings.len(), 1);
    assert_eq!(belongings[0].organization.name, "Acme Inc");

    // A key's use is recorded, at most once a minute.
    let key = &t.store.list_api_keys(org.id).await.unwrap()[0];
    assert!(key.last_used_at.is_none());
    t.store.touch_api_key(&key.id).await.unwrap();
    let used = t
        .store
        .api_key(&key.id)
        .await
        .unwrap()
        .unwrap()
        .last_used_at
        .unwrap();
    t.store.touch_api_key(&key.id).await.unwrap();
    assert_eq!(
        t.store
            .api_key(&key.id)
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(used)
    );
}

async fn deleting_an_organization_deletes_what_it_owns(kind: StoreKind) {
    let (t, default) = plain(kind).await;
    let ana = user(&t.store, "ana@example.com").await;
    let org = new_org(&t.store, "gone", Some(ana)).await.unwrap();
    t.leases.create_job(org.id, pull("h")).await.unwrap();
    t.leases.create_job(default, pull("h")).await.unwrap();
    let key = t.store.list_api_keys(org.id).await.unwrap()[0].id.clone();
    assert!(t.store.delete_organization(org.id).await.unwrap());
    assert!(!t.store.delete_organization(org.id).await.unwrap());
    assert!(
        t.store
            .organization_by_slug("gone")
            .await
            .unwrap()
            .is_none()
    );
    assert!(t.store.api_key(&key).await.unwrap().is_none());
    assert!(t.store.belongings(ana).await.unwrap().is_empty());
    // The person stays; other organizations' jobs too.
    assert!(t.store.user(ana).await.unwrap().is_some());
    let left = t
        .store
        .list_jobs(default, &Default::default(), first(10))
        .await
        .unwrap();
    assert_eq!(left.items.len(), 1);
}

async fn memberships_keep_an_owner(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let (ana, bo) = (
        user(&t.store, "ana@example.com").await,
        user(&t.store, "bo@example.com").await,
    );
    t.store.add_membership(org, ana, Role::Owner).await.unwrap();
    t.store.add_membership(org, bo, Role::Admin).await.unwrap();
    // Adding again never lowers a role; it may raise one.
    t.store.add_membership(org, bo, Role::Viewer).await.unwrap();
    assert_eq!(
        t.store.membership(org, bo).await.unwrap(),
        Some(Role::Admin)
    );
    assert_eq!(
        t.store
            .set_membership_role(org, ana, Role::Admin)
            .await
            .unwrap(),
        MemberChange::LastOwner
    );
    assert_eq!(
        t.store.remove_membership(org, ana).await.unwrap(),
        MemberChange::LastOwner
    );
    let MemberChange::Done(Some(m)) = t
        .store
        .set_membership_role(org, bo, Role::Owner)
        .await
        .unwrap()
    else {
        panic!("bo was not made owner")
    };
    assert_eq!((m.email.as_str(), m.role), ("bo@example.com", Role::Owner));
    assert!(matches!(
        t.store
            .set_membership_role(org, ana, Role::Viewer)
            .await
            .unwrap(),
        MemberChange::Done(Some(_))
    ));
    assert_eq!(
        t.store.remove_membership(org, ana).await.unwrap(),
        MemberChange::Done(None)
    );
    assert_eq!(
        t.store.remove_membership(org, ana).await.unwrap(),
        MemberChange::NotFound
    );
    let members = t.store.memberships(org).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user_id, bo);
}

async fn session(store: &DynStore, user: Uuid) -> Token {
    let token = Token::generate();
    store
        .create_session(NewSession {
            token_sha256: token.sha256.clone(),
            user_id: user,
            csrf_token: "csrf".into(),
        })
        .await
        .unwrap();
    token
}

async fn sessions_end_idle_or_at_their_end(kind: StoreKind) {
    let (t, _) = clocked(kind).await;
    let ana = user(&t.store, "ana@example.com").await;
    let a = session(&t.store, ana).await;
    let found = t
        .store
        .session(&a.sha256, SESSION_IDLE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.user.id, found.csrf_token.as_str(), found.stale),
        (ana, "csrf", false)
    );
    // Unused for the idle period: over. Used within it: it goes on, up to
    // its end.
    advance(&t.store, Duration::from_secs(120)).await;
    assert!(
        t.store
            .session(&a.sha256, SESSION_IDLE)
            .await
            .unwrap()
            .unwrap()
            .stale
    );
    assert!(
        t.store
            .session(&a.sha256, Duration::from_secs(60))
            .await
            .unwrap()
            .is_none()
    );
    t.store.touch_session(&a.sha256).await.unwrap();
    assert!(
        !t.store
            .session(&a.sha256, SESSION_IDLE)
            .await
            .unwrap()
            .unwrap()
            .stale
    );
    for _ in 0..4 {
        advance(&t.store, 6 * DAY).await;
        t.store.touch_session(&a.sha256).await.unwrap();
        assert!(
            t.store
                .session(&a.sha256, SESSION_IDLE)
                .await
                .unwrap()
                .is_some()
        );
    }
    advance(&t.store, 6 * DAY).await;
    assert!(
        t.store
            .session(&a.sha256, SESSION_IDLE)
            .await
            .unwrap()
            .is_none(),
        "30 days in all"
    );

    // A new password ends the person's other sessions.
    let (b, c) = (session(&t.store, ana).await, session(&t.store, ana).await);
    t.store
        .set_password(ana, "new-hash", &b.sha256)
        .await
        .unwrap();
    assert!(
        t.store
            .session(&b.sha256, SESSION_IDLE)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        t.store
            .session(&c.sha256, SESSION_IDLE)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        t.store.user(ana).await.unwrap().unwrap().password_hash,
        "new-hash"
    );
    t.store.delete_session(&b.sha256).await.unwrap();
    assert!(
        t.store
            .session(&b.sha256, SESSION_IDLE)
            .await
            .unwrap()
            .is_none()
    );
}

async fn invite(store: &DynStore, org: OrgId, email: &str, role: Role) -> (Uuid, Token) {
    let token = Token::generate();
    let made = store
        .create_invite(NewInvite {
            id: Uuid::now_v7(),
            organization_id: org,
            email: email.into(),
            role,
            token_sha256: token.sha256.clone(),
            invited_by: None,
        })
        .await
        .unwrap();
    (made.id, token)
}

fn new_user(email: &str) -> Acceptor {
    Acceptor::New(NewUser {
        id: Uuid::now_v7(),
        email: email.into(),
        name: Some("New".into()),
        password_hash: "h".into(),
    })
}

async fn invites_are_single_use_and_expire(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let (_, a) = invite(&t.store, org, "new@example.com", Role::Admin).await;
    assert!(t.store.pending_invite(&a.sha256).await.unwrap().is_some());
    let Accepted::Joined {
        user,
        organization,
        role,
    } = t
        .store
        .accept_invite(&a.sha256, new_user("new@example.com"))
        .await
        .unwrap()
    else {
        panic!("not accepted")
    };
    assert_eq!(
        (organization.id, role, user.name.as_deref()),
        (org, Role::Admin, Some("New"))
    );
    assert_eq!(
        t.store
            .accept_invite(&a.sha256, new_user("new@example.com"))
            .await
            .unwrap(),
        Accepted::Invalid,
        "single use"
    );

    // An existing person joins with the invite's role, or keeps a higher one.
    let (_, b) = invite(&t.store, org, "new@example.com", Role::Viewer).await;
    let Accepted::Joined { role, .. } = t
        .store
        .accept_invite(&b.sha256, Acceptor::Existing(user.id))
        .await
        .unwrap()
    else {
        panic!("not accepted")
    };
    assert_eq!(role, Role::Admin);
    // A new account for an e-mail that has one: nothing accepted.
    let (_, c) = invite(&t.store, org, "new@example.com", Role::Member).await;
    assert_eq!(
        t.store
            .accept_invite(&c.sha256, new_user("NEW@example.com"))
            .await
            .unwrap(),
        Accepted::EmailTaken
    );
    assert!(t.store.pending_invite(&c.sha256).await.unwrap().is_some());

    // Revoked and expired invites are not pending; a renewed one has a new
    // token and seven more days.
    let (id, d) = invite(&t.store, org, "late@example.com", Role::Member).await;
    advance(&t.store, 7 * DAY + Duration::from_secs(1)).await;
    assert!(
        t.store.pending_invite(&d.sha256).await.unwrap().is_none(),
        "expired"
    );
    let renewed = Token::generate();
    let again = t
        .store
        .renew_invite(org, id, &renewed.sha256)
        .await
        .unwrap()
        .unwrap();
    assert!(again.expires_at > now(&t.store).await);
    assert!(t.store.pending_invite(&d.sha256).await.unwrap().is_none());
    assert!(
        t.store
            .pending_invite(&renewed.sha256)
            .await
            .unwrap()
            .is_some()
    );
    let revoked = t.store.revoke_invite(org, id).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(
        t.store
            .pending_invite(&renewed.sha256)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.store
            .renew_invite(org, id, &Token::generate().sha256)
            .await
            .unwrap()
            .is_none()
    );
    // Another organization's invite is not found.
    let other = other_org(&t.store).await;
    assert!(t.store.invite(other, id).await.unwrap().is_none());
    assert!(t.store.revoke_invite(other, id).await.unwrap().is_none());
    assert_eq!(t.store.invite(org, id).await.unwrap().unwrap().id, id);
    assert_eq!(t.store.invites(org).await.unwrap().len(), 4);
    assert!(t.store.invites(other).await.unwrap().is_empty());
}
