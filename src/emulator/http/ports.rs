//! Listening sockets and ports held without listening.
//!
//! A machine that is down must look like one: connecting to its port is refused (RST), not
//! accepted and then closed. That needs the port bound but not listening, and held, so nothing
//! else takes it while the machine is down. A machine can also go down and come back at run time
//! on the same port; closing its listener and binding again would leave a moment in which another
//! socket (an outgoing connection's ephemeral port, say) could take the port. So a worker's port
//! is held for the emulator's whole life by a bound socket that never listens, and the worker's
//! listener shares the port with it (`SO_REUSEPORT`; only a listening socket receives
//! connections). Going down closes the listener; coming back opens a new one beside the holder.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Listen backlog: a burst of a few thousand simultaneous connects must not hit SYN retries
/// (a one-second retry is fifty model seconds at time scale 0.02).
const BACKLOG: i32 = 4096;

/// Bind a listening socket with a backlog large enough for bursts of connects.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    // Calling listen() again on a listening socket only changes its backlog (std uses 128).
    // SAFETY: plain syscall on a descriptor we own.
    unsafe {
        libc::listen(listener.as_raw_fd(), BACKLOG);
    }
    Ok(listener)
}

/// A listening socket on a port held by a [`ReservedPort::bind_shared`] (or on a new port, which
/// a holder can then share).
pub fn listen_shared(addr: SocketAddr) -> io::Result<TcpListener> {
    // SO_REUSEADDR too, so the connections it leaves in TIME_WAIT do not stop a later probe
    // (see `ReservedPort::bind_shared`) from finding the port free.
    let (fd, _) = bind_socket(addr, Reuse::AddrAndPort)?;
    // SAFETY: plain syscall on a descriptor we own.
    if unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(fd))
}

/// A port bound but not listening: connections to it are refused, and nobody else can take it.
/// This is how a machine that is down looks.
pub struct ReservedPort {
    _fd: OwnedFd,
    pub addr: SocketAddr,
}

impl ReservedPort {
    /// Hold `addr` (port 0: a free port) for this process alone.
    pub fn bind(addr: SocketAddr) -> io::Result<ReservedPort> {
        let (fd, addr) = bind_socket(addr, Reuse::Neither)?;
        Ok(ReservedPort { _fd: fd, addr })
    }

    /// Hold `addr` (port 0: a free port) so that [`listen_shared`] can open and close listeners
    /// on it while this lives. A port anyone already holds is refused (`AddrInUse`), even by
    /// another holder of this kind: two emulators must not share a worker's port.
    pub fn bind_shared(addr: SocketAddr) -> io::Result<ReservedPort> {
        if addr.port() != 0 {
            // A shared bind would succeed beside another process's shared holder; a bind
            // without SO_REUSEPORT first tells whether the port is free. Its SO_REUSEADDR lets
            // it past connections in TIME_WAIT (a worker closes first, so a restarted emulator
            // finds its old ports full of them), not past a socket that holds the port. (Port 0:
            // the kernel never hands out a port that is already bound, shared or not.)
            drop(bind_socket(addr, Reuse::Addr)?);
        }
        // The holder has SO_REUSEPORT alone: with SO_REUSEADDR, a listener without SO_REUSEPORT
        // could bind beside it while it is not listening.
        let (fd, addr) = bind_socket(addr, Reuse::Port)?;
        Ok(ReservedPort { _fd: fd, addr })
    }
}

/// Which of SO_REUSEADDR and SO_REUSEPORT a socket gets before it binds.
#[derive(Clone, Copy, PartialEq)]
enum Reuse {
    Neither,
    Addr,
    Port,
    AddrAndPort,
}

