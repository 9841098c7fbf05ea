//! zkelect: Apache ZooKeeper's leader-election layer as a standalone daemon, wire compatible
//! with ZooKeeper 3.5–3.9 election peers.
//!
//! Layers, top to bottom: [`peer`] (the `QuorumPeer` state loop), [`election`] (the pure
//! `FastLeaderElection` state machine), [`messenger`] (`WorkerSender`/`WorkerReceiver`), [`cnx`]
//! (`QuorumCnxManager`), and the pure [`wire`] and [`config`] codecs.

pub mod admin;
pub mod cnx;
pub mod config;
pub mod election;
pub mod localports;
pub mod logging;
pub mod messenger;
pub mod peer;
pub mod thread;
pub mod wire;
