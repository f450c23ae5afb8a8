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
    a_fan_out_is_counted_down_once_and_its_outcomes_published_once,
    every_attempt_publishes_each_failed_attempt_then_the_outcome,
);

/// The queue `results`, which delivers callbacks somewhere.
async fn results_queue(
    store: &chronos_server::store::DynStore,
    org: chronos_server::account::OrgId,
) -> chronos_server::queue::QueueRecord {
    let results = QueueSettings {
        default_target_url: Some("https://hooks.example.test/results".into()),
        ..QueueSettings::unlimited()
    };
    store
        .create_queue(org, Uuid::now_v7(), "results", &results)
        .await
        .unwrap()
        .unwrap()
}

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

/// A fan-out of two deliveries with a callback queue: inserted all or
/// nothing, each delivery's outcome published once (its callback message),
/// the fan-out counted down once per delivery — a delivery retried by hand
/// after it ended publishes its new outcome but is not counted again — and
/// the group callback made by the pass that ends the last one.
async fn a_fan_out_is_counted_down_once_and_its_outcomes_published_once(kind: StoreKind) {
    use chronos_server::job::Follow;
    use chronos_server::store::{AttemptEnd, FanOutCreated, HttpResponse, Outcome, RetryOutcome};
    use chronos_server::target_group::NewFanOut;

    let (t, org) = clocked(kind).await;
    let (store, leases) = (&t.store, &t.leases);
    let callbacks = results_queue(store, org).await;
    assert_eq!(
        store.queue_by_id(org, callbacks.id).await.unwrap(),
        Some(callbacks.clone())
    );
    let other = other_org(store).await;
    assert_eq!(store.queue_by_id(other, callbacks.id).await.unwrap(), None);

    let group = store
        .create_target_group(org, Uuid::now_v7(), "pair")
        .await
        .unwrap()
        .unwrap();
    let fan_out = NewFanOut {
        id: Uuid::now_v7(),
        group_id: group.id,
        queue: "default".into(),
        callback_queue_id: Some(callbacks.id),
    };
    let follow = Follow {
        fan_out_id: Some(fan_out.id),
        callback_queue_id: Some(callbacks.id),
        every_attempt: false,
    };
    let delivery = |url: &str, key: Option<&str>| chronos_server::job::NewJob {
        max_retries: Some(0),
        idempotency_key: key.map(str::to_string),
        follow,
        ..push(url, url)
    };
    let jobs = vec![
        delivery("https://eu.example.test/hook", Some("once")),
        delivery("https://us.example.test/hook", None),
    ];
    let FanOutCreated::Created(created) = leases
        .create_fan_out(org, fan_out.clone(), jobs)
        .await
        .unwrap()
    else {
        panic!("not created");
    };
    assert_eq!(created.len(), 2);
    // All or nothing: a key held by another job inserts neither.
    let again = NewFanOut {
        id: Uuid::now_v7(),
        ..fan_out.clone()
    };
    let jobs = vec![
        delivery("https://ap.example.test/hook", None),
        delivery("https://eu.example.test/hook", Some("once")),
    ];
    assert_eq!(
        leases
            .create_fan_out(org, again.clone(), jobs)
            .await
            .unwrap(),
        FanOutCreated::Conflict {
            existing: created[0].id
        }
    );
    assert_eq!(store.fan_out(org, again.id).await.unwrap(), None);

    let record = store.fan_out(org, fan_out.id).await.unwrap().unwrap();
    assert_eq!((record.total, record.remaining()), (2, 2));
    assert_eq!(record.deliveries.len(), 2);
    assert_eq!(
        record.deliveries[0].target_url,
        "https://eu.example.test/hook"
    );
    assert_eq!(store.fan_out(other, fan_out.id).await.unwrap(), None);
    // Nothing ended: nothing to publish.
    assert_eq!(leases.publish_outcomes(100).await.unwrap().taken, 0);

    // One succeeds, one dies.
    let leased = leases.lease_push(&slots(10, 10, &[])).await.unwrap();
    assert_eq!(leased.len(), 2);
    let ends = leased
        .iter()
        .map(|(org, l)| {
            let eu = l.job.id == created[0].id;
            AttemptEnd {
                org: *org,
                token: l.lease.token,
                outcome: match eu {
                    true => Outcome::Ack(None),
                    false => Outcome::Fail(failure(true, None)),
                },
                response: Some(HttpResponse {
                    status: if eu { 200 } else { 500 },
                    body: if eu { "fine".into() } else { "down".into() },
                    encoding: Default::default(),
                    truncated: false,
                }),
                whole_job: false,
            }
        })
        .collect();
    leases.end_attempts(ends).await.unwrap();
    let published = leases.publish_outcomes(100).await.unwrap();
    assert_eq!(published.taken, 2);
    // Two callbacks and the group callback, onto the callback queue.
    assert_eq!(published.created.len(), 3);
    let bodies: Vec<serde_json::Value> = published
        .created
        .iter()
        .map(|(o, job)| {
            assert_eq!((*o, job.queue.as_str()), (org, "results"));
            serde_json::from_str(job.payload.as_str().unwrap()).unwrap()
        })
        .collect();
    let of = |id: Uuid| {
        bodies
            .iter()
            .find(|b| b["message_id"] == id.to_string())
            .unwrap()
    };
    assert_eq!(of(created[0].id)["status"], "succeeded");
    assert_eq!(of(created[0].id)["response_body"], "fine");
    assert_eq!(of(created[1].id)["status"], "failed");
    assert_eq!(of(created[1].id)["http_status"], 500);
    let group_event = bodies.iter().find(|b| b.get("results").is_some()).unwrap();
    assert_eq!(group_event["status"], "partial");
    assert_eq!(group_event["fan_out_id"], fan_out.id.to_string());
    // Published once.
    assert_eq!(leases.publish_outcomes(100).await.unwrap().taken, 0);
    let record = store.fan_out(org, fan_out.id).await.unwrap().unwrap();
    assert_eq!(
        (record.remaining(), record.succeeded, record.failed),
        (0, 1, 1)
    );
    assert!(record.finished_at.is_some());

    // Retried by hand, it succeeds: its new outcome is published, the
    // fan-out is not counted again and makes no second group callback.
    let RetryOutcome::Retried(_) = leases.retry_job(org, created[1].id).await.unwrap() else {
        panic!("not retried");
    };
    // (The callbacks are push deliveries too: leased alongside, left running.)
    let leased = leases.lease_push(&slots(10, 10, &[])).await.unwrap();
    let (_, retried) = leased
        .iter()
        .find(|(_, l)| l.job.id == created[1].id)
        .expect("the retried delivery");
    done(
        leases
            .ack_job(org, retried.lease.token, None)
            .await
            .unwrap(),
    );
    let published = leases.publish_outcomes(100).await.unwrap();
    assert_eq!((published.taken, published.created.len()), (1, 1));
    let record = store.fan_out(org, fan_out.id).await.unwrap().unwrap();
    assert_eq!(
        (record.remaining(), record.succeeded, record.failed),
        (0, 1, 1)
    );
}

