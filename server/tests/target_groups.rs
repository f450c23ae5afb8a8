//! Target groups over real HTTP (seed 004's `/v1/target-groups`), on both
//! stores: the requests and answers as the seed documents them, its error
//! messages, scopes, sensitive headers never shown, a queue's default group
//! (which keeps the group from being deleted), and nothing of one
//! organization reached through another. What a publish naming a group does
//! is `fan_out.rs`.

mod common;

use chronos_test_support::both_stores;
use common::{StoreKind, TestServer, assert_error};
use reqwest::Method;
use serde_json::{Value, json};

both_stores!(
    a_group_and_its_members_are_made_as_seed_004_shows,
    bad_groups_and_members_get_the_seeds_errors,
    groups_are_read_with_jobs_read_and_managed_with_admin,
    a_group_a_queue_names_is_kept,
    another_organizations_groups_are_not_found,
);

async fn group(s: &TestServer, name: &str) -> Value {
    let (status, group) = s
        .post(&s.admin_key, "/v1/target-groups", json!({"name": name}))
        .await;
    assert_eq!(status, 201, "{group}");
    group
}

async fn a_group_and_its_members_are_made_as_seed_004_shows(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let made = group(&s, "regional-webhooks").await;
    assert_eq!(made["name"], "regional-webhooks");
    assert!(made["id"].is_string() && made["created_at"].is_string());
    assert_eq!(made["created_at"], made["updated_at"]);
    let id = made["id"].as_str().unwrap();

    let (status, got) = s
        .get(&s.admin_key, &format!("/v1/target-groups/{id}"))
        .await;
    assert_eq!((status, &got), (200, &made));
    let (status, list) = s.get(&s.admin_key, "/v1/target-groups").await;
    assert_eq!(status, 200);
    assert_eq!(list["data"], json!([made.clone()]));

    // Renamed: the name changes, and `updated_at` with it.
    let (status, renamed) = s
        .send(
            Method::PATCH,
            &s.admin_key,
            &format!("/v1/target-groups/{id}"),
            Some(json!({"name": "webhooks"})),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["name"], "webhooks");
    assert_eq!(renamed["created_at"], made["created_at"]);

    // A member, its sensitive headers redacted in every answer.
    let members = format!("/v1/target-groups/{id}/members");
    let (status, member) = s
        .post(
            &s.admin_key,
            &members,
            json!({"target_url": "https://eu.example.com/hook", "method": "PUT",
                   "headers": {"Authorization": "Bearer s3cr3t", "X-Region": "eu",
                               "X-Webhook-Token": "t0k3n"}}),
        )
        .await;
    assert_eq!(status, 201, "{member}");
    assert_eq!(member["target_url"], "https://eu.example.com/hook");
    assert_eq!(member["method"], "PUT");
    assert_eq!(
        member["headers"],
        json!({"Authorization": "***redacted***", "X-Region": "eu",
               "X-Webhook-Token": "***redacted***"})
    );
    assert!(member["id"].is_string() && member["created_at"].is_string());
    // The method defaults to POST.
    let (status, second) = s
        .post(
            &s.admin_key,
            &members,
            json!({"target_url": "https://us.example.com/hook"}),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["method"], "POST");
    assert_eq!(second["headers"], json!({}));

    let (status, listed) = s.get(&s.admin_key, &members).await;
    assert_eq!(status, 200);
    assert_eq!(listed["data"], json!([member.clone(), second.clone()]));

    // Removed once; the second time it is not found.
    let one = format!("{members}/{}", member["id"].as_str().unwrap());
    let (status, removed) = s.send(Method::DELETE, &s.admin_key, &one, None).await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["deleted"], true);
    let again = s.send(Method::DELETE, &s.admin_key, &one, None).await;
    assert_error(&again, 404, "not_found", None);
    let (_, listed) = s.get(&s.admin_key, &members).await;
    assert_eq!(listed["data"], json!([second]));

    // Deleted with its members.
    let path = format!("/v1/target-groups/{id}");
    let (status, gone) = s.send(Method::DELETE, &s.admin_key, &path, None).await;
    assert_eq!(status, 200, "{gone}");
    assert_eq!(gone, json!({"id": id, "deleted": true}));
    assert_error(&s.get(&s.admin_key, &path).await, 404, "not_found", None);
    assert_error(&s.get(&s.admin_key, &members).await, 404, "not_found", None);
}

