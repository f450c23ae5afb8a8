//! The SSRF guard. Push delivery makes the server send requests to URLs its
//! users chose; without a guard, a job could make it call its own network
//! (a database's admin port, the cloud provider's metadata service). So a
//! target must be HTTPS and must not be, or resolve to, an address that is
//! loopback, private, link-local, shared (CGNAT), multicast, unspecified,
//! reserved or a cloud metadata service — IPv4 and IPv6, IPv4 inside IPv6
//! included.
//!
//! It is checked twice: when a job is created (a clear 422 at once), and
//! when its request connects, by [`GuardedResolver`], the HTTP client's DNS
//! resolver — a name can resolve elsewhere by then (DNS rebinding). Redirects
//! are never followed. `chronos serve --allow-private-targets` lifts the
//! guard and the HTTPS rule, for local development only.

use hickory_resolver::TokioResolver;
use hickory_resolver::net::{DnsError, NetError};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::{Host, Url};

/// Whether private targets and plain HTTP are allowed (local development).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    pub allow_private: bool,
}

/// Why a target URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Not `https://` (400).
    #[error(
        "the URL must use https (got `{0}`); plain http is allowed only with `chronos serve --allow-private-targets`"
    )]
    NotHttps(String),
    /// A forbidden address (422 `ssrf_blocked`).
    #[error(
        "the URL's host `{host}` is or resolves to {addr}, a {why} address; push targets must be public (`chronos serve --allow-private-targets` lifts this for local development)"
    )]
    Blocked {
        host: String,
        addr: IpAddr,
        why: &'static str,
    },
}

/// How long a create waits for DNS before accepting the target anyway (it
/// is checked again when the request connects).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why `ip` may not be a push target, if it may not.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b, c, d) {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        // 169.254.169.254 (AWS, GCP, Azure) is link-local too, but say what it is.
        (169, 254, 169, 254) => "cloud metadata",
        _ if ip.is_link_local() => "link-local",
        // Alibaba Cloud's metadata service, inside the shared range.
        (100, 100, 100, 200) => "cloud metadata",
        (100, 64..=127, _, _) => "shared (CGNAT)",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        // "This network", IETF protocol assignments (incl. Oracle's
        // 192.0.0.192 metadata), benchmarking, and the reserved 240/4.
        (0, ..) | (192, 0, 0, _) | (198, 18..=19, _, _) | (240..=255, ..) => "reserved",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // IPv4 carried in IPv6 (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d,
    // NAT64 64:ff9b::a.b.c.d) is judged as the IPv4 address it carries.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || (s[..6] == [0; 6] && !ip.is_loopback()) {
        if ip.is_unspecified() {
            return Some("unspecified");
        }
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return forbidden_v4(Ipv4Addr::new(a, b, c, d));
    }
    Some(match s[0] {
        _ if ip.is_loopback() => "loopback",
        // AWS's IPv6 metadata service, inside the unique-local range.
        _ if s == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] => "cloud metadata",
        0xfc00..=0xfdff => "private (unique local)",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        // Documentation (2001:db8::/32).
        0x2001 if s[1] == 0xdb8 => "reserved",
        _ => return None,
    })
}

/// Checks a target when a job is created: the scheme, then every address
/// the host is or resolves to. A name that does not resolve (yet) passes:
/// the request is checked again when it connects.
pub async fn check(url: &Url, policy: TargetPolicy) -> Result<(), TargetError> {
    let Some(name) = check_without_dns(url, policy)? else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let resolved =
        tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await;
    let addrs: Vec<IpAddr> = match resolved {
        Ok(Ok(addrs)) => addrs.map(|a: SocketAddr| a.ip()).collect(),
        _ => Vec::new(),
    };
    for addr in addrs {
        if let Some(why) = forbidden(addr) {
            return Err(TargetError::Blocked {
                host: name.to_string(),
                addr,
                why,
            });
        }
    }
    Ok(())
}

/// The checks that need no DNS: the scheme, and a host that is an IP
/// address. `Ok(Some(name))` is a host name still to check by its
/// addresses — at creation by [`check`], at connection by
/// [`GuardedResolver`]; push delivery calls this before each request.
pub fn check_without_dns(url: &Url, policy: TargetPolicy) -> Result<Option<&str>, TargetError> {
    if policy.allow_private {
        return Ok(None);
    }
    if url.scheme() != "https" {
        return Err(TargetError::NotHttps(url.scheme().to_string()));
    }
    let addr: IpAddr = match url.host() {
        Some(Host::Ipv4(v4)) => v4.into(),
        Some(Host::Ipv6(v6)) => v6.into(),
        Some(Host::Domain(name)) => return Ok(Some(name)),
        None => return Ok(None),
    };
    match forbidden(addr) {
        Some(why) => Err(TargetError::Blocked {
            host: addr.to_string(),
            addr,
            why,
        }),
        None => Ok(None),
    }
}

