//! zoo.cfg and myid files for local ensembles: the one writer used by `zkelect ensemble`,
//! `zkelect bench` and the tests (which include this file).
//!
//! ```text
//! ZooCfg::new(200).data_dir(dir).client("127.0.0.1", 2181).server(1, "127.0.0.1", 2888, 3888)
//!     .extra("4lw.commands.whitelist=*\n").write(dir, 1)
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Whether a server votes or observes (`:observer` after its ports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    #[default]
    Participant,
    #[allow(dead_code, reason = "only the tests configure observers")]
    Observer,
}

/// One `host:quorumPort:electionPort` of a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAddr {
    pub host: String,
    pub quorum_port: u16,
    pub election_port: u16,
}

impl ServerAddr {
    pub fn new(host: &str, quorum_port: u16, election_port: u16) -> ServerAddr {
        ServerAddr { host: host.to_string(), quorum_port, election_port }
    }
}

/// A `server.<sid>=` line: one address, or several (`multiAddress.enabled`) joined by `|`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub sid: i64,
    pub addrs: Vec<ServerAddr>,
    pub role: Role,
}

/// A zoo.cfg being put together. Starts with initLimit 10 and syncLimit 5; keys given in
/// [`ZooCfg::extra`] come last, so they override the ones set before (the parser keeps the last).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZooCfg {
    pub tick_time: u64,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub data_dir: Option<PathBuf>,
    /// `clientPortAddress` and `clientPort`: where the four-letter words are answered.
    pub client: Option<(String, u16)>,
    pub servers: Vec<Server>,
    /// Text appended verbatim after the servers.
    pub extra: String,
}

impl ZooCfg {
    pub fn new(tick_time: u64) -> ZooCfg {
        ZooCfg {
            tick_time,
            init_limit: 10,
            sync_limit: 5,
            data_dir: None,
            client: None,
            servers: Vec::new(),
            extra: String::new(),
        }
    }

    pub fn data_dir(mut self, dir: &Path) -> ZooCfg {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    pub fn client(mut self, host: &str, port: u16) -> ZooCfg {
        self.client = Some((host.to_string(), port));
        self
    }

    /// A participant with one address.
    pub fn server(self, sid: i64, host: &str, quorum_port: u16, election_port: u16) -> ZooCfg {
        self.add_server(Server {
            sid,
            addrs: vec![ServerAddr::new(host, quorum_port, election_port)],
            role: Role::Participant,
        })
    }

    pub fn add_server(mut self, server: Server) -> ZooCfg {
        self.servers.push(server);
        self
    }

    /// Appends `text` (`key=value` lines) after the servers.
    pub fn extra(mut self, text: &str) -> ZooCfg {
        self.extra.push_str(text);
        if !self.extra.is_empty() && !self.extra.ends_with('\n') {
            self.extra.push('\n');
        }
        self
    }

    /// The file's text.
    pub fn text(&self) -> String {
        let mut s =
            format!("tickTime={}\ninitLimit={}\nsyncLimit={}\n", self.tick_time, self.init_limit, self.sync_limit);
        if let Some(d) = &self.data_dir {
            let _ = writeln!(s, "dataDir={}", d.display());
        }
        if let Some((host, port)) = &self.client {
            let _ = writeln!(s, "clientPort={port}\nclientPortAddress={host}");
        }
        for server in &self.servers {
            let role = match server.role {
                Role::Participant => "",
                Role::Observer => ":observer",
            };
            let addrs: Vec<String> = server
                .addrs
                .iter()
                .map(|a| format!("{}:{}:{}{role}", a.host, a.quorum_port, a.election_port))
                .collect();
            let _ = writeln!(s, "server.{}={}", server.sid, addrs.join("|"));
        }
        s.push_str(&self.extra);
        s
    }

    /// Creates `dir` and writes `dir/zoo.cfg` and `dir/myid`; returns the path of the zoo.cfg.
    pub fn write(&self, dir: &Path, my_id: i64) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let cfg = dir.join("zoo.cfg");
        std::fs::write(&cfg, self.text())?;
        std::fs::write(dir.join("myid"), format!("{my_id}\n"))?;
        Ok(cfg)
    }
}

/// What every node of a local ensemble shares: participants 1..=n on 127.0.0.1, where
/// `ports[sid - 1]` is (quorum, election, client).
pub fn local_ensemble(tick_time: u64, ports: &[(u16, u16, u16)]) -> ZooCfg {
    ports.iter().zip(1..).fold(ZooCfg::new(tick_time), |cfg, ((q, e, _), sid)| cfg.server(sid, "127.0.0.1", *q, *e))
}

/// Writes node `sid` of a local ensemble into `root/n<sid>`: the shared `ensemble` config with that
/// directory as its dataDir and its four-letter words on 127.0.0.1:`client_port`. Returns the
/// zoo.cfg's path.
pub fn write_local_node(ensemble: &ZooCfg, root: &Path, sid: i64, client_port: u16) -> std::io::Result<PathBuf> {
    let dir = root.join(format!("n{sid}"));
    ensemble.clone().data_dir(&dir).client("127.0.0.1", client_port).write(&dir, sid)
}
