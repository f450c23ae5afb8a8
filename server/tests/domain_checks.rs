//! Domain verification's checks against real servers on loopback: a DNS
//! server answering for the test's domain (its TXT record, and the A record
//! that sends the well-known fetch to 127.0.0.1) and an HTTPS server with a
//! certificate from the test's own CA.

use chronos_server::account::domains::{Challenge, new_token};
use chronos_server::push::guard::TargetPolicy;
use chronos_server::push::verifier::{CheckFailed, Method, Verifier, VerifierConfig};
use chronos_test_support::{DnsServer, HttpsServer, TestCa};
use std::net::Ipv4Addr;

const DOMAIN: &str = "shop.example.test";
const FILE: &str = "/.well-known/chronos-verification.txt";

/// A DNS server that sends `DOMAIN` to loopback, an HTTPS server for it
/// with `files`, and a verifier that trusts `ca` and asks that DNS server.
struct World {
    dns: DnsServer,
    https: HttpsServer,
    verifier: Verifier,
    challenge: Challenge,
}

async fn world(files: &[(&str, &str)], allow_private: bool) -> World {
    let ca = TestCa::new();
    let https = HttpsServer::start(&ca, &[DOMAIN], files.iter().copied()).await;
    world_with(ca, https, allow_private).await
}

async fn world_with(ca: TestCa, https: HttpsServer, allow_private: bool) -> World {
    let dns = DnsServer::start().await;
    dns.set_a(DOMAIN, Ipv4Addr::LOCALHOST);
    let verifier = Verifier::new(VerifierConfig {
        dns_servers: vec![dns.addr()],
        policy: TargetPolicy { allow_private },
        extra_root_certs: vec![ca.cert_pem().as_bytes().to_vec()],
        https_port: https.port(),
    })
    .unwrap();
    World {
        dns,
        https,
        verifier,
        challenge: Challenge::new(DOMAIN, new_token()),
    }
}

impl World {
    async fn check(&self) -> Result<Method, CheckFailed> {
        self.verifier
            .check(&self.challenge.domain, &self.challenge.token)
            .await
    }
}

#[tokio::test]
async fn the_well_known_file_verifies() {
    let w = world(&[], true).await;
    w.https
        .set_file(FILE, &format!("{}\n", w.challenge.content()));
    assert_eq!(w.check().await, Ok(Method::WellKnown));
    assert_eq!(w.https.requests(), vec![FILE.to_string()]);
}

#[tokio::test]
async fn the_txt_record_verifies() {
    let w = world(&[], true).await;
    w.dns
        .set_txt(&w.challenge.dns_name(), &w.challenge.dns_value());
    assert_eq!(w.check().await, Ok(Method::DnsTxt));
}

#[tokio::test]
async fn one_matching_txt_record_among_others_verifies() {
    let w = world(&[], true).await;
    let name = w.challenge.dns_name();
    w.dns.set_txt(&name, "v=spf1 -all");
    w.dns
        .add_txt(&name, &format!("  {}  ", w.challenge.dns_value()));
    w.dns.add_txt(&name, "chronos-verification=someone-else");
    assert_eq!(w.check().await, Ok(Method::DnsTxt));
}

#[tokio::test]
async fn failing_both_says_why_for_each() {
    let w = world(&[], true).await;
    let failed = w.check().await.unwrap_err();
    let url = w.challenge.well_known_url();
    assert_eq!(failed.well_known, format!("{url} answered 404"));
    assert_eq!(
        failed.dns,
        "no TXT record _chronos-verification.shop.example.test"
    );
    assert_eq!(
        failed.to_string(),
        format!(
            "well-known: {url} answered 404; dns: no TXT record _chronos-verification.shop.example.test"
        )
    );
}

#[tokio::test]
async fn other_content_does_not_verify() {
    let w = world(&[], true).await;
    let other = Challenge::new(DOMAIN, new_token());
    w.https.set_file(FILE, &other.content());
    w.dns.set_txt(&w.challenge.dns_name(), &other.dns_value());
    let failed = w.check().await.unwrap_err();
    assert!(
        failed.well_known.contains("answered 200 but not with")
            && failed.well_known.contains(&w.challenge.content()),
        "{failed}"
    );
    assert!(
        failed
            .dns
            .starts_with("no TXT record _chronos-verification.shop.example.test is"),
        "{failed}"
    );
    // The content must be all there is, besides surrounding whitespace.
    w.https
        .set_file(FILE, &format!("{} extra", w.challenge.content()));
    assert!(w.check().await.is_err());
}

