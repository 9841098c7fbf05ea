//! Fast leader election, pure: votes and their rules, the `lookForLeader` state machine, the
//! messenger's reply rules and what received votes say about a leadership. No sockets, threads or
//! clocks: the threads that drive it live in [`crate::messenger`] and [`crate::peer`].

pub mod fle;
pub mod replies;
pub mod vote;
pub mod votes;

pub use fle::{Action, Decision, FastLeaderElection, FleSettings, Steer};
pub use replies::{PeerView, Receipt, ReplyThrottle, receive};
pub use vote::{Notification, Proposal, ServerState, ToSend, Vote, check_leader, has_quorum, total_order_predicate};
pub use votes::LatestVotes;

#[cfg(test)]
mod tests;