/// A delivery that publishes every attempt: each failed attempt with
/// retries to follow is a callback (`final: false`, in attempt order), a
/// released attempt is none, and the outcome comes last (`final: true`),
/// each once.
async fn every_attempt_publishes_each_failed_attempt_then_the_outcome(kind: StoreKind) {
    use chronos_server::job::Follow;

    let (t, org) = clocked(kind).await;
    let (store, leases) = (&t.store, &t.leases);
    let callbacks = results_queue(store, org).await;
    let job = chronos_server::job::NewJob {
        max_retries: Some(5),
        follow: Follow {
            fan_out_id: None,
            callback_queue_id: Some(callbacks.id),
            every_attempt: true,
        },
        ..push("flaky", "https://a.example.test/hook")
    };
    let id = leases.create_job(org, job).await.unwrap().id;
    let only_ours = [("hooks.example.test:443", 100)];
    let lease = || async {
        let leased = leases.lease_push(&slots(10, 10, &only_ours)).await.unwrap();
        assert_eq!(leased.len(), 1);
        assert_eq!(leased[0].1.job.id, id);
        leased[0].1.lease.token
    };
    let bodies = |published: chronos_server::store::Published| -> Vec<serde_json::Value> {
        published
            .created
            .iter()
            .map(|(_, job)| serde_json::from_str(job.payload.as_str().unwrap()).unwrap())
            .collect()
    };
    // Two failed attempts, published in one pass, in order.
    for _ in 0..2 {
        let token = lease().await;
        let again_now = failure(true, Some(Duration::ZERO));
        done(leases.fail_job(org, token, again_now).await.unwrap());
    }
    let events = bodies(leases.publish_outcomes(100).await.unwrap());
    assert_eq!(events.len(), 2, "{events:?}");
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["final"], false);
        assert_eq!(event["status"], "failed");
        assert_eq!(event["attempts"], n as u64 + 1);
        assert_eq!(event["error"], "it broke");
    }
    assert_eq!(leases.publish_outcomes(100).await.unwrap().taken, 0);
    // Handed back unstarted: no callback. Then it succeeds: the outcome.
    let token = lease().await;
    done(leases.release_lease(org, token).await.unwrap());
    assert_eq!(leases.publish_outcomes(100).await.unwrap().taken, 0);
    let token = lease().await;
    done(leases.ack_job(org, token, None).await.unwrap());
    let events = bodies(leases.publish_outcomes(100).await.unwrap());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["final"], true);
    assert_eq!(events[0]["status"], "succeeded");
    assert_eq!(events[0]["attempts"], 4);
    assert_eq!(leases.publish_outcomes(100).await.unwrap().taken, 0);

    // A delivery that dies with attempts unpublished: they come first.
    let job = chronos_server::job::NewJob {
        max_retries: Some(1),
        follow: Follow {
            fan_out_id: None,
            callback_queue_id: Some(callbacks.id),
            every_attempt: true,
        },
        ..push("dies", "https://b.example.test/hook")
    };
    let id = leases.create_job(org, job).await.unwrap().id;
    for _ in 0..2 {
        let leased = leases.lease_push(&slots(10, 10, &only_ours)).await.unwrap();
        let token = leased
            .iter()
            .find(|(_, l)| l.job.id == id)
            .unwrap()
            .1
            .lease
            .token;
        let again_now = failure(true, Some(Duration::ZERO));
        done(leases.fail_job(org, token, again_now).await.unwrap());
    }
    // In one pass, in order: the attempt, then the outcome.
    let events = bodies(leases.publish_outcomes(100).await.unwrap());
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        (&events[0]["final"], &events[0]["attempts"]),
        (&false.into(), &1.into())
    );
    assert_eq!(
        (&events[1]["final"], &events[1]["status"]),
        (&true.into(), &"failed".into())
    );
    assert_eq!(leases.publish_outcomes(100).await.unwrap().taken, 0);
    let events = &events[1..];
    assert_eq!(events[0]["attempts"], 2);
}
