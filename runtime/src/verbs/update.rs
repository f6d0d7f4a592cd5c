//! `update`: change a running container's resource limits.

use libcontainer::oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources,
};

use crate::Runtime;
use crate::error::{Result, RuntimeError};
use crate::state::Status;

/// Applies `new` on top of container `id`'s resources: only the fields set in `new`
/// change. The merged resources are saved so that later updates build on them.
pub fn update(rt: &Runtime, id: &str, new: &LinuxResources) -> Result<()> {
    let dir = rt.state_dir(id)?;
    let st = dir.load()?;
    if st.status(&dir) == Status::Stopped {
        return Err(RuntimeError::status("container not running"));
    }
    st.cgroup.apply(new, false)?;
    let mut spec = dir.load_spec()?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut res = linux.resources().clone().unwrap_or_default();
    merge(&mut res, new);
    linux.set_resources(Some(res));
    spec.set_linux(Some(linux));
    dir.save_spec(&spec)
}

fn merge(into: &mut LinuxResources, new: &LinuxResources) {
    if let Some(m) = new.memory() {
        let mut cur: LinuxMemory = (*into.memory()).unwrap_or_default();
        macro_rules! take {
            ($get:ident, $set:ident) => {
                if m.$get().is_some() {
                    cur.$set(m.$get());
                }
            };
        }
        take!(limit, set_limit);
        take!(reservation, set_reservation);
        take!(swap, set_swap);
        take!(kernel, set_kernel);
        take!(kernel_tcp, set_kernel_tcp);
        take!(swappiness, set_swappiness);
        take!(disable_oom_killer, set_disable_oom_killer);
        into.set_memory(Some(cur));
    }
    if let Some(c) = new.cpu() {
        let mut cur: LinuxCpu = into.cpu().clone().unwrap_or_default();
        if c.shares().is_some() {
            cur.set_shares(c.shares());
        }
        if c.quota().is_some() {
            cur.set_quota(c.quota());
        }
        if c.period().is_some() {
            cur.set_period(c.period());
        }
        if c.realtime_period().is_some() {
            cur.set_realtime_period(c.realtime_period());
        }
        if c.realtime_runtime().is_some() {
            cur.set_realtime_runtime(c.realtime_runtime());
        }
        if c.cpus().is_some() {
            cur.set_cpus(c.cpus().clone());
        }
        if c.mems().is_some() {
            cur.set_mems(c.mems().clone());
        }
        into.set_cpu(Some(cur));
    }
    if let Some(p) = new.pids() {
        let mut cur: LinuxPids = (*into.pids()).unwrap_or_default();
        cur.set_limit(p.limit());
        into.set_pids(Some(cur));
    }
    if let Some(b) = new.block_io() {
        let mut cur: LinuxBlockIo = into.block_io().clone().unwrap_or_default();
        if b.weight().is_some() {
            cur.set_weight(b.weight());
        }
        into.set_block_io(Some(cur));
    }
    if new.unified().is_some() {
        let mut u = into.unified().clone().unwrap_or_default();
        u.extend(new.unified().clone().unwrap_or_default());
        into.set_unified(Some(u));
    }
}

/// Parses a size like docker's `RAMInBytes`: `64m`, `1g`, `512k`, `1024`, `-1`.
pub fn parse_bytes(s: &str) -> Result<i64> {
    let bad = |msg: &str| RuntimeError::InvalidArgument {
        what: "size",
        value: s.to_owned(),
        msg: msg.to_owned(),
    };
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('p') => (&t[..t.len() - 1], 1 << 50),
        Some(c) if c.is_ascii_digit() => (t, 1),
        _ => {
            return Err(bad(
                "expected a number with an optional unit (k, m, g, t, p)",
            ));
        }
    };
    let v: f64 = num.trim().parse().map_err(|_| bad("not a number"))?;
    if v < 0.0 || !v.is_finite() {
        return Err(bad("must not be negative"));
    }
    let r = v * mult as f64;
    if r > i64::MAX as f64 {
        return Err(bad("too large"));
    }
    Ok(r as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64m").ok(), Some(64 << 20));
        assert_eq!(parse_bytes("1G").ok(), Some(1 << 30));
        assert_eq!(parse_bytes("1.5k").ok(), Some(1536));
        assert_eq!(parse_bytes("100").ok(), Some(100));
        assert_eq!(parse_bytes("-1").ok(), Some(-1));
        for bad in ["", "m", "abc", "-5m", "1x"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
