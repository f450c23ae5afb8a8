//! Tenancy as a test: every route of `/v1/openapi.json` (seed aliases
//! included, so a new route is walked without anyone remembering it) is
//! called on organization A's resources
//!
//! - by another organization's admin key, and by people of it with each
//!   role: never a 2xx, only 403 (a scope their role lacks) or 404 (A's
//!   resource does not exist for them), and never any of A's data in the
//!   answer — their collections (`GET /v1/jobs`…) hold only their own;
//! - by A's own people with each role: 403 for every route whose scope the
//!   role lacks, and no 403 for the reads it may make.
//!
//! Both stores.

use chronos_proto::Role;
use chronos_server::push::guard::TargetPolicy;
use chronos_server::server::ServeOptions;
use chronos_test_support::{StoreKind, TestServer, both_stores};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

both_stores!(no_key_or_session_reaches_another_organization);

const ROLES: [Role; 4] = [Role::Viewer, Role::Member, Role::Admin, Role::Owner];

/// A's resources: what each path parameter names, by the path segment
/// before it, and the strings that must never reach another organization.
struct OrgA {
    ids: BTreeMap<&'static str, String>,
    markers: Vec<String>,
}

impl OrgA {
    fn param(&self, path: &str, name: &str) -> String {
        let segments: Vec<&str> = path.split('/').collect();
        let at = segments
            .iter()
            .position(|s| *s == format!("{{{name}}}"))
            .unwrap();
        let before = segments[at - 1];
        // `members` names a group's member under target groups, a person
        // under organizations.
        let key = match (before, segments.get(1).copied(), segments.get(2).copied()) {
            ("members", _, Some("target-groups")) => "group-members",
            ("members", _, _) => "people",
            ("jobs", Some("api"), _) => "cron",
            (other, _, _) => other,
        };
        self.ids.get(key).cloned().unwrap_or_else(|| {
            panic!(
                "the tenancy walk doesn't know what {{{name}}} in {path} names: add A's resource to OrgA"
            )
        })
    }

    fn path(&self, template: &str) -> String {
        let mut path = template.to_string();
        while let Some(start) = path.find('{') {
            let end = path[start..].find('}').unwrap() + start;
            let name = path[start + 1..end].to_string();
            path.replace_range(start..=end, &self.param(template, &name));
        }
        path
    }

    fn leaks(&self, body: &Value) -> Option<&String> {
        let text = body.to_string();
        self.markers.iter().find(|m| text.contains(m.as_str()))
    }
}

/// A valid body for the routes that read theirs before they look the
/// resource up, so that the walk reaches the lookup.
fn sample_body(method: &str, path: &str, a: &OrgA) -> Option<Value> {
    let url = "http://127.0.0.1:9/walk";
    Some(match (method, path) {
        ("patch", "/v1/orgs/{slug}" | "/api/orgs/{slug}") => json!({"name": "Renamed"}),
        ("post", "/v1/orgs/{slug}/api-keys" | "/api/orgs/{slug}/api-keys") => {
            json!({"name": "walk"})
        }
        ("post", "/v1/orgs/{slug}/invites" | "/api/orgs/{slug}/invite") => {
            json!({"email": "walk@example.com", "role": "viewer"})
        }
        ("patch", "/v1/orgs/{slug}/members/{user_id}") => json!({"role": "viewer"}),
        ("put", "/api/v1/cron/jobs/{id}") => json!({"name": "walk", "schedule_type": "interval",
                                                     "schedule": "every_5m", "url": url}),
        ("patch", "/v1/queues/{name}") => json!({}),
        ("post", "/v1/queues/{name}/messages") => json!({"url": url}),
        ("patch", "/v1/schedules/{id}") => json!({"name": "walk"}),
        ("put", "/v1/schedules/{id}") => json!({"name": "walk", "handler": "h",
                                                "interval": {"value": 10, "unit": "minute"}}),
        ("post", "/v1/signing-secrets/{id}/rotate") => json!({}),
        ("patch", "/v1/target-groups/{id}") => json!({"name": "walk"}),
        ("post", "/v1/target-groups/{id}/members") => json!({"target_url": url}),
        ("post", "/v1/leases/ack" | "/v1/leases/fail" | "/v1/leases/extend") => {
            json!({"token": a.ids["lease"]})
        }
        _ => return None,
    })
}

