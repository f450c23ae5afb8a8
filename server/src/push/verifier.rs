//! The network half of domain verification: does `domain` publish its
//! challenge (`crate::account::domains::Challenge`)? Two ways, tried at
//! once, either one enough: the well-known file over HTTPS, and a TXT
//! record.
//!
//! The HTTPS request goes out as push delivery's do, through the SSRF
//! guard (a customer must not make the server fetch from its own network
//! by claiming a domain that resolves there), with no redirects: the file
//! must be served by the domain itself. Nothing is cached between checks,
//! so a re-check sees a record or file just changed.
//!
//! It lives beside push delivery rather than with accounts because it is an
//! outbound client like delivery, sharing its guard.

use super::guard::{self, GuardedResolver, TargetPolicy};
use crate::account::domains::Challenge;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{ResolverBuilder, TokioResolver};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// A DNS answer is waited for this long.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// Each try at a name server; two tries fit in [`DNS_TIMEOUT`].
const DNS_TRY_TIMEOUT: Duration = Duration::from_secs(2);
/// The whole well-known fetch: connecting, TLS, the answer and its body.
const HTTPS_TIMEOUT: Duration = Duration::from_secs(10);
/// The file holds one short line; a bigger body is not the challenge.
const MAX_BODY: usize = 4 * 1024;

/// Where and how the verifier looks.
#[derive(Clone, Debug)]
pub struct VerifierConfig {
    /// Name servers to ask, UDP and TCP, instead of the system's
    /// (`/etc/resolv.conf`); empty: the system's. When set, host names of
    /// the well-known URL are resolved through them too.
    pub dns_servers: Vec<SocketAddr>,
    pub policy: TargetPolicy,
    /// PEM certificates trusted besides the web PKI (tests' own CA).
    pub extra_root_certs: Vec<Vec<u8>>,
    /// The port the well-known file is fetched from (443; tests point it
    /// at a loopback server).
    pub https_port: u16,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            dns_servers: Vec::new(),
            policy: TargetPolicy::default(),
            extra_root_certs: Vec::new(),
            https_port: 443,
        }
    }
}

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error("reading the system's DNS configuration failed: {0}")]
    SystemDns(#[source] NetError),
    #[error("building the DNS resolver failed: {0}")]
    Resolver(#[source] NetError),
    #[error("an extra root certificate is not PEM: {0}")]
    Certificate(#[source] reqwest::Error),
    #[error("building the HTTP client failed: {0}")]
    Client(#[source] reqwest::Error),
}

/// Which challenge proved the domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    WellKnown,
    DnsTxt,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::WellKnown => "well_known",
            Method::DnsTxt => "dns_txt",
        }
    }
}

/// Neither challenge passed; why not, for each, in words for the customer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("well-known: {well_known}; dns: {dns}")]
pub struct CheckFailed {
    pub well_known: String,
    pub dns: String,
}

/// Checks domains' challenges. One per server: its HTTP client and
/// resolver are shared by every check.
pub struct Verifier {
    client: reqwest::Client,
    resolver: Arc<TokioResolver>,
    policy: TargetPolicy,
}

