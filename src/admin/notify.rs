//! systemd's service notifications (sd_notify(3)) without libsystemd: when started by a
//! `Type=notify` unit, `$NOTIFY_SOCKET` names a unix datagram socket (a path, or an abstract name
//! written `@name`), and each datagram is a few `KEY=value` lines. The node sends `READY=1` once
//! its ports are bound, `STATUS=…` on every change of state, leader or epoch (what `systemctl
//! status` shows), and `STOPPING=1` when an orderly shutdown begins.

use crate::election::ServerState;
use crate::snapshot::StateChange;
use parking_lot::Mutex;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The variable systemd sets for a `Type=notify` service.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// As given, for log lines.
    name: String,
    /// The last state sent, so that repeated announcements send nothing.
    last: Mutex<Option<StateChange>>,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` asks for, if it is set; a value that cannot be used is
    /// logged and ignored (the node runs without notifications).
    pub fn from_env() -> Option<Notifier> {
        let spec = std::env::var_os(NOTIFY_SOCKET)?;
        let spec = spec.to_string_lossy();
        match Notifier::connect(&spec) {
            Ok(n) => {
                log::info!("Notifying the service manager through {NOTIFY_SOCKET}={spec}");
                Some(n)
            }
            Err(e) => {
                log::warn!("Ignoring {NOTIFY_SOCKET}={spec}: {e}");
                None
            }
        }
    }

    /// A notifier for the socket `spec`: an absolute path, or `@name` for an abstract socket.
    pub fn connect(spec: &str) -> io::Result<Notifier> {
        let addr = socket_addr(spec)?;
        let socket = UnixDatagram::unbound()?;
        Ok(Notifier { socket, addr, name: spec.to_string(), last: Mutex::new(None) })
    }

    /// Sends one notification (`KEY=value` lines). A failure is logged, never fatal: the
    /// election does not depend on the service manager.
    pub fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            log::warn!("Cannot notify the service manager at {} ({:?}): {e}", self.name, message);
        }
    }

    /// The ports are bound: the service is up.
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// An orderly shutdown begins.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// Sends `STATUS=` if the state, leader, epoch or lease changed since the last one sent.
    pub fn state_changed(&self, change: StateChange) {
        let mut last = self.last.lock();
        if *last == Some(change) {
            return;
        }
        *last = Some(change);
        drop(last);
        self.send(&format!("STATUS={}", status_text(change)));
    }
}

/// `LOOKING`, `FOLLOWING leader 3 epoch 5`, `LEADING epoch 5, lease active`, `OBSERVING leader 3
/// epoch 5`.
pub fn status_text(change: StateChange) -> String {
    match change.state {
        ServerState::Looking => "LOOKING".to_string(),
        ServerState::Leading => format!("LEADING epoch {}, lease {}", change.epoch, change.lease),
        ServerState::Following | ServerState::Observing => {
            format!("{} leader {} epoch {}", change.state.name(), change.leader, change.epoch)
        }
    }
}

fn socket_addr(spec: &str) -> io::Result<SocketAddr> {
    if let Some(name) = spec.strip_prefix('@') {
        return abstract_addr(name.as_bytes());
    }
    if !spec.starts_with('/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an absolute path or an abstract socket name starting with @",
        ));
    }
    SocketAddr::from_pathname(spec)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "abstract socket names exist on Linux only"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn change(state: ServerState, leader: i64, epoch: i64) -> StateChange {
        let lease = if state == ServerState::Leading { "active" } else { "inactive" };
        StateChange { state, leader, epoch, lease }
    }

    #[test]
    fn status_lines() {
        for (c, text) in [
            (change(ServerState::Looking, -1, 4), "LOOKING"),
            (change(ServerState::Following, 3, 5), "FOLLOWING leader 3 epoch 5"),
            (change(ServerState::Leading, 3, 5), "LEADING epoch 5, lease active"),
            (change(ServerState::Observing, 2, 7), "OBSERVING leader 2 epoch 7"),
        ] {
            assert_eq!(status_text(c), text);
        }
    }

    #[test]
    fn socket_specs() {
        assert!(socket_addr("/run/systemd/notify").is_ok());
        for bad in ["", "relative/notify", "notify"] {
            let e = socket_addr(bad).expect_err(bad);
            assert!(e.to_string().contains("absolute path"), "{bad}: {e}");
        }
        assert!(socket_addr(&format!("/{}", "x".repeat(200))).is_err(), "longer than sun_path");
    }

    fn receive(rx: &UnixDatagram) -> String {
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).to_string()
    }

    #[test]
    fn sends_to_a_path_and_repeats_no_state() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).expect("bind");
        rx.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let n = Notifier::connect(&path.display().to_string()).expect("notifier");
        n.ready();
        n.state_changed(change(ServerState::Looking, -1, 0));
        n.state_changed(change(ServerState::Looking, -1, 0));
        n.state_changed(change(ServerState::Leading, 3, 1));
        n.stopping();
        let got: Vec<String> = (0..4).map(|_| receive(&rx)).collect();
        assert_eq!(got, ["READY=1", "STATUS=LOOKING", "STATUS=LEADING epoch 1, lease active", "STOPPING=1"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!("zkelect-notify-test-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&abstract_addr(name.as_bytes()).expect("addr")).expect("bind");
        rx.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        Notifier::connect(&format!("@{name}")).expect("notifier").ready();
        assert_eq!(receive(&rx), "READY=1");
    }
}
