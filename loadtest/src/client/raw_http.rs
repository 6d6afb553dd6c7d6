//! A minimal HTTP/1.1 client for one thing: request an event stream (`GET`, or `POST` with
//! a body) and hand its body over chunk by chunk. It skips what a general client does per chunk (hyper's connection task,
//! its channel to the response body, reqwest's layers), so the load generator spends less
//! of the machine per event than the server it measures.
//!
//! What it does: one request per connection (no keep-alive, no pooling), `httparse` for
//! the response head and for chunk sizes, bodies framed by `Transfer-Encoding: chunked`,
//! `Content-Length` or the end of the connection. No TLS and no proxies; redirects are the
//! event source's to follow, as with the other transport.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// The largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// How much room a read asks for: an event of the digits stream is about 30 bytes, a
/// catching-up chunk about 1 KiB.
const READ_SIZE: usize = 4096;
/// Response headers parsed at most.
const MAX_HEADERS: usize = 32;

/// Opens connections from an optional local address.
#[derive(Debug, Clone)]
pub struct RawConnector {
    /// The local address to connect from; `None`: the system's choice.
    pub local_addr: Option<IpAddr>,
    /// Longest wait for the TCP connection.
    pub connect_timeout: Duration,
}

/// One request: the method, the target and what goes with it.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// The `Host` header's value.
    pub host: &'a str,
    /// The request target.
    pub path_and_query: &'a str,
    /// Header lines written as they are, each ending in CRLF (built once per run).
    pub head: &'a [u8],
    /// More headers, for this request only (`Last-Event-ID`).
    pub extra: &'a [(&'a str, &'a str)],
    /// The body, sent with its `Content-Length`.
    pub body: Option<&'a [u8]>,
}

impl RawRequest<'_> {
    /// The request's bytes: request line, `Host`, headers, `Content-Length`, blank line and
    /// body, written in one go.
    fn encode(&self) -> Vec<u8> {
        let body = self.body.unwrap_or_default();
        let mut out = Vec::with_capacity(128 + self.head.len() + body.len());
        for part in [
            self.method,
            " ",
            self.path_and_query,
            " HTTP/1.1\r\nHost: ",
            self.host,
        ] {
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.head);
        for (name, value) in self.extra {
            for part in [*name, ": ", *value, "\r\n"] {
                out.extend_from_slice(part.as_bytes());
            }
        }
        if let Some(body) = self.body {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out
    }
}

/// A response head, and the body still to be read.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` header, if any (lossy UTF-8).
    pub content_type: Option<String>,
    /// The `Content-Encoding` header, if any.
    pub content_encoding: Option<String>,
    /// The `Transfer-Encoding` header, if any.
    pub transfer_encoding: Option<String>,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The body.
    pub body: RawBody,
}

/// Why a raw request failed.
#[derive(Debug)]
pub enum RawError {
    /// The connection failed or broke.
    Io(io::Error),
    /// No connection within the connect timeout.
    ConnectTimeout,
    /// The response was not valid HTTP/1.x, described.
    Protocol(&'static str),
}

impl From<io::Error> for RawError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

impl std::fmt::Display for RawError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(error) => write!(f, "io: {}", error.kind()),
            Self::ConnectTimeout => f.write_str("connect timed out"),
            Self::Protocol(what) => write!(f, "bad response: {what}"),
        }
    }
}

impl RawConnector {
    /// Connects to `addr`, sends `GET path_and_query` with `headers`, and reads the
    /// response head.
    ///
    /// # Errors
    /// When the connection fails, or the response head is not HTTP/1.x.
    pub async fn get(
        &self,
        addr: SocketAddr,
        host: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<RawResponse, RawError> {
        let request = RawRequest {
            method: "GET",
            host,
            path_and_query,
            head: &[],
            extra: headers,
            body: None,
        };
        self.send(addr, &request).await
    }

    /// Connects to `addr`, sends `request`, and reads the response head.
    ///
    /// # Errors
    /// When the connection fails, or the response head is not HTTP/1.x.
    pub async fn send(
        &self,
        addr: SocketAddr,
        request: &RawRequest<'_>,
    ) -> Result<RawResponse, RawError> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(local) = self.local_addr {
            socket.bind(SocketAddr::new(local, 0))?;
        }
        let mut stream = tokio::time::timeout(self.connect_timeout, socket.connect(addr))
            .await
            .map_err(|_| RawError::ConnectTimeout)??;
        stream.set_nodelay(true)?;
        stream.write_all(&request.encode()).await?;
        read_head(stream).await
    }
}

