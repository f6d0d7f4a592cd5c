//! warren agent teams and warm pools.
//!
//! * [`swarm`]: a team of agents from `swarm.toml`, each in its own sandbox on a private
//!   network of the swarm (a bridge in a dedicated network namespace, one veth per agent,
//!   nftables rules for the allowed role→role edges), supervised as one unit by
//!   `warren-swarmd` (logs prefixed by agent, restarts, `down`).
//! * [`pool`]: warm sandboxes kept ready by `warren-poold`, whose init
//!   (`warren-pool-init`) runs one command at a time with the profile already in force;
//!   reset after every command; a JSON-over-unix-socket API and a Rust client
//!   ([`pool::Client`]).
//!
//! Shared pieces: [`paths`] (state roots and helper binaries), [`spec`] (the OCI spec of
//! an agent or pooled sandbox), [`hostview`] (the default root filesystem), [`ns`]
//! (entering a sandbox's namespaces from a daemon thread), [`cmd`] (the `ip` and `nft`
//! commands), [`b64`].

pub mod b64;
pub mod cmd;
pub mod error;
pub use warren_sandbox::hostview;
pub mod ns;
pub mod paths;
pub mod pool;
pub mod proc;
pub mod spec;
pub mod swarm;
pub mod units;

pub use error::{Error, Result};
pub use paths::{Helpers, Roots};
