//! What each request carries besides its URL: the method, extra headers, a JSON body (one,
//! or the lines of a JSON-lines file in turn), how TLS certificates are checked and which
//! HTTP version is spoken. The load test and `sse-client` flatten the same
//! [`RequestOptions`] into their command lines; [`RequestOptions::resolve`] reads the files
//! and checks everything once, at start, into a [`RequestSpec`] that both transports send
//! from with no further checks.
//!
//! Header values are secrets (a bearer token, a cookie, an API key): nothing here prints
//! one. [`Header`]'s `Debug`, every error message and every description show the name only,
//! with the value as [`REDACTED`]; values handed to reqwest are marked sensitive.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE};

/// What a header value is shown as, wherever a request is described.
pub const REDACTED: &str = "<redacted>";

/// Headers the client frames or sends itself: a user's value would contradict its own.
const RESERVED: [(&str, &str); 5] = [
    ("host", "it comes from the URL"),
    ("content-length", "the client frames the body itself"),
    ("transfer-encoding", "the client frames the body itself"),
    ("connection", "the client manages its connections"),
    (
        "last-event-id",
        "the event source sends it on reconnections",
    ),
];

/// The request method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum Method {
    /// As a browser's EventSource.
    #[default]
    Get,
    /// As a `fetch`-based client that sends a JSON body (an LLM chat stream, say).
    Post,
}

impl Method {
    /// The method as it goes on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// The HTTP version every connection speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1, as a browser's EventSource without a proxy: one connection per stream.
    #[default]
    Http1,
    /// HTTP/2 only: prior knowledge (h2c) for `http://`, ALPN `h2` for `https://`.
    Http2,
}

impl HttpVersion {
    /// `HTTP/1.1` or `HTTP/2`, as the summaries show it.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Http1 => "HTTP/1.1",
            Self::Http2 => "HTTP/2",
        }
    }
}

/// One header to send. Its `Debug` shows the name only: the value is a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// The name as given (sent in this case over HTTP/1.1, lower-cased over HTTP/2).
    name: String,
    /// The same, checked.
    header_name: HeaderName,
    /// The value, marked sensitive.
    value: HeaderValue,
}

impl Header {
    /// Parses `Name: value` (whitespace around the value is dropped).
    ///
    /// # Errors
    /// What is wrong, in words that never include the value (nor the name, when the line
    /// has no colon and may be all value).
    pub fn parse(line: &str) -> Result<Self, String> {
        let Some((name, value)) = line.split_once(':') else {
            return Err("no ':' between a header's name and its value".into());
        };
        let name = name.trim();
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| "the header name is empty or not a valid token".to_owned())?;
        if let Some((_, why)) = RESERVED.iter().find(|(n, _)| *n == header_name.as_str()) {
            return Err(format!("{name} cannot be set: {why}"));
        }
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
            format!("the value of {name} holds a control character or a line break")
        })?;
        value.set_sensitive(true);
        Ok(Self {
            name: name.to_owned(),
            header_name,
            value,
        })
    }

    /// The name as given.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `Name: <redacted>`.
    #[must_use]
    pub fn redacted(&self) -> String {
        format!("{}: {REDACTED}", self.name)
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// One `--header` as clap parsed it: the header, or why it is malformed. Clap echoes a
/// value it refuses, so a malformed header is refused later, by [`RequestOptions::resolve`],
/// in words of our own.
#[derive(Clone)]
pub struct HeaderArg(Result<Header, String>);

impl fmt::Debug for HeaderArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Ok(header) => header.fmt(f),
            Err(_) => f.write_str("<malformed header>"),
        }
    }
}

/// Clap's parser for `--header`: never fails (see [`HeaderArg`]).
///
/// # Errors
/// None; the `Result` is clap's signature.
pub fn parse_header_arg(text: &str) -> Result<HeaderArg, String> {
    Ok(HeaderArg(Header::parse(text)))
}

/// A request option that cannot be used, said without any header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError(pub String);

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RequestError {}

/// How the requests are made: method, headers, body, TLS and HTTP version.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(
    next_help_heading = "Requests (method, headers, body, TLS, HTTP version; the same in sse-client)"
)]
pub struct RequestOptions {
    /// The request method: GET as a browser's EventSource, or POST with a JSON body.
    #[arg(long, value_enum, default_value_t = Method::Get, ignore_case = true)]
    pub method: Method,

    /// A header sent on every request, as 'Name: value' (repeatable): Authorization, a
    /// cookie, an API key. Values are never printed: they show as <redacted>. One named
    /// Accept or Content-Type replaces the client's own.
    #[arg(long = "header", value_name = "'NAME: VALUE'", value_parser = parse_header_arg, action = clap::ArgAction::Append)]
    pub headers: Vec<HeaderArg>,

