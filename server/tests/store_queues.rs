//! Store conformance, queues (`QueueStore`): each organization's `default`
//! queue, settings written and read back whole, names unique per
//! organization, one organization's queues out of another's reach, pause,
//! resume and unblock, and the queue the upgrade makes for every name jobs
//! and schedules already used. On both stores (`store.rs` says how the
//! suite is laid out).

mod common;
#[path = "common/conformance.rs"]
mod conformance;

use chronos_server::account::OrgId;
use chronos_server::config::StoreConfig;
use chronos_server::queue::{
    FailureMode, QueueOrdering, QueueRecord, QueueSettings, QueueState, RateLimit,
};
use chronos_server::store::DynStore;
use chronos_test_support::both_stores;
use common::{Backing, StoreKind, migrate_up_to, upgrade};
use conformance::*;
use uuid::Uuid;

both_stores!(
    every_organization_has_a_default_queue_that_limits_nothing,
    queues_keep_their_settings_and_names_are_unique_per_organization,
    an_organization_never_reaches_another_organizations_queues,
    queues_pause_resume_and_unblock,
    the_upgrade_makes_a_queue_for_every_name_already_used,
    a_queue_is_deleted_only_when_nothing_depends_on_it,
    a_queues_busiest_keys_are_listed,
);

/// Every setting away from its default.
fn everything_set() -> QueueSettings {
    QueueSettings {
        concurrency: Some(5),
        retries: 7,
        ordering: QueueOrdering::Lifo,
        failure_mode: FailureMode::Block,
        rate: Some(RateLimit {
            limit: 100,
            period_seconds: 60,
        }),
        key_concurrency: Some(1),
        key_rate: Some(RateLimit {
            limit: 2,
            period_seconds: 30,
        }),
        signing_secret_id: None,
        default_target_url: Some("https://example.com/hook".into()),
        // Rows of their own: a group (store_target_groups.rs), a queue.
        default_target_group_id: None,
        callback_queue_id: None,
        callback_on: chronos_proto::CallbackOn::EveryAttempt,
    }
}

async fn names(store: &DynStore, org: OrgId) -> Vec<String> {
    let queues = store.list_queues(org).await.unwrap();
    queues.into_iter().map(|q| q.name).collect()
}

fn assert_default(q: &QueueRecord) {
    assert_eq!(q.name, "default");
    assert_eq!(q.settings, QueueSettings::unlimited());
    assert_eq!(q.status, QueueState::Active);
    assert!(!q.blocked);
    assert!(!q.limited(), "the default queue holds nothing back");
}

/// The organization made at the first start and every one made after it.
async fn every_organization_has_a_default_queue_that_limits_nothing(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    assert_default(&t.store.queue(org, "default").await.unwrap().unwrap());
    let other = other_org(&t.store).await;
    assert_default(&t.store.queue(other, "default").await.unwrap().unwrap());
    assert_eq!(names(&t.store, other).await, ["default"]);
}

