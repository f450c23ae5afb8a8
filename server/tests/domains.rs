//! Domain verification over real HTTP, on both stores, against a real
//! HTTPS server (certificates from a test authority the server is told to
//! trust) and a real DNS server on loopback: seed 004's routes and
//! answers, either challenge verifying, a registrable domain covering its
//! subdomains, ten jobs a day for a domain not verified where the plan
//! requires it, the daily re-check and the lapse after a week of failures.

use chronos_server::push::guard::TargetPolicy;
use chronos_server::push::rechecker;
use chronos_server::push::verifier::{Verifier, VerifierConfig};
use chronos_server::server::DomainOptions;
use chronos_server::server::ServeOptions;
use chronos_test_support::{
    DnsServer, HttpsServer, StoreKind, TestCa, TestServer, assert_error, both_stores,
};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Duration;

both_stores!(
    seed_004_verification_by_either_challenge,
    unverified_domains_take_ten_jobs_a_day,
    verified_domains_are_checked_daily_and_lapse_after_a_week,
);

const WELL_KNOWN: &str = "/.well-known/chronos-verification.txt";

/// A DNS server, an HTTPS server serving `names` (each resolving to
/// loopback), and the options that point a server at both.
struct Net {
    dns: DnsServer,
    https: HttpsServer,
    options: ServeOptions,
}

impl Net {
    async fn start(names: &[&str]) -> Net {
        let ca = TestCa::new();
        let dns = DnsServer::start().await;
        for name in names {
            dns.set_a(name, Ipv4Addr::LOCALHOST);
        }
        let https = HttpsServer::start(&ca, names, Vec::<(String, String)>::new()).await;
        let options = ServeOptions {
            // The HTTPS server is on loopback.
            targets: TargetPolicy {
                allow_private: true,
            },
            domains: DomainOptions {
                dns_servers: vec![dns.addr()],
                extra_root_certs: vec![ca.cert_pem().as_bytes().to_vec()],
                https_port: https.port(),
                // The tests run the daily passes themselves.
                recheck: false,
            },
            ..ServeOptions::default()
        };
        Net {
            dns,
            https,
            options,
        }
    }

    fn verifier(&self) -> Verifier {
        let d = &self.options.domains;
        Verifier::new(VerifierConfig {
            dns_servers: d.dns_servers.clone(),
            policy: self.options.targets,
            extra_root_certs: d.extra_root_certs.clone(),
            https_port: d.https_port,
        })
        .unwrap()
    }
}

async fn add(s: &TestServer, body: Value) -> (u16, Value) {
    s.post(&s.admin_key, "/v1/domains", body).await
}

async fn verify(s: &TestServer, domain: &str) -> (u16, Value) {
    s.post(
        &s.admin_key,
        "/v1/domains/verify",
        json!({ "domain": domain }),
    )
    .await
}

