//! Organizations, people and roles over real HTTP, on both stores: seed
//! 003's organization, key and invite requests; signup closed and open;
//! sign-in, sessions and CSRF; the organization header; roles; invites by
//! link and by mail through an SMTP server on loopback; rate limits.

use chronos_proto::Role;
use chronos_server::api::auth::Signup;
use chronos_server::server::{AccountOptions, ServeOptions};
use chronos_test_support::people::{PASSWORD, cookie_of};
use chronos_test_support::smtp::SmtpServer;
use chronos_test_support::{StoreKind, TestServer, assert_error, both_stores};
use reqwest::Method;
use serde_json::json;

both_stores!(
    seed_003_orgs_keys_and_invites,
    closed_signup_is_the_instance_administrators,
    sign_in_sessions_and_csrf,
    sign_in_is_rate_limited_and_tells_nothing,
    the_organization_header_picks_one,
    roles_grant_their_scopes_and_no_more,
    owners_are_kept_and_made_by_owners,
    invites_by_link_and_by_mail,
    deleting_an_organization_takes_everything,
    keys_expire_and_keep_to_their_queues,
    open_signup_is_limited_per_client_address,
);

fn open_signup() -> ServeOptions {
    ServeOptions {
        accounts: AccountOptions {
            signup: Signup::Open,
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Seed 003's curl requests, as documented — except that creating a key
/// needs the organization's key.
async fn seed_003_orgs_keys_and_invites(kind: StoreKind) {
    let s = TestServer::start_with(kind, open_signup()).await;
    let created = s
        .anonymous(
            Method::POST,
            "/api/orgs",
            Some(json!({"name": "Mon Org", "slug": "mon-org"})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["slug"], "mon-org");
    assert_eq!(created.body["name"], "Mon Org");
    let org_key = created.body["api_key"]["key"].as_str().unwrap().to_string();
    assert_eq!(created.body["api_key"]["scopes"], json!(["admin"]));

    // The seed's key creation has no Authorization: ours refuses it.
    let anonymous = s
        .anonymous(
            Method::POST,
            "/api/orgs/mon-org/api-keys",
            Some(json!({"name": "production"})),
        )
        .await;
    assert_error(&anonymous.pair(), 401, "unauthorized", None);
    let (status, key) = s
        .post(
            &org_key,
            "/api/orgs/mon-org/api-keys",
            json!({"name": "production"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(key["name"], "production");
    assert!(key["key"].as_str().unwrap().starts_with("chrns_"));
    let production = key["key"].as_str().unwrap().to_string();

    let (status, invite) = s
        .post(
            &production,
            "/api/orgs/mon-org/invite",
            json!({"email": "dev@example.com", "role": "member"}),
        )
        .await;
    assert_eq!(status, 201, "{invite}");
    assert_eq!(invite["email"], "dev@example.com");
    assert_eq!(invite["role"], "member");
    assert_eq!(invite["status"], "pending");
    let url = invite["url"].as_str().unwrap();
    assert!(url.contains("/invite#"), "{url}");
    assert!(url.ends_with(invite["token"].as_str().unwrap()));

    // The key reaches its own organization only.
    let (status, orgs) = s.get(&production, "/api/orgs").await;
    assert_eq!(status, 200);
    assert_eq!(orgs["data"].as_array().unwrap().len(), 1);
    assert_error(
        &s.get(&production, "/api/orgs/default").await,
        404,
        "not_found",
        None,
    );

    let again = s
        .anonymous(
            Method::POST,
            "/v1/orgs",
            Some(json!({"name": "x", "slug": "mon-org"})),
        )
        .await;
    assert_error(&again.pair(), 409, "slug_taken", None);
    for bad in ["Mon-Org", "-mon", "m", "mon_org"] {
        let a = s
            .anonymous(
                Method::POST,
                "/v1/orgs",
                Some(json!({"name": "x", "slug": bad})),
            )
            .await;
        assert_error(&a.pair(), 400, "validation_failed", Some("slug"));
    }
}

async fn closed_signup_is_the_instance_administrators(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let body = json!({"name": "Acme", "slug": "acme"});
    let a = s
        .anonymous(Method::POST, "/v1/orgs", Some(body.clone()))
        .await;
    assert_error(&a.pair(), 401, "unauthorized", None);
    let plain_admin = s.key(&["admin"]).await;
    assert_error(
        &s.post(&plain_admin, "/v1/orgs", body.clone()).await,
        403,
        "signup_closed",
        None,
    );
    // The first-start key is the instance administrator's.
    let (status, created) = s.post(&s.admin_key, "/v1/orgs", body).await;
    assert_eq!(status, 201, "{created}");
    // It manages the new organization, but doesn't reach its data.
    let (status, _) = s.get(&s.admin_key, "/v1/orgs/acme").await;
    assert_eq!(status, 200);
    // Only it may hand out instance:admin.
    let (status, _) = s
        .post(
            &plain_admin,
            "/v1/api-keys",
            json!({"name": "x", "scopes": ["instance:admin"]}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = s
        .post(
            &s.admin_key,
            "/v1/api-keys",
            json!({"name": "x", "scopes": ["instance:admin"]}),
        )
        .await;
    assert_eq!(status, 201);
}

async fn sign_in_sessions_and_csrf(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let ana = s.person("ana@example.com", "default", Role::Member).await;
    let (status, session) = ana.get("/v1/auth/session").await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["user"]["email"], "ana@example.com");
    assert_eq!(session["organizations"][0]["slug"], "default");
    assert_eq!(session["organizations"][0]["role"], "member");

    let job = json!({"name": "j", "handler": "h"});
    // A write with the cookie but without the token, or from elsewhere.
    let mut tokenless = ana.clone();
    tokenless.csrf = String::new();
    let no_token = tokenless
        .send(Method::POST, "/v1/jobs", Some(job.clone()))
        .await;
    assert_error(&no_token.pair(), 403, "csrf_failed", None);
    let elsewhere = ana
        .at("https://evil.example")
        .send(Method::POST, "/v1/jobs", Some(job.clone()))
        .await;
    // Without Origin, Sec-Fetch-Site must say same-origin.
    let nowhere = ana
        .send_with(Method::POST, "/v1/jobs", Some(job.clone()), |r| {
            r.header("sec-fetch-site", "cross-site")
        })
        .await;
    assert_eq!(
        nowhere.status, 201,
        "Origin is the server's own: it decides"
    );
    assert_error(&elsewhere.pair(), 403, "csrf_failed", None);
    let (status, created) = ana.post("/v1/jobs", job.clone()).await;
    assert_eq!(status, 201, "{created}");
    // Reads need no token.
    let (status, _) = ana.get("/v1/jobs").await;
    assert_eq!(status, 200);

    // A second sign-in is a new session; the first still works until it
    // signs out, which ends it alone.
    let again = s.login("ana@example.com", PASSWORD).await;
    assert_ne!(again.cookie, ana.cookie);
    let out = ana.send(Method::POST, "/v1/auth/logout", None).await;
    assert_eq!(out.status, 204, "{}", out.body);
    assert!(cookie_of(&out.headers).is_some_and(|c| c == "chronos_session="));
    assert_error(
        &ana.get("/v1/auth/session").await,
        401,
        "unauthorized",
        None,
    );
    assert_eq!(again.get("/v1/auth/session").await.0, 200);

    // A new password ends every other session.
    let (status, body) = again
        .post(
            "/v1/auth/password",
            json!({"current_password": PASSWORD, "new_password": "password123"}),
        )
        .await;
    assert_error(
        &(status, body),
        422,
        "validation_failed",
        Some("new_password"),
    );
    let third = s.login("ana@example.com", PASSWORD).await;
    let changed = again
        .send(
            Method::POST,
            "/v1/auth/password",
            Some(json!({"current_password": PASSWORD, "new_password": "a much longer secret"})),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.body);
    assert_eq!(third.get("/v1/auth/session").await.0, 401);
    assert_eq!(again.get("/v1/auth/session").await.0, 200);
    assert_eq!(s.try_login("ana@example.com", PASSWORD).await.status, 401);
    s.login("ana@example.com", "a much longer secret").await;
}

async fn sign_in_is_rate_limited_and_tells_nothing(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    s.person("bo@example.com", "default", Role::Viewer).await;
    let wrong = s.try_login("bo@example.com", "not the password").await;
    let unknown = s.try_login("nobody@example.com", "not the password").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body, unknown.body, "the answers tell the cases apart");
    // Ten attempts per account in 15 minutes (the sign-in above was one).
    let mut limited = None;
    for _ in 0..12 {
        let a = s.try_login("bo@example.com", "not the password").await;
        if a.status == 429 {
            limited = Some(a);
            break;
        }
        assert_eq!(a.status, 401);
    }
    let limited = limited.expect("the account's sign-ins were never limited");
    assert_error(&limited.pair(), 429, "rate_limited", None);
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // Even the right password waits; another account does not.
    assert_eq!(s.try_login("bo@example.com", PASSWORD).await.status, 429);
    s.person("cy@example.com", "default", Role::Viewer).await;
}

async fn the_organization_header_picks_one(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    s.other_org_key("second").await;
    s.other_org_key("third").await;
    s.person("dee@example.com", "default", Role::Member).await;
    let dee = s.person("dee@example.com", "second", Role::Viewer).await;
    let (status, body) = dee.get("/v1/jobs").await;
    assert_error(&(status, body), 400, "organization_required", None);
    assert_eq!(dee.in_org("second").get("/v1/jobs").await.0, 200);
    // Viewer in `second`, member in `default`.
    assert_eq!(
        dee.in_org("second")
            .post("/v1/jobs", json!({"name": "j", "handler": "h"}))
            .await
            .0,
        403
    );
    assert_eq!(
        dee.in_org("default")
            .post("/v1/jobs", json!({"name": "j", "handler": "h"}))
            .await
            .0,
        201
    );
    let (status, body) = dee.in_org("third").get("/v1/jobs").await;
    assert_error(&(status, body), 404, "not_found", None);
    let (_, orgs) = dee.get("/v1/orgs").await;
    let slugs: Vec<_> = orgs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].clone())
        .collect();
    assert_eq!(slugs, vec![json!("default"), json!("second")]);
}

async fn roles_grant_their_scopes_and_no_more(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let viewer = s.person("v@example.com", "default", Role::Viewer).await;
    let member = s.person("m@example.com", "default", Role::Member).await;
    let admin = s.person("a@example.com", "default", Role::Admin).await;
    assert_eq!(viewer.get("/v1/jobs").await.0, 200);
    assert_error(
        &viewer
            .post("/v1/jobs", json!({"name": "j", "handler": "h"}))
            .await,
        403,
        "forbidden",
        None,
    );
    assert_eq!(viewer.get("/v1/api-keys").await.0, 403);
    assert_eq!(viewer.get("/v1/signing-secrets").await.0, 403);
    assert_eq!(
        member
            .post("/v1/jobs", json!({"name": "j", "handler": "h"}))
            .await
            .0,
        201
    );
    assert_eq!(member.post("/v1/queues", json!({"name": "q"})).await.0, 403);
    assert_eq!(member.get("/v1/api-keys").await.0, 403);
    assert_eq!(admin.post("/v1/queues", json!({"name": "q"})).await.0, 201);
    let (status, key) = admin
        .post(
            "/v1/api-keys",
            json!({"name": "made by a person", "scopes": ["worker"]}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    // Members see the member list, not the invites.
    assert_eq!(member.get("/v1/orgs/default/members").await.0, 200);
    assert_eq!(member.get("/v1/orgs/default/invites").await.0, 403);
}

async fn owners_are_kept_and_made_by_owners(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let owner = s.person("o@example.com", "default", Role::Owner).await;
    let admin = s.person("a@example.com", "default", Role::Admin).await;
    let (_, members) = owner.get("/v1/orgs/default/members").await;
    let id_of = |email: &str| {
        members["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["email"] == email)
            .unwrap()["user_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (owner_id, admin_id) = (id_of("o@example.com"), id_of("a@example.com"));
    // An admin makes no owner, by invite or by promotion, and can't touch one.
    let (status, body) = admin
        .post(
            "/v1/orgs/default/invites",
            json!({"email": "x@example.com", "role": "owner"}),
        )
        .await;
    assert_error(&(status, body), 403, "owner_only", None);
    let promote = admin
        .send(
            Method::PATCH,
            &format!("/v1/orgs/default/members/{admin_id}"),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_error(&promote.pair(), 403, "owner_only", None);
    let demote = admin
        .send(
            Method::PATCH,
            &format!("/v1/orgs/default/members/{owner_id}"),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_error(&demote.pair(), 403, "owner_only", None);
    // The last owner stays one.
    let last = owner
        .send(
            Method::PATCH,
            &format!("/v1/orgs/default/members/{owner_id}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_error(&last.pair(), 409, "last_owner", None);
    let leave = owner
        .send(
            Method::DELETE,
            &format!("/v1/orgs/default/members/{owner_id}"),
            None,
        )
        .await;
    assert_error(&leave.pair(), 409, "last_owner", None);
    // An owner makes another; then may step down.
    let made = owner
        .send(
            Method::PATCH,
            &format!("/v1/orgs/default/members/{admin_id}"),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.body["role"], "owner");
    let down = owner
        .send(
            Method::PATCH,
            &format!("/v1/orgs/default/members/{owner_id}"),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_eq!(down.status, 200, "{}", down.body);
}

async fn invites_by_link_and_by_mail(kind: StoreKind) {
    let smtp = SmtpServer::start().await;
    let options = ServeOptions {
        accounts: AccountOptions {
            public_url: Some("https://chronos.example.com".parse().unwrap()),
            smtp: Some((smtp.url(), "chronos@example.com".into())),
            ..Default::default()
        },
        ..Default::default()
    };
    let s = TestServer::start_with(kind, options).await;
    let owner = s
        .person("o@example.com", "default", Role::Owner)
        .await
        .at("https://chronos.example.com");
    let (status, invite) = owner
        .post(
            "/v1/orgs/default/invites",
            json!({"email": "New@Example.com", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201, "{invite}");
    assert_eq!(invite["mailed"], true);
    let url = invite["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("https://chronos.example.com/invite#"),
        "{url}"
    );
    let mails = smtp.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(mails[0].to, vec!["New@Example.com".to_string()]);
    assert!(
        mails[0]
            .data
            .contains("Subject: You're invited to Default on Chronos"),
        "{}",
        mails[0].data
    );
    let token = invite["token"].as_str().unwrap();

    // A new person needs a password that passes the policy.
    let weak = s
        .anonymous(
            Method::POST,
            "/v1/invites/accept",
            Some(json!({"token": token, "password": "short"})),
        )
        .await;
    assert_error(&weak.pair(), 422, "validation_failed", Some("password"));
    let accepted = s
        .anonymous(
            Method::POST,
            "/v1/invites/accept",
            Some(json!({"token": token, "name": "Nea", "password": PASSWORD})),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert_eq!(accepted.body["organization"]["role"], "admin");
    let cookie = cookie_of(&accepted.headers).unwrap();
    // Secure, since the public URL is https.
    let set = accepted.headers["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Secure"),
        "{set}"
    );
    assert!(!cookie.is_empty());
    // Single use.
    let twice = s
        .anonymous(
            Method::POST,
            "/v1/invites/accept",
            Some(json!({"token": token, "password": PASSWORD})),
        )
        .await;
    assert_error(&twice.pair(), 404, "not_found", None);
    s.login("new@example.com", PASSWORD).await;

    // Revoked and resent invites: the old link stops working.
    let (_, second) = owner
        .post(
            "/v1/orgs/default/invites",
            json!({"email": "late@example.com"}),
        )
        .await;
    let id = second["id"].as_str().unwrap();
    let (status, resent) = owner
        .post(&format!("/v1/orgs/default/invites/{id}/resend"), json!({}))
        .await;
    assert_eq!(status, 200, "{resent}");
    assert_ne!(resent["token"], second["token"]);
    let old = s
        .anonymous(
            Method::POST,
            "/v1/invites/accept",
            Some(json!({"token": second["token"], "password": PASSWORD})),
        )
        .await;
    assert_eq!(old.status, 404);
    let (status, revoked) = owner
        .post(&format!("/v1/orgs/default/invites/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(revoked["status"], "revoked");
    let late = s
        .anonymous(
            Method::POST,
            "/v1/invites/accept",
            Some(json!({"token": resent["token"], "password": PASSWORD})),
        )
        .await;
    assert_eq!(late.status, 404);
    let (_, list) = owner.get("/v1/orgs/default/invites").await;
    let statuses: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!("revoked"), json!("accepted")]);
    assert_eq!(smtp.messages().len(), 3);
}

async fn deleting_an_organization_takes_everything(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    let (status, created) = s
        .post(
            &s.admin_key,
            "/v1/orgs",
            json!({"name": "Gone", "slug": "gone"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = created["api_key"]["key"].as_str().unwrap().to_string();
    let (status, job) = s
        .post(&key, "/v1/jobs", json!({"name": "j", "handler": "h"}))
        .await;
    assert_eq!(status, 201, "{job}");
    let owner = s.person("o@example.com", "gone", Role::Owner).await;
    let admin = s.person("a@example.com", "gone", Role::Admin).await;
    assert_eq!(
        admin
            .send(Method::DELETE, "/v1/orgs/gone", None)
            .await
            .status,
        403
    );
    assert_eq!(
        s.send(Method::DELETE, &key, "/v1/orgs/gone", None).await.0,
        403,
        "an admin key is no owner"
    );
    let deleted = owner.send(Method::DELETE, "/v1/orgs/gone", None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(s.get(&key, "/v1/jobs").await.0, 401);
    assert!(
        s.store
            .organization_by_slug("gone")
            .await
            .unwrap()
            .is_none()
    );
    // The instance administrator's organization stays.
    let (status, body) = s
        .send(Method::DELETE, &s.admin_key, "/v1/orgs/default", None)
        .await;
    assert_error(&(status, body), 409, "instance_admin_org", None);
}

async fn keys_expire_and_keep_to_their_queues(kind: StoreKind) {
    let s = TestServer::start(kind).await;
    s.make_queue("emails").await;
    let (status, body) = s
        .post(
            &s.admin_key,
            "/v1/api-keys",
            json!({"name": "old", "scopes": ["jobs:write"], "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_error(
        &(status, body),
        422,
        "validation_failed",
        Some("expires_at"),
    );
    let (status, limited) = s
        .post(
            &s.admin_key,
            "/v1/api-keys",
            json!({"name": "emails only", "scopes": ["jobs:write"], "queues": ["emails"],
                   "expires_at": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, 201, "{limited}");
    assert_eq!(limited["queues"], json!(["emails"]));
    let key = limited["key"].as_str().unwrap();
    assert_eq!(
        s.post(
            key,
            "/v1/jobs",
            json!({"name": "j", "handler": "h", "queue": "emails"})
        )
        .await
        .0,
        201
    );
    let (status, body) = s
        .post(key, "/v1/jobs", json!({"name": "j", "handler": "h"}))
        .await;
    assert_error(&(status, body), 403, "queue_not_allowed", None);
    // Its use is recorded.
    let (_, keys) = s.get(&s.admin_key, "/v1/api-keys").await;
    let id = limited["id"].as_str().unwrap();
    let used = s
        .get_until(&s.admin_key, "/v1/api-keys", |keys| {
            keys["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["id"] == id && !k["last_used_at"].is_null())
        })
        .await;
    assert!(keys["data"].is_array() && used["data"].is_array());
}

/// Ten organizations an hour per client address; behind a trusted proxy,
/// the address it reports — and from anyone else, `X-Forwarded-For` is
/// ignored.
async fn open_signup_is_limited_per_client_address(kind: StoreKind) {
    let mut options = open_signup();
    options.accounts.trusted_proxies =
        chronos_server::api::client::TrustedProxies::parse(&["127.0.0.1".into()]).unwrap();
    let s = TestServer::start_with(kind, options).await;
    let create = |n: usize, from: &'static str| {
        let request = s
            .http
            .post(s.url("/v1/orgs"))
            .header("x-forwarded-for", from)
            .json(&json!({"name": "n", "slug": format!("org-{from}-{n}").replace('.', "-")}));
        async move { chronos_test_support::people::answer(request.send().await.unwrap()).await }
    };
    for n in 0..10 {
        assert_eq!(create(n, "203.0.113.7").await.status, 201);
    }
    let limited = create(10, "203.0.113.7").await;
    assert_error(&limited.pair(), 429, "rate_limited", None);
    assert!(limited.headers.contains_key("retry-after"));
    // Another client behind the same proxy is another address.
    assert_eq!(create(0, "198.51.100.1").await.status, 201);

    // Without trusting the proxy, every request is the socket's address.
    let untrusting = TestServer::start_with(kind, open_signup()).await;
    let mut statuses = Vec::new();
    for n in 0..11 {
        let a = untrusting
            .anonymous(
                Method::POST,
                "/v1/orgs",
                Some(json!({"name": "n", "slug": format!("plain-{n}")})),
            )
            .await;
        statuses.push(a.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(statuses[10], 429);
}
