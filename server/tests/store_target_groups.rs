//! Target groups and their members in the store ([`TargetGroupStore`]), on
//! both stores: names unique per organization, renames, members kept with
//! their method and headers as given, deletes that take the members along
//! (and are refused while a queue names the group),
//! and nothing of one organization reached through another.
//!
//! [`TargetGroupStore`]: chronos_server::store::TargetGroupStore

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_proto::HttpMethod;
use chronos_server::queue::QueueSettings;
use chronos_server::store::{DeleteGroup, Renamed};
use chronos_server::target_group::NewMember;
use chronos_test_support::both_stores;
use common::StoreKind;
use conformance::*;
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

both_stores!(
    a_group_is_named_once_per_organization_and_renamed,
    members_keep_what_they_were_given_and_go_with_their_group,
    another_organizations_groups_and_members_are_out_of_reach,
);

fn member(url: &str, method: HttpMethod, headers: &[(&str, &str)]) -> NewMember {
    NewMember {
        id: Uuid::now_v7(),
        target_url: url.into(),
        method,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A group's name is unique in its organization (a second create answers
/// `None`, a rename onto it `NameTaken`); groups are listed oldest first;
/// a rename moves `updated_at` only.
async fn a_group_is_named_once_per_organization_and_renamed(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let store = &t.store;
    let eu = store
        .create_target_group(org, Uuid::now_v7(), "eu-webhooks")
        .await
        .unwrap()
        .expect("a new name");
    assert_eq!(eu.name, "eu-webhooks");
    assert_eq!(eu.created_at, eu.updated_at);
    assert_eq!(
        store
            .create_target_group(org, Uuid::now_v7(), "eu-webhooks")
            .await
            .unwrap(),
        None,
        "the name is taken"
    );
    advance(store, Duration::from_secs(5)).await;
    let us = store
        .create_target_group(org, Uuid::now_v7(), "us-webhooks")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.list_target_groups(org).await.unwrap(),
        [eu.clone(), us.clone()],
        "oldest first"
    );
    assert_eq!(
        store.target_group(org, us.id).await.unwrap(),
        Some(us.clone())
    );

    assert_eq!(
        store
            .rename_target_group(org, us.id, "eu-webhooks")
            .await
            .unwrap(),
        Renamed::NameTaken
    );
    advance(store, Duration::from_secs(5)).await;
    let Renamed::Done(renamed) = store
        .rename_target_group(org, us.id, "americas")
        .await
        .unwrap()
    else {
        panic!("renamed")
    };
    assert_eq!((renamed.id, renamed.name.as_str()), (us.id, "americas"));
    assert_eq!(renamed.created_at, us.created_at);
    // The test clock moved five seconds; real time moves on beside it.
    assert!(millis_between(us.updated_at, renamed.updated_at) >= 5_000);
    assert_eq!(
        store
            .rename_target_group(org, Uuid::now_v7(), "x")
            .await
            .unwrap(),
        Renamed::NotFound
    );
    // The old name is free again.
    assert!(
        store
            .create_target_group(org, Uuid::now_v7(), "us-webhooks")
            .await
            .unwrap()
            .is_some()
    );
}

/// Members are kept with their URL, method and headers as given (values
/// included: redaction is the API's), listed oldest first, removed one by
/// one, and deleted with their group.
async fn members_keep_what_they_were_given_and_go_with_their_group(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let store = &t.store;
    let group = store
        .create_target_group(org, Uuid::now_v7(), "regional")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.members(org, group.id).await.unwrap(),
        Some(vec![]),
        "a group with no members yet"
    );
    let eu = member(
        "https://eu.example.com/hook",
        HttpMethod::Post,
        &[("Authorization", "Bearer s3cret"), ("X-Region", "eu")],
    );
    let us = member("https://us.example.com/hook", HttpMethod::Put, &[]);
    let added_eu = store
        .add_member(org, group.id, &eu)
        .await
        .unwrap()
        .expect("the group is the organization's");
    advance(store, Duration::from_millis(10)).await;
    let added_us = store.add_member(org, group.id, &us).await.unwrap().unwrap();
    assert_eq!(added_eu.id, eu.id);
    assert_eq!(added_eu.group_id, group.id);
    assert_eq!(added_eu.target_url, eu.target_url);
    assert_eq!(added_eu.method, HttpMethod::Post);
    let headers: BTreeMap<String, String> = eu.headers.clone();
    assert_eq!(added_eu.headers, headers, "stored as given");
    assert_eq!(added_us.method, HttpMethod::Put);
    assert!(added_us.headers.is_empty());
    assert_eq!(
        store.members(org, group.id).await.unwrap(),
        Some(vec![added_eu.clone(), added_us.clone()])
    );

    assert!(store.remove_member(org, group.id, eu.id).await.unwrap());
    assert!(
        !store.remove_member(org, group.id, eu.id).await.unwrap(),
        "already removed"
    );
    assert_eq!(
        store.members(org, group.id).await.unwrap(),
        Some(vec![added_us])
    );

    // A queue naming the group as its default keeps it.
    let settings = QueueSettings {
        default_target_group_id: Some(group.id),
        ..QueueSettings::unlimited()
    };
    store
        .create_queue(org, Uuid::now_v7(), "fans", &settings)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.delete_target_group(org, group.id).await.unwrap(),
        DeleteGroup::NamedByQueue("fans".into())
    );
    let settings = QueueSettings::unlimited();
    store.update_queue(org, "fans", &settings).await.unwrap();
    assert_eq!(
        store.delete_target_group(org, group.id).await.unwrap(),
        DeleteGroup::Deleted
    );
    assert_eq!(
        store.delete_target_group(org, group.id).await.unwrap(),
        DeleteGroup::NotFound
    );
    assert_eq!(store.target_group(org, group.id).await.unwrap(), None);
    assert_eq!(store.members(org, group.id).await.unwrap(), None);
    assert_eq!(
        store
            .add_member(
                org,
                group.id,
                &member("https://x.test/", HttpMethod::Post, &[])
            )
            .await
            .unwrap(),
        None,
        "no group to add to"
    );
}