#[tokio::test]
async fn a_re_check_sees_the_record_and_file_as_they_are_now() {
    let w = world(&[], true).await;
    let name = w.challenge.dns_name();
    w.dns.set_txt(&name, "chronos-verification=old");
    assert!(w.check().await.is_err());
    w.dns.set_txt(&name, &w.challenge.dns_value());
    assert_eq!(w.check().await, Ok(Method::DnsTxt));
    w.dns.remove_txt(&name);
    assert!(w.check().await.is_err());

    w.https.set_file(FILE, &w.challenge.content());
    assert_eq!(w.check().await, Ok(Method::WellKnown));
    w.https.remove_file(FILE);
    let failed = w.check().await.unwrap_err();
    assert!(failed.well_known.ends_with("answered 404"), "{failed}");
}

#[tokio::test]
async fn an_untrusted_certificate_does_not_verify() {
    let trusted = TestCa::new();
    let stranger = TestCa::new();
    let https = HttpsServer::start(&stranger, &[DOMAIN], [(FILE, "")]).await;
    let w = world_with(trusted, https, true).await;
    w.https.set_file(FILE, &w.challenge.content());
    let failed = w.check().await.unwrap_err();
    assert!(failed.well_known.contains("certificate"), "{failed}");
    assert!(w.https.requests().is_empty());
}

#[tokio::test]
async fn a_certificate_for_another_name_does_not_verify() {
    let ca = TestCa::new();
    let https = HttpsServer::start(&ca, &["other.example.test"], [(FILE, "")]).await;
    let w = world_with(ca, https, true).await;
    w.https.set_file(FILE, &w.challenge.content());
    let failed = w.check().await.unwrap_err();
    assert!(failed.well_known.contains("certificate"), "{failed}");
}

#[tokio::test]
async fn a_private_address_is_refused_unless_the_policy_allows_it() {
    let refused = world(&[], false).await;
    refused.https.set_file(FILE, &refused.challenge.content());
    let failed = refused.check().await.unwrap_err();
    assert!(failed.well_known.contains("loopback"), "{failed}");
    assert!(refused.https.requests().is_empty());

    let allowed = world(&[], true).await;
    allowed.https.set_file(FILE, &allowed.challenge.content());
    assert_eq!(allowed.check().await, Ok(Method::WellKnown));
}

#[tokio::test]
async fn the_txt_record_verifies_even_where_the_file_is_refused() {
    // DNS proves ownership without the server calling anyone.
    let w = world(&[], false).await;
    w.dns
        .set_txt(&w.challenge.dns_name(), &w.challenge.dns_value());
    assert_eq!(w.check().await, Ok(Method::DnsTxt));
}

#[tokio::test]
async fn a_big_body_does_not_verify() {
    let w = world(&[], true).await;
    let big = format!("{}{}", w.challenge.content(), " ".repeat(5000));
    w.https.set_file(FILE, &big);
    let failed = w.check().await.unwrap_err();
    assert!(failed.well_known.ends_with("more than 4 KiB"), "{failed}");
}

#[tokio::test]
async fn a_domain_that_does_not_resolve_says_so() {
    let w = world(&[], true).await;
    w.dns.remove_a(DOMAIN);
    let failed = w.check().await.unwrap_err();
    assert!(
        failed.well_known.contains("could not be fetched"),
        "{failed}"
    );
}

#[test]
fn methods_are_named_in_snake_case() {
    assert_eq!(
        serde_json::to_string(&Method::WellKnown).unwrap(),
        r#""well_known""#
    );
    assert_eq!(
        serde_json::to_string(&Method::DnsTxt).unwrap(),
        r#""dns_txt""#
    );
    assert_eq!(
        serde_json::from_str::<Method>(r#""dns_txt""#).unwrap(),
        Method::DnsTxt
    );
    assert_eq!(Method::WellKnown.as_str(), "well_known");
}

#[tokio::test]
async fn a_name_server_that_does_not_answer_costs_no_more_than_the_timeouts() {
    // Takes queries and never answers.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let verifier = Verifier::new(VerifierConfig {
        dns_servers: vec![silent.local_addr().unwrap()],
        policy: TargetPolicy {
            allow_private: true,
        },
        ..VerifierConfig::default()
    })
    .unwrap();
    let started = std::time::Instant::now();
    let failed = verifier.check(DOMAIN, &new_token()).await.unwrap_err();
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(11), "{took:?}");
    assert!(
        failed
            .dns
            .contains("_chronos-verification.shop.example.test"),
        "{failed}"
    );
}
