//! `warren swarm up|ps|logs|down`: the client side. `up` validates everything it can
//! (the file, images, GPUs, free names), writes the state and starts the supervisor;
//! `down` asks the supervisor to take everything down, or does it itself when the
//! supervisor is gone.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::config;
use super::gpu;
use super::net::{self, NetPlan};
use super::state::{self, AgentPlan, Phase, STATE_FORMAT, SwarmState};
use super::supervisor::{self, CtlRequest, CtlResponse, SwarmInfo};
use crate::cmd::Tools;
use crate::error::{Error, Result};
use crate::paths::{Helpers, Roots};

fn ctl(roots: &Roots, name: &str, req: &CtlRequest, timeout: Duration) -> Result<CtlResponse> {
    let path = roots.swarm_dir(name).join("ctl.sock");
    let mut s = UnixStream::connect(&path).map_err(|e| Error::io("connect", &path, e))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| Error::io("configure", &path, e))?;
    let mut line = serde_json::to_vec(req).map_err(|e| Error::Invalid(e.to_string()))?;
    line.push(b'\n');
    s.write_all(&line)
        .map_err(|e| Error::io("write", &path, e))?;
    let mut resp = String::new();
    BufReader::new(s)
        .read_line(&mut resp)
        .map_err(|e| Error::io("read", &path, e))?;
    serde_json::from_str(&resp).map_err(|e| Error::Swarm {
        name: name.to_owned(),
        msg: format!("bad answer from the supervisor: {e}"),
    })
}

fn pid_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid > 0 && unsafe { libc::kill(pid as i32, 0) } == 0
}

