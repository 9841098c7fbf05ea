//! zkelect: Apache ZooKeeper's leader-election layer as a standalone daemon, wire compatible
//! with ZooKeeper 3.5–3.9 election peers.
//!
//! The layers, each depending only on those below it:
//!
//! | module | owns | may not touch |
//! |---|---|---|
//! | [`sidecar`] | `zkelect run`: the command's supervisor and its guard process | the election |
//! | [`node`] | assembling a node and its lifecycle (`QuorumPeerMain`) | |
//! | [`admin`] | four-letter words, metrics, the AdminServer (HTTP), the state-change hook, systemd notifications | the election, sockets of peers |
//! | [`peer`] | the `QuorumPeer` loop, `Leader`/`Follower` sessions, epoch files, leases | admin |
//! | [`snapshot`] | the node's published status (neutral ground for peer, messenger, admin) | threads, sockets |
//! | [`messenger`] | `WorkerSender`/`WorkerReceiver`, the vote board | peer, admin |
//! | [`cnx`] | `QuorumCnxManager`: election connections and their threads | election, messenger |
//! | [`net`] | the stream seam: every peer socket is created and wrapped there (TLS too) | protocols |
//! | [`election`] | `FastLeaderElection` and the vote rules, pure | sockets, threads, clocks |
//! | [`lease`] | the leader's lease: when a leader is active, pure but for its clock | sockets, threads |
//! | [`wire`], [`config`] | pure codecs and the zoo.cfg parser | sockets, threads, clocks |
//! | [`runtime`] | named threads, the stop signal, signals, logging, the panic policy | protocols |

#![forbid(unsafe_code)]

pub mod admin;
pub mod cnx;
pub mod config;
pub mod election;
pub mod lease;
pub mod messenger;
pub mod net;
pub mod node;
pub mod peer;
pub mod runtime;
pub mod sidecar;
pub mod snapshot;
pub mod wire;