    /// Headers from FILE, one 'Name: value' per line; blank lines and lines starting with
    /// # are skipped (keeps a token out of the shell's history).
    #[arg(long, value_name = "FILE")]
    pub header_file: Option<PathBuf>,

    /// The body of each request (with --method POST): JSON, sent as application/json unless
    /// a --header Content-Type says otherwise.
    #[arg(long, value_name = "JSON", conflicts_with = "body_file")]
    pub body: Option<String>,

    /// The body from FILE; with --body-lines (or a .jsonl name), a JSON-lines file whose
    /// lines are sent in turn: request i sends line i mod n.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,

    /// --body-file is JSON lines, one body per line, used in turn.
    #[arg(long, requires = "body_file")]
    pub body_lines: bool,

    /// Also trust the CA certificates in this PEM file (a private CA), besides the
    /// platform's roots.
    #[arg(long, value_name = "PEM", conflicts_with = "insecure")]
    pub ca_file: Option<PathBuf>,

    /// Accept any TLS certificate (a self-signed test certificate). Said loudly: a warning
    /// at start and a line in the summary.
    #[arg(long)]
    pub insecure: bool,

    /// Speak HTTP/1.1 (the default), as a browser's EventSource without a proxy.
    #[arg(long = "http1.1", id = "http1_1", conflicts_with = "http2")]
    pub http1_1: bool,

    /// Speak HTTP/2 only: h2c prior knowledge for http://, ALPN h2 for https://. Not with
    /// --transport raw.
    #[arg(long)]
    pub http2: bool,
}

/// The body each request sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Bodies {
    /// None (a GET).
    #[default]
    None,
    /// The same body every time.
    One(Bytes),
    /// Request i sends line i mod n.
    Lines(Vec<Bytes>),
}

/// How TLS certificates are checked.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// Extra roots (from --ca-file), trusted besides the platform's.
    pub extra_roots: Vec<reqwest::Certificate>,
    /// Accept any certificate.
    pub insecure: bool,
}

/// Everything each request carries, checked once at start and shared by every event source.
/// Its `Debug` names headers without their values; its `Default` is the plain GET of a
/// browser's EventSource.
pub struct RequestSpec {
    /// The method.
    pub method: Method,
    /// The user's headers, for describing them.
    user_headers: Vec<Header>,
    /// Every header reqwest sends (the client's own unless replaced, then the user's),
    /// values sensitive.
    header_map: HeaderMap,
    /// The same as HTTP/1.1 header lines, each ending in CRLF, for the raw transport.
    raw_head: Vec<u8>,
    /// The bodies.
    bodies: Bodies,
    /// The next request's number, for bodies used in turn.
    next_index: AtomicU64,
    /// How certificates are checked.
    pub tls: Tls,
    /// The HTTP version.
    pub http_version: HttpVersion,
}

impl RequestOptions {
    /// Reads the files and checks everything: headers, JSON bodies, the CA file.
    ///
    /// # Errors
    /// A message naming the flag (and the file's line) that is wrong, never a header value.
    pub fn resolve(&self) -> Result<RequestSpec, RequestError> {
        let mut headers = Vec::new();
        for (i, arg) in self.headers.iter().enumerate() {
            match &arg.0 {
                Ok(header) => headers.push(header.clone()),
                Err(why) => return Err(RequestError(format!("--header #{}: {why}", i + 1))),
            }
        }
        if let Some(path) = &self.header_file {
            headers.extend(read_header_file(path)?);
        }
        let user_sets = |name: &HeaderName| headers.iter().any(|h| h.header_name == *name);
        let content_type_given = user_sets(&CONTENT_TYPE);
        let bodies = self.bodies(content_type_given)?;
        if self.method == Method::Get && bodies != Bodies::None {
            return Err(RequestError("a body needs --method POST".into()));
        }
        let tls = Tls {
            extra_roots: self
                .ca_file
                .as_deref()
                .map(read_ca_file)
                .transpose()?
                .unwrap_or_default(),
            insecure: self.insecure,
        };
        let http_version = if self.http2 {
            HttpVersion::Http2
        } else {
            HttpVersion::Http1
        };
        Ok(RequestSpec::new(
            self.method,
            headers,
            bodies,
            tls,
            http_version,
        ))
    }

