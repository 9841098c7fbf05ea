//! A small blocking TCP server shared by the four-letter words and the metrics endpoint: one
//! accept thread, one short-lived thread per connection, a bound on both their number and the
//! time a client may take.

use crate::thread::ThreadGroup;
use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub type Handler = Arc<dyn Fn(TcpStream, SocketAddr) + Send + Sync>;

pub struct AdminServer {
    name: String,
    listener: Socket,
    stopping: Arc<AtomicBool>,
    threads: Arc<ThreadGroup>,
}

impl AdminServer {
    /// Binds `host:port` and serves each connection with `handler` on its own thread; at most
    /// `max_conns` at once (further connections are closed at once).
    pub fn start(name: &str, host: &str, port: u16, max_conns: usize, handler: Handler) -> Result<AdminServer, String> {
        let sa: SocketAddr = (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut i| i.next())
            .ok_or_else(|| format!("{name}: cannot resolve {host}:{port}"))?;
        let bind = || -> std::io::Result<Socket> {
            let s = Socket::new(Domain::for_address(sa), Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            s.bind(&sa.into())?;
            s.listen(64)?;
            Ok(s)
        };
        let listener = bind().map_err(|e| format!("{name}: cannot bind {sa}: {e}"))?;
        let accept = listener.try_clone().map_err(|e| e.to_string())?;
        let stopping = Arc::new(AtomicBool::new(false));
        let threads = Arc::new(ThreadGroup::new());
        let (st2, th2) = (Arc::clone(&stopping), Arc::clone(&threads));
        let active = Arc::new(AtomicUsize::new(0));
        let tname = name.to_string();
        threads
            .spawn(format!("{name}-{sa}"), move || {
                let mut seq = 0u64;
                while let Ok((conn, remote)) = accept.accept() {
                    if st2.load(Ordering::Acquire) {
                        break;
                    }
                    let Some(remote) = remote.as_socket() else { continue };
                    let stream: TcpStream = conn.into();
                    if active.load(Ordering::Acquire) >= max_conns {
                        log::warn!("{tname}: too many connections, closing the one from {remote}");
                        continue;
                    }
                    active.fetch_add(1, Ordering::AcqRel);
                    seq += 1;
                    let (h, a) = (Arc::clone(&handler), Arc::clone(&active));
                    let spawned = th2.spawn(format!("{tname}Handler-{seq}"), move || {
                        h(stream, remote);
                        a.fetch_sub(1, Ordering::AcqRel);
                    });
                    if let Err(e) = spawned {
                        log::warn!("{tname}: cannot serve {remote}: {e}");
                        active.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            })
            .map_err(|e| format!("{name}: cannot start: {e}"))?;
        log::info!("{name} listening on {sa}");
        Ok(AdminServer { name: name.to_string(), listener, stopping, threads })
    }

    pub fn local_port(&self) -> Option<u16> {
        self.listener.local_addr().ok()?.as_socket().map(|a| a.port())
    }

    /// Stops accepting and waits for the handlers (each bounded by its own deadline).
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        let _ = self.listener.shutdown(std::net::Shutdown::Both);
        self.threads.join_all();
        log::debug!("{} stopped", self.name);
    }
}