/// Another organization's group is not found by any method, and its name
/// is free here.
async fn another_organizations_groups_and_members_are_out_of_reach(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let store = &t.store;
    let other = other_org(store).await;
    let theirs = store
        .create_target_group(other, Uuid::now_v7(), "shared-name")
        .await
        .unwrap()
        .unwrap();
    let their_member = member("https://them.example.com/", HttpMethod::Post, &[]);
    store
        .add_member(other, theirs.id, &their_member)
        .await
        .unwrap()
        .unwrap();

    assert!(
        store
            .create_target_group(org, Uuid::now_v7(), "shared-name")
            .await
            .unwrap()
            .is_some(),
        "names are unique per organization"
    );
    assert_eq!(store.target_group(org, theirs.id).await.unwrap(), None);
    assert_eq!(store.list_target_groups(org).await.unwrap().len(), 1);
    assert_eq!(store.members(org, theirs.id).await.unwrap(), None);
    assert_eq!(
        store
            .rename_target_group(org, theirs.id, "mine")
            .await
            .unwrap(),
        Renamed::NotFound
    );
    assert_eq!(
        store
            .add_member(
                org,
                theirs.id,
                &member("https://x.test/", HttpMethod::Post, &[])
            )
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .remove_member(org, theirs.id, their_member.id)
            .await
            .unwrap()
    );
    assert_eq!(
        store.delete_target_group(org, theirs.id).await.unwrap(),
        DeleteGroup::NotFound
    );
    assert_eq!(
        store
            .members(other, theirs.id)
            .await
            .unwrap()
            .map(|m| m.len()),
        Some(1),
        "theirs is untouched"
    );
}