async fn seed_004_verification_by_either_challenge(kind: StoreKind) {
    let net = Net::start(&["api.example.test", "example.test"]).await;
    let s = TestServer::start_with(kind, net.options.clone()).await;

    assert_error(
        &add(&s, json!({})).await,
        400,
        "validation_failed",
        Some("domain"),
    );
    let (_, missing) = add(&s, json!({})).await;
    assert_eq!(missing["error"]["message"], "domain is required");
    assert_error(
        &add(&s, json!({"domain": "not a domain"})).await,
        400,
        "validation_failed",
        Some("domain"),
    );
    assert_error(
        &add(&s, json!({"domain": "10.0.0.1"})).await,
        400,
        "validation_failed",
        Some("domain"),
    );
    // A public suffix fits the document's pattern, and is refused after.
    assert_error(
        &add(&s, json!({"domain": "co.uk"})).await,
        422,
        "validation_failed",
        Some("domain"),
    );

    // A URL is normalized to its host.
    let (status, pending) = add(&s, json!({"domain": "https://API.Example.test/hook?x=1"})).await;
    assert_eq!(status, 201, "{pending}");
    assert_eq!(pending["domain"], "api.example.test");
    assert_eq!(pending["status"], "pending");
    let well_known = &pending["verification"]["well_known"];
    assert_eq!(
        well_known["url"],
        "https://api.example.test/.well-known/chronos-verification.txt"
    );
    let content = well_known["content"].as_str().unwrap().to_string();
    let txt = &pending["verification"]["dns_txt"];
    assert_eq!(txt["name"], "_chronos-verification.api.example.test");
    assert_eq!(txt["type"], "TXT");
    assert_eq!(txt["value"], content.as_str());
    // Asked again: the same domain, the same challenge.
    let (status, again) = add(&s, json!({"domain": "api.example.test"})).await;
    assert_eq!(status, 201);
    assert_eq!(
        (&again["id"], &again["verification"]),
        (&pending["id"], &pending["verification"])
    );

    // Neither challenge met: a 422 saying what each found.
    let failed = verify(&s, "api.example.test").await;
    assert_error(&failed, 422, "verification_failed", None);
    let message = failed.1["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("well-known") && message.contains("dns"),
        "{message}"
    );
    let id = pending["id"].as_str().unwrap();
    let (_, read) = s.get(&s.admin_key, &format!("/v1/domains/{id}")).await;
    assert_eq!(read["status"], "pending");
    assert!(read["last_error"].is_string(), "{read}");

    // The file, served over HTTPS: verified.
    net.https.set_file(WELL_KNOWN, &format!("{content}\n"));
    let (status, verified) = verify(&s, "api.example.test").await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["status"], "verified");
    assert_eq!(verified["method"], "well_known");
    assert!(verified["verified_at"].is_string());
    assert_eq!(verified["last_error"], Value::Null);
    let (status, known) = add(&s, json!({"domain": "api.example.test"})).await;
    assert_eq!(status, 200, "an already verified domain: {known}");
    assert_eq!(known["status"], "verified");

    // The registrable domain by its TXT record.
    let (status, apex) = add(&s, json!({"domain": "example.test"})).await;
    assert_eq!(status, 201);
    let value = apex["verification"]["dns_txt"]["value"].as_str().unwrap();
    net.dns.set_txt("_chronos-verification.example.test", value);
    let (status, apex) = verify(&s, "example.test").await;
    assert_eq!(status, 200, "{apex}");
    assert_eq!(apex["method"], "dns_txt");

    // Listed newest first; read; deleted.
    let (_, list) = s.get(&s.admin_key, "/v1/domains").await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["example.test", "api.example.test"]);
    let reader = s.key(&["jobs:read"]).await;
    let (status, _) = s.get(&reader, &format!("/v1/domains/{id}")).await;
    assert_eq!(status, 200);
    let refused = s
        .post(&reader, "/v1/domains", json!({"domain": "x.example.test"}))
        .await;
    assert_error(&refused, 403, "forbidden", None);
    let (status, deleted) = s
        .send(
            reqwest::Method::DELETE,
            &s.admin_key,
            &format!("/v1/domains/{id}"),
            None,
        )
        .await;
    assert_eq!(
        (status, &deleted["deleted"]),
        (200, &json!(true)),
        "{deleted}"
    );
    let gone = s.get(&s.admin_key, &format!("/v1/domains/{id}")).await;
    assert_error(&gone, 404, "not_found", None);
    assert_error(&verify(&s, "other.test").await, 404, "not_found", None);
}

/// A push job to `url`.
fn push(url: &str) -> Value {
    json!({"name": "hook", "handler": "hook",
           "delivery": {"type": "push", "http": {"url": url, "method": "POST"}}})
}