async fn bad_groups_and_members_get_the_seeds_errors(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let name_rule = "name is required (max 200 chars)";
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(201)}),
    ] {
        let answer = s
            .post(&s.admin_key, "/v1/target-groups", body.clone())
            .await;
        assert_error(&answer, 400, "validation_failed", None);
        assert_eq!(answer.1["error"]["message"], name_rule, "{body}");
    }
    let answer = s
        .post(
            &s.admin_key,
            "/v1/target-groups",
            json!({"name": "g", "colour": 1}),
        )
        .await;
    assert_error(&answer, 400, "unknown_field", Some("colour"));
    // 200 characters is the most.
    group(&s, &"x".repeat(200)).await;

    let made = group(&s, "regional-webhooks").await;
    let taken = s
        .post(
            &s.admin_key,
            "/v1/target-groups",
            json!({"name": "regional-webhooks"}),
        )
        .await;
    assert_error(&taken, 409, "target_group_exists", None);
    assert_eq!(
        taken.1["error"]["message"],
        "A target group with this name already exists"
    );
    let other = group(&s, "other").await;
    let rename = s
        .send(
            Method::PATCH,
            &s.admin_key,
            &format!("/v1/target-groups/{}", other["id"].as_str().unwrap()),
            Some(json!({"name": "regional-webhooks"})),
        )
        .await;
    assert_error(&rename, 409, "target_group_exists", None);

    let members = format!("/v1/target-groups/{}/members", made["id"].as_str().unwrap());
    for (body, status, code, message) in [
        (
            json!({}),
            400,
            "validation_failed",
            "target_url is required",
        ),
        (
            json!({"target_url": ""}),
            400,
            "validation_failed",
            "target_url is required",
        ),
        (
            json!({"target_url": "not a url"}),
            400,
            "validation_failed",
            "Invalid target_url",
        ),
        (
            json!({"target_url": "http://eu.example.com/hook"}),
            400,
            "validation_failed",
            "Only HTTPS target_urls are allowed",
        ),
        (
            json!({"target_url": "https://eu.example.com/hook", "method": "TRACE"}),
            400,
            "validation_failed",
            "method must be one of: GET, POST, PUT, PATCH, DELETE",
        ),
        (
            json!({"target_url": "https://eu.example.com/hook",
                   "headers": {"Authorization": "***redacted***"}}),
            422,
            "validation_failed",
            "",
        ),
        (
            json!({"target_url": "https://127.0.0.1/hook"}),
            422,
            "ssrf_blocked",
            "",
        ),
        (
            json!({"target_url": "https://169.254.169.254/latest"}),
            422,
            "ssrf_blocked",
            "",
        ),
    ] {
        let answer = s.post(&s.admin_key, &members, body.clone()).await;
        assert_error(&answer, status, code, None);
        if !message.is_empty() {
            assert_eq!(answer.1["error"]["message"], message, "{body}");
        }
    }
    let (_, listed) = s.get(&s.admin_key, &members).await;
    assert_eq!(listed["data"], json!([]), "nothing refused was added");
}

