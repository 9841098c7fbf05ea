//! The keys ZooKeeper knows beyond those zkelect reads, so that a real `zoo.cfg` loads without
//! warnings.

/// Keys that only matter to a ZooKeeper data server (or to features zkelect does not have):
/// accepted so that a real `zoo.cfg` loads unchanged, and logged at debug.
pub const DATA_SERVER_KEYS: &[&str] = &[
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "secureClientPort",
    "secureClientPortAddress",
    "clientPortListenBacklog",
    "snapCount",
    "snapSizeLimitInKb",
    "preAllocSize",
    "globalOutstandingLimit",
    "syncEnabled",
    "leaderServes",
    "forceSync",
    "skipACL",
    "serverCnxnFactory",
    "audit.enable",
    "txnLogSizeLimitInKb",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "maxResponseCacheSize",
    "maxGetChildrenResponseCacheSize",
    "readonlymode.enabled",
    "portUnification",
    "initialize",
    "observerMaster.port",
    "digest.enabled",
    "metricsProvider.className",
    "multiAddress.reachabilityCheckEnabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "connectToLearnerMasterLimit",
    "jute.maxbuffer",
    "observer.reconnectDelayMs",
    "maxCnxns",
    "fsync.warningthresholdms",
    "zookeeper.serverCnxnFactory",
];
pub const DATA_SERVER_PREFIXES: &[&str] = &[
    "autopurge.",
    "admin.",
    "authProvider.",
    "ssl.",
    "snapshot.",
    "quorum.auth.",
    "metricsProvider.",
    "sasl.",
    "client.",
    "jvm.",
    "learner.",
    "leader.",
    "serverCnxnFactory.",
];

pub fn is_data_server_key(k: &str) -> bool {
    DATA_SERVER_KEYS.contains(&k) || DATA_SERVER_PREFIXES.iter().any(|p| k.starts_with(p))
}
