//! How an event source reaches the server: through reqwest (hyper, the default; TLS and
//! HTTP/2 too), or the minimal HTTP/1.1 client of [`raw_http`](crate::client::raw_http),
//! which costs the load generator less per event. Either way the request is the one the
//! [`RequestSpec`] describes, the event source sees a status, a content type and body
//! chunks, and a failure or a broken body named by its cause (a TLS failure as
//! `connect: tls: …`).

use bytes::Bytes;
use reqwest::header::{
    HeaderName, CONTENT_ENCODING, CONTENT_TYPE, LOCATION, RETRY_AFTER, TRANSFER_ENCODING,
};
use reqwest::{Client, Url};

use crate::client::raw_http::{RawBody, RawConnector, RawError, RawRequest};
use crate::client::request::{HttpVersion, Method, RequestError, RequestSpec};

/// Which HTTP client the event sources use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// reqwest on hyper: a general, well-tried client.
    #[default]
    Hyper,
    /// The load test's own HTTP/1.1 GET: less CPU per event, for the largest runs.
    Raw,
}

impl Transport {
    /// Checks at start that this transport can send `spec`'s requests to a URL of
    /// `scheme`, rather than fail every attempt.
    ///
    /// # Errors
    /// The raw transport speaks neither TLS nor HTTP/2.
    pub fn check(self, spec: &RequestSpec, scheme: &str) -> Result<(), RequestError> {
        if self != Self::Raw {
            return Ok(());
        }
        if scheme != "http" {
            return Err(RequestError(format!(
                "--transport raw speaks only plain http, not {scheme}: use --transport hyper"
            )));
        }
        if spec.http_version == HttpVersion::Http2 {
            return Err(RequestError(
                "--transport raw speaks only HTTP/1.1, not --http2: use --transport hyper".into(),
            ));
        }
        Ok(())
    }
}

/// Opens connections with one of the transports.
#[derive(Debug, Clone)]
pub enum Connector {
    /// Through a reqwest client.
    Hyper(Client),
    /// Through the raw client.
    Raw(RawConnector),
}

/// Why a connection attempt did not open a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nothing listens there (the server is down or restarting).
    Refused,
    /// No connection, or no response headers, in time.
    Timeout,
    /// A status other than 200 and 204: the event source gives up.
    Status(u16),
    /// A 200 whose content type is not `text/event-stream`: the event source gives up.
    ContentType(String),
    /// A 200 whose body comes in a content or transfer coding the client did not ask for
    /// (`content-encoding gzip`): it cannot be read as an event stream, so the event
    /// source gives up.
    Encoding(String),
    /// More redirects than allowed for one stream (this many were followed).
    TooManyRedirects(u32),
    /// Any other transport error, described.
    Other(String),
}

impl Failure {
    /// True when a browser reconnects after this failure (a network error), false when it
    /// closes the event source for good.
    #[must_use]
    pub fn reconnects(&self) -> bool {
        matches!(self, Self::Refused | Self::Timeout | Self::Other(_))
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused => f.write_str("connection refused"),
            Self::Timeout => f.write_str("timed out"),
            Self::Status(code) => write!(f, "status {code}"),
            Self::ContentType(found) => write!(f, "content type {found:?}"),
            Self::Encoding(coding) => write!(f, "unrequested {coding}"),
            Self::TooManyRedirects(followed) => {
                write!(f, "too many redirects ({followed} followed)")
            }
            Self::Other(what) => f.write_str(what),
        }
    }
}

/// A response whose headers arrived.
#[derive(Debug)]
pub struct Opened {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// A content or transfer coding the client cannot read (it asks for none), named
    /// (`content-encoding gzip`); `None` when the body is plain or only chunked.
    pub unreadable_coding: Option<String>,
    /// The `Location` header, if any (redirects).
    pub location: Option<String>,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The body, not read yet.
    pub body: Body,
}

