//! Fast leader election, pure: votes and their rules, the `lookForLeader` state machine and the
//! messenger's reply rules. The threads that drive it live in [`crate::messenger`] and [`crate::peer`].

pub mod fle;
pub mod replies;
pub mod vote;

pub use fle::{Action, Decision, FastLeaderElection, FleSettings};
pub use replies::{PeerView, Receipt, receive};
pub use vote::{Notification, ToSend, Vote, check_leader, has_quorum, total_order_predicate};

#[cfg(test)]
mod tests;
