//! Loopback ports for tests that must name a port before the server binds it (a daemon
//! restarted on the same addresses, a server that takes its port on the command line):
//! free at the time of asking, on TCP and UDP alike, since HEP listens on both.

use std::net::{TcpListener, UdpSocket};

/// A loopback port that was free on TCP and on UDP when asked; another process may still
/// take it before the caller binds it.
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback TCP port");
        let port = tcp.local_addr().expect("a bound socket's address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free on both TCP and UDP in 100 tries");
}
