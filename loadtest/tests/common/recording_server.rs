//! An SSE server for the request tests, on 127.0.0.1 and a free port: HTTP/1.1 and HTTP/2
//! (hyper-util's auto builder: h2c prior knowledge, or ALPN `h2` over TLS), over plain TCP
//! or TLS with certificates from a throw-away CA, recording the method, HTTP version,
//! headers and body of every request. It answers each with a short stream (a `retry:` hint,
//! three events, then the end, so clients reconnect), or `401` when a required header is
//! missing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// What one request carried.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `GET`, `POST`.
    pub method: String,
    /// The path (the load test also asks an external server for `/metrics`).
    pub path: String,
    /// HTTP/1.1 or HTTP/2.
    pub version: Version,
    /// Every header, names lower-cased, values lossy UTF-8.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl Seen {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A throw-away CA, and a server certificate it signed.
pub struct TestCa {
    /// The CA's certificate, PEM (for `--ca-file`).
    pub ca_pem: String,
    /// The server's certificate chain.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server's key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl TestCa {
    /// A CA, and a certificate from it for `names` (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> Self {
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own, so another test CA is unknown rather than a bad signature.
        static CAS: AtomicU64 = AtomicU64::new(0);
        let n = CAS.fetch_add(1, Ordering::Relaxed);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, format!("loadtest throw-away CA {n}"));
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("the CA certificate");
        let key = KeyPair::generate().expect("a server key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "loadtest test server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca).expect("the server certificate");
        Self {
            ca_pem: ca.pem(),
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
        }
    }

    /// A TLS server configuration with this certificate, offering `h2` and `http/1.1`.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .expect("a TLS server configuration");
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A running recording server.
pub struct RecordingServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every request so far, in order of arrival.
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl RecordingServer {
    /// Starts a server: over TLS with `tls`, else plain; answering `401` to requests
    /// without header `require` (`(name in lower case, value)`) when given.
    pub async fn start(tls: Option<Arc<ServerConfig>>, require: Option<(&str, &str)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("its address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let require = require.map(|(n, v)| (n.to_owned(), v.to_owned()));
        let acceptor = tls.map(TlsAcceptor::from);
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let record = Arc::clone(&record);
                let require = require.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        answer(request, Arc::clone(&record), require.clone())
                    });
                    let builder =
                        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        // A failed handshake (a client that does not trust us) just ends.
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(socket).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(socket), service)
                                .await;
                        }
                    }
                });
            }
        });
        Self { addr, seen }
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

/// Records the request and answers it.
async fn answer(
    request: Request<Incoming>,
    record: Arc<Mutex<Vec<Seen>>>,
    require: Option<(String, String)>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (head, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = Seen {
        method: head.method.to_string(),
        path: head.uri.path().to_owned(),
        version: head.version,
        headers: head
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let allowed = require
        .as_ref()
        .is_none_or(|(name, value)| seen.header(name) == Some(value.as_str()));
    record.lock().expect("not poisoned").push(seen);
    let response = if allowed {
        Response::builder()
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
            .body(Full::new(Bytes::from_static(
                b"retry: 100\n\nid: 1\ndata: 1\n\nid: 2\ndata: 2\n\nid: 3\ndata: 3\n\n",
            )))
    } else {
        Response::builder()
            .status(401)
            .header("www-authenticate", "Bearer")
            .body(Full::new(Bytes::new()))
    };
    Ok(response.expect("a valid response"))
}
