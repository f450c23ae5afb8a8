//! A DNS server on loopback for tests, UDP and TCP on one port,
//! authoritative for the names a test sets ([`DnsServer::set_txt`],
//! [`DnsServer::set_a`]) and changeable while it runs. A name with records
//! of other types answers with none (NOERROR); a name with no records at
//! all is NXDOMAIN. Every answer has TTL 0.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, TXT};
use hickory_proto::rr::{RData, Record, RecordType};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

#[derive(Default)]
struct Zone {
    txt: HashMap<String, Vec<String>>,
    a: HashMap<String, Vec<Ipv4Addr>>,
}

type SharedZone = Arc<Mutex<Zone>>;

/// Stops when dropped.
pub struct DnsServer {
    addr: SocketAddr,
    zone: SharedZone,
    tasks: Vec<JoinHandle<()>>,
}

/// Names as compared: lowercase, no trailing dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsServer {
    pub async fn start() -> DnsServer {
        // UDP takes a free port, TCP the same one; another process may hold
        // that TCP port, so try a few.
        let (udp, tcp) = 'bound: {
            for _ in 0..20 {
                let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind UDP");
                let addr = udp.local_addr().expect("UDP address");
                if let Ok(tcp) = TcpListener::bind(addr).await {
                    break 'bound (udp, tcp);
                }
            }
            panic!("no port free for both UDP and TCP on 127.0.0.1");
        };
        let addr = udp.local_addr().expect("UDP address");
        let zone = SharedZone::default();
        let tasks = vec![
            tokio::spawn(serve_udp(udp, zone.clone())),
            tokio::spawn(serve_tcp(tcp, zone.clone())),
        ];
        DnsServer { addr, zone, tasks }
    }

    /// Where to send queries (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `name` has exactly one TXT record, `value` (split into 255-byte
    /// character-strings when longer).
    pub fn set_txt(&self, name: &str, value: &str) {
        let mut zone = self.zone.lock().unwrap();
        zone.txt.insert(key(name), vec![value.to_string()]);
    }

    /// One more TXT record at `name`.
    pub fn add_txt(&self, name: &str, value: &str) {
        let mut zone = self.zone.lock().unwrap();
        zone.txt
            .entry(key(name))
            .or_default()
            .push(value.to_string());
    }

    /// `name` has no TXT records.
    pub fn remove_txt(&self, name: &str) {
        self.zone.lock().unwrap().txt.remove(&key(name));
    }

    /// `name`'s A record is `ip` (only).
    pub fn set_a(&self, name: &str, ip: Ipv4Addr) {
        self.zone.lock().unwrap().a.insert(key(name), vec![ip]);
    }

    /// `name` has no A records.
    pub fn remove_a(&self, name: &str) {
        self.zone.lock().unwrap().a.remove(&key(name));
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn serve_udp(socket: UdpSocket, zone: SharedZone) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        if let Some(reply) = respond(&zone, &buf[..len]) {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: SharedZone) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_tcp_connection(stream, zone.clone()));
    }
}

/// Messages over TCP carry a two-byte length first (RFC 1035 4.2.2).
async fn serve_tcp_connection(mut stream: TcpStream, zone: SharedZone) {
    loop {
        let Ok(len) = stream.read_u16().await else {
            return;
        };
        let mut query = vec![0u8; usize::from(len)];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        let Some(reply) = respond(&zone, &query) else {
            return;
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            return;
        };
        if stream.write_u16(reply_len).await.is_err() || stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

fn respond(zone: &SharedZone, query: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    if request.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    let zone = zone.lock().unwrap();
    let mut known = false;
    for query in &request.queries {
        response.add_query(query.clone());
        let name = key(&query.name().to_ascii());
        known |= zone.txt.contains_key(&name) || zone.a.contains_key(&name);
        for rdata in records(&zone, &name, query.query_type()) {
            response.add_answer(Record::from_rdata(query.name().clone(), 0, rdata));
        }
    }
    if !known {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    response.to_vec().ok()
}

fn records(zone: &Zone, name: &str, kind: RecordType) -> Vec<RData> {
    match kind {
        RecordType::TXT => zone
            .txt
            .get(name)
            .into_iter()
            .flatten()
            .map(|value| {
                let mut parts: Vec<&[u8]> = value.as_bytes().chunks(255).collect();
                if parts.is_empty() {
                    parts.push(b"");
                }
                RData::TXT(TXT::from_bytes(parts))
            })
            .collect(),
        RecordType::A => zone
            .a
            .get(name)
            .into_iter()
            .flatten()
            .map(|ip| RData::A(A(*ip)))
            .collect(),
        _ => Vec::new(),
    }
}