async fn queues_keep_their_settings_and_names_are_unique_per_organization(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let settings = everything_set();
    let id = Uuid::now_v7();
    let created = t
        .store
        .create_queue(org, id, "emails", &settings)
        .await
        .unwrap()
        .expect("a new name");
    assert_eq!(created.id, id);
    assert_eq!(created.name, "emails");
    assert_eq!(created.settings, settings);
    assert_eq!(created.status, QueueState::Active);
    assert!(!created.blocked);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(
        t.store.queue(org, "emails").await.unwrap(),
        Some(created.clone())
    );

    let again = t
        .store
        .create_queue(org, Uuid::now_v7(), "emails", &QueueSettings::new_queue())
        .await
        .unwrap();
    assert_eq!(again, None, "a name is taken once per organization");
    assert_eq!(
        t.store.queue(org, "emails").await.unwrap(),
        Some(created.clone())
    );

    // Listed by name, bytewise: `Z` before `a`.
    for name in ["zeta", "Zeta", "a.b:c-d_e"] {
        let made = t
            .store
            .create_queue(org, Uuid::now_v7(), name, &QueueSettings::new_queue())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(made.settings, QueueSettings::new_queue());
    }
    assert_eq!(
        names(&t.store, org).await,
        ["Zeta", "a.b:c-d_e", "default", "emails", "zeta"]
    );

    // Settings are replaced whole; what they don't set goes back to none.
    let unlimited = QueueSettings::unlimited();
    let updated = t
        .store
        .update_queue(org, "emails", &unlimited)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.settings, unlimited);
    assert_eq!((updated.id, updated.created_at), (id, created.created_at));
    assert!(updated.updated_at >= created.updated_at);
    let back = t
        .store
        .update_queue(org, "emails", &settings)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.settings, settings);
    assert_eq!(
        t.store.update_queue(org, "nope", &settings).await.unwrap(),
        None
    );
    assert_eq!(t.store.queue(org, "nope").await.unwrap(), None);
}

async fn an_organization_never_reaches_another_organizations_queues(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let other = other_org(&t.store).await;
    t.store
        .create_queue(org, Uuid::now_v7(), "emails", &everything_set())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.store.queue(other, "emails").await.unwrap(), None);
    assert_eq!(names(&t.store, other).await, ["default"]);
    let s = &t.store;
    assert_eq!(
        s.update_queue(other, "emails", &everything_set())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.set_queue_status(other, "emails", QueueState::Paused)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.unblock_queue(other, "emails").await.unwrap(), None);
    // The same name is free in the other organization.
    let theirs = s
        .create_queue(other, Uuid::now_v7(), "emails", &QueueSettings::new_queue())
        .await
        .unwrap()
        .expect("names are per organization");
    assert_eq!(theirs.settings, QueueSettings::new_queue());
    assert_eq!(
        s.queue(org, "emails").await.unwrap().unwrap().settings,
        everything_set()
    );
}

async fn queues_pause_resume_and_unblock(kind: StoreKind) {
    let (t, org) = plain(kind).await;
    let s = &t.store;
    s.create_queue(org, Uuid::now_v7(), "emails", &QueueSettings::unlimited())
        .await
        .unwrap()
        .unwrap();
    let paused = s
        .set_queue_status(org, "emails", QueueState::Paused)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(paused.status, QueueState::Paused);
    assert!(paused.limited(), "a paused queue holds its jobs back");
    assert_eq!(paused.settings, QueueSettings::unlimited());
    let resumed = s
        .set_queue_status(org, "emails", QueueState::Active)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resumed.status, QueueState::Active);
    assert!(!resumed.limited());
    let unblocked = s.unblock_queue(org, "emails").await.unwrap().unwrap();
    assert!(!unblocked.blocked);
    assert_eq!(
        s.set_queue_status(org, "nope", QueueState::Paused)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.unblock_queue(org, "nope").await.unwrap(), None);
}

/// The last migration before queues, per store.
fn before_queues(kind: StoreKind) -> i64 {
    match kind {
        StoreKind::Postgres => 9,
        StoreKind::Sqlite => 7,
    }
}

