//! `Listener` / `ListenerHandler`: bind the own election address(es), accept, and read each
//! handshake on its own short-lived thread so one silent client never blocks accepting (ZK-3296).

use super::manager::Inner;
use super::socket::{DeadlineReader, set_sock_opts};
use crate::config::HostPort;
use crate::wire::initial;
use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub fn start(inner: &Arc<Inner>) -> std::io::Result<()> {
    let me = Arc::clone(inner);
    inner.threads.spawn("QuorumPeerListener".into(), move || listener_run(&me))
}

/// Runs one handler per address and waits for them; when all gave up (not on shutdown) the node
/// cannot take part in elections any more, which is fatal (exit code 14 in `main`).
fn listener_run(inner: &Arc<Inner>) {
    let mut handles = Vec::new();
    for addr in inner.settings.listen_addrs.clone() {
        let me = Arc::clone(inner);
        let a2 = addr.clone();
        match std::thread::Builder::new().name(format!("ListenerHandler-{addr}")).spawn(move || handler_run(&me, &a2)) {
            Ok(h) => handles.push(h),
            Err(e) => log::error!("Cannot start ListenerHandler for {addr}: {e}"),
        }
    }
    log::info!("Election port bind maximum retries is {}", inner.settings.bind_retry);
    for h in handles {
        let _ = h.join();
    }
    if !inner.is_shutdown() {
        let addrs: Vec<String> = inner.settings.listen_addrs.iter().map(HostPort::to_string).collect();
        log::error!(
            "As I'm leaving the listener thread, I won't be able to participate in leader election any longer: {}",
            addrs.join("|")
        );
        let cb = inner.on_listener_failure.lock().clone();
        if let Some(cb) = cb {
            cb();
        }
    }
}

fn bind(addr: &HostPort) -> std::io::Result<Socket> {
    // Re-resolved on every attempt: the own name may appear later (ZK-3320/4728).
    let sa: SocketAddr = (addr.host.as_str(), addr.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?;
    let sock = Socket::new(Domain::for_address(sa), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.bind(&sa.into())?;
    sock.listen(128)?;
    Ok(sock)
}

fn handler_run(inner: &Arc<Inner>, addr: &HostPort) {
    let max = inner.settings.bind_retry;
    let mut errors: u32 = 0;
    while !inner.is_shutdown() && (max == 0 || errors < max) {
        let sock = match bind(addr) {
            Ok(s) => s,
            Err(e) => {
                log::error!("Exception while listening to address {addr}: {e}");
                errors += 1;
                pause(inner);
                continue;
            }
        };
        match sock.try_clone() {
            Ok(c) => inner.listeners.lock().push(c),
            Err(e) => {
                log::error!("Exception while listening to address {addr}: {e}");
                errors += 1;
                pause(inner);
                continue;
            }
        }
        if inner.is_shutdown() {
            return;
        }
        log::info!("{} is accepting connections now, my election bind port: {addr}", inner.settings.my_sid);
        loop {
            match sock.accept() {
                Ok((s, remote)) => {
                    errors = 0;
                    let stream: TcpStream = s.into();
                    if inner.is_shutdown() {
                        return;
                    }
                    let remote = remote.as_socket().map(|a| a.to_string()).unwrap_or_else(|| "?".into());
                    log::info!("Received connection request from {remote}");
                    receive_connection_async(inner, stream, remote);
                }
                Err(e) => {
                    if inner.is_shutdown() {
                        return;
                    }
                    log::error!("Exception while listening to address {addr}: {e}");
                    errors += 1;
                    pause(inner);
                    break;
                }
            }
        }
    }
    if !inner.is_shutdown() {
        log::error!(
            "Leaving listener thread for address {addr} after {errors} errors. Use electionPortBindRetry property to increase retry count."
        );
    }
}

/// Sleeps `bind_retry_delay`, returning at once on halt.
fn pause(inner: &Inner) {
    let _ = inner.shutdown_rx.recv_timeout(inner.settings.bind_retry_delay);
}

/// `receiveConnectionAsync`: the handshake is read on its own thread, bounded in number.
fn receive_connection_async(inner: &Arc<Inner>, stream: TcpStream, remote: String) {
    let id = inner.seq.fetch_add(1, Ordering::Relaxed);
    {
        let mut pending = inner.pending.lock();
        if pending.len() >= inner.settings.max_pending_handshakes {
            log::warn!(
                "Closing connection from {remote}: already reading {} handshakes",
                inner.settings.max_pending_handshakes
            );
            return;
        }
        match stream.try_clone() {
            Ok(c) => {
                pending.insert(id, c);
            }
            Err(e) => {
                log::warn!("Closing connection from {remote}: {e}");
                return;
            }
        }
    }
    let me = Arc::clone(inner);
    let name = format!("QuorumConnectionReceiverThread-[myid={}]-{id}", inner.settings.my_sid);
    if let Err(e) = inner.threads.spawn(name, move || {
        receive_connection(&me, stream, &remote);
        me.pending.lock().remove(&id);
    }) {
        log::warn!("Cannot start a thread for the connection: {e}");
        inner.pending.lock().remove(&id);
    }
}

fn receive_connection(inner: &Arc<Inner>, stream: TcpStream, remote: &str) {
    if let Err(e) = set_sock_opts(&stream, inner.settings.tcp_keep_alive, inner.settings.socket_timeout) {
        log::warn!("Cannot set socket options for {remote}: {e}");
        return;
    }
    let msg = {
        let mut r = DeadlineReader::new(&stream, inner.settings.socket_timeout);
        initial::read(&mut r)
    };
    match msg {
        Ok(m) => inner.handle_connection(stream, m, remote),
        Err(initial::InitialMessageError::Io(e)) => {
            if !inner.is_shutdown() {
                log::warn!("Exception reading or writing challenge from {remote}: {e}");
            }
        }
        Err(e) => log::error!("Initial message parsing error! from {remote}: {e}"),
    }
}
