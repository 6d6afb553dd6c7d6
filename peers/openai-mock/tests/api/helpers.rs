//! Starting the mock and reading its streams.

use std::net::SocketAddr;
use std::time::Duration;

use openai_mock::MockConfig;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Long enough for a loaded 2-core machine, short enough that a hang fails the test.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A running mock.
pub struct Mock {
    pub address: SocketAddr,
    pub client: reqwest::Client,
}

impl Mock {
    /// The URL of `path` on this mock.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Posts `body` to the completions endpoint, with `key` as a bearer token if given.
    pub async fn post(&self, body: &str, key: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.expect("the mock answers")
    }
}

/// Binds a listener on a free loopback port.
pub async fn loopback_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let address = listener.local_addr().expect("bound address");
    (listener, address)
}

/// A plain HTTP client with a timeout, as every test uses it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .build()
        .expect("client without TLS builds")
}

/// Starts the mock with `config`; it serves until the test's runtime ends.
pub async fn spawn_mock(config: MockConfig) -> Mock {
    let (listener, address) = loopback_listener().await;
    tokio::spawn(openai_mock::serve(listener, config));
    Mock {
        address,
        client: client(),
    }
}

/// One SSE event's `data` as it arrived, and when, measured from the request being sent.
#[derive(Debug)]
pub struct Received {
    pub at: Duration,
    pub data: String,
}

impl Received {
    /// The data as JSON; panics (failing the test) when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("data is not JSON ({e}): {:?}", self.data))
    }
}

/// Reads the whole body of a streamed response, timestamping each event as its last byte
/// arrives. Every event must be exactly one `data:` line; anything else fails the test.
pub async fn read_events(mut response: reqwest::Response, sent: Instant) -> Vec<Received> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while let Some(bytes) = response.chunk().await.expect("the body reads to its end") {
        let at = sent.elapsed();
        buffer.push_str(std::str::from_utf8(&bytes).expect("the stream is UTF-8"));
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            let data = event
                .strip_prefix("data: ")
                .and_then(|rest| rest.strip_suffix("\n\n"))
                .filter(|data| !data.contains('\n'))
                .unwrap_or_else(|| panic!("not a single data line: {event:?}"));
            events.push(Received {
                at,
                data: data.to_owned(),
            });
        }
    }
    assert!(
        buffer.is_empty(),
        "the body ended inside an event: {buffer:?}"
    );
    events
}