impl Verifier {
    pub fn new(config: VerifierConfig) -> Result<Verifier, VerifierError> {
        let resolver = Arc::new(resolver(&config.dns_servers)?);
        let mut guarded = GuardedResolver::new(config.policy).on_port(config.https_port);
        // With the system's name servers, hosts resolve as push delivery's
        // do; with chosen ones, through them (a test's server names hosts).
        if !config.dns_servers.is_empty() {
            guarded = guarded.through(resolver.clone());
        }
        let mut roots = Vec::new();
        for pem in &config.extra_root_certs {
            roots.extend(
                reqwest::Certificate::from_pem_bundle(pem).map_err(VerifierError::Certificate)?,
            );
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .dns_resolver(Arc::new(guarded))
            .tls_certs_merge(roots)
            .connect_timeout(HTTPS_TIMEOUT)
            .timeout(HTTPS_TIMEOUT)
            // No pooled connections: a re-check connects again, to whatever
            // the name resolves to now.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("Chronos/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(VerifierError::Client)?;
        Ok(Verifier {
            client,
            resolver,
            policy: config.policy,
        })
    }

    /// Whether `domain` (normalized) publishes `token`'s challenge, by
    /// either method; the first to pass answers.
    pub async fn check(&self, domain: &str, token: &str) -> Result<Method, CheckFailed> {
        let challenge = Challenge::new(domain, token);
        let well_known = self.well_known(&challenge);
        let dns = self.dns_txt(&challenge);
        tokio::pin!(well_known, dns);
        let mut well_known_failed: Option<String> = None;
        let mut dns_failed: Option<String> = None;
        loop {
            tokio::select! {
                passed = &mut well_known, if well_known_failed.is_none() => match passed {
                    Ok(()) => return Ok(Method::WellKnown),
                    Err(why) => well_known_failed = Some(why),
                },
                passed = &mut dns, if dns_failed.is_none() => match passed {
                    Ok(()) => return Ok(Method::DnsTxt),
                    Err(why) => dns_failed = Some(why),
                },
            }
            if let (Some(well_known), Some(dns)) = (&well_known_failed, &dns_failed) {
                return Err(CheckFailed {
                    well_known: well_known.clone(),
                    dns: dns.clone(),
                });
            }
        }
    }

    async fn well_known(&self, challenge: &Challenge) -> Result<(), String> {
        let shown = challenge.well_known_url();
        let url = Url::parse(&shown).map_err(|e| format!("{shown} is not a valid URL: {e}"))?;
        // IP literals; names are checked as they resolve.
        guard::check_without_dns(&url, self.policy).map_err(|e| format!("{shown}: {e}"))?;
        let mut answer = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| fetch_failed(&shown, &e))?;
        let status = answer.status();
        if status.is_redirection() {
            return Err(format!(
                "{shown} answered {} (redirects are not followed)",
                status.as_u16()
            ));
        }
        if !status.is_success() {
            return Err(format!("{shown} answered {}", status.as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(|e| fetch_failed(&shown, &e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY {
                return Err(format!("{shown} answered with more than 4 KiB"));
            }
        }
        let want = challenge.content();
        if String::from_utf8_lossy(&body).trim() == want {
            Ok(())
        } else {
            Err(format!(
                "{shown} answered {} but not with `{want}`",
                status.as_u16()
            ))
        }
    }

    async fn dns_txt(&self, challenge: &Challenge) -> Result<(), String> {
        let name = challenge.dns_name();
        // Fully qualified: no search domains appended.
        let lookup = self.resolver.txt_lookup(format!("{name}."));
        let lookup = match tokio::time::timeout(DNS_TIMEOUT, lookup).await {
            Err(_) => return Err(format!("no answer for TXT {name} within 5 s")),
            Ok(Err(NetError::Dns(DnsError::NoRecordsFound(_)))) => {
                return Err(format!("no TXT record {name}"));
            }
            Ok(Err(e)) => return Err(format!("looking up TXT {name} failed: {e}")),
            Ok(Ok(lookup)) => lookup,
        };
        // A record's character-strings make one value (values over 255
        // bytes are split into several).
        let values: Vec<String> = lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(
                    txt.txt_data
                        .iter()
                        .map(|part| String::from_utf8_lossy(part))
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect();
        if values.is_empty() {
            return Err(format!("no TXT record {name}"));
        }
        let want = challenge.dns_value();
        if values.iter().any(|value| value.trim() == want) {
            Ok(())
        } else {
            Err(format!("no TXT record {name} is `{want}`"))
        }
    }
}

/// The resolver TXT records are looked up with, caching nothing.
fn resolver(servers: &[SocketAddr]) -> Result<TokioResolver, VerifierError> {
    let mut builder: ResolverBuilder<TokioRuntimeProvider> = if servers.is_empty() {
        TokioResolver::builder_tokio().map_err(VerifierError::SystemDns)?
    } else {
        let name_servers = servers
            .iter()
            .map(|server| {
                let mut config = NameServerConfig::udp_and_tcp(server.ip());
                for connection in &mut config.connections {
                    connection.port = server.port();
                }
                config
            })
            .collect();
        let mut builder = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        );
        // Chosen servers alone: not the hosts file either.
        builder.options_mut().use_hosts_file = ResolveHosts::Never;
        builder
    };
    let options = builder.options_mut();
    options.timeout = DNS_TRY_TIMEOUT;
    options.attempts = 2;
    // A re-check must see a record changed since the last one.
    options.positive_max_ttl = Some(Duration::ZERO);
    options.negative_max_ttl = Some(Duration::ZERO);
    builder.build().map_err(VerifierError::Resolver)
}

/// Why the well-known file could not be fetched: the root cause (a
/// certificate's issuer, a refused address, a name without one), which the
/// client's own message ("error sending request") leaves out.
fn fetch_failed(shown: &str, error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("{shown} did not answer within 10 s");
    }
    let mut root: &dyn std::error::Error = error;
    while let Some(cause) = root.source() {
        root = cause;
    }
    format!("{shown} could not be fetched: {root}")
}