/// A store an older Chronos made, with an organization whose jobs and
/// schedules name queues: after the upgrade each name is a queue that
/// limits nothing, beside `default`; no other organization gains any.
async fn the_upgrade_makes_a_queue_for_every_name_already_used(kind: StoreKind) {
    let old = Backing::new(kind).await;
    migrate_up_to(&old, before_queues(kind)).await;
    let (org, quiet) = (Uuid::now_v7(), Uuid::now_v7());
    let (job, other_job, schedule) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    match old.config() {
        StoreConfig::Postgres { url } => {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .execute(
                    "INSERT INTO organizations (id, slug, name) VALUES ($1, 'old', 'Old'),
                                                                      ($2, 'quiet', 'Quiet')",
                    &[&org, &quiet],
                )
                .await
                .unwrap();
            for (id, queue) in [(job, "emails"), (other_job, "default")] {
                client
                    .execute(
                        "INSERT INTO jobs (id, organization_id, name, handler, queue, status,
                                           delivery_type, delivery, run_at, max_retries,
                                           timeout_seconds)
                         VALUES ($1, $2, 'n', 'h', $3, 'queued', 'pull', '{\"type\": \"pull\"}',
                                 now(), 3, 30)",
                        &[&id, &org, &queue],
                    )
                    .await
                    .unwrap();
            }
            client
                .execute(
                    "INSERT INTO schedules (id, organization_id, name, status, timing, timezone,
                                            template, catch_up, overlap, anchor_at)
                     VALUES ($1, $2, 's', 'active', '{}', 'UTC', '{\"queue\": \"hooks\"}',
                             'skip', 'allow', now())",
                    &[&schedule, &org],
                )
                .await
                .unwrap();
        }
        StoreConfig::Sqlite { path } => {
            let conn = rusqlite::Connection::open(path).unwrap();
            let now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
            conn.execute(
                &format!(
                    "INSERT INTO organizations (id, slug, name, created_at)
                     VALUES (?1, 'old', 'Old', {now}), (?2, 'quiet', 'Quiet', {now})"
                ),
                [org.to_string(), quiet.to_string()],
            )
            .unwrap();
            for (id, queue) in [(job, "emails"), (other_job, "default")] {
                conn.execute(
                    &format!(
                        "INSERT INTO jobs (id, organization_id, name, handler, queue, status,
                                           delivery_type, delivery, run_at, max_retries,
                                           timeout_seconds, created_at, updated_at)
                         VALUES (?1, ?2, 'n', 'h', ?3, 'queued', 'pull', '{{\"type\": \"pull\"}}',
                                 {now}, 3, 30, {now}, {now})"
                    ),
                    [id.to_string(), org.to_string(), queue.to_string()],
                )
                .unwrap();
            }
            conn.execute(
                &format!(
                    "INSERT INTO schedules (id, organization_id, name, status, timing, timezone,
                                            template, catch_up, overlap, anchor_at, created_at,
                                            updated_at)
                     VALUES (?1, ?2, 's', 'active', '{{}}', 'UTC', '{{\"queue\": \"hooks\"}}',
                             'skip', 'allow', {now}, {now}, {now})"
                ),
                [schedule.to_string(), org.to_string()],
            )
            .unwrap();
        }
    }
    let store = upgrade(&old, before_queues(kind) + 1).await;
    let org = OrgId(org);
    assert_eq!(names(&store, org).await, ["default", "emails", "hooks"]);
    for q in store.list_queues(org).await.unwrap() {
        assert_eq!(q.settings, QueueSettings::unlimited(), "{}", q.name);
        assert_eq!(q.status, QueueState::Active);
        assert!(!q.blocked && !q.limited());
        assert_eq!(q.id.get_version_num(), 7, "ids are UUIDv7: {}", q.id);
    }
    let ids: Vec<Uuid> = store
        .list_queues(org)
        .await
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        3
    );
    assert_eq!(names(&store, OrgId(quiet)).await, ["default"]);
}

