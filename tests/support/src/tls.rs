//! HTTPS on loopback for tests: a certificate authority of the test's own
//! ([`TestCa`]), trusted by whoever is given its certificate, and a small
//! HTTPS server ([`HttpsServer`]) with a leaf certificate from it, serving
//! fixed files that a test may change while it runs.
//!
//! The server answers `GET` of a file's path with 200 and its body, any
//! other path with 404, any other method with 405. HTTP/1.1 only.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

/// A certificate the CA issued, and its key.
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    pub cert_pem: String,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: a client trusting another test CA then says
        // the issuer is unknown, not that a signature is bad.
        let name = format!("Chronos Test CA {}", uuid::Uuid::new_v4().simple());
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA's certificate, PEM: what a client is told to trust.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server certificate for `names` (DNS names).
    pub fn issue(&self, names: &[&str]) -> Leaf {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf names");
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Leaf {
            cert_pem: cert.pem(),
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

type Files = Arc<Mutex<HashMap<String, String>>>;

/// An HTTPS server on 127.0.0.1, with a certificate from a [`TestCa`]
/// for the names it is started with. Stops when dropped.
pub struct HttpsServer {
    addr: SocketAddr,
    files: Files,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl HttpsServer {
    /// Serves `files` (path → body, paths starting with `/`) as `names`.
    pub async fn start<P, B>(
        ca: &TestCa,
        names: &[&str],
        files: impl IntoIterator<Item = (P, B)>,
    ) -> HttpsServer
    where
        P: Into<String>,
        B: Into<String>,
    {
        let leaf = ca.issue(names);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![leaf.cert], leaf.key)
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let files: Files = Arc::new(Mutex::new(
            files
                .into_iter()
                .map(|(p, b)| (p.into(), b.into()))
                .collect(),
        ));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(serve(listener, acceptor, files.clone(), requests.clone()));
        HttpsServer {
            addr,
            files,
            requests,
            task,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Serves `body` at `path` from now on.
    pub fn set_file(&self, path: &str, body: &str) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_string(), body.to_string());
    }

    /// `path` answers 404 from now on.
    pub fn remove_file(&self, path: &str) {
        self.files.lock().unwrap().remove(path);
    }

    /// The paths requested so far, in order (after TLS succeeded).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    files: Files,
    requests: Arc<Mutex<Vec<String>>>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let files = files.clone();
        let requests = requests.clone();
        tokio::spawn(async move {
            // A client that does not trust the certificate ends here.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let answer = answer(&files, &requests, &request);
                async move { Ok::<_, Infallible>(answer) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn answer(
    files: &Files,
    requests: &Mutex<Vec<String>>,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_string();
    requests.lock().unwrap().push(path.clone());
    let (status, body) = if request.method() != Method::GET {
        (StatusCode::METHOD_NOT_ALLOWED, String::new())
    } else {
        match files.lock().unwrap().get(&path) {
            Some(body) => (StatusCode::OK, body.clone()),
            None => (StatusCode::NOT_FOUND, "not found".to_string()),
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}
