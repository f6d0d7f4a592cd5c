//! `warren inspect NAME…`: the JSON of a sandbox's record, state, exit, OCI config and the
//! profile applied to it.

use serde_json::{Value, json};

use crate::run::ProfileRef;
use crate::sandbox;
use crate::state::{self, Roots, StateError};
use crate::timefmt;

fn profile_json(r: &str) -> Value {
    match ProfileRef::parse(r).load() {
        Ok(p) => json!({
            "name": p.name,
            "chain": p.chain,
            "description": p.description,
            "no_new_privs": p.no_new_privs,
            "workspace": p.workspace,
            "network": format!("{:?}", p.network).to_lowercase(),
            "capabilities": p.capabilities,
            "landlock": p.landlock.enabled,
            "rlimits": p.rlimits.iter().map(|(k, v)| (k.clone(), Value::String(format!("{v:?}")))).collect::<serde_json::Map<_, _>>(),
            "cgroup": format!("{:?}", p.cgroup),
            "seccomp": format!("{:?}", p.seccomp).chars().take(2000).collect::<String>(),
        }),
        Err(e) => json!({"name": r, "error": e.to_string()}),
    }
}

/// The JSON of sandbox `query`.
pub fn inspect(roots: &Roots, query: &str) -> Result<Value, StateError> {
    let id = state::resolve(roots, query)?;
    let info = sandbox::info(roots, &id)?;
    let now = timefmt::now().0;
    let cfg_path = roots.run_dir(&id).join("bundle").join("config.json");
    let config: Value = std::fs::read(&cfg_path)
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok())
        .unwrap_or(Value::Null);
    let runtime = info.runtime.as_ref().map(|st| {
        json!({
            "pid": st.init_pid,
            "created": st.created,
            "bundle": st.bundle,
            "rootfs": st.rootfs,
            "cgroups": st.cgroup.dirs.iter().map(|d| d.path.clone()).collect::<Vec<_>>(),
        })
    });
    Ok(json!({
        "id": info.record.id,
        "name": info.record.name,
        "state": {
            "status": info.status,
            "text": info.status_text(now),
            "pid": info.pid(),
            "exit_code": info.exit.as_ref().map(|e| e.exit_code),
            "oom_killed": info.exit.as_ref().map(|e| e.oom_killed),
            "finished": info.exit.as_ref().map(|e| timefmt::rfc3339(e.finished)),
            "runtime": runtime,
        },
        "created": timefmt::rfc3339(info.record.created),
        "record": info.record,
        "log_path": info.record.detached.then(|| roots.log_path(&id)),
        "profile": info.record.profile.as_deref().map(profile_json),
        "config": config,
    }))
}