/// Starts the swarm described by `file`; returns once every agent runs (or the first
/// error, after removing whatever was made).
pub fn up(roots: &Roots, helpers: &Helpers, tools: &Tools, file: &Path) -> Result<SwarmInfo> {
    let data = roots.data.clone();
    let exists = move |img: &str| crate::spec::image_exists(&data, img);
    let cfg = config::load(file, Some(&exists))?;
    let name = cfg.name.clone();
    let dir = roots.swarm_dir(&name);
    if dir.exists() {
        match ctl(roots, &name, &CtlRequest::Ps, Duration::from_secs(5)) {
            Ok(_) => {
                return Err(Error::Swarm {
                    name,
                    msg: "is already up (`warren swarm down` it first)".into(),
                });
            }
            Err(_) => {
                // A swarm whose supervisor died: clear it before starting again.
                if let Ok(old) = SwarmState::load_dir(&dir) {
                    force_stop(roots, &old);
                    supervisor::cleanup(roots, tools, &old);
                } else {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
    }
    let registry = warren_gpu::cdi::Registry::load(&warren_gpu::cdi::DEFAULT_SPEC_DIRS);
    let gpus = if cfg.roles.iter().any(|r| r.gpus != config::GpuRequest::None) {
        gpu::assign(&cfg, &registry)?
    } else {
        vec![Vec::new(); cfg.agent_count()]
    };
    let plan = NetPlan::new(&cfg, &net::host_addrs(tools));
    for ns in plan.all_netns() {
        if net::netns_exists(&ns) {
            return Err(Error::Swarm {
                name,
                msg: format!(
                    "network namespace {ns} exists already; remove it with `ip netns del {ns}` or `warren swarm down {}`",
                    cfg.name
                ),
            });
        }
    }
    let sdata = roots.swarm_data(&name);
    // Logs start afresh with each `up` (workspaces are kept, like volumes).
    let _ = std::fs::remove_dir_all(sdata.join("logs"));
    let agents: Vec<AgentPlan> = plan
        .agents
        .iter()
        .zip(gpus)
        .map(|(a, g)| AgentPlan {
            name: a.name.clone(),
            role: plan.roles[a.role].name.clone(),
            id: state::agent_id(&name, &a.name),
            ip: a.ip,
            gpus: g,
            workspace: sdata.join("workspaces").join(&a.name),
            log: sdata.join("logs").join(format!("{}.log", a.name)),
        })
        .collect();
    for d in [&dir, &sdata.join("logs"), &sdata.join("workspaces")] {
        std::fs::create_dir_all(d).map_err(|e| Error::io("create", d, e))?;
    }
    let st = SwarmState {
        format: STATE_FORMAT,
        config: cfg,
        net: plan,
        agents,
        created: crate::proc::now_secs(),
        phase: Phase::Starting,
        supervisor_pid: None,
        error: None,
    };
    st.save_dir(&dir)?;
    let log_path = sdata.join("swarmd.log");
    let mut child =
        crate::paths::spawn_daemon(&helpers.swarmd, &dir, roots, &log_path, "supervisor")?;
    let end = Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let why = SwarmState::load_dir(&dir)
                .ok()
                .and_then(|s| s.error)
                .unwrap_or_else(|| {
                    let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
                    format!(
                        "the supervisor exited ({status}): {}",
                        tail.lines().last().unwrap_or("")
                    )
                });
            if let Ok(s) = SwarmState::load_dir(&dir) {
                supervisor::cleanup(roots, tools, &s);
            }
            let _ = std::fs::remove_dir_all(&dir);
            return Err(Error::Swarm { name, msg: why });
        }
        if let Ok(s) = SwarmState::load_dir(&dir)
            && s.phase == Phase::Running
        {
            let r = ctl(roots, &name, &CtlRequest::Ps, Duration::from_secs(10))?;
            return r.swarm.ok_or_else(|| Error::Swarm {
                name: name.clone(),
                msg: r.error.unwrap_or_else(|| "no status".into()),
            });
        }
        if Instant::now() > end {
            return Err(Error::Swarm {
                name,
                msg: format!("not up after {} s", end.elapsed().as_secs()),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The swarm name of `name_or_file`: a swarm file's name, or the name itself.
pub fn resolve_name(name_or_file: &str) -> Result<String> {
    let p = Path::new(name_or_file);
    if p.is_file() {
        return Ok(config::load(p, None)?.name);
    }
    crate::paths::validate_name("swarm", name_or_file).map_err(Error::Invalid)?;
    Ok(name_or_file.to_owned())
}

/// Kills the agents of a swarm whose supervisor is gone (their inits were its children;
/// they now belong to the host's init).
fn force_stop(roots: &Roots, st: &SwarmState) {
    if let Some(pid) = st.supervisor_pid
        && pid_alive(pid)
        && pid != std::process::id()
    {
        // SAFETY: signalling the recorded supervisor pid; it answered no request.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    let rt = roots.runtime();
    for a in &st.agents {
        let _ = warren_runtime::verbs::delete::delete(&rt, &a.id, true);
    }
}

/// What `down` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownReport {
    pub name: String,
    /// Nothing should be here.
    pub leftovers: Vec<String>,
    /// The supervisor was gone; the CLI cleaned up itself.
    pub forced: bool,
}

/// Takes swarm `name_or_file` down. `purge` also removes its logs and workspaces.
pub fn down(
    roots: &Roots,
    tools: &Tools,
    name_or_file: &str,
    timeout: Duration,
    purge: bool,
) -> Result<DownReport> {
    let name = resolve_name(name_or_file)?;
    let dir = roots.swarm_dir(&name);
    if !dir.exists() {
        return Err(Error::SwarmNotFound(name));
    }
    let mut report = DownReport {
        name: name.clone(),
        ..Default::default()
    };
    let req = CtlRequest::Down {
        timeout_ms: Some(timeout.as_millis() as u64),
    };
    match ctl(roots, &name, &req, timeout + Duration::from_secs(120)) {
        Ok(r) => {
            report.leftovers = r.leftovers;
            // The supervisor exits right after answering.
        }
        Err(_) => {
            let st = SwarmState::load_dir(&dir)?;
            force_stop(roots, &st);
            report.leftovers = supervisor::cleanup(roots, tools, &st);
            report.forced = true;
        }
    }
    if purge {
        let d = roots.swarm_data(&name);
        if let Err(e) = std::fs::remove_dir_all(&d)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            report.leftovers.push(format!("{}: {e}", d.display()));
        }
    }
    Ok(report)
}

/// Every swarm that is up (or `name` only).
pub fn ps(roots: &Roots, name: Option<&str>) -> Result<Vec<SwarmInfo>> {
    let names: Vec<String> = match name {
        Some(n) => {
            let n = resolve_name(n)?;
            if !roots.swarm_dir(&n).exists() {
                return Err(Error::SwarmNotFound(n));
            }
            vec![n]
        }
        None => {
            let mut v: Vec<String> = std::fs::read_dir(roots.swarms_dir())
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        }
    };
    let mut out = Vec::new();
    for n in names {
        match ctl(roots, &n, &CtlRequest::Ps, Duration::from_secs(5)) {
            Ok(CtlResponse {
                swarm: Some(info), ..
            }) => out.push(info),
            _ => {
                let Ok(st) = SwarmState::load_dir(&roots.swarm_dir(&n)) else {
                    continue;
                };
                out.push(SwarmInfo {
                    name: n.clone(),
                    phase: st.phase,
                    supervisor_pid: st.supervisor_pid,
                    created: st.created,
                    agents: st
                        .agents
                        .iter()
                        .map(|a| supervisor::AgentInfo {
                            name: a.name.clone(),
                            role: a.role.clone(),
                            ip: a.ip.to_string(),
                            status: "unknown (supervisor not running)".into(),
                            pid: None,
                            restarts: 0,
                            exit_code: None,
                            started: None,
                            gpus: a.gpus.clone(),
                            error: st.error.clone(),
                        })
                        .collect(),
                });
            }
        }
    }
    Ok(out)
}

/// Writes `ps` as a table.
pub fn print_ps(infos: &[SwarmInfo], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<16} {:<20} {:<14} {:<15} {:<22} {:>8} {:>8}",
        "SWARM", "AGENT", "ROLE", "IP", "STATUS", "PID", "RESTARTS"
    )?;
    for s in infos {
        for a in &s.agents {
            let status = match (a.status.as_str(), a.exit_code) {
                ("exited", Some(c)) => format!("exited ({c})"),
                (st, _) => st.to_owned(),
            };
            writeln!(
                out,
                "{:<16} {:<20} {:<14} {:<15} {:<22} {:>8} {:>8}",
                s.name,
                a.name,
                a.role,
                a.ip,
                status,
                a.pid.map_or("-".into(), |p| p.to_string()),
                a.restarts
            )?;
        }
    }
    Ok(())
}

/// Options of `warren swarm logs`.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub tail: Option<usize>,
    pub timestamps: bool,
    /// Only these agents (and not the supervisor's events).
    pub agents: Vec<String>,
}

#[derive(Debug)]
struct Entry {
    time: String,
    agent: String,
    text: String,
}

fn parse_line(agent: &str, line: &str) -> Option<Entry> {
    let (time, rest) = line.split_once(' ')?;
    let (_stream, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Some(Entry {
        time: time.to_owned(),
        agent: agent.to_owned(),
        text: text.to_owned(),
    })
}

/// Prints the swarm's logs, each line prefixed by its agent, merged in time order.
pub fn logs(roots: &Roots, name: &str, o: &LogsOptions, out: &mut dyn Write) -> Result<()> {
    let name = resolve_name(name)?;
    let dir = roots.swarm_data(&name).join("logs");
    if !dir.is_dir() {
        return Err(Error::SwarmNotFound(name));
    }
    let mut files: BTreeMap<String, (PathBuf, u64)> = BTreeMap::new();
    let scan = |files: &mut BTreeMap<String, (PathBuf, u64)>| {
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for e in rd.filter_map(|e| e.ok()) {
                let p = e.path();
                let Some(stem) = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".log"))
                    .map(str::to_owned)
                else {
                    continue;
                };
                let agent = if stem == "swarm" {
                    "swarm".to_owned()
                } else {
                    stem
                };
                if !o.agents.is_empty() && !o.agents.contains(&agent) {
                    continue;
                }
                files.entry(agent).or_insert((p, 0));
            }
        }
    };
    scan(&mut files);
    let width = files.keys().map(|k| k.len()).max().unwrap_or(5);
    let mut entries = Vec::new();
    for (agent, (path, off)) in files.iter_mut() {
        let old = path.with_extension("log.1");
        for p in [&old, &*path] {
            if let Ok(t) = std::fs::read_to_string(p) {
                entries.extend(t.lines().filter_map(|l| parse_line(agent, l)));
                if p == path {
                    *off = t.len() as u64;
                }
            }
        }
    }
    entries.sort_by(|a, b| a.time.cmp(&b.time));
    let skip = o.tail.map_or(0, |n| entries.len().saturating_sub(n));
    let print = |e: &Entry, out: &mut dyn Write| -> std::io::Result<()> {
        if o.timestamps {
            writeln!(out, "{:<width$} | {} {}", e.agent, e.time, e.text)
        } else {
            writeln!(out, "{:<width$} | {}", e.agent, e.text)
        }
    };
    for e in entries.iter().skip(skip) {
        print(e, out).map_err(|e| Error::io("write", "stdout", e))?;
    }
    if !o.follow {
        return Ok(());
    }
    let run_dir = roots.swarm_dir(&name);
    loop {
        let alive = run_dir.exists();
        std::thread::sleep(Duration::from_millis(200));
        scan(&mut files);
        let mut new = Vec::new();
        for (agent, (path, off)) in files.iter_mut() {
            let Ok(mut f) = std::fs::File::open(&*path) else {
                continue;
            };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < *off {
                *off = 0; // rotated
            }
            if len == *off || f.seek(SeekFrom::Start(*off)).is_err() {
                continue;
            }
            let mut t = String::new();
            if f.read_to_string(&mut t).is_err() {
                continue;
            }
            // Only whole lines; the rest waits for the next round.
            let whole = t.rfind('\n').map_or(0, |i| i + 1);
            *off += whole as u64;
            new.extend(t[..whole].lines().filter_map(|l| parse_line(agent, l)));
        }
        new.sort_by(|a, b| a.time.cmp(&b.time));
        for e in &new {
            print(e, out).map_err(|e| Error::io("write", "stdout", e))?;
        }
        let _ = out.flush();
        if !alive && new.is_empty() {
            return Ok(());
        }
    }
}
