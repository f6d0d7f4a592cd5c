//! Agent teams: `swarm.toml` ([`config`]) → a private network ([`net`]) and one sandbox
//! per agent ([`agent`], [`gpu`]), supervised as a unit ([`supervisor`]), driven by
//! `warren swarm up|ps|logs|down` ([`manage`]); [`state`] is what they share on disk.

pub mod agent;
pub mod config;
pub mod gpu;
pub mod manage;
pub mod net;
pub mod state;
pub mod supervisor;

pub use config::{ConfigError, SwarmConfig};
pub use manage::{DownReport, LogsOptions, down, logs, print_ps, ps, up};
pub use supervisor::{AgentInfo, SwarmInfo};