/// The coding named in `Content-Encoding` or `Transfer-Encoding` that a client asking for
/// none cannot read: any content coding but `identity`, any transfer coding but `chunked`.
fn unreadable_coding(content: Option<&str>, transfer: Option<&str>) -> Option<String> {
    let codings = |value: Option<&str>| {
        value
            .unwrap_or_default()
            .split(',')
            .map(|coding| coding.trim().to_ascii_lowercase())
            .filter(|coding| !coding.is_empty())
            .collect::<Vec<_>>()
    };
    let content = codings(content);
    let transfer = codings(transfer);
    if let Some(coding) = content.iter().find(|c| *c != "identity") {
        return Some(format!("content-encoding {coding}"));
    }
    transfer
        .iter()
        .find(|c| *c != "chunked")
        .map(|coding| format!("transfer-encoding {coding}"))
}

/// A response body being read.
#[derive(Debug)]
pub enum Body {
    /// reqwest's.
    Hyper(reqwest::Response),
    /// The raw client's.
    Raw(RawBody),
}

/// Why an open body broke: its kind, and a few words (`io: connection reset`), as
/// [`Failure::Other`] names why an attempt failed: short and from a small set, so runs can
/// count them by cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// What broke.
    pub kind: ReadKind,
    /// The cause in a few words.
    pub detail: String,
}

/// What broke an open body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadKind {
    /// The connection ended inside a chunk, or short of the `Content-Length` or the last
    /// chunk.
    Cut,
    /// The body's framing was malformed (a chunk size that is not hex, no CRLF after a
    /// chunk's data).
    Framing,
    /// The connection failed (reset, and the like).
    Io,
}

