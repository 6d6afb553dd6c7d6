//! The request head, as the tests' small hand-written servers read it.
//! Included with `#[path]` by the tests that need it.

use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// Past this many bytes without a blank line, the head is taken as it is.
const MOST_BYTES: usize = 16 * 1024;
/// The longest one read waits: a client that sends nothing is given up on.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads `socket` up to the blank line that ends a request head: the bytes read (the head
/// and anything after it that came in the same reads), or `None` when the client closed,
/// failed or stalled first.
pub async fn read_head(socket: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MOST_BYTES {
        match tokio::time::timeout(READ_TIMEOUT, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return None,
        }
    }
    Some(head)
}
