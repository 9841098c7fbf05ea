//! Which connection of a pair survives, as pure functions (`QuorumCnxManager.startConnection` and
//! `handleConnection`): the one dialled by the larger sid. A smaller sid that dials only asks
//! for a call back; the larger side closes that socket and dials (ZooKeeper compares sids, not
//! addresses, whatever its class comment says).

use std::time::Duration;

/// A connection younger than this is taken to be the tie-break's fresh dial-back, still on its way
/// to the other side: a dial from the smaller side does not replace it, and when it breaks the
/// smaller side does not re-dial at once. Without this, "smaller dials, larger finishes its
/// connection and dials back, the smaller side sees the old one break and dials again" feeds
/// itself: a 51-node launch on two cores churned through 20,000 connections in a few seconds (the
/// reconnect storms of ZK-2781 and ZK-4220).
pub const FRESH_CONNECTION: Duration = Duration::from_secs(1);

/// The connection we already have with a peer, as far as the tie-break cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    pub age: Duration,
    pub running: bool,
}

/// What to do with an accepted connection whose handshake named `their` sid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnAccepted {
    /// It carries our own sid: a configuration error (or a bug) on the other side.
    RefuseOwnId,
    /// Not a configured server (CVE-2023-44981; Java accepts any sid).
    RefuseUnknown,
    /// From a larger sid: the connection to keep (it replaces any older one).
    Keep,
    /// From a smaller sid: close it and dial back, replacing whatever we had.
    DialBack,
    /// From a smaller sid, while our own dial-back is fresh and on its way: close it only.
    KeepOurs,
}

/// `handleConnection`'s decision.
pub fn on_accepted(my: i64, their: i64, configured: bool, existing: Option<Existing>) -> OnAccepted {
    if their == my {
        OnAccepted::RefuseOwnId
    } else if !configured {
        OnAccepted::RefuseUnknown
    } else if their > my {
        OnAccepted::Keep
    } else if existing.is_some_and(|e| e.running && e.age < FRESH_CONNECTION) {
        OnAccepted::KeepOurs
    } else {
        OnAccepted::DialBack
    }
}

/// What to do with a connection we dialled, after sending our handshake (`startConnection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDialled {
    /// To a smaller sid: the connection to keep.
    Keep,
    /// To a larger sid: "Have smaller server identifier, so dropping the connection"; it dials back.
    Close,
}

pub fn on_dialled(my: i64, their: i64) -> OnDialled {
    if their > my { OnDialled::Close } else { OnDialled::Keep }
}

/// What to do when a live connection breaks (not on our own request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBroken {
    /// Re-dial at once to tell a dead peer from tie-break churn: a peer that cannot be reached is down.
    Redial,
    /// A fresh connection from a larger sid: tie-break churn, its owner dials back by itself (and the
    /// next `toSend` dials, as in ZooKeeper, if it does not).
    LeaveToPeer,
}

pub fn on_broken(my: i64, their: i64, lived: Duration) -> OnBroken {
    if their > my && lived < FRESH_CONNECTION { OnBroken::LeaveToPeer } else { OnBroken::Redial }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: Existing = Existing { age: Duration::from_secs(30), running: true };
    const FRESH: Existing = Existing { age: Duration::from_millis(10), running: true };
    const FRESH_STOPPED: Existing = Existing { age: Duration::from_millis(10), running: false };

    #[test]
    fn accepted_connections() {
        use OnAccepted::*;
        let table = [
            // (my, their, configured, existing, expected)
            (2, 2, true, None, RefuseOwnId),
            (2, 9, false, None, RefuseUnknown),
            (2, 3, true, None, Keep),
            (2, 3, true, Some(FRESH), Keep),
            (2, 3, true, Some(OLD), Keep),
            (2, 1, true, None, DialBack),
            (2, 1, true, Some(OLD), DialBack),
            (2, 1, true, Some(FRESH), KeepOurs),
            (2, 1, true, Some(FRESH_STOPPED), DialBack),
        ];
        for (my, their, configured, existing, expected) in table {
            assert_eq!(on_accepted(my, their, configured, existing), expected, "my {my} their {their} {existing:?}");
        }
    }

    #[test]
    fn dialled_connections_survive_only_towards_smaller_sids() {
        assert_eq!(on_dialled(2, 1), OnDialled::Keep);
        assert_eq!(on_dialled(2, 3), OnDialled::Close);
    }

    #[test]
    fn a_fresh_connection_from_a_larger_sid_is_left_to_its_owner() {
        assert_eq!(on_broken(2, 3, Duration::from_millis(5)), OnBroken::LeaveToPeer);
        assert_eq!(on_broken(2, 3, FRESH_CONNECTION), OnBroken::Redial);
        assert_eq!(on_broken(2, 1, Duration::from_millis(5)), OnBroken::Redial);
        assert_eq!(on_broken(2, 1, Duration::from_secs(60)), OnBroken::Redial);
    }
}