async fn unverified_domains_take_ten_jobs_a_day(kind: StoreKind) {
    let net = Net::start(&["example.test"]).await;
    let s = TestServer::start_with_test_clock(kind, net.options.clone()).await;
    // The default plan limits nothing: no warning, no limit.
    let unverified = "https://hooks.unverified.test/in";
    for _ in 0..11 {
        let (status, job) = s.post(&s.admin_key, "/v1/jobs", push(unverified)).await;
        assert_eq!(status, 201, "{job}");
    }
    let (status, schedule) = s
        .post(
            &s.admin_key,
            "/v1/schedules",
            json!({"name": "s0", "cron": "0 * * * *", "url": unverified}),
        )
        .await;
    assert_eq!(status, 201, "{schedule}");
    assert_eq!(schedule.get("warning"), None);

    let (status, _) = s
        .send(
            reqwest::Method::PATCH,
            &s.admin_key,
            "/v1/orgs/default",
            Some(json!({"plan": "free"})),
        )
        .await;
    assert_eq!(status, 200);
    // Ten of the day's jobs to the unverified domain, then a 429 naming it.
    for _ in 0..9 {
        let (status, job) = s.post(&s.admin_key, "/v1/jobs", push(unverified)).await;
        assert_eq!(status, 201, "{job}");
    }
    // A batch crossing the limit: the items past it are refused alone; a
    // pull job beside them has no domain.
    let (status, batch) = s
        .post(
            &s.admin_key,
            "/v1/jobs/batch",
            json!({"jobs": [push("https://a.unverified.test/x"), push(unverified),
                            {"name": "pull", "handler": "h"}]}),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    let items = batch["data"].as_array().unwrap();
    assert!(items[0]["job"]["id"].is_string(), "{batch}");
    assert_eq!(
        items[1]["error"]["code"], "unverified_domain_limit",
        "{batch}"
    );
    assert!(items[2]["job"]["id"].is_string(), "{batch}");
    let refused = s
        .post(
            &s.admin_key,
            "/v1/jobs",
            push("https://b.unverified.test/x"),
        )
        .await;
    assert_error(&refused, 429, "unverified_domain_limit", None);
    let error = &refused.1["error"];
    assert_eq!(
        (
            &error["window"],
            &error["limit"],
            &error["used"],
            &error["domain"]
        ),
        (
            &json!("day"),
            &json!(10),
            &json!(10),
            &json!("unverified.test")
        )
    );

    // A verified registrable domain covers its subdomains: no limit.
    let (_, apex) = add(&s, json!({"domain": "example.test"})).await;
    let value = apex["verification"]["dns_txt"]["value"].as_str().unwrap();
    net.dns.set_txt("_chronos-verification.example.test", value);
    assert_eq!(verify(&s, "example.test").await.0, 200);
    for _ in 0..12 {
        let (status, job) = s
            .post(
                &s.admin_key,
                "/v1/jobs",
                push("https://api.example.test/hook"),
            )
            .await;
        assert_eq!(status, 201, "{job}");
    }

    // Schedules and queues pointing at an unverified domain are created,
    // with a warning.
    let (status, schedule) = s
        .post(
            &s.admin_key,
            "/v1/schedules",
            json!({"name": "s1", "cron": "0 * * * *", "url": unverified}),
        )
        .await;
    assert_eq!(status, 201, "{schedule}");
    let warning = schedule["warning"].as_str().unwrap();
    assert!(warning.contains("unverified.test"), "{warning}");
    let (status, schedule) = s
        .post(
            &s.admin_key,
            "/v1/schedules",
            json!({"name": "s2", "cron": "0 * * * *", "url": "https://x.example.test/"}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        schedule.get("warning"),
        None,
        "a verified domain: {schedule}"
    );
    let (status, queue) = s
        .post(
            &s.admin_key,
            "/v1/queues",
            json!({"name": "q", "default_target_url": unverified}),
        )
        .await;
    assert_eq!(status, 201, "{queue}");
    assert!(
        queue["warning"]
            .as_str()
            .unwrap()
            .contains("unverified.test")
    );

    // The next UTC day has ten again.
    s.advance_clock(Duration::from_secs(86_400)).await;
    let (status, job) = s.post(&s.admin_key, "/v1/jobs", push(unverified)).await;
    assert_eq!(status, 201, "{job}");
}

async fn verified_domains_are_checked_daily_and_lapse_after_a_week(kind: StoreKind) {
    let net = Net::start(&["example.test"]).await;
    let s = TestServer::start_with_test_clock(kind, net.options.clone()).await;
    let verifier = net.verifier();
    let (_, apex) = add(&s, json!({"domain": "example.test"})).await;
    let id = apex["id"].as_str().unwrap().to_string();
    let txt = "_chronos-verification.example.test";
    net.dns.set_txt(
        txt,
        apex["verification"]["dns_txt"]["value"].as_str().unwrap(),
    );
    assert_eq!(verify(&s, "example.test").await.0, 200);
    let read = || async { s.get(&s.admin_key, &format!("/v1/domains/{id}")).await.1 };

    // Not due yet: nothing is checked.
    assert_eq!(rechecker::pass(&s.store, &verifier).await.unwrap(), 0);
    // A day on, the record gone: the check fails, the domain stays
    // verified.
    net.dns.remove_txt(txt);
    s.advance_clock(Duration::from_secs(86_401)).await;
    assert_eq!(rechecker::pass(&s.store, &verifier).await.unwrap(), 1);
    let domain = read().await;
    assert_eq!(domain["status"], "verified");
    assert!(
        domain["last_error"].as_str().unwrap().contains("dns"),
        "{domain}"
    );
    // Failing every day for a week: lapsed.
    for day in 2..=8 {
        s.advance_clock(Duration::from_secs(86_401)).await;
        assert_eq!(rechecker::pass(&s.store, &verifier).await.unwrap(), 1);
        let status = read().await["status"].clone();
        let expected = if day < 8 { "verified" } else { "lapsed" };
        assert_eq!(status, expected, "day {day}: failing for {} days", day - 1);
    }
    // The record back: the next daily check verifies it again.
    net.dns.set_txt(
        txt,
        apex["verification"]["dns_txt"]["value"].as_str().unwrap(),
    );
    s.advance_clock(Duration::from_secs(86_401)).await;
    assert_eq!(rechecker::pass(&s.store, &verifier).await.unwrap(), 1);
    let domain = read().await;
    assert_eq!(domain["status"], "verified", "{domain}");
    assert_eq!(domain["last_error"], Value::Null);
}
