//! `ps`: the processes of a container.

use crate::Runtime;
use crate::error::{Result, RuntimeError};

/// Host pids of every process in container `id`'s cgroup.
pub fn pids(rt: &Runtime, id: &str) -> Result<Vec<i32>> {
    let dir = rt.state_dir(id)?;
    let st = dir.load()?;
    Ok(st.cgroup.pids()?)
}

/// Runs `ps ARGS` (default `-ef`) and keeps the header and the rows of `pids`, as runc's
/// table format does.
pub fn table(pids: &[i32], ps_args: &[String]) -> Result<String> {
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| RuntimeError::io("run", "ps", e))?;
    if !out.status.success() {
        return Err(RuntimeError::InvalidArgument {
            what: "ps arguments",
            value: args.join(" "),
            msg: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| RuntimeError::InvalidArgument {
            what: "ps arguments",
            value: args.join(" "),
            msg: "the output has no PID column".into(),
        })?;
    let mut res = String::new();
    res.push_str(header);
    res.push('\n');
    for l in lines {
        if let Some(p) = l
            .split_whitespace()
            .nth(pid_col)
            .and_then(|v| v.parse::<i32>().ok())
            && pids.contains(&p)
        {
            res.push_str(l);
            res.push('\n');
        }
    }
    Ok(res)
}
