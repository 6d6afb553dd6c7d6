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

/// How the listening socket is set up, beyond its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenOptions {
    /// Every accepted connection is cut off by the kernel once it could not send for this
    /// long (see [`cut_off_stalled_readers`]).
    pub write_stall: Option<Duration>,
    /// Share the address with other processes that set it too (`SO_REUSEPORT`): the kernel
    /// gives each its own accept queue and spreads new connections over them. Several
    /// processes then serve one port, and a new process can take over from an old one
    /// without a moment when nothing listens.
    pub reuse_port: bool,
}

/// Binds `addr` with a [`BACKLOG`]-deep accept queue, set up as `options` says.
///
/// # Errors
/// If the socket cannot be created or bound (address in use, not permitted), or
/// `reuse_port` is asked for where the system has no `SO_REUSEPORT`.
pub fn bind(addr: SocketAddr, options: ListenOptions) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // A restart can bind again while the last run's connections sit in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    if options.reuse_port {
        share_the_port(&socket)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    if let Some(timeout) = options.write_stall {
        cut_off_stalled_readers(&socket, timeout);
    }
    Ok(socket.into())
}

/// Sets `SO_REUSEPORT`, or says the system has none.
fn share_the_port(socket: &Socket) -> io::Result<()> {
    #[cfg(all(unix, not(target_os = "solaris"), not(target_os = "illumos")))]
    return socket.set_reuse_port(true);
    #[cfg(not(all(unix, not(target_os = "solaris"), not(target_os = "illumos"))))]
    {
        let _ = socket;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "SO_REUSEPORT is not available on this system",
        ))
    }
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
        let listener = bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).unwrap();
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
        let first = bind("127.0.0.1:0".parse().unwrap(), ListenOptions::default()).unwrap();
        let taken = first.local_addr().unwrap();
        // SO_REUSEADDR does not let a second listener share a port that is listening.
        assert!(bind(taken, ListenOptions::default()).is_err());
        // Nor does SO_REUSEPORT when the first listener did not set it.
        let shared = ListenOptions {
            reuse_port: true,
            ..ListenOptions::default()
        };
        assert!(bind(taken, shared).is_err());
    }

    /// Two listeners that both set SO_REUSEPORT share one port, and connections reach both.
    #[test]
    fn listeners_that_ask_share_a_port_and_both_get_connections() {
        let shared = ListenOptions {
            reuse_port: true,
            ..ListenOptions::default()
        };
        let first = bind("127.0.0.1:0".parse().unwrap(), shared).unwrap();
        let addr = first.local_addr().unwrap();
        let second = bind(addr, shared).unwrap();
        for listener in [&first, &second] {
            listener.set_nonblocking(true).unwrap();
        }
        // The kernel spreads by a hash of the client's address and port: 64 clients miss
        // one of two queues with odds of 2^-63.
        let _clients: Vec<TcpStream> = (0..64)
            .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap())
            .collect();
        let accepted =
            |listener: &TcpListener| std::iter::from_fn(|| listener.accept().ok()).count();
        let (a, b) = (accepted(&first), accepted(&second));
        assert_eq!(a + b, 64);
        assert!(a > 0 && b > 0, "one listener got them all: {a} and {b}");
    }
}
