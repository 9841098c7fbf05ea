//! What depends on this node's id (`QuorumPeerConfig.setupMyId`, `setupClientPort`,
//! `setupPeerType`), and error texts that say how to write a missing or wrong `myid`.

use super::server::delimited_host;
use super::{ConfigError, HostPort, LearnerType, QuorumPeerConfig, QuorumServer};
use std::net::IpAddr;
use std::path::PathBuf;

impl QuorumPeerConfig {
    /// Sets `my_id` from the text of a `myid` file, checks that it is a configured server, and
    /// settles what depends on it: the role, and the client address when the own `server.N`
    /// line has a client part.
    pub fn set_my_id(&mut self, myid_text: &str, myid_file: &str) -> Result<(), ConfigError> {
        let myid_error = |line: Option<usize>, message: String| ConfigError {
            file: myid_file.to_string(),
            line,
            key: None,
            message,
        };
        let first = myid_text.lines().next().unwrap_or("").trim();
        if first.is_empty() {
            return Err(myid_error(None, format!("myid file is empty; {}", self.myid_fix())));
        }
        let id: i64 = first.parse().map_err(|_| myid_error(Some(1), format!("serverid {first} is not a number")))?;
        let Some(server) = self.quorum_verifier.members.get(&id).cloned() else {
            return Err(myid_error(Some(1), format!("My id {id} not in the peer list; {}", self.myid_fix())));
        };
        let (port, address) = self.client_address_of(&server)?;
        self.check_client_port(&server, port)?;
        // setupPeerType: the server list wins over peerType.
        let configured = self.origin.configured_peer_type;
        if configured != server.learner_type {
            log::warn!(
                "Peer type from servers list ({}) doesn't match peerType ({}). Defaulting to servers list.",
                server.learner_type.as_str(),
                configured.as_str()
            );
        }
        self.peer_type = server.learner_type;
        self.my_id = id;
        self.client_port = port;
        self.client_port_address = address;
        Ok(())
    }

    /// Where this node serves its client port (four-letter words), or `None` for no listener.
    /// After [`set_my_id`](Self::set_my_id) this includes a client address written in the own
    /// `server.N` line (`host:q:e;[clientHost:]clientPort`) when `clientPort` is absent.
    pub fn client_address(&self) -> Option<HostPort> {
        let host = self.client_port_address.clone().unwrap_or_else(|| "0.0.0.0".into());
        self.client_port.map(|port| HostPort::new(host, port))
    }

    /// `setupClientPort`: the own server line's client part wins, but a static address must
    /// agree with it, and a static wildcard address must have its port. Returns the values of
    /// `client_port` and `client_port_address` to use.
    fn client_address_of(&self, server: &QuorumServer) -> Result<(Option<u16>, Option<String>), ConfigError> {
        let (port, address) = self.origin.static_client.clone();
        let Some(line) = &server.client_addr else {
            return Ok((port, address));
        };
        if let Some(port) = port {
            let stat = HostPort::new(address.clone().unwrap_or_else(|| "0.0.0.0".into()), port);
            let differ = if stat.is_wildcard() { stat.port != line.port } else { !same_address(&stat, line) };
            if differ {
                let key = if address.is_some() { "clientPortAddress" } else { "clientPort" };
                return Err(self.error_at(
                    Some(key),
                    format!(
                        "client address for this server (id = {}) in static config file is {stat}, which is different \
                         from the client address in its server.{} line: {line}; make clientPort/clientPortAddress \
                         agree with that line, or remove them",
                        server.id, server.id
                    ),
                ));
            }
        }
        Ok((Some(line.port), Some(line.host.clone())))
    }

    /// The client port cannot share a port with this node's own quorum or election address.
    fn check_client_port(&self, server: &QuorumServer, port: Option<u16>) -> Result<(), ConfigError> {
        let Some(port) = port else { return Ok(()) };
        for a in &server.addrs {
            for (kind, p) in [("quorum", a.quorum_port), ("election", a.election_port)] {
                if p != port {
                    continue;
                }
                let message = format!(
                    "client port {port} is also this node's {kind} port (server.{}={}:{}:{}); change one of them",
                    server.id,
                    delimited_host(&a.host),
                    a.quorum_port,
                    a.election_port
                );
                return Err(if server.client_addr.is_some() {
                    self.server_error(server.id, message)
                } else {
                    self.error_at(Some("clientPort"), message)
                });
            }
        }
        Ok(())
    }

    /// Says which ids are configured and how to write this node's.
    pub(super) fn myid_fix(&self) -> String {
        let ids: Vec<String> = self
            .quorum_verifier
            .members
            .values()
            .map(|s| match s.learner_type {
                LearnerType::Participant => s.id.to_string(),
                LearnerType::Observer => format!("{} (observer)", s.id),
            })
            .collect();
        format!(
            "the configured server ids are {}: write this node's id with: echo <id> > {}",
            ids.join(", "),
            self.absolute_data_dir().join("myid").display()
        )
    }

    /// `dataDir` made absolute against the working directory, for commands in messages.
    pub(super) fn absolute_data_dir(&self) -> PathBuf {
        std::path::absolute(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone())
    }

    /// Reads `dataDir/myid` and sets the id; a missing `dataDir` is reported as such.
    pub(super) fn read_my_id(&mut self) -> Result<(), ConfigError> {
        let dir = self.absolute_data_dir();
        match std::fs::metadata(&self.data_dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(self.error_at(Some("dataDir"), format!("dataDir {} is not a directory", dir.display())));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(self.error_at(
                    Some("dataDir"),
                    format!(
                        "dataDir {} does not exist: create it with mkdir -p {} and write this node's id in it; {}",
                        dir.display(),
                        dir.display(),
                        self.myid_fix()
                    ),
                ));
            }
            Err(e) => return Err(self.error_at(Some("dataDir"), format!("cannot read dataDir {}: {e}", dir.display()))),
        }
        let myid_path = self.data_dir.join("myid");
        let file = myid_path.display().to_string();
        let myid_error = |message: String| ConfigError { file: file.clone(), line: None, key: None, message };
        let text = match std::fs::read_to_string(&myid_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(myid_error(format!("myid file is missing; {}", self.myid_fix())));
            }
            Err(e) => return Err(myid_error(format!("cannot read myid: {e}"))),
        };
        self.set_my_id(&text, &file)
    }
}

/// The same socket address, comparing IP literals by value and names by their text: hosts are
/// not resolved here, where ZooKeeper compares resolved `InetSocketAddress`es.
fn same_address(a: &HostPort, b: &HostPort) -> bool {
    a.port == b.port && normalized_host(&a.host) == normalized_host(&b.host)
}

/// A host for comparison: IP literals in canonical form, names in lower case.
pub(super) fn normalized_host(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.to_ascii_lowercase(),
    }
}
