//! The membership lines (`server.N`, `group.G`, `weight.S`, `version`) of `zoo.cfg`, of a
//! dynamic configuration file, or of the config text a notification carries; they become a
//! [`QuorumVerifier`] (`QuorumPeerConfig.parseDynamicConfig`, `QuorumMaj`/`QuorumHierarchical`).

use super::quorum::{Hierarchy, QuorumVerifier};
use super::server::{QuorumServer, ServerLineError};
use super::values::{ValueError, parse_id, parse_num};
use std::collections::BTreeMap;
use std::fmt;

/// Where the lines come from; it decides what a `version` line means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `zoo.cfg` without a dynamic file: a `version` line sets the version (`QuorumMaj` reads it).
    StaticFile,
    /// The `dynamicConfigFile`: the version comes from the file name, a `version` line is refused.
    DynamicFile,
    /// `QuorumVerifier.toString()` received from a peer.
    ConfigText,
}

/// A membership line that does not parse, or a membership that does not hold together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberError {
    Value(ValueError),
    Server(ServerLineError),
    DuplicateServer { id: i64, first_line: usize },
    BadVersion(String),
    VersionInDynamicFile,
    NotInGroup(i64),
    InMultipleGroups { sid: i64, first: i64, second: i64 },
}

impl fmt::Display for MemberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberError::Value(e) => e.fmt(f),
            MemberError::Server(e) => e.fmt(f),
            MemberError::DuplicateServer { id, first_line } => {
                write!(f, "duplicate server id {id} (already defined on line {first_line})")
            }
            MemberError::BadVersion(v) => write!(f, "bad version '{v}'"),
            MemberError::VersionInDynamicFile => f.write_str("dynamic file shouldn't have version inside"),
            // Java prints "Server 2is not in a group"; the space is added here.
            MemberError::NotInGroup(sid) => write!(f, "Server {sid} is not in a group"),
            MemberError::InMultipleGroups { sid, first, second } => {
                write!(f, "Server {sid} is in multiple groups ({first} and {second})")
            }
        }
    }
}

impl std::error::Error for MemberError {}

impl From<ValueError> for MemberError {
    fn from(e: ValueError) -> Self {
        MemberError::Value(e)
    }
}

impl From<ServerLineError> for MemberError {
    fn from(e: ServerLineError) -> Self {
        MemberError::Server(e)
    }
}

/// A [`MemberError`] found after all lines were read, with the key (and line) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub line: Option<usize>,
    pub key: String,
    pub error: MemberError,
}

/// Collects membership lines in file order.
#[derive(Debug, Clone)]
pub struct Members {
    source: Source,
    multi_address: bool,
    servers: BTreeMap<i64, (usize, QuorumServer)>,
    groups: BTreeMap<i64, (usize, Vec<i64>)>,
    weights: BTreeMap<i64, u64>,
    hierarchical: bool,
    version: i64,
}

impl Members {
    pub fn new(source: Source, multi_address: bool) -> Members {
        Members {
            source,
            multi_address,
            servers: BTreeMap::new(),
            groups: BTreeMap::new(),
            weights: BTreeMap::new(),
            hierarchical: false,
            version: 0,
        }
    }

    /// Takes one line. `Ok(false)`: not a membership key, the caller decides what it is.
    pub fn add(&mut self, key: &str, value: &str, line: usize) -> Result<bool, MemberError> {
        if let Some(id) = key.strip_prefix("server.") {
            let id = parse_id(id)?;
            if let Some((first_line, _)) = self.servers.get(&id) {
                return Err(MemberError::DuplicateServer { id, first_line: *first_line });
            }
            let qs = QuorumServer::parse(id, value, self.multi_address)?;
            self.servers.insert(id, (line, qs));
        } else if let Some(gid) = key.strip_prefix("group.") {
            self.hierarchical = true;
            let gid = parse_id(gid)?;
            let sids = value.split(':').map(|s| parse_id(s.trim())).collect::<Result<Vec<_>, _>>()?;
            self.groups.insert(gid, (line, sids));
        } else if let Some(sid) = key.strip_prefix("weight.") {
            self.hierarchical = true;
            let sid = parse_id(sid)?;
            self.weights.insert(sid, parse_num(value)?);
        } else if key == "version" {
            if self.source == Source::DynamicFile {
                return Err(MemberError::VersionInDynamicFile);
            }
            self.version = i64::from_str_radix(value, 16).map_err(|_| MemberError::BadVersion(value.to_string()))?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// Sets the version (of a dynamic file, from its name).
    pub fn set_version(&mut self, version: i64) {
        self.version = version;
    }

    /// The verifier, and the line of every `server.N`.
    pub fn finish(self) -> Result<(QuorumVerifier, BTreeMap<i64, usize>), Located> {
        let lines = self.servers.iter().map(|(id, (line, _))| (*id, *line)).collect();
        let members: BTreeMap<i64, QuorumServer> = self.servers.into_iter().map(|(id, (_, qs))| (id, qs)).collect();
        let mut qv = QuorumVerifier { version: self.version, members, hierarchy: None };
        if self.hierarchical {
            qv.hierarchy = Some(build_hierarchy(&qv, &self.groups, self.weights)?);
        }
        Ok((qv, lines))
    }
}

/// `QuorumHierarchical.parse`: every participant in exactly one group, weight 1 unless given.
fn build_hierarchy(
    qv: &QuorumVerifier,
    groups: &BTreeMap<i64, (usize, Vec<i64>)>,
    mut weights: BTreeMap<i64, u64>,
) -> Result<Hierarchy, Located> {
    let mut server_group = BTreeMap::new();
    for (gid, (line, sids)) in groups {
        for sid in sids {
            if let Some(first) = server_group.insert(*sid, *gid) {
                return Err(Located {
                    line: Some(*line),
                    key: format!("group.{gid}"),
                    error: MemberError::InMultipleGroups { sid: *sid, first, second: *gid },
                });
            }
        }
    }
    for s in qv.members.values().filter(|s| s.is_participant()) {
        if !server_group.contains_key(&s.id) {
            return Err(Located { line: None, key: format!("server.{}", s.id), error: MemberError::NotInGroup(s.id) });
        }
        weights.entry(s.id).or_insert(1);
    }
    let mut group_weight = BTreeMap::new();
    for (sid, gid) in &server_group {
        *group_weight.entry(*gid).or_insert(0) += weights.get(sid).copied().unwrap_or(0);
    }
    Ok(Hierarchy { server_group, server_weight: weights, group_weight })
}