/// Reads and parses the response head; what follows it stays in the body's buffer.
async fn read_head(mut stream: TcpStream) -> Result<RawResponse, RawError> {
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(RawError::Protocol(
                "connection closed before the response head",
            ));
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(head_len)) => {
                let status = response.code.unwrap_or(0);
                let header = |name: &str| {
                    response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned())
                };
                let content_type = header("content-type");
                let content_encoding = header("content-encoding");
                let location = header("location");
                let retry_after = header("retry-after");
                let transfer_encoding = header("transfer-encoding");
                let framing = if transfer_encoding
                    .as_ref()
                    .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
                {
                    Framing::Chunked(ChunkState::Size)
                } else if let Some(length) = header("content-length") {
                    let length = length
                        .trim()
                        .parse()
                        .map_err(|_| RawError::Protocol("bad content-length"))?;
                    Framing::Length(length)
                } else if status == 204 || status == 304 {
                    Framing::Length(0)
                } else {
                    Framing::UntilClose
                };
                buf.advance(head_len);
                return Ok(RawResponse {
                    status,
                    content_type,
                    content_encoding,
                    transfer_encoding,
                    location,
                    retry_after,
                    body: RawBody {
                        stream,
                        buf,
                        framing,
                    },
                });
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(RawError::Protocol("head too large")),
            Err(_) => return Err(RawError::Protocol("malformed head")),
        }
    }
}

/// How the body's end is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `Transfer-Encoding: chunked`, in this state.
    Chunked(ChunkState),
    /// This many bytes are left.
    Length(u64),
    /// The body ends with the connection.
    UntilClose,
}

/// Where the chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: expecting trailers and the final CRLF.
    Trailers,
    /// The body is complete.
    Done,
}

/// An open response body.
#[derive(Debug)]
pub struct RawBody {
    stream: TcpStream,
    /// Bytes read and not yet handed out or decoded.
    buf: BytesMut,
    framing: Framing,
}

