//! The keys ZooKeeper 3.8 knows beyond those zkelect reads, so that a real `zoo.cfg` loads
//! without warnings, and the "did you mean" hint for the keys nobody knows.
//!
//! `QuorumPeerConfig.parseProperties` reads some keys itself and turns every other key `k` into
//! the system property `zookeeper.k`, so the list is the union of both (from the 3.8.0 to 3.8.6
//! sources): keys for data servers, clients, SASL, the admin server and the JVM.

use super::apply::SETTINGS;
use super::tls::TLS_SETTINGS;

/// Keys ZooKeeper 3.8 reads that do not matter to zkelect: accepted and logged at debug.
pub const IGNORED_KEYS: &[&str] = &[
    // Read by QuorumPeerConfig.parseProperties itself.
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "secureClientPort",
    "secureClientPortAddress",
    "observerMasterPort",
    "clientPortListenBacklog",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "connectToLearnerMasterLimit",
    "syncEnabled",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "quorum.auth.learner.saslLoginContext",
    "quorum.auth.server.saslLoginContext",
    "quorum.auth.kerberos.servicePrincipal",
    "jvm.pause.info-threshold.ms",
    "jvm.pause.warn-threshold.ms",
    "jvm.pause.sleep.time.ms",
    "jvm.pause.monitor",
    "metricsProvider.className",
    "multiAddress.reachabilityCheckEnabled",
    "multiAddress.reachabilityCheckTimeoutMs",
    "oraclePath",
    // Read as `zookeeper.<key>` system properties by the server.
    "admin.httpVersion",
    "allowSaslFailedClients",
    "audit.enable",
    "audit.impl.class",
    "bitHashCacheSize",
    "closeSessionTxn.enabled",
    "commitLogCount",
    "commitProcessor.maxCommitBatchSize",
    "commitProcessor.maxReadBatchSize",
    "commitProcessor.numWorkerThreads",
    "commitProcessor.shutdownTimeout",
    "connection_throttle_decrease_ratio",
    "connection_throttle_drop_decrease",
    "connection_throttle_drop_increase",
    "connection_throttle_fill_count",
    "connection_throttle_fill_time",
    "connection_throttle_freeze_time",
    "connection_throttle_global_session_weight",
    "connection_throttle_local_session_weight",
    "connection_throttle_renew_session_weight",
    "connection_throttle_tokens",
    "connection_throttle_weight_enabled",
    "datadir.autocreate",
    "db.autocreate",
    "digest.enabled",
    "DigestAuthenticationProvider.digestAlg",
    "DigestAuthenticationProvider.enabled",
    "DigestAuthenticationProvider.superDigest",
    "emulate353TTLNodes",
    "enableEagerACLCheck",
    "enforce.auth.enabled",
    "enforce.auth.schemes",
    "enforceQuota",
    "ensembleAuthName",
    "extendedTypesEnabled",
    "fips-mode",
    "flushDelay",
    "follower.skipLearnerRequestToNextProcessor",
    "forceSnapshotSync",
    "forceSync",
    "forward_learner_requests_to_commit_processor_disabled",
    "fsync.warningthresholdms",
    "globalOutstandingLimit",
    "intBufferStartingSizeBytes",
    "jmx.log4j.disable",
    "jmx.log4j.mbean",
    "kerberos.canonicalizeHostNames",
    "kerberos.minReLoginTimeMs",
    "kerberos.removeHostFromPrincipal",
    "kerberos.removeRealmFromPrincipal",
    "kinit",
    "largeRequestMaxBytes",
    "largeRequestThreshold",
    "leader.ackLoggingFrequency",
    "leader.closeSocketAsync",
    "leader.maxConcurrentDiffSyncs",
    "leader.maxConcurrentSnapSyncs",
    "leader.maxTimeToWaitForEpoch",
    "leaderConnectDelayDuringRetryMs",
    "leaderServes",
    "learner.asyncSending",
    "learner.closeSocketAsync",
    "letAnySaslUserDoX",
    "maxBatchSize",
    "maxCnxns",
    "maxGetChildrenResponseCacheSize",
    "maxInProcessingDeadWatchers",
    "maxResponseCacheSize",
    "maxWriteQueuePollTime",
    "messageTracker.BufferSize",
    "messageTracker.Enabled",
    "netty.advancedFlowControl.enabled",
    "netty.server.earlyDropSecureConnectionHandshakes",
    "netty.server.outstandingHandshake.limit",
    "nio.directBufferBytes",
    "nio.numSelectorThreads",
    "nio.numWorkerThreads",
    "nio.sessionlessCnxnTimeout",
    "nio.shutdownTimeout",
    "observer.election.DelayMs",
    "observer.reconnectDelayMs",
    "observer.syncEnabled",
    "observerMaster.sizeLimit",
    "pathStats.delay",
    "pathStats.enabled",
    "pathStats.initialDelay",
    "pathStats.maxDepth",
    "pathStats.sampleRate",
    "pathStats.slotCapacity",
    "pathStats.slotDuration",
    "pathStats.topPathMax",
    "preAllocSize",
    "request.timeout",
    "request_stale_connection_check",
    "request_stale_latency_check",
    "request_throttle_drop_stale",
    "request_throttle_max_requests",
    "request_throttle_stall_time",
    "request_throttler.shutdownTimeout",
    "requireKerberosConfig",
    "SASLAuthenticationProvider.superPassword",
    "sasl.serverconfig",
    "security.auth_to_local",
    "serverCnxnFactory",
    "sessionRequireClientSASLAuth",
    "skipACL",
    "snapCount",
    "snapSizeLimitInKb",
    "snapshot.compression.method",
    "snapshot.trust.empty",
    "snapshotSizeFactor",
    "superUser",
    "testingonly.initialZxid",
    "throttled_op_wait_time",
    "txnLogSizeLimitInKb",
    "watchManagerName",
    "watcherCleanIntervalInSeconds",
    "watcherCleanThreadsNum",
    "watcherCleanThreshold",
    "X509AuthenticationProvider.superUser",
    // Client-side system properties, sometimes kept in a shared file.
    "client.certReload",
    "client.portUnification",
    "client.secure",
    "clientCnxnSocket",
    "clientTcpKeepAlive",
    "configuration",
    "disableAutoWatchReset",
    "sasl.client",
    "sasl.client.canonicalize.hostname",
    "sasl.client.username",
    "sasl.clientconfig",
    // Client TLS (`ClientX509Util`, prefix `zookeeper.ssl.`).
    "ssl.protocol",
    "ssl.enabledProtocols",
    "ssl.ciphersuites",
    "ssl.keyStore.location",
    "ssl.keyStore.password",
    "ssl.keyStore.passwordPath",
    "ssl.keyStore.type",
    "ssl.trustStore.location",
    "ssl.trustStore.password",
    "ssl.trustStore.passwordPath",
    "ssl.trustStore.type",
    "ssl.context.supplier.class",
    "ssl.hostnameVerification",
    "ssl.allowReverseDnsLookup",
    "ssl.crl",
    "ssl.ocsp",
    "ssl.clientAuth",
    "ssl.handshakeDetectionTimeoutMillis",
    "ssl.authProvider",
    // Read by ZooKeeper under their own names (not `zookeeper.`-prefixed), still common in zoo.cfg.
    "jute.maxbuffer",
    "readonlymode.enabled",
    "initialize",
    // ZooKeeper 3.8's name; zkelect never falls back to reverse DNS (see tls.rs).
];