/// What a queue holds, counted; and a delete that waits for it to hold
/// nothing and for no schedule to name it.
async fn a_queue_is_deleted_only_when_nothing_depends_on_it(kind: StoreKind) {
    use chronos_server::store::DeleteQueue;
    let (t, org) = clocked(kind).await;
    let (s, leases) = (&t.store, &t.leases);
    s.create_queue(org, Uuid::now_v7(), "work", &QueueSettings::unlimited())
        .await
        .unwrap()
        .unwrap();
    let in_work = |handler: &str| chronos_server::job::NewJob {
        queue: "work".into(),
        ..pull(handler)
    };
    let running = leases.create_job(org, in_work("r")).await.unwrap();
    let queued = leases.create_job(org, in_work("q")).await.unwrap();
    let later = chronos_server::job::NewJob {
        run_at: chronos_server::job::RunAt::After(std::time::Duration::from_secs(60)),
        ..in_work("s")
    };
    let scheduled = leases.create_job(org, later).await.unwrap();
    let leased = lease_one(leases, org, "r", None).await;
    assert_eq!(leased.job.id, running.id);

    let counts = s.queue_counts(org, "work").await.unwrap();
    assert_eq!((counts.running, counts.queued, counts.scheduled), (1, 1, 1));
    assert_eq!(counts.oldest_queued_at, Some(queued.run_at));
    assert_eq!(counts.head_handler.as_deref(), Some("q"));
    let mut unfinished = s.unfinished_in_queue(org, "work", 10).await.unwrap();
    unfinished.sort();
    let mut expected = vec![running.id, queued.id, scheduled.id];
    expected.sort();
    assert_eq!(unfinished, expected);
    assert_eq!(
        s.unfinished_in_queue(org, "work", 2).await.unwrap().len(),
        2
    );

    assert_eq!(
        s.delete_queue(org, "work").await.unwrap(),
        DeleteQueue::HoldsJobs(3)
    );
    for id in [running.id, queued.id, scheduled.id] {
        leases.cancel_job(org, id).await.unwrap();
    }
    assert_eq!(
        s.queue_counts(org, "work").await.unwrap(),
        Default::default()
    );

    let mut schedule = every_minute("nightly", now(s).await);
    schedule.template.queue = "work".into();
    let schedule = s.insert_schedule(org, &schedule).await.unwrap();
    assert_eq!(
        s.delete_queue(org, "work").await.unwrap(),
        DeleteQueue::NamedBySchedule(schedule.id)
    );
    s.delete_schedule(org, schedule.id).await.unwrap();
    let other = other_org(s).await;
    assert_eq!(
        s.delete_queue(other, "work").await.unwrap(),
        DeleteQueue::NotFound
    );
    assert_eq!(
        s.delete_queue(org, "work").await.unwrap(),
        DeleteQueue::Deleted
    );
    assert_eq!(s.queue(org, "work").await.unwrap(), None);
    assert_eq!(
        s.delete_queue(org, "work").await.unwrap(),
        DeleteQueue::NotFound
    );
}

async fn a_queues_busiest_keys_are_listed(kind: StoreKind) {
    let (t, org) = clocked(kind).await;
    let s = &t.store;
    s.create_queue(org, Uuid::now_v7(), "tenants", &QueueSettings::unlimited())
        .await
        .unwrap()
        .unwrap();
    for key in [
        Some("a"),
        Some("b"),
        Some("b"),
        Some("c"),
        Some("c"),
        Some("c"),
        None,
    ] {
        let job = chronos_server::job::NewJob {
            queue: "tenants".into(),
            concurrency_key: key.map(str::to_string),
            ..pull("h")
        };
        t.leases.create_job(org, job).await.unwrap();
    }
    // The first two jobs (a's, and one of b's) run.
    let leased = t
        .leases
        .lease_jobs(org, &["h".to_string()], 2, Some("w"))
        .await
        .unwrap();
    assert_eq!(leased.len(), 2);
    let keys = s.queue_keys(org, "tenants", 10).await.unwrap();
    let seen: Vec<(&str, u64, u64)> = keys
        .iter()
        .map(|k| (k.key.as_str(), k.running, k.waiting))
        .collect();
    // Most running first, then most waiting, then by key; no keyless row.
    assert_eq!(seen, [("b", 1, 1), ("a", 1, 0), ("c", 0, 3)]);
    assert_eq!(s.queue_keys(org, "tenants", 1).await.unwrap().len(), 1);
    let other = other_org(s).await;
    assert!(s.queue_keys(other, "tenants", 10).await.unwrap().is_empty());
}