impl RawBody {
    /// The next piece of body data: `Ok(None)` at the end of the body.
    ///
    /// # Errors
    /// When the connection breaks, or the chunked framing is malformed (a body that stops
    /// short of its length or its last chunk is an `UnexpectedEof`).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, RawError> {
        loop {
            if let Some(step) = self.decode()? {
                return Ok(step);
            }
            self.buf.reserve(READ_SIZE);
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return if self.framing == Framing::UntilClose {
                    Ok(None)
                } else {
                    Err(io::Error::from(io::ErrorKind::UnexpectedEof).into())
                };
            }
        }
    }

    /// Decodes what the buffer holds: `Some(step)` when there is data or the end to report,
    /// `None` when more bytes must be read first.
    fn decode(&mut self) -> Result<Option<Option<Bytes>>, RawError> {
        loop {
            match self.framing {
                Framing::UntilClose => {
                    return Ok((!self.buf.is_empty()).then(|| Some(self.take(self.buf.len()))));
                }
                Framing::Length(0) => return Ok(Some(None)),
                Framing::Length(left) => {
                    let Some((data, left)) = self.take_at_most(left) else {
                        return Ok(None);
                    };
                    self.framing = Framing::Length(left);
                    return Ok(Some(Some(data)));
                }
                Framing::Chunked(state) => match state {
                    ChunkState::Size => match httparse::parse_chunk_size(&self.buf) {
                        Ok(httparse::Status::Complete((len, 0))) => {
                            self.buf.advance(len);
                            self.framing = Framing::Chunked(ChunkState::Trailers);
                        }
                        Ok(httparse::Status::Complete((len, size))) => {
                            self.buf.advance(len);
                            self.framing = Framing::Chunked(ChunkState::Data(size));
                        }
                        Ok(httparse::Status::Partial) => return Ok(None),
                        Err(_) => return Err(RawError::Protocol("bad chunk size")),
                    },
                    ChunkState::Data(left) => {
                        let Some((data, left)) = self.take_at_most(left) else {
                            return Ok(None);
                        };
                        self.framing = Framing::Chunked(if left == 0 {
                            ChunkState::DataEnd
                        } else {
                            ChunkState::Data(left)
                        });
                        return Ok(Some(Some(data)));
                    }
                    ChunkState::DataEnd => {
                        if self.buf.len() < 2 {
                            return Ok(None);
                        }
                        if &self.buf[..2] != b"\r\n" {
                            return Err(RawError::Protocol("no CRLF after chunk data"));
                        }
                        self.buf.advance(2);
                        self.framing = Framing::Chunked(ChunkState::Size);
                    }
                    ChunkState::Trailers => {
                        // Trailer lines end at an empty line; the digits stream sends none.
                        let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") else {
                            return Ok(None);
                        };
                        self.buf.advance(end + 2);
                        if end == 0 {
                            self.framing = Framing::Chunked(ChunkState::Done);
                        }
                    }
                    ChunkState::Done => return Ok(Some(None)),
                },
            }
        }
    }

    /// Up to `left` buffered bytes and what is left after them; `None` when nothing is
    /// buffered.
    fn take_at_most(&mut self, left: u64) -> Option<(Bytes, u64)> {
        if self.buf.is_empty() {
            return None;
        }
        let n = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(self.buf.len());
        Some((self.take(n), left - n as u64))
    }

    /// The next `n` buffered bytes, without copying: the buffer's allocation is shared
    /// with the returned `Bytes` and reused once the caller drops it.
    fn take(&mut self, n: usize) -> Bytes {
        self.buf.split_to(n).freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Serves `reply` (written in `pieces`, a few milliseconds apart) to one connection and
    /// returns the request it received.
    async fn serve_once(
        reply: Vec<&'static [u8]>,
    ) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                socket.read_exact(&mut byte).await.unwrap();
                request.push(byte[0]);
            }
            for piece in reply {
                socket.write_all(piece).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            String::from_utf8(request).unwrap()
        });
        (addr, server)
    }

    fn connector() -> RawConnector {
        RawConnector {
            local_addr: None,
            connect_timeout: Duration::from_secs(5),
        }
    }

    async fn body_of(response: &mut RawResponse) -> Result<Vec<u8>, RawError> {
        let mut body = Vec::new();
        while let Some(chunk) = response.body.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    #[tokio::test]
    async fn a_chunked_stream_split_anywhere_is_decoded_and_ends_at_the_last_chunk() {
        let (addr, server) = serve_once(vec![
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
            b"d\r\nretry: 3000\n\n\r\n",
            b"f\r\nid: 1\ndata: 1\n\n\r",
            b"\nf\r\nid: 2\nda",
            b"ta: 2\n\n\r\n0\r\n\r\n",
        ])
        .await;
        let mut response = connector()
            .get(addr, "example", "/digits?x=1", &[("Last-Event-ID", "7")])
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.content_type.as_deref(), Some("text/event-stream"));
        let body = body_of(&mut response).await.unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "retry: 3000\n\nid: 1\ndata: 1\n\nid: 2\ndata: 2\n\n"
        );
        let request = server.await.unwrap();
        assert_eq!(
            request,
            "GET /digits?x=1 HTTP/1.1\r\nHost: example\r\nLast-Event-ID: 7\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn a_chunked_body_cut_short_is_an_error_and_a_close_delimited_one_is_not() {
        let (addr, _server) = serve_once(vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
        ])
        .await;
        let mut response = connector().get(addr, "h", "/", &[]).await.unwrap();
        let error = body_of(&mut response).await.unwrap_err();
        assert!(
            matches!(&error, RawError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof),
            "{error}"
        );

        let (addr, _server) = serve_once(vec![b"HTTP/1.0 200 OK\r\n\r\nall of it"]).await;
        let mut response = connector().get(addr, "h", "/", &[]).await.unwrap();
        assert_eq!(body_of(&mut response).await.unwrap(), b"all of it");
    }

    #[tokio::test]
    async fn content_length_frames_the_body_and_statuses_come_through() {
        let (addr, _server) = serve_once(vec![
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\nbusy\nEXTRA",
        ])
        .await;
        let mut response = connector().get(addr, "h", "/", &[]).await.unwrap();
        assert_eq!(response.status, 503);
        assert_eq!(body_of(&mut response).await.unwrap(), b"busy\n");
    }

    #[tokio::test]
    async fn garbage_instead_of_a_head_is_a_protocol_error() {
        let (addr, _server) = serve_once(vec![b"SSH-2.0-OpenSSH\r\n\r\n"]).await;
        let error = connector().get(addr, "h", "/", &[]).await.unwrap_err();
        assert!(matches!(error, RawError::Protocol(_)), "{error}");
    }

    #[tokio::test]
    async fn nothing_listening_is_connection_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let error = connector().get(addr, "h", "/", &[]).await.unwrap_err();
        assert!(
            matches!(&error, RawError::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused),
            "{error}"
        );
    }

    #[test]
    fn a_post_carries_its_headers_and_its_body_with_its_length() {
        let request = RawRequest {
            method: "POST",
            host: "h:1",
            path_and_query: "/s?a=1",
            head: b"Accept: text/event-stream\r\nContent-Type: application/json\r\n",
            extra: &[("Last-Event-ID", "9")],
            body: Some(br#"{"a":1}"#),
        };
        assert_eq!(
            String::from_utf8(request.encode()).unwrap(),
            "POST /s?a=1 HTTP/1.1\r\nHost: h:1\r\nAccept: text/event-stream\r\n\
             Content-Type: application/json\r\nLast-Event-ID: 9\r\nContent-Length: 7\r\n\r\n\
             {\"a\":1}"
        );
        let empty = RawRequest {
            body: Some(b""),
            extra: &[],
            ..request
        };
        assert!(String::from_utf8(empty.encode())
            .unwrap()
            .ends_with("Content-Type: application/json\r\nContent-Length: 0\r\n\r\n"));
    }
}
