//! Quorum verifiers: `QuorumMaj` and `QuorumHierarchical`, and the config text
//! (`QuorumVerifier.toString()`) that every notification carries.

use super::server::QuorumServer;
use std::collections::{BTreeMap, BTreeSet};

/// Group/weight data of a hierarchical configuration (`QuorumHierarchical`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// sid -> group id, for every server named in a `group.G` line.
    pub server_group: BTreeMap<i64, i64>,
    /// sid -> weight; participants without a `weight.S` line weigh 1.
    pub server_weight: BTreeMap<i64, u64>,
    /// group id -> total weight of its members.
    pub group_weight: BTreeMap<i64, u64>,
}

impl Hierarchy {
    /// Groups whose total weight is not zero: only these take part in the majority of groups.
    fn nonzero_groups(&self) -> usize {
        self.group_weight.values().filter(|&&w| w > 0).count()
    }
}

/// The committed configuration: members, voters, and the quorum rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuorumVerifier {
    pub version: i64,
    pub members: BTreeMap<i64, QuorumServer>,
    pub hierarchy: Option<Hierarchy>,
}

impl QuorumVerifier {
    pub fn voters(&self) -> impl Iterator<Item = i64> + '_ {
        self.members.values().filter(|s| s.is_participant()).map(|s| s.id)
    }

    pub fn is_voter(&self, sid: i64) -> bool {
        self.members.get(&sid).is_some_and(QuorumServer::is_participant)
    }

    pub fn voter_count(&self) -> usize {
        self.voters().count()
    }

    /// `getWeight`: 1 for every server of a majority configuration.
    pub fn weight(&self, sid: i64) -> u64 {
        match &self.hierarchy {
            None => 1,
            Some(h) => h.server_weight.get(&sid).copied().unwrap_or(0),
        }
    }

    /// `containsQuorum`: only voters count; a majority of voters, or a majority of the
    /// non-zero-weight groups each holding more than half of its group's weight.
    pub fn contains_quorum<I: IntoIterator<Item = i64>>(&self, set: I) -> bool {
        let acks: BTreeSet<i64> = set.into_iter().filter(|s| self.is_voter(*s)).collect();
        match &self.hierarchy {
            None => acks.len() > self.voter_count() / 2,
            Some(h) => {
                if acks.is_empty() {
                    return false;
                }
                let mut per_group: BTreeMap<i64, u64> = BTreeMap::new();
                for sid in &acks {
                    if let Some(g) = h.server_group.get(sid) {
                        *per_group.entry(*g).or_default() += h.server_weight.get(sid).copied().unwrap_or(0);
                    }
                }
                let majority_groups =
                    per_group.iter().filter(|(g, w)| **w > h.group_weight.get(g).copied().unwrap_or(0) / 2).count();
                majority_groups > h.nonzero_groups() / 2
            }
        }
    }

    /// `QuorumVerifier.toString()`, byte for byte. Java iterates `HashMap`s here, so the lines are
    /// emitted in `HashMap` order (ascending for small ids), see [`java_hash_order`].
    pub fn config_text(&self) -> String {
        let mut out = String::new();
        for id in java_hash_order(self.members.keys().copied()) {
            out.push_str(&format!("server.{id}={}\n", self.members[&id]));
        }
        if let Some(h) = &self.hierarchy {
            let mut groups: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
            for sid in java_hash_order(h.server_group.keys().copied()) {
                groups.entry(h.server_group[&sid]).or_default().push(sid);
            }
            for gid in java_hash_order(groups.keys().copied()) {
                let list: Vec<String> = groups[&gid].iter().map(i64::to_string).collect();
                out.push_str(&format!("group.{gid}={}\n", list.join(":")));
            }
            for sid in java_hash_order(h.server_weight.keys().copied()) {
                out.push_str(&format!("weight.{sid}={}\n", h.server_weight[&sid]));
            }
        }
        out.push_str(&format!("version={:x}", self.version));
        out
    }

    /// Same members with the same addresses and roles (`QuorumMaj.equals` without the version).
    pub fn same_membership(&self, other: &QuorumVerifier) -> bool {
        self.members == other.members && self.hierarchy == other.hierarchy
    }
}

/// The iteration order of a `java.util.HashMap<Long, _>` holding `keys`: by bucket
/// (`hash ^ hash >>> 16` masked by the table size, which starts at 16 and doubles past a 0.75
/// load), then by key within a bucket (Java keeps insertion order there; the properties order
/// that decided it is not reproducible, ascending is the common case).
pub fn java_hash_order<I: IntoIterator<Item = i64>>(keys: I) -> Vec<i64> {
    let mut keys: Vec<i64> = keys.into_iter().collect();
    let mut cap: u64 = 16;
    while keys.len() as u64 * 4 > cap * 3 {
        cap *= 2;
    }
    let bucket = |k: i64| {
        let v = k as u64;
        let h = (v ^ (v >> 32)) as u32;
        ((h ^ (h >> 16)) as u64) & (cap - 1)
    };
    keys.sort_by_key(|&k| (bucket(k), k));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::server::QuorumServer;

    fn servers(spec: &[(i64, &str)]) -> BTreeMap<i64, QuorumServer> {
        spec.iter().map(|(id, v)| (*id, QuorumServer::parse(*id, v, false).unwrap())).collect()
    }

    #[test]
    fn majority() {
        let qv = QuorumVerifier {
            version: 0,
            members: servers(&[(1, "h:1:2"), (2, "h:3:4"), (3, "h:5:6"), (4, "h:7:8:observer")]),
            hierarchy: None,
        };
        assert!(!qv.contains_quorum([1]));
        assert!(qv.contains_quorum([1, 2]));
        assert!(!qv.contains_quorum([1, 4]), "observers never count");
        assert_eq!(
            qv.config_text(),
            "server.1=h:1:2:participant\nserver.2=h:3:4:participant\nserver.3=h:5:6:participant\n\
             server.4=h:7:8:observer\nversion=0"
        );
    }

    #[test]
    fn hash_order_matches_java_for_large_ids() {
        // HashMap of capacity 16: 17 lands in bucket 1, 3 in bucket 3.
        assert_eq!(java_hash_order([3, 17, 1]), vec![1, 17, 3]);
        assert_eq!(java_hash_order([1, 2, 3]), vec![1, 2, 3]);
    }
}