impl ReadError {
    /// A read error of `kind`, described.
    #[must_use]
    pub fn new(kind: ReadKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    fn from_io(kind: std::io::ErrorKind) -> Self {
        let read_kind = match kind {
            std::io::ErrorKind::UnexpectedEof => ReadKind::Cut,
            // hyper's chunked decoder says so of a bad chunk size or line end.
            std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => ReadKind::Framing,
            _ => ReadKind::Io,
        };
        Self::new(read_kind, format!("io: {kind}"))
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for ReadError {}

impl Body {
    /// The next chunk of the body; `Ok(None)` at its end.
    ///
    /// # Errors
    /// When the body broke (the connection failed, or its framing did), naming the cause.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ReadError> {
        match self {
            Self::Hyper(response) => response.chunk().await.map_err(|e| match cause(&e) {
                Cause::Io(kind) => ReadError::from_io(kind),
                Cause::Tls(message) => ReadError::new(ReadKind::Io, format!("tls: {message}")),
                // hyper's own errors on a body are protocol errors.
                Cause::Message(message) => {
                    ReadError::new(ReadKind::Framing, format!("body: {message}"))
                }
            }),
            Self::Raw(body) => body.chunk().await.map_err(|e| match &e {
                RawError::Io(io) => ReadError::from_io(io.kind()),
                RawError::Protocol(_) => ReadError::new(ReadKind::Framing, e.to_string()),
                RawError::ConnectTimeout => ReadError::new(ReadKind::Io, e.to_string()),
            }),
        }
    }
}

impl Connector {
    /// Sends request `index` of `spec` to `url` (the client's headers unless the user
    /// replaced them, the user's headers, `Last-Event-ID` when not empty, the body in turn)
    /// and waits for the response headers.
    ///
    /// # Errors
    /// The cause, when no response arrived.
    pub async fn open(
        &self,
        url: &Url,
        last_event_id: &str,
        spec: &RequestSpec,
        index: u64,
    ) -> Result<Opened, Failure> {
        match self {
            Self::Hyper(client) => {
                let method = match spec.method {
                    Method::Get => reqwest::Method::GET,
                    Method::Post => reqwest::Method::POST,
                };
                let mut request = client
                    .request(method, url.clone())
                    .headers(spec.header_map().clone());
                if !last_event_id.is_empty() {
                    request = request.header("Last-Event-ID", last_event_id);
                }
                if let Some(body) = spec.body(index) {
                    request = request.body(body.clone());
                }
                let response = request.send().await.map_err(|e| classify(&e))?;
                let header = |name: HeaderName| {
                    response
                        .headers()
                        .get(name)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                };
                let content_type = header(CONTENT_TYPE);
                let unreadable_coding = unreadable_coding(
                    header(CONTENT_ENCODING).as_deref(),
                    header(TRANSFER_ENCODING).as_deref(),
                );
                let location = header(LOCATION);
                let retry_after = header(RETRY_AFTER);
                Ok(Opened {
                    status: response.status().as_u16(),
                    content_type,
                    unreadable_coding,
                    location,
                    retry_after,
                    body: Body::Hyper(response),
                })
            }
            Self::Raw(connector) => {
                if url.scheme() != "http" {
                    return Err(Failure::Other(format!(
                        "connect: the raw transport speaks only http, not {}",
                        url.scheme()
                    )));
                }
                let addr = resolve(url)
                    .await
                    .ok_or_else(|| Failure::Other("connect: cannot resolve the host".into()))?;
                let host = match (url.host_str(), url.port()) {
                    (Some(host), Some(port)) => format!("{host}:{port}"),
                    (Some(host), None) => host.to_owned(),
                    (None, _) => return Err(Failure::Other("connect: no host".into())),
                };
                let path_and_query = match url.query() {
                    Some(query) => format!("{}?{query}", url.path()),
                    None => url.path().to_owned(),
                };
                let resume = [("Last-Event-ID", last_event_id)];
                let request = RawRequest {
                    method: spec.method.as_str(),
                    host: &host,
                    path_and_query: &path_and_query,
                    head: spec.raw_head(),
                    extra: if last_event_id.is_empty() {
                        &[]
                    } else {
                        &resume
                    },
                    body: spec.body(index).map(|body| &body[..]),
                };
                let response = connector
                    .send(addr, &request)
                    .await
                    .map_err(|e| classify_raw(&e))?;
                Ok(Opened {
                    status: response.status,
                    content_type: response.content_type,
                    unreadable_coding: unreadable_coding(
                        response.content_encoding.as_deref(),
                        response.transfer_encoding.as_deref(),
                    ),
                    location: response.location,
                    retry_after: response.retry_after,
                    body: Body::Raw(response.body),
                })
            }
        }
    }
}

/// The URL's socket address: an IP literal as it is, a name through tokio's resolver (the
/// standard library's would block a runtime thread).
async fn resolve(url: &Url) -> Option<std::net::SocketAddr> {
    let port = url.port_or_known_default()?;
    match url.domain() {
        Some(name) => tokio::net::lookup_host((name, port)).await.ok()?.next(),
        None => url.socket_addrs(|| None).ok()?.into_iter().next(),
    }
}

/// Names the cause of a failed raw request.
fn classify_raw(error: &RawError) -> Failure {
    match error {
        RawError::Io(io) => io_failure(io.kind()),
        RawError::ConnectTimeout => Failure::Timeout,
        RawError::Protocol(_) => Failure::Other(format!("request: {error}")),
    }
}

fn io_failure(kind: std::io::ErrorKind) -> Failure {
    match kind {
        std::io::ErrorKind::ConnectionRefused => Failure::Refused,
        std::io::ErrorKind::TimedOut => Failure::Timeout,
        kind => Failure::Other(format!("io: {kind}")),
    }
}

/// Names the cause of a failed reqwest request from the error's chain.
fn classify(error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout;
    }
    match cause(error) {
        Cause::Io(kind) => io_failure(kind),
        // A certificate the client does not trust, a name it does not match, no common
        // protocol: named, as a network error a browser would retry.
        Cause::Tls(message) => Failure::Other(format!("connect: tls: {message}")),
        Cause::Message(message) => {
            let stage = if error.is_connect() {
                "connect"
            } else {
                "request"
            };
            Failure::Other(format!("{stage}: {message}"))
        }
    }
}

/// What is underneath a reqwest error.
enum Cause {
    /// The first I/O error in its chain.
    Io(std::io::ErrorKind),
    /// A TLS error (rustls's, carried in an I/O error or on its own), its message.
    Tls(String),
    /// No I/O error underneath (hyper's own, such as a connection closed before the
    /// response): the innermost error's message, which names the cause, cut short.
    Message(String),
}

fn cause(error: &reqwest::Error) -> Cause {
    let mut innermost: &(dyn std::error::Error + 'static) = error;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = source {
        if let Some(tls) = tls_error(err) {
            return Cause::Tls(tls.to_string());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Cause::Io(io.kind());
        }
        innermost = err;
        source = err.source();
    }
    Cause::Message(innermost.to_string().chars().take(80).collect())
}

/// The rustls error `error` is or carries: an I/O error's own `source` skips the error it
/// wraps, and TLS connectors wrap rustls's error in one I/O error or two.
fn tls_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = error.downcast_ref::<std::io::Error>()?.get_ref()?;
    tls_error(inner).or_else(|| inner.source().and_then(tls_error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_failures_reconnect_and_answers_do_not() {
        assert!(Failure::Refused.reconnects());
        assert!(Failure::Timeout.reconnects());
        assert!(!Failure::Status(500).reconnects());
        assert!(!Failure::ContentType("text/html".into()).reconnects());
        assert!(!Failure::Encoding("content-encoding gzip".into()).reconnects());
        assert!(!Failure::TooManyRedirects(20).reconnects());
    }

    #[test]
    fn only_plain_and_chunked_bodies_are_readable() {
        assert_eq!(unreadable_coding(None, None), None);
        assert_eq!(unreadable_coding(Some("identity"), Some("Chunked")), None);
        assert_eq!(
            unreadable_coding(Some("gzip"), None).as_deref(),
            Some("content-encoding gzip")
        );
        assert_eq!(
            unreadable_coding(Some("identity, br"), None).as_deref(),
            Some("content-encoding br")
        );
        assert_eq!(
            unreadable_coding(None, Some("gzip, chunked")).as_deref(),
            Some("transfer-encoding gzip")
        );
    }

    /// Reads a stream whose chunked body stops inside a chunk, through `transport`, and
    /// returns the error that ended it.
    async fn read_a_body_cut_short(transport: Transport) -> ReadError {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await.unwrap();
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                      transfer-encoding: chunked\r\n\r\n10\r\nid: 1\ndata: 1\n",
                )
                .await
                .unwrap();
            // Closed here, 3 bytes short of the chunk's 16 and with no last chunk.
        });
        let connector = match transport {
            Transport::Hyper => Connector::Hyper(Client::builder().http1_only().build().unwrap()),
            Transport::Raw => Connector::Raw(RawConnector {
                local_addr: None,
                connect_timeout: std::time::Duration::from_secs(5),
            }),
        };
        let spec = RequestSpec::default();
        let mut body = connector.open(&url, "", &spec, 0).await.unwrap().body;
        server.await.unwrap();
        loop {
            match body.chunk().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("{transport:?}: a body cut short read as complete"),
                Err(error) => return error,
            }
        }
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error_that_names_its_cause() {
        for transport in [Transport::Hyper, Transport::Raw] {
            let error = read_a_body_cut_short(transport).await;
            assert_eq!(error.kind, ReadKind::Cut, "{transport:?}");
            assert_eq!(
                error.to_string(),
                "io: unexpected end of file",
                "{transport:?}"
            );
        }
    }

    #[tokio::test]
    async fn literals_resolve_as_they_are_and_names_through_the_resolver() {
        let at = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            resolve(&at("http://127.0.0.1:9/digits")).await,
            Some("127.0.0.1:9".parse().unwrap())
        );
        assert_eq!(
            resolve(&at("http://[::1]:9/")).await,
            Some("[::1]:9".parse().unwrap())
        );
        assert_eq!(
            resolve(&at("http://127.0.0.1/")).await,
            Some("127.0.0.1:80".parse().unwrap())
        );
        let localhost = resolve(&at("http://localhost:9/")).await.unwrap();
        assert!(
            localhost.ip().is_loopback() && localhost.port() == 9,
            "{localhost}"
        );
    }
}