async fn setup_a(s: &TestServer) -> OrgA {
    let key = &s.admin_key;
    let mut ids = BTreeMap::new();
    let mut markers = Vec::new();
    let made = async |path: &str, body: Value| -> Value {
        let (status, answer) = s.post(key, path, body).await;
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
        answer
    };
    let job = made("/v1/jobs", json!({"name": "job-of-a", "handler": "h-of-a"})).await;
    let queue = made("/v1/queues", json!({"name": "queue-of-a"})).await;
    let schedule = made(
        "/v1/schedules",
        json!({"name": "schedule-of-a", "handler": "h-of-a", "interval": {"value": 10, "unit": "minute"}}))
    .await;
    let cron = made(
        "/api/v1/cron/jobs",
        json!({"name": "cron-of-a", "schedule_type": "interval", "schedule": "every_5m",
               "url": "http://127.0.0.1:9/a"}),
    )
    .await;
    let group = made("/v1/target-groups", json!({"name": "group-of-a"})).await;
    let gid = group["id"].as_str().unwrap().to_string();
    let member = made(
        &format!("/v1/target-groups/{gid}/members"),
        json!({"target_url": "http://127.0.0.1:9/member-of-a"}),
    )
    .await;
    let fan_out = made("/v1/messages", json!({"default_target_group_id": gid})).await;
    let message = made(
        "/v1/messages",
        json!({"url": "http://127.0.0.1:9/message-of-a"}),
    )
    .await;
    let secret = made("/v1/signing-secrets", json!({"name": "secret-of-a"})).await;
    let domain = made("/v1/domains", json!({"domain": "domain-of-a.example.com"})).await;
    let api_key = made(
        "/v1/api-keys",
        json!({"name": "key-of-a", "scopes": ["jobs:read"]}),
    )
    .await;
    let invite = made(
        "/v1/orgs/default/invites",
        json!({"email": "invitee@a.example", "role": "viewer"}),
    )
    .await;
    // A person of A to change and remove, and a lease held in A.
    s.person("target@a.example", "default", Role::Member).await;
    let (_, members) = s.get(key, "/v1/orgs/default/members").await;
    let target = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "target@a.example")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    made(
        "/v1/jobs",
        json!({"name": "leased-of-a", "handler": "lease-of-a"}),
    )
    .await;
    let (_, leased) = s
        .post(key, "/v1/workers/poll", json!({"handlers": ["lease-of-a"]}))
        .await;
    let lease = leased["data"][0]["lease"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    // The push deliveries above make A's endpoint.
    let endpoints = s
        .get_until(key, "/v1/endpoints", |e| {
            !e["data"].as_array().unwrap().is_empty()
        })
        .await;
    let endpoint = endpoints["data"][0]["id"].as_str().unwrap().to_string();

    let id = |v: &Value, f: &str| v[f].as_str().unwrap().to_string();
    ids.insert("jobs", id(&job, "id"));
    ids.insert("queues", id(&queue, "name"));
    ids.insert("schedules", id(&schedule, "id"));
    ids.insert("cron", id(&cron["data"], "id"));
    ids.insert("target-groups", gid.clone());
    ids.insert("group-members", id(&member, "id"));
    ids.insert("fan-outs", id(&fan_out, "fan_out_id"));
    ids.insert("messages", id(&message, "message_id"));
    ids.insert("signing-secrets", id(&secret, "id"));
    ids.insert("domains", id(&domain, "id"));
    ids.insert("api-keys", id(&api_key, "id"));
    ids.insert("invites", id(&invite, "id"));
    ids.insert("orgs", "default".into());
    ids.insert("people", target);
    ids.insert("endpoints", endpoint);
    ids.insert("lease", lease);
    for (name, value) in &ids {
        if !["orgs", "lease"].contains(name) {
            markers.push(value.clone());
        }
    }
    markers.extend(
        [
            "job-of-a",
            "queue-of-a",
            "schedule-of-a",
            "cron-of-a",
            "group-of-a",
            "member-of-a",
            "message-of-a",
            "secret-of-a",
            "domain-of-a",
            "key-of-a",
            "@a.example",
            "h-of-a",
        ]
        .map(String::from),
    );
    OrgA { ids, markers }
}

/// The document's authenticated operations: (method, path, scope).
fn operations(doc: &Value) -> Vec<(String, String, Option<String>, bool)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(security) = op["security"].as_array() else {
                continue;
            };
            let scope = security
                .iter()
                .find_map(|r| r.get("api_key"))
                .and_then(|s| s[0].as_str())
                .map(str::to_string);
            let body = op["requestBody"]["required"] == true;
            ops.push((method.clone(), path.clone(), scope, body));
        }
    }
    ops
}