async fn groups_are_read_with_jobs_read_and_managed_with_admin(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let made = group(&s, "g").await;
    let id = made["id"].as_str().unwrap();
    let members = format!("/v1/target-groups/{id}/members");
    let reader = s.key(&["jobs:read"]).await;
    let writer = s.key(&["jobs:write"]).await;

    assert_eq!(s.get(&reader, "/v1/target-groups").await.0, 200);
    assert_eq!(
        s.get(&reader, &format!("/v1/target-groups/{id}")).await.0,
        200
    );
    assert_eq!(s.get(&reader, &members).await.0, 200);
    let worker = s.key(&["worker"]).await;
    assert_error(
        &s.get(&worker, "/v1/target-groups").await,
        403,
        "forbidden",
        None,
    );

    for key in [&reader, &writer] {
        let made = s.post(key, "/v1/target-groups", json!({"name": "h"})).await;
        assert_error(&made, 403, "forbidden", None);
        let added = s
            .post(key, &members, json!({"target_url": "https://a.example/x"}))
            .await;
        assert_error(&added, 403, "forbidden", None);
        let path = format!("/v1/target-groups/{id}");
        let renamed = s
            .send(Method::PATCH, key, &path, Some(json!({"name": "i"})))
            .await;
        assert_error(&renamed, 403, "forbidden", None);
        let deleted = s.send(Method::DELETE, key, &path, None).await;
        assert_error(&deleted, 403, "forbidden", None);
    }
    let none = s.get("chrns_nope", "/v1/target-groups").await;
    assert_error(&none, 401, "unauthorized", None);
}

async fn a_group_a_queue_names_is_kept(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let made = group(&s, "fans").await;
    let id = made["id"].as_str().unwrap();
    let (status, queue) = s
        .post(
            &s.admin_key,
            "/v1/queues",
            json!({"name": "broadcast", "default_target_group_id": id}),
        )
        .await;
    assert_eq!(status, 201, "{queue}");
    assert_eq!(queue["default_target_group_id"], id);
    let (_, got) = s.get(&s.admin_key, "/v1/queues/broadcast").await;
    assert_eq!(got["default_target_group_id"], id);

    let path = format!("/v1/target-groups/{id}");
    let refused = s.send(Method::DELETE, &s.admin_key, &path, None).await;
    assert_error(&refused, 409, "target_group_in_use", None);
    assert!(
        refused.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("broadcast"),
        "{}",
        refused.1
    );

    // The queue lets go of it: then it can go.
    let (status, changed) = s
        .send(
            Method::PATCH,
            &s.admin_key,
            "/v1/queues/broadcast",
            Some(json!({"default_target_group_id": null})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["default_target_group_id"], Value::Null);
    let (status, _) = s.send(Method::DELETE, &s.admin_key, &path, None).await;
    assert_eq!(status, 200);

    // A queue can't name a group that is gone, or none at all.
    for missing in [id, "tg_1"] {
        let answer = s
            .post(
                &s.admin_key,
                "/v1/queues",
                json!({"name": "q", "default_target_group_id": missing}),
            )
            .await;
        assert_error(&answer, 404, "not_found", None);
        assert_eq!(
            answer.1["error"]["message"],
            format!("default_target_group_id not found: {missing}")
        );
    }
}

async fn another_organizations_groups_are_not_found(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let ours = group(&s, "ours").await;
    let id = ours["id"].as_str().unwrap();
    let theirs = s.other_org_key("acme").await;

    let path = format!("/v1/target-groups/{id}");
    let members = format!("{path}/members");
    assert_error(&s.get(&theirs, &path).await, 404, "not_found", None);
    assert_error(&s.get(&theirs, &members).await, 404, "not_found", None);
    let added = s
        .post(
            &theirs,
            &members,
            json!({"target_url": "https://a.example/x"}),
        )
        .await;
    assert_error(&added, 404, "not_found", None);
    let renamed = s
        .send(Method::PATCH, &theirs, &path, Some(json!({"name": "mine"})))
        .await;
    assert_error(&renamed, 404, "not_found", None);
    let deleted = s.send(Method::DELETE, &theirs, &path, None).await;
    assert_error(&deleted, 404, "not_found", None);
    let (_, list) = s.get(&theirs, "/v1/target-groups").await;
    assert_eq!(list["data"], json!([]));
    // Nor can their queue name it.
    let answer = s
        .post(
            &theirs,
            "/v1/queues",
            json!({"name": "q", "default_target_group_id": id}),
        )
        .await;
    assert_error(&answer, 404, "not_found", None);
    // The same name is theirs to use.
    let (status, _) = s
        .post(&theirs, "/v1/target-groups", json!({"name": "ours"}))
        .await;
    assert_eq!(status, 201);
    // Ours is untouched.
    let (status, still) = s.get(&s.admin_key, &path).await;
    assert_eq!((status, still), (200, ours));
}
