//! A sandbox as the CLI sees it: its record, joined with the runtime's state and the exit
//! the monitor recorded. `ps`, `inspect`, `stats` and `top` read sandboxes through here.

use serde::Serialize;
use warren_runtime::state::{ContainerState, Status as RtStatus};

use crate::state::{self, ExitInfo, Record, Roots, StateError};
use crate::timefmt;

/// Where a sandbox is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    /// Exited; the code is in [`Info::exit`].
    Exited,
    /// The runtime says stopped but no exit was recorded (the monitor died).
    Stopped,
    /// Neither runtime state nor an exit: the sandbox is starting or was lost (reboot).
    Unknown,
}

impl Status {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Exited => "exited",
            Self::Stopped => "stopped",
            Self::Unknown => "unknown",
        }
    }

    /// Whether processes of the sandbox may still exist.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Created | Self::Running | Self::Paused)
    }
}

/// Everything known about one sandbox.
#[derive(Debug, Clone)]
pub struct Info {
    pub record: Record,
    pub status: Status,
    pub exit: Option<ExitInfo>,
    pub runtime: Option<ContainerState>,
}

impl Info {
    /// The init's pid while it lives.
    pub fn pid(&self) -> Option<i32> {
        self.runtime
            .as_ref()
            .filter(|_| self.status.is_live())
            .map(|s| s.init_pid)
    }

    /// `Up 5m`, `Exited (1) 3s ago`, `Exited (137, OOM killed) …`.
    pub fn status_text(&self, now: u64) -> String {
        match (self.status, &self.exit) {
            (Status::Exited, Some(e)) => format!(
                "Exited ({}{}) {} ago",
                e.exit_code,
                if e.oom_killed { ", OOM killed" } else { "" },
                timefmt::human_duration(now.saturating_sub(e.finished))
            ),
            (Status::Running, _) => format!(
                "Up {}",
                timefmt::human_duration(now.saturating_sub(self.record.created))
            ),
            (s, _) => capitalize(s.as_str()),
        }
    }

    /// JSON for `ps --format json`.
    pub fn to_json(&self, now: u64) -> serde_json::Value {
        let r = &self.record;
        serde_json::json!({
            "id": r.id,
            "name": r.name,
            "status": self.status,
            "state": self.status_text(now),
            "created": timefmt::rfc3339(r.created),
            "uptime_seconds": (self.status == Status::Running).then(|| now.saturating_sub(r.created)),
            "exit_code": self.exit.as_ref().map(|e| e.exit_code),
            "oom_killed": self.exit.as_ref().map(|e| e.oom_killed),
            "pid": self.pid(),
            "command": r.command,
            "image": r.image,
            "profile": r.profile,
            "gpus": r.gpus,
            "devices": r.devices,
            "detached": r.detached,
        })
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Reads sandbox `id`.
pub fn info(roots: &Roots, id: &str) -> Result<Info, StateError> {
    let record = Record::load(roots, id)?;
    let exit = ExitInfo::load(roots, id);
    let rt = roots.runtime();
    let runtime = rt
        .state_dir(id)
        .ok()
        .and_then(|d| d.load().ok().map(|s| (d, s)));
    let status = match (&runtime, &exit) {
        (Some((dir, st)), _) => match st.status(dir) {
            RtStatus::Created | RtStatus::Creating => Status::Created,
            RtStatus::Running => Status::Running,
            RtStatus::Paused => Status::Paused,
            RtStatus::Stopped if exit.is_some() => Status::Exited,
            RtStatus::Stopped => Status::Stopped,
        },
        (None, Some(_)) => Status::Exited,
        (None, None) => Status::Unknown,
    };
    Ok(Info {
        record,
        status,
        exit,
        runtime: runtime.map(|(_, s)| s),
    })
}

/// Every sandbox (only live ones unless `all`), oldest first.
pub fn list(roots: &Roots, all: bool) -> Result<Vec<Info>, StateError> {
    let mut out = Vec::new();
    for id in state::list_ids(roots)? {
        match info(roots, &id) {
            Ok(i) if all || i.status.is_live() => out.push(i),
            Ok(_) => {}
            Err(StateError::NotFound(_)) => {} // removed meanwhile
            Err(e) => tracing::warn!(%id, error = %e, "unreadable sandbox"),
        }
    }
    Ok(out)
}