fn method(m: &str) -> Method {
    m.to_uppercase().parse().unwrap()
}

fn grants(role: Role, scope: &str) -> bool {
    if scope == "owner" {
        return role == Role::Owner;
    }
    let needed: chronos_proto::Scope = scope.parse().unwrap();
    chronos_server::account::roles::scopes(role)
        .iter()
        .any(|s| s.grants(needed))
}

async fn no_key_or_session_reaches_another_organization(kind: StoreKind) {
    let s = TestServer::start_with(
        kind,
        ServeOptions {
            targets: TargetPolicy {
                allow_private: true,
            },
            ..Default::default()
        },
    )
    .await;
    let a = setup_a(&s).await;
    let (_, doc) = s.get(&s.admin_key, "/v1/openapi.json").await;
    let ops = operations(&doc);
    assert!(ops.len() > 80, "{} operations", ops.len());

    // Organization B: its admin key and a person of each role.
    let b_key = s.other_org_key("org-b").await;
    let mut b_people = Vec::new();
    for role in ROLES {
        let email = format!("{}@b.example", role.as_str());
        b_people.push((role, s.person(&email, "org-b", role).await));
    }

    let mut a_people = Vec::new();
    for role in ROLES {
        let email = format!("{}@a.example", role.as_str());
        a_people.push((role, s.person(&email, "default", role).await));
    }

    let mut walked = 0;
    for (m, template, scope, needs_body) in &ops {
        let has_params = template.contains('{');
        let body = sample_body(m, template, &a);
        if has_params && *needs_body && body.is_none() {
            panic!(
                "the tenancy walk has no sample body for {m} {template}: add one to sample_body"
            );
        }
        let body = body.or_else(|| needs_body.then(|| json!({})));
        // Logging out or changing one's password ends sessions the walk
        // still uses; their own tests cover them.
        if template.starts_with("/v1/auth/") {
            continue;
        }
        let path = a.path(template);
        walked += 1;

        // Another organization's key and people.
        let by_key = s.send(method(m), &b_key, &path, body.clone()).await;
        check_foreign(&a, m, template, &path, "B's admin key", by_key);
        for (role, person) in &b_people {
            let answer = person.send(method(m), &path, body.clone()).await.pair();
            check_foreign(
                &a,
                m,
                template,
                &path,
                &format!("B's {}", role.as_str()),
                answer,
            );
        }

        // A's own people: refused exactly where their role falls short.
        let Some(scope) = scope else { continue };
        for (role, person) in &a_people {
            let role = *role;
            if m == "get" || !grants(role, scope) {
                let answer: chronos_test_support::Answer =
                    person.send(method(m), &path, body.clone()).await;
                if grants(role, scope) {
                    assert_ne!(
                        answer.status,
                        403,
                        "{m} {path} refused A's {}: {}",
                        role.as_str(),
                        answer.body
                    );
                } else {
                    assert_eq!(
                        answer.status,
                        403,
                        "{m} {path} (needs {scope}) let A's {} through: {}",
                        role.as_str(),
                        answer.body
                    );
                }
            }
        }
    }
    assert!(walked > 80, "walked {walked} routes");

    // A's lease survived B's acks and fails: the job still runs.
    let (_, job) = s.get(&s.admin_key, "/v1/jobs?status=running").await;
    assert_eq!(job["data"].as_array().unwrap().len(), 1, "{job}");
}

fn check_foreign(
    a: &OrgA,
    m: &str,
    template: &str,
    path: &str,
    who: &str,
    (status, body): (u16, Value),
) {
    let has_params = template.contains('{');
    // A refusal may repeat the id the request named; nothing else of A's.
    if let Some(marker) = a
        .leaks(&body)
        .filter(|m| status < 400 || !path.contains(m.as_str()))
    {
        panic!("{m} {template} showed {who} A's {marker}: {status} {body}");
    }
    assert!(status < 500, "{m} {template} by {who}: {status} {body}");
    if has_params {
        assert!(
            [403, 404].contains(&status),
            "{m} {template} by {who} on A's resource: {status} {body}"
        );
    }
    if template.starts_with("/v1/leases/") {
        assert!(
            status >= 400,
            "{m} {template} by {who} on A's lease: {status} {body}"
        );
    }
}
