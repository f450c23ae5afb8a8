//! Who the client is when the server sits behind reverse proxies.
//!
//! `X-Forwarded-For` and `X-Forwarded-Proto` are believed only from a peer
//! in [`TrustedProxies`]: anyone else could write them, and an address taken
//! from them keys rate limits. Behind trusted proxies the client is the
//! rightmost untrusted address of `X-Forwarded-For`, the last hop a trusted
//! proxy vouches for; entries to its left were written by the client.

use http::HeaderMap;
use ipnet::IpNet;
use std::net::IpAddr;

/// The networks whose peers' forwarding headers are believed. Empty (the
/// default) believes no one.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

/// The client as the server should see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Client {
    pub ip: IpAddr,
    /// From a trusted `X-Forwarded-Proto`; `None` when not known from there.
    pub https: Option<bool>,
}

impl TrustedProxies {
    /// Networks (`10.0.0.0/8`, `::1/128`) or addresses (`127.0.0.1`, one
    /// host). The error names the item that is neither.
    pub fn parse(items: &[String]) -> Result<Self, String> {
        items
            .iter()
            .map(|item| {
                let item = item.trim();
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!(
                            "trusted proxy `{item}` is neither an address (10.0.0.1) nor a network (10.0.0.0/8)"
                        )
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    /// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as a dual-stack
    /// socket reports IPv4 peers) counts as its IPv4 address.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, the address the connection came from.
    /// Addresses are canonical: IPv4-mapped IPv6 ones come back as IPv4, so
    /// one client has one rate-limit key however it connected.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> Client {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return Client {
                ip: peer,
                https: None,
            };
        }
        Client {
            ip: self.forwarded_for(headers).unwrap_or(peer),
            https: forwarded_proto(headers),
        }
    }