    /// The bodies the flags give, checked as JSON unless the user named another content type
    /// (JSON lines are always checked).
    fn bodies(&self, content_type_given: bool) -> Result<Bodies, RequestError> {
        let json = |text: &str, what: &dyn Fn() -> String| {
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map(|_| ())
                .map_err(|e| RequestError(format!("{}: not JSON ({e})", what())))
        };
        if let Some(body) = &self.body {
            if !content_type_given {
                json(body, &|| "--body".to_owned())?;
            }
            return Ok(Bodies::One(Bytes::from(body.clone())));
        }
        let Some(path) = &self.body_file else {
            return Ok(match self.method {
                // Framed as an empty body (Content-Length: 0) on both transports.
                Method::Post => Bodies::One(Bytes::new()),
                Method::Get => Bodies::None,
            });
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| RequestError(format!("--body-file {}: {e}", path.display())))?;
        let lines = self.body_lines || path.extension().is_some_and(|ext| ext == "jsonl");
        if !lines {
            if !content_type_given {
                json(&text, &|| format!("--body-file {}", path.display()))?;
            }
            return Ok(Bodies::One(Bytes::from(text)));
        }
        let mut bodies = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            json(line, &|| {
                format!("--body-file {} line {}", path.display(), n + 1)
            })?;
            bodies.push(Bytes::from(line.to_owned()));
        }
        if bodies.is_empty() {
            return Err(RequestError(format!(
                "--body-file {}: no JSON line in it",
                path.display()
            )));
        }
        Ok(Bodies::Lines(bodies))
    }
}

/// The headers of a `--header-file`.
fn read_header_file(path: &Path) -> Result<Vec<Header>, RequestError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RequestError(format!("--header-file {}: {e}", path.display())))?;
    let mut headers = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let header = Header::parse(line).map_err(|why| {
            RequestError(format!(
                "--header-file {} line {}: {why}",
                path.display(),
                n + 1
            ))
        })?;
        headers.push(header);
    }
    Ok(headers)
}