/// The push HTTP client's DNS resolver: resolves as the system does, then
/// drops every forbidden address, so a connection can only be made to a
/// public one (unless the policy allows private targets).
///
/// Domain checks resolve through their own name servers instead
/// ([`GuardedResolver::through`]), and may send every connection to one
/// port ([`GuardedResolver::on_port`]): the HTTP client keeps a non-zero
/// port a resolver returns when the URL names none.
#[derive(Clone)]
pub struct GuardedResolver {
    policy: TargetPolicy,
    dns: Option<Arc<TokioResolver>>,
    port: u16,
}

impl std::fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardedResolver")
            .field("policy", &self.policy)
            .field("own_dns", &self.dns.is_some())
            .field("port", &self.port)
            .finish()
    }
}

impl GuardedResolver {
    /// Resolves as the system does; ports from the URL (push delivery).
    pub fn new(policy: TargetPolicy) -> Self {
        GuardedResolver {
            policy,
            dns: None,
            port: 0,
        }
    }

    /// Resolves through `resolver` rather than the system.
    pub fn through(mut self, resolver: Arc<TokioResolver>) -> Self {
        self.dns = Some(resolver);
        self
    }

    /// Connects to `port` when the URL names none (0: the scheme's).
    pub fn on_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, BoxError> {
        let addrs = match &self.dns {
            None => tokio::net::lookup_host((host, self.port)).await?.collect(),
            Some(resolver) => {
                // Fully qualified: no search domains.
                let fqdn = format!("{}.", host.trim_end_matches('.'));
                let ips = resolver.lookup_ip(fqdn).await.map_err(|e| match e {
                    NetError::Dns(DnsError::NoRecordsFound(_)) => {
                        Box::new(NoAddress(host.to_string())) as BoxError
                    }
                    other => Box::new(other),
                })?;
                ips.iter()
                    .map(|ip| SocketAddr::new(ip, self.port))
                    .collect()
            }
        };
        Ok(addrs)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A name without addresses, said plainly (the resolver's own message
/// spells out its query).
#[derive(Debug, thiserror::Error)]
#[error("`{0}` has no address")]
struct NoAddress(String);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let policy = this.policy;
            let host = name.as_str().to_string();
            let addrs = this.lookup(&host).await?;
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| policy.allow_private || forbidden(a.ip()).is_none())
                .collect();
            if allowed.is_empty()
                && let Some(first) = addrs.first()
            {
                let why = forbidden(first.ip()).unwrap_or("forbidden");
                let blocked = TargetError::Blocked {
                    host,
                    addr: first.ip(),
                    why,
                };
                return Err(Box::new(blocked) as BoxError);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(s: &str) -> Option<&'static str> {
        forbidden(s.parse().unwrap())
    }

    #[test]
    fn forbidden_addresses_are_named() {
        for (addr, reason) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.5.4", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.10.1", "link-local"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("100.100.100.200", "cloud metadata"),
            ("224.0.0.1", "multicast"),
            ("0.0.0.0", "unspecified"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.0.192", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
            ("::7f00:1", "loopback"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fc00::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "reserved"),
        ] {
            assert_eq!(why(addr), Some(reason), "{addr}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(why(addr), None, "{addr}");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_by_scheme_and_address() {
        let on = TargetPolicy::default();
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(matches!(
            check(&url("http://example.test/h"), on).await,
            Err(TargetError::NotHttps(_))
        ));
        for blocked in [
            "https://127.0.0.1/h",
            "https://10.0.0.1/h",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]:8443/h",
            "https://[::ffff:127.0.0.1]/h",
            "https://localhost/h",
        ] {
            assert!(
                matches!(
                    check(&url(blocked), on).await,
                    Err(TargetError::Blocked { .. })
                ),
                "{blocked}"
            );
        }
        // Public literal, and a name that does not resolve here: checked again
        // at connection time.
        check(&url("https://1.1.1.1/h"), on).await.unwrap();
        check(&url("https://chronos-target.invalid/h"), on)
            .await
            .unwrap();
        // Local development lifts both rules.
        let off = TargetPolicy {
            allow_private: true,
        };
        check(&url("http://localhost:3000/hooks"), off)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_resolver_drops_forbidden_addresses() {
        use reqwest::dns::Resolve;
        use std::str::FromStr;
        let name = || reqwest::dns::Name::from_str("localhost").unwrap();
        let guarded = GuardedResolver::new(TargetPolicy::default());
        let refused = guarded.resolve(name()).await.err().expect("refused");
        assert!(refused.to_string().contains("loopback"), "{refused}");
        let open = GuardedResolver::new(TargetPolicy {
            allow_private: true,
        });
        let addrs: Vec<SocketAddr> = open.resolve(name()).await.unwrap().collect();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
        // Push delivery's ports come from the URL; a domain check's may be
        // set here.
        assert!(addrs.iter().all(|a| a.port() == 0), "{addrs:?}");
        let on_port = open.on_port(8443);
        let addrs: Vec<SocketAddr> = on_port.resolve(name()).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.port() == 8443), "{addrs:?}");
    }
}