/// A TCP socket bound to `addr`, and the address it got.
fn bind_socket(addr: SocketAddr, reuse: Reuse) -> io::Result<(OwnedFd, SocketAddr)> {
    // SAFETY: socket/setsockopt/bind/getsockname on a descriptor we create and own (wrapped in an
    // OwnedFd at once, so every error path closes it); the sockaddr structures are fully
    // initialised and their sizes passed exactly.
    unsafe {
        let family = if addr.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let raw = libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(raw);
        let options = [
            (
                libc::SO_REUSEADDR,
                matches!(reuse, Reuse::Addr | Reuse::AddrAndPort),
            ),
            (
                libc::SO_REUSEPORT,
                matches!(reuse, Reuse::Port | Reuse::AddrAndPort),
            ),
        ];
        for (option, _) in options.iter().filter(|(_, on)| *on) {
            let one: libc::c_int = 1;
            let rc = libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                *option,
                &one as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in);
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = a.port().to_be();
                sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6);
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = a.port().to_be();
                sin6.sin6_addr.s6_addr = a.ip().octets();
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        } as libc::socklen_t;
        if libc::bind(raw, &storage as *const _ as *const libc::sockaddr, len) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut bound: libc::sockaddr_storage = std::mem::zeroed();
        let mut blen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getsockname(raw, &mut bound as *mut _ as *mut libc::sockaddr, &mut blen) != 0 {
            return Err(io::Error::last_os_error());
        }
        let port = if addr.is_ipv4() {
            u16::from_be((*(&bound as *const _ as *const libc::sockaddr_in)).sin_port)
        } else {
            u16::from_be((*(&bound as *const _ as *const libc::sockaddr_in6)).sin6_port)
        };
        Ok((fd, SocketAddr::new(addr.ip(), port)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn a_held_port_refuses_connections_and_shares_only_with_its_own_listeners() {
        let holder = ReservedPort::bind_shared("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = holder.addr;
        let refused = TcpStream::connect(addr).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        // Nobody else can take it.
        assert!(TcpListener::bind(addr).is_err());
        // A listener beside the holder is served; closing it refuses again; and again up.
        for _ in 0..2 {
            let listener = listen_shared(addr).unwrap();
            let _c = TcpStream::connect(addr).unwrap();
            assert!(listener.accept().is_ok());
            assert!(
                TcpListener::bind(addr).is_err(),
                "not while it listens either"
            );
            assert!(ReservedPort::bind_shared(addr).is_err());
            drop(listener);
            let refused = TcpStream::connect(addr).unwrap_err();
            assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        }
    }

    #[test]
    fn two_holders_never_share_a_port() {
        let a = ReservedPort::bind_shared("127.0.0.1:0".parse().unwrap()).unwrap();
        let err = ReservedPort::bind_shared(a.addr)
            .err()
            .expect("the port is held");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        let b = ReservedPort::bind_shared("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(a.addr, b.addr);
    }

    #[test]
    fn a_port_left_in_time_wait_can_be_held_again() {
        // A worker closes its connections first, leaving them in TIME_WAIT on its port for a
        // minute: restarting `cmdunit serve --port P` must still get the same ports.
        let holder = ReservedPort::bind_shared("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = holder.addr;
        let listener = listen_shared(addr).unwrap();
        for _ in 0..3 {
            let mut client = TcpStream::connect(addr).unwrap();
            let (server_side, _) = listener.accept().unwrap();
            drop(server_side);
            let mut buf = [0u8; 1];
            let _ = std::io::Read::read(&mut client, &mut buf);
        }
        drop(listener);
        drop(holder);
        let again = ReservedPort::bind_shared(addr).expect("held again despite TIME_WAIT");
        let listener = listen_shared(again.addr).unwrap();
        let _c = TcpStream::connect(addr).unwrap();
        assert!(listener.accept().is_ok());
    }

    #[test]
    fn an_exclusive_reserved_port_refuses_connections() {
        let r = ReservedPort::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(r.addr.port(), 0);
        let refused = TcpStream::connect(r.addr).unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        assert!(TcpListener::bind(r.addr).is_err());
    }
}