/// The certificates of a `--ca-file`.
fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, RequestError> {
    let pem = std::fs::read(path)
        .map_err(|e| RequestError(format!("--ca-file {}: {e}", path.display())))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        RequestError(format!(
            "--ca-file {}: not PEM certificates ({e})",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(RequestError(format!(
            "--ca-file {}: no certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

impl fmt::Debug for RequestSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSpec")
            .field("method", &self.method)
            .field("headers", &self.user_headers)
            .field("body", &self.body_description())
            .field("tls", &self.tls)
            .field("http_version", &self.http_version)
            .finish_non_exhaustive()
    }
}

impl Default for RequestSpec {
    fn default() -> Self {
        Self::new(
            Method::Get,
            Vec::new(),
            Bodies::None,
            Tls::default(),
            HttpVersion::Http1,
        )
    }
}

impl RequestSpec {
    /// Requests with `user_headers` (checked) besides the client's own `Accept`,
    /// `Cache-Control` and, with a body, `Content-Type`, each left out when the user gives
    /// one of that name.
    fn new(
        method: Method,
        user_headers: Vec<Header>,
        bodies: Bodies,
        tls: Tls,
        http_version: HttpVersion,
    ) -> Self {
        let user_sets = |name: &HeaderName| user_headers.iter().any(|h| h.header_name == *name);
        let own = |name: HeaderName, shown: &str, value: &'static str| Header {
            name: shown.to_owned(),
            header_name: name,
            value: HeaderValue::from_static(value),
        };
        let mut all = Vec::new();
        if !user_sets(&ACCEPT) {
            all.push(own(ACCEPT, "Accept", "text/event-stream"));
        }
        if !user_sets(&CACHE_CONTROL) {
            all.push(own(CACHE_CONTROL, "Cache-Control", "no-cache"));
        }
        if bodies != Bodies::None && !user_sets(&CONTENT_TYPE) {
            all.push(own(CONTENT_TYPE, "Content-Type", "application/json"));
        }
        all.extend(user_headers.iter().cloned());
        let mut header_map = HeaderMap::new();
        let mut raw_head = Vec::new();
        for header in &all {
            header_map.append(header.header_name.clone(), header.value.clone());
            raw_head.extend_from_slice(header.name.as_bytes());
            raw_head.extend_from_slice(b": ");
            raw_head.extend_from_slice(header.value.as_bytes());
            raw_head.extend_from_slice(b"\r\n");
        }
        Self {
            method,
            user_headers,
            header_map,
            raw_head,
            bodies,
            next_index: AtomicU64::new(0),
            tls,
            http_version,
        }
    }

    /// The number of the next request, for [`body`](Self::body): counted only when bodies
    /// are used in turn, so a plain GET touches no shared counter.
    pub fn next_index(&self) -> u64 {
        match self.bodies {
            Bodies::Lines(_) => self.next_index.fetch_add(1, Ordering::Relaxed),
            Bodies::None | Bodies::One(_) => 0,
        }
    }

    /// The body request `index` sends, if any.
    #[must_use]
    pub fn body(&self, index: u64) -> Option<&Bytes> {
        match &self.bodies {
            Bodies::None => None,
            Bodies::One(body) => Some(body),
            Bodies::Lines(lines) => {
                let n = lines.len() as u64;
                usize::try_from(index % n).ok().and_then(|i| lines.get(i))
            }
        }
    }

    /// `builder` made to check certificates as the streams' clients do (`--ca-file`,
    /// `--insecure`).
    pub fn apply_tls(&self, mut builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        if !self.tls.extra_roots.is_empty() {
            builder = builder.tls_certs_merge(self.tls.extra_roots.iter().cloned());
        }
        if self.tls.insecure {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        builder
    }

    /// The user's headers alone, values sensitive: what a look at the same server's
    /// `/metrics` needs to be let in.
    #[must_use]
    pub fn user_header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for header in &self.user_headers {
            map.append(header.header_name.clone(), header.value.clone());
        }
        map
    }

    /// Every header reqwest sends, values sensitive.
    #[must_use]
    pub fn header_map(&self) -> &HeaderMap {
        &self.header_map
    }

    /// Every header as HTTP/1.1 lines, each ending in CRLF, for the raw transport.
    #[must_use]
    pub fn raw_head(&self) -> &[u8] {
        &self.raw_head
    }

    /// The user's headers as `Name: <redacted>`.
    #[must_use]
    pub fn redacted_headers(&self) -> Vec<String> {
        self.user_headers.iter().map(Header::redacted).collect()
    }

    /// The body in a few words (`none`, `7 bytes`, `3 JSON lines in turn`), never its
    /// content.
    #[must_use]
    pub fn body_description(&self) -> String {
        match &self.bodies {
            Bodies::None => "none".into(),
            Bodies::One(body) => format!("{} bytes", body.len()),
            Bodies::Lines(lines) => format!("{} JSON lines in turn", lines.len()),
        }
    }

    /// The warning to print at start, when certificates are not checked.
    #[must_use]
    pub fn insecure_warning(&self) -> Option<&'static str> {
        self.tls
            .insecure
            .then_some("WARNING: --insecure: TLS certificates are NOT verified")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    #[command(args_override_self = true)]
    struct Flags {
        #[command(flatten)]
        request: RequestOptions,
    }

    fn resolve(args: &[&str]) -> Result<RequestSpec, RequestError> {
        Flags::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .map_err(|e| RequestError(e.to_string()))?
            .request
            .resolve()
    }

    fn temp_file(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("loadtest-request-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_plain_get_sends_what_an_event_source_does() {
        let spec = resolve(&[]).unwrap();
        assert_eq!(spec.method, Method::Get);
        assert_eq!(spec.http_version, HttpVersion::Http1);
        assert_eq!(
            spec.raw_head(),
            b"Accept: text/event-stream\r\nCache-Control: no-cache\r\n"
        );
        assert_eq!(spec.body(0), None);
        assert_eq!(spec.next_index(), 0);
        assert_eq!(spec.next_index(), 0, "no counter for a plain GET");
    }

    #[test]
    fn header_values_never_show_and_repeated_headers_all_count() {
        let secret = "s3cr3t-VALUE";
        let args = [
            "--header",
            "Authorization: Bearer s3cr3t-VALUE",
            "--header",
            "X-Api-Key:s3cr3t-VALUE",
        ];
        let flags = Flags::try_parse_from(std::iter::once("x").chain(args)).unwrap();
        let debug = format!("{:?}", flags.request);
        assert!(!debug.contains(secret), "{debug}");
        assert!(debug.contains("Authorization: <redacted>"), "{debug}");
        let spec = flags.request.resolve().unwrap();
        assert!(!format!("{spec:?}").contains(secret), "{spec:?}");
        assert_eq!(
            spec.redacted_headers(),
            ["Authorization: <redacted>", "X-Api-Key: <redacted>"]
        );
        let head = String::from_utf8(spec.raw_head().to_vec()).unwrap();
        assert!(head.ends_with("Authorization: Bearer s3cr3t-VALUE\r\nX-Api-Key: s3cr3t-VALUE\r\n"));
        assert!(spec.header_map()["authorization"].is_sensitive());
    }

    #[test]
    fn malformed_headers_are_refused_without_their_value() {
        for (line, why) in [
            ("Bearer s3cr3t-VALUE", "no ':'"),
            ("Bad Name s3cr3t-VALUE: x", "not a valid token"),
            (": s3cr3t-VALUE", "not a valid token"),
            ("Host: s3cr3t-VALUE", "Host cannot be set"),
            ("Content-Length: 5", "frames the body"),
        ] {
            let err = resolve(&["--header", line]).err().unwrap().to_string();
            assert!(err.contains(why), "{line}: {err}");
            assert!(err.starts_with("--header #1"), "{err}");
            assert!(!err.contains("s3cr3t"), "{err}");
        }
        let err = Header::parse("X: a\u{1}b").err().unwrap();
        assert!(
            err.contains("control character") && !err.contains("a\u{1}b"),
            "{err}"
        );
    }

    #[test]
    fn a_header_file_skips_blanks_and_comments_and_names_a_bad_line() {
        let good = temp_file(
            "headers.txt",
            "# the token\n\nAuthorization: Bearer abc\r\n  Cookie: a=b\n",
        );
        let spec = resolve(&["--header-file", good.to_str().unwrap()]).unwrap();
        assert_eq!(
            spec.redacted_headers(),
            ["Authorization: <redacted>", "Cookie: <redacted>"]
        );
        let bad = temp_file("bad-headers.txt", "X-A: 1\n\nBearer s3cr3t\n");
        let err = resolve(&["--header-file", bad.to_str().unwrap()])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("line 3: no ':'"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn a_post_body_is_json_with_its_content_type_unless_overridden() {
        let spec = resolve(&["--method", "POST", "--body", r#"{"a":1}"#]).unwrap();
        assert_eq!(spec.body(7).unwrap().as_ref(), br#"{"a":1}"#);
        assert_eq!(spec.header_map()["content-type"], "application/json");
        assert!(resolve(&["--method", "post", "--body", "{nope"]).is_err());
        let spec = resolve(&[
            "--method",
            "POST",
            "--body",
            "a=1",
            "--header",
            "Content-Type: application/x-www-form-urlencoded",
            "--header",
            "accept: */*",
        ])
        .unwrap();
        assert_eq!(spec.header_map().get_all("content-type").iter().count(), 1);
        assert_eq!(spec.header_map()["accept"], "*/*");
        let err = resolve(&["--body", "{}"]).err().unwrap().to_string();
        assert!(err.contains("--method POST"), "{err}");
        let spec = resolve(&["--method", "POST"]).unwrap();
        assert_eq!(spec.body(0).map(Bytes::len), Some(0));
    }

    #[test]
    fn json_lines_are_used_in_turn_and_a_bad_line_is_named() {
        let lines = temp_file("bodies.jsonl", "{\"n\":1}\n{\"n\":2}\n\n{\"n\":3}\n");
        let spec = resolve(&["--method", "POST", "--body-file", lines.to_str().unwrap()]).unwrap();
        let sent: Vec<_> = (0..5)
            .map(|_| spec.body(spec.next_index()).unwrap().clone())
            .collect();
        let want = [
            "{\"n\":1}",
            "{\"n\":2}",
            "{\"n\":3}",
            "{\"n\":1}",
            "{\"n\":2}",
        ];
        assert_eq!(sent, want.map(|s| Bytes::from_static(s.as_bytes())));
        assert_eq!(spec.body_description(), "3 JSON lines in turn");
        let bad = temp_file("bad.txt", "{\"n\":1}\n{\"n\":\n");
        let err = resolve(&[
            "--method",
            "POST",
            "--body-file",
            bad.to_str().unwrap(),
            "--body-lines",
        ])
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("line 2: not JSON"), "{err}");
        let empty = temp_file("empty.jsonl", "\n\n");
        let err = resolve(&["--method", "POST", "--body-file", empty.to_str().unwrap()])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no JSON line"), "{err}");
    }

    #[test]
    fn tls_and_version_flags_are_checked() {
        assert!(resolve(&["--insecure", "--ca-file", "x.pem"]).is_err());
        assert!(resolve(&["--http1.1", "--http2"]).is_err());
        let spec = resolve(&["--http2", "--insecure"]).unwrap();
        assert_eq!(spec.http_version.label(), "HTTP/2");
        assert!(spec.insecure_warning().is_some());
        let not_pem = temp_file("not.pem", "hello");
        let err = resolve(&["--ca-file", not_pem.to_str().unwrap()])
            .err()
            .unwrap();
        assert!(err.0.contains("--ca-file"), "{err}");
    }
}
