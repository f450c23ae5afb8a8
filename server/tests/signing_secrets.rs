//! Signing secrets, on both stores: created and rotated over the API (the
//! value shown then only), the old value signing too within the rotation
//! window, and the signature itself checked against an HMAC-SHA256 written
//! here from SHA-256 alone.

mod common;

use chronos_proto::signature as sign;
use chronos_test_support::both_stores;
use common::{StoreKind, TestServer, assert_error, hmac_sha256};
use serde_json::json;
use uuid::Uuid;

both_stores!(
    secrets_are_created_listed_and_rotated,
    secrets_are_checked_and_kept_to_their_organization,
    a_rotation_window_signs_with_both_values,
    a_push_job_names_its_signing_secret,
);

async fn secrets_are_created_listed_and_rotated(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let (status, created) = s
        .post(
            &s.admin_key,
            "/v1/signing-secrets",
            json!({"name": "billing"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let value = created["secret"].as_str().unwrap().to_string();
    assert!(
        value.starts_with("whsec_") && value.len() == 6 + 64,
        "{value}"
    );
    assert_eq!(created["name"], "billing");
    assert!(created["rotated_at"].is_null());
    let id = created["id"].as_str().unwrap().to_string();

    // Listed and read without the value.
    let (_, list) = s.get(&s.admin_key, "/v1/signing-secrets").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("secret").is_none(), "{list}");
    let (status, got) = s
        .get(&s.admin_key, &format!("/v1/signing-secrets/{id}"))
        .await;
    assert_eq!(status, 200);
    assert!(got.get("secret").is_none());
    assert_eq!(got["id"], created["id"]);

    // Rotate with the default window: a new value; the old one signs for 24 h.
    let (status, rotated) = s
        .post_empty(&s.admin_key, &format!("/v1/signing-secrets/{id}/rotate"))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_value = rotated["secret"].as_str().unwrap();
    assert_ne!(new_value, value);
    assert!(!rotated["rotated_at"].is_null());
    let until =
        chrono::DateTime::parse_from_rfc3339(rotated["previous_expires_at"].as_str().unwrap())
            .unwrap();
    let ahead = until.to_utc() - chrono::Utc::now();
    assert!(
        ahead > chrono::TimeDelta::hours(23) && ahead <= chrono::TimeDelta::hours(24),
        "{ahead}"
    );
    // No window: only the new value signs.
    let (status, rotated) = s
        .post(
            &s.admin_key,
            &format!("/v1/signing-secrets/{id}/rotate"),
            json!({"window_seconds": 0}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert!(rotated["previous_expires_at"].is_null(), "{rotated}");
}

async fn secrets_are_checked_and_kept_to_their_organization(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let answer = s
        .post(&s.admin_key, "/v1/signing-secrets", json!({"label": "x"}))
        .await;
    assert_error(&answer, 400, "unknown_field", Some("label"));
    let answer = s
        .post(&s.admin_key, "/v1/signing-secrets", json!({"name": " "}))
        .await;
    assert_error(&answer, 400, "validation_failed", Some("name"));
    let writer = s.key(&["jobs:write"]).await;
    let answer = s.post(&writer, "/v1/signing-secrets", json!({})).await;
    assert_error(&answer, 403, "forbidden", None);

    let (_, created) = s.post(&s.admin_key, "/v1/signing-secrets", json!({})).await;
    assert_eq!(created["name"], "signing secret");
    let id = created["id"].as_str().unwrap();
    let answer = s
        .post(
            &s.admin_key,
            &format!("/v1/signing-secrets/{id}/rotate"),
            json!({"window_seconds": 604_801}),
        )
        .await;
    assert_error(&answer, 400, "validation_failed", Some("window_seconds"));
    let missing = Uuid::now_v7();
    let answer = s
        .post_empty(
            &s.admin_key,
            &format!("/v1/signing-secrets/{missing}/rotate"),
        )
        .await;
    assert_error(&answer, 404, "not_found", None);
    let answer = s.get(&s.admin_key, "/v1/signing-secrets/nope").await;
    assert_error(&answer, 404, "not_found", None);
    // Another organization sees none of it.
    let other = s.other_org_key("other").await;
    let answer = s.get(&other, &format!("/v1/signing-secrets/{id}")).await;
    assert_error(&answer, 404, "not_found", None);
    let (_, list) = s.get(&other, "/v1/signing-secrets").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
}

async fn a_rotation_window_signs_with_both_values(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let (_, created) = s.post(&s.admin_key, "/v1/signing-secrets", json!({})).await;
    let old = created["secret"].as_str().unwrap().to_string();
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let (_, rotated) = s
        .post_empty(&s.admin_key, &format!("/v1/signing-secrets/{id}/rotate"))
        .await;
    let new = rotated["secret"].as_str().unwrap().to_string();

    let org = s
        .store
        .organization_by_slug("default")
        .await
        .unwrap()
        .unwrap()
        .id;
    let record = s.store.signing_secret(org, id).await.unwrap().unwrap();
    let values = record.signing_values(chronos_proto::Timestamp::now());
    assert_eq!(values, vec![new.as_str(), old.as_str()]);

    let body = br#"{"handler":"send-email","payload":{"to":"ada"},"job_id":"j","attempt":1}"#;
    let header = sign::signature(&values, 1_764_000_000, body);
    let mut message = b"1764000000.".to_vec();
    message.extend_from_slice(body);
    let expected: Vec<String> = [&new, &old]
        .iter()
        .map(|v| format!("v1={}", hex::encode(hmac_sha256(v.as_bytes(), &message))))
        .collect();
    assert_eq!(header, expected.join(","));
    // A receiver holding either value accepts it, within five minutes.
    assert!(sign::verify(
        &header,
        "1764000000",
        body,
        &old,
        1_764_000_200
    ));
    assert!(sign::verify(
        &header,
        "1764000000",
        body,
        &new,
        1_764_000_200
    ));
    assert!(!sign::verify(
        &header,
        "1764000000",
        body,
        &new,
        1_764_000_400
    ));
}

async fn a_push_job_names_its_signing_secret(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let (_, created) = s.post(&s.admin_key, "/v1/signing-secrets", json!({})).await;
    let id = created["id"].clone();
    let push = |secret: serde_json::Value| {
        json!({"name": "n", "handler": "h",
               "delivery": {"type": "push", "http": {"url": "https://93.184.216.34/hook"},
                            "signing_secret_id": secret}})
    };
    let (status, job) = s.post(&s.admin_key, "/v1/jobs", push(id.clone())).await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["delivery"]["signing_secret_id"], id);
    let (_, read) = s
        .get(
            &s.admin_key,
            &format!("/v1/jobs/{}", job["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(read["delivery"], job["delivery"]);

    let answer = s
        .post(&s.admin_key, "/v1/jobs", push(json!(Uuid::now_v7())))
        .await;
    // A secret that does not exist fits the schema, but not the rule that
    // it is the organization's (422).
    assert_error(
        &answer,
        422,
        "validation_failed",
        Some("delivery.signing_secret_id"),
    );
    // Another organization's secret is not this one's to use.
    let other = s.other_org_key("other").await;
    let answer = s.post(&other, "/v1/jobs", push(id.clone())).await;
    assert_error(
        &answer,
        422,
        "validation_failed",
        Some("delivery.signing_secret_id"),
    );
    // Pull jobs are not signed: the schema's pull delivery has only `type`.
    let answer = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            json!({"name": "n", "handler": "h",
                   "delivery": {"type": "pull", "signing_secret_id": id}}),
        )
        .await;
    assert_error(
        &answer,
        400,
        "unknown_field",
        Some("delivery.signing_secret_id"),
    );
}
