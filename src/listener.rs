//! The listening socket, set up for thousands of clients that connect at once.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// Connections the kernel completes and queues while the workers are busy accepting.
/// `std::net::TcpListener::bind` asks for 128: past that, a client's handshake is dropped
/// and retried a second later (then 3 s, 7 s…), which shows as a time to open of whole
/// seconds when a load test's clients all connect at once. Linux caps the value at
/// `net.core.somaxconn` (4096 by default).
pub const BACKLOG: i32 = 4096;

/// Binds `addr` with a [`BACKLOG`]-deep accept queue. With `write_stall`, every accepted
/// connection is cut off by the kernel once it could not send for that long (see
/// [`cut_off_stalled_readers`]).
///
/// # Errors
/// If the socket cannot be created or bound (address in use, not permitted).
pub fn bind(addr: SocketAddr, write_stall: Option<Duration>) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // A restart can bind again while the last run's connections sit in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    if let Some(timeout) = write_stall {
        cut_off_stalled_readers(&socket, timeout);
    }
    Ok(socket.into())
}

/// Sets `TCP_USER_TIMEOUT` on the listening socket; Linux copies it to every connection it
/// accepts (no per-connection system call or hook). The kernel then drops a connection when
/// sent data stays unacknowledged, or the peer's receive window stays shut, for `timeout`.
/// A client that stops reading is cut off after that long instead of holding its stream
/// and buffers forever; its stream counts as `write_stalled`.
fn cut_off_stalled_readers(socket: &Socket, timeout: Duration) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(error) = socket.set_tcp_user_timeout(Some(timeout)) {
        tracing::warn!(%error, "cannot set TCP_USER_TIMEOUT");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (socket, timeout);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    /// Clients beyond std's 128-deep queue still complete their handshake while nobody
    /// accepts: with a 128-deep queue the kernel drops the extra handshakes, and these
    /// connects time out (the retry comes a second later).
    #[test]
    fn the_accept_queue_holds_more_than_std_gives() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..300)
            .map(|n| {
                TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                    .unwrap_or_else(|error| panic!("client {n} not queued: {error}"))
            })
            .collect();
        assert_eq!(clients.len(), 300);
    }

    #[test]
    fn a_bound_address_is_refused_with_an_error() {
        let first = bind("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let taken = first.local_addr().unwrap();
        // SO_REUSEADDR does not let a second listener share a port that is listening.
        assert!(bind(taken, None).is_err());
    }
}