/// Open families: `authProvider.N=class` and the metrics provider's own settings.
const IGNORED_PREFIXES: &[&str] = &["authProvider.", "metricsProvider."];

/// The membership keys, which carry an id after the dot.
const MEMBER_WORDS: &[&str] = &["server", "group", "weight"];

pub fn is_ignored_key(k: &str) -> bool {
    IGNORED_KEYS.contains(&k) || IGNORED_PREFIXES.iter().any(|p| k.starts_with(p))
}

/// Every key with a fixed name that ZooKeeper or zkelect reads.
fn known_keys() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().chain(TLS_SETTINGS).map(|(k, _)| *k).chain(IGNORED_KEYS.iter().copied())
}

/// The known key an unknown `key` was probably meant to be: the same name in another case, or
/// one a few edits away (`initLimt`, `ssl.quorum.keyStore.locaton`); `sever.1` gives `server.1`.
pub fn suggest_key(key: &str) -> Option<String> {
    let name = super::setting_name(key);
    if let Some(member) = suggest_member(name) {
        return Some(member);
    }
    let lower = name.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in known_keys() {
        let limit = (candidate.len() / 6).clamp(1, 3);
        let Some(d) = edit_distance(&lower, &candidate.to_lowercase(), limit) else { continue };
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, k)| k.to_string())
}

/// `server.N`, `group.G` or `weight.S` written with a misspelt word or without the dot.
fn suggest_member(name: &str) -> Option<String> {
    let (word, id) = match name.rsplit_once('.') {
        Some((w, id)) => (w, id),
        None => {
            let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
            name.split_at(name.len() - digits)
        }
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let word = word.to_lowercase();
    MEMBER_WORDS.iter().find(|m| edit_distance(&word, m, 2).is_some()).map(|m| format!("{m}.{id}"))
}

/// Levenshtein distance of `a` and `b` if it is at most `limit`.
fn edit_distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        if cur.iter().min().is_some_and(|&m| m > limit) {
            return None;
        }
        prev = cur;
    }
    prev.last().copied().filter(|&d| d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting", 3), Some(3));
        assert_eq!(edit_distance("kitten", "sitting", 2), None);
        assert_eq!(edit_distance("", "ab", 2), Some(2));
        assert_eq!(edit_distance("same", "same", 1), Some(0));
    }

    #[test]
    fn suggestions() {
        let cases = [
            ("initLimt", Some("initLimit")),
            ("ticktime", Some("tickTime")),
            ("CLIENTPORT", Some("clientPort")),
            ("zookeeper.electionPortBindRetries", Some("electionPortBindRetry")),
            ("ssl.quorum.keyStore.locaton", Some("ssl.quorum.keyStore.location")),
            ("4lw.command.whitelist", Some("4lw.commands.whitelist")),
            ("sever.1", Some("server.1")),
            ("server1", Some("server.1")),
            ("Weight.2", Some("weight.2")),
            ("someFutureKey", None),
            ("x", None),
            ("", None),
        ];
        for (key, want) in cases {
            assert_eq!(suggest_key(key).as_deref(), want, "{key}");
        }
    }

    #[test]
    fn every_key_zkelect_reads_is_known_once() {
        let mut all: Vec<&str> = known_keys().collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a key is listed twice");
    }
}