    /// Walks `X-Forwarded-For` from the right over trusted proxies; the
    /// first untrusted address is the client. An entry that is not an
    /// address ends the walk: nothing to its left can be believed, so the
    /// client is the last address passed (the leftmost valid one).
    fn forwarded_for(&self, headers: &HeaderMap) -> Option<IpAddr> {
        // Every instance of the header, in order, as one list; an instance
        // that is not text is one invalid entry.
        let entries: Vec<Option<IpAddr>> = headers
            .get_all("x-forwarded-for")
            .iter()
            .flat_map(|value| match value.to_str() {
                Ok(text) => text
                    .split(',')
                    .map(|entry| entry.trim().parse::<IpAddr>().ok())
                    .collect(),
                Err(_) => vec![None],
            })
            .collect();
        let mut client = None;
        for entry in entries.into_iter().rev() {
            let Some(ip) = entry else { break };
            let ip = ip.to_canonical();
            client = Some(ip);
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }
}

/// The first `X-Forwarded-Proto` value, if it is `https` or `http`.
fn forwarded_proto(headers: &HeaderMap) -> Option<bool> {
    let value = headers.get("x-forwarded-proto")?.to_str().ok()?;
    let first = value.split(',').next()?.trim();
    if first.eq_ignore_ascii_case("https") {
        Some(true)
    } else if first.eq_ignore_ascii_case("http") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn proxies(items: &[&str]) -> TrustedProxies {
        let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        TrustedProxies::parse(&items).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn parses_networks_and_addresses_and_names_the_bad_item() {
        let p = proxies(&[
            "10.0.0.0/8",
            "::1/128",
            "127.0.0.1",
            " 192.168.1.7 ",
            "fd00::1",
        ]);
        assert!(p.is_trusted(ip("10.200.3.4")));
        assert!(p.is_trusted(ip("127.0.0.1")));
        assert!(!p.is_trusted(ip("127.0.0.2")));
        assert!(p.is_trusted(ip("192.168.1.7")));
        assert!(!p.is_trusted(ip("192.168.1.8")));
        assert!(p.is_trusted(ip("::1")));
        assert!(p.is_trusted(ip("fd00::1")));
        assert!(!p.is_trusted(ip("fd00::2")));
        assert!(!p.is_trusted(ip("11.0.0.1")));

        for bad in ["10.0.0.0/33", "localhost", "10.0.0", ""] {
            let err = TrustedProxies::parse(&["10.0.0.0/8".into(), bad.into()]).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        assert!(!TrustedProxies::default().is_trusted(ip("127.0.0.1")));
    }

    #[test]
    fn ipv4_mapped_addresses_count_as_ipv4() {
        let p = proxies(&["10.0.0.0/8"]);
        assert!(p.is_trusted(ip("::ffff:10.1.2.3")));
        let h = headers(&[("x-forwarded-for", "::ffff:203.0.113.9")]);
        let c = p.client(ip("::ffff:10.1.2.3"), &h);
        assert_eq!(c.ip, ip("203.0.113.9"));
        // An untrusted mapped peer is reported as IPv4 too.
        let c = p.client(ip("::ffff:198.51.100.1"), &HeaderMap::new());
        assert_eq!(c.ip, ip("198.51.100.1"));
    }

    #[test]
    fn an_untrusted_peer_cannot_spoof() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4, 10.0.0.5"),
            ("x-forwarded-proto", "https"),
        ]);
        let c = p.client(ip("198.51.100.7"), &h);
        assert_eq!(
            c,
            Client {
                ip: ip("198.51.100.7"),
                https: None
            }
        );
        // No trusted proxies at all: the same.
        let c = TrustedProxies::default().client(ip("10.0.0.1"), &h);
        assert_eq!(c.ip, ip("10.0.0.1"));
        assert_eq!(c.https, None);
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_address() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        // What the client wrote itself (6.6.6.6) is left of what the proxies
        // saw (203.0.113.9).
        let h = headers(&[(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.9, 10.0.0.7, 10.0.0.8",
        )]);
        assert_eq!(p.client(peer, &h).ip, ip("203.0.113.9"));
        // Several header instances are one list.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.9,10.0.0.7"),
            ("x-forwarded-for", " 10.0.0.8 "),
        ]);
        assert_eq!(p.client(peer, &h).ip, ip("203.0.113.9"));
        // All trusted: the leftmost.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.7")]);
        assert_eq!(p.client(peer, &h).ip, ip("10.9.9.9"));
        // No header: the peer.
        assert_eq!(p.client(peer, &HeaderMap::new()).ip, peer);
    }

    #[test]
    fn ipv6_chains() {
        let p = proxies(&["2001:db8:1::/48", "::1"]);
        let h = headers(&[("x-forwarded-for", "2001:db8:ffff::5, 2001:db8:1::2")]);
        assert_eq!(p.client(ip("::1"), &h).ip, ip("2001:db8:ffff::5"));
        let h = headers(&[("x-forwarded-for", "203.0.113.9, 2001:db8:1::2")]);
        assert_eq!(p.client(ip("2001:db8:1::3"), &h).ip, ip("203.0.113.9"));
    }

    #[test]
    fn garbage_stops_the_walk() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        // Garbage right of any address: only the peer is known.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, unknown")]);
        assert_eq!(p.client(peer, &h).ip, peer);
        // Garbage left of a trusted hop: the leftmost address passed.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, bogus, 10.0.0.7")]);
        assert_eq!(p.client(peer, &h).ip, ip("10.0.0.7"));
        // Garbage left of the client does not matter.
        let h = headers(&[("x-forwarded-for", "bogus, 203.0.113.9, 10.0.0.7")]);
        assert_eq!(p.client(peer, &h).ip, ip("203.0.113.9"));
        // Empty entries, ports and bytes that are not text are garbage too.
        for value in [
            "203.0.113.9,,10.0.0.7",
            "203.0.113.9, 1.2.3.4:80, 10.0.0.7",
            "203.0.113.9, [::1]:80, 10.0.0.7",
        ] {
            let h = headers(&[("x-forwarded-for", value)]);
            assert_eq!(p.client(peer, &h).ip, ip("10.0.0.7"), "{value}");
        }
        let mut h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff10.0.0.7").unwrap(),
        );
        assert_eq!(p.client(peer, &h).ip, peer);
    }

    #[test]
    fn forwarded_proto_from_a_trusted_peer() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        let https = |value: &str| {
            p.client(peer, &headers(&[("x-forwarded-proto", value)]))
                .https
        };
        assert_eq!(https("https"), Some(true));
        assert_eq!(https("HTTPS"), Some(true));
        assert_eq!(https("http"), Some(false));
        assert_eq!(https("https, http"), Some(true));
        assert_eq!(https("ws"), None);
        assert_eq!(https(""), None);
        assert_eq!(p.client(peer, &HeaderMap::new()).https, None);
        // The first instance wins.
        let h = headers(&[
            ("x-forwarded-proto", "http"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(p.client(peer, &h).https, Some(false));
    }
}
