//! `RUN/swarms/NAME/state.json`: the validated swarm, its network plan and agents, and
//! the supervisor's phase. Written by `swarm up` and the supervisor; read by `ps` and by
//! `down` when the supervisor is gone.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::SwarmConfig;
use super::net::NetPlan;
use crate::error::{Error, Result};
use crate::paths::Roots;

/// Format version of `state.json`.
pub const STATE_FORMAT: u32 = 1;

/// Where the supervisor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Starting,
    Running,
    Failed,
    Stopping,
}

/// One agent of the swarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentPlan {
    pub name: String,
    pub role: String,
    /// The runtime's container id (`swarm-SWARM.AGENT`).
    pub id: String,
    pub ip: Ipv4Addr,
    /// CDI devices of this agent.
    pub gpus: Vec<String>,
    /// Host directory mounted as its workspace.
    pub workspace: PathBuf,
    /// Its log file.
    pub log: PathBuf,
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmState {
    pub format: u32,
    pub config: SwarmConfig,
    pub net: NetPlan,
    pub agents: Vec<AgentPlan>,
    pub created: u64,
    pub phase: Phase,
    pub supervisor_pid: Option<u32>,
    pub error: Option<String>,
}

/// The runtime id of an agent.
pub fn agent_id(swarm: &str, agent: &str) -> String {
    format!("swarm-{swarm}.{agent}")
}

impl SwarmState {
    pub fn path(roots: &Roots, name: &str) -> PathBuf {
        roots.swarm_dir(name).join("state.json")
    }

    pub fn load_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("state.json");
        let data = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        let s: Self = serde_json::from_slice(&data)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        if s.format != STATE_FORMAT {
            return Err(Error::Invalid(format!(
                "{}: format {} is not {STATE_FORMAT}",
                path.display(),
                s.format
            )));
        }
        Ok(s)
    }

    pub fn save_dir(&self, dir: &Path) -> Result<()> {
        let path = dir.join("state.json");
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec_pretty(self).map_err(|e| Error::Invalid(e.to_string()))?;
        std::fs::write(&tmp, data).map_err(|e| Error::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))
    }
}
