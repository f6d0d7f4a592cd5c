//! `events`: resource statistics and OOM notifications, in runc's event JSON.

use std::time::Duration;

use serde_json::json;

use crate::Runtime;
use crate::cgroups::stats;
use crate::error::{Result, RuntimeError};
use crate::state::Status;

/// One `{"type":"stats","id":…,"data":…}` event for container `id`.
pub fn stats_event(rt: &Runtime, id: &str) -> Result<serde_json::Value> {
    let dir = rt.state_dir(id)?;
    let st = dir.load()?;
    if st.status(&dir) == Status::Stopped {
        return Err(RuntimeError::status("container not running"));
    }
    Ok(json!({"type": "stats", "id": id, "data": stats::collect(&st.cgroup)}))
}

fn oom_kills(cg: &crate::cgroups::ContainerCgroup) -> u64 {
    let file = match (cg.mode, cg.v2_dir(), cg.v1_dir("memory")) {
        (crate::cgroups::Mode::Unified, Some(d), _) => d.join("memory.events"),
        (_, _, Some(d)) => d.join("memory.oom_control"),
        _ => return 0,
    };
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|v| v.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Streams events to `emit` until the container stops: a stats event every `interval`
/// and an `oom` event whenever the kernel OOM-kills a process of the container.
pub fn stream(
    rt: &Runtime,
    id: &str,
    interval: Duration,
    emit: &mut dyn FnMut(serde_json::Value) -> bool,
) -> Result<()> {
    let dir = rt.state_dir(id)?;
    let st = dir.load()?;
    let tick = Duration::from_millis(100).min(interval);
    let mut ooms = oom_kills(&st.cgroup);
    let mut since_stats = interval;
    loop {
        if st.status(&dir) == Status::Stopped {
            return Ok(());
        }
        let now = oom_kills(&st.cgroup);
        if now > ooms {
            ooms = now;
            if !emit(json!({"type": "oom", "id": id})) {
                return Ok(());
            }
        }
        if since_stats >= interval {
            since_stats = Duration::ZERO;
            if !emit(json!({"type": "stats", "id": id, "data": stats::collect(&st.cgroup)})) {
                return Ok(());
            }
        }
        std::thread::sleep(tick);
        since_stats += tick;
    }
}

/// Parses a Go-style duration (`5s`, `500ms`, `1m30s`, `2h`).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = |msg: &str| RuntimeError::InvalidArgument {
        what: "duration",
        value: s.to_owned(),
        msg: msg.to_owned(),
    };
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("missing unit (ns, us, ms, s, m, h)"))?;
        let (num, tail) = rest.split_at(n_end);
        let v: f64 = num.parse().map_err(|_| bad("not a number"))?;
        let u_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(u_end);
        let mult = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad("unknown unit (ns, us, ms, s, m, h)")),
        };
        total += v * mult;
        rest = tail;
    }
    if total <= 0.0 {
        return Err(bad("must be positive"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").ok(), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s").ok(), Some(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("250ms").ok(),
            Some(Duration::from_millis(250))
        );
        for bad in ["", "5", "x", "5y", "-1s", "0s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
