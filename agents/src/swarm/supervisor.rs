//! The swarm supervisor (`warren-swarmd`): makes the network, starts every agent (their
//! inits are its children), writes their output to per-agent logs, restarts them by
//! policy, answers `ps`, and on `down` (or SIGTERM) stops everything and removes every
//! trace: containers, cgroups, image mounts, namespaces, veths, bridge, nftables.
//!
//! One thread and one `poll` loop: the control socket, a pidfd and two pipes per agent.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::SigSet;
use serde::{Deserialize, Serialize};
use warren_runtime::verbs::create::CreateOpts;

use super::agent;
use super::config::Restart;
use super::state::{Phase, SwarmState};
use crate::cmd::Tools;
use crate::error::{Error, Result};
use crate::paths::Roots;
use crate::spec::{self, LoadedProfile};

/// A control request (one JSON line on `ctl.sock`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum CtlRequest {
    Ps,
    Down {
        /// How long agents get between SIGTERM and SIGKILL.
        #[serde(default)]
        timeout_ms: Option<u64>,
    },
}

/// One agent as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: String,
    pub role: String,
    pub ip: String,
    /// running, exited, restarting, failed, created.
    pub status: String,
    pub pid: Option<i32>,
    pub restarts: u32,
    pub exit_code: Option<i32>,
    /// Seconds since the epoch of the last start.
    pub started: Option<u64>,
    pub gpus: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The swarm as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmInfo {
    pub name: String,
    pub phase: Phase,
    pub supervisor_pid: Option<u32>,
    pub created: u64,
    pub agents: Vec<AgentInfo>,
}

/// The answer to a control request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtlResponse {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SwarmInfo>,
    /// After `down`: anything that could not be removed.
    #[serde(default)]
    pub leftovers: Vec<String>,
}

/// Log files: `TIME STREAM TEXT` lines, rotated to `.1` past the cap.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max: u64,
}

/// Log cap per agent (twice this is kept: the file and its `.1`).
pub const LOG_MAX: u64 = 10 << 20;

impl LogFile {
    pub fn open(path: PathBuf, max: u64) -> Self {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .ok();
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Self {
            path,
            file,
            size,
            max,
        }
    }

    pub fn line(&mut self, stream: &str, text: &[u8]) {
        let mut l = format!("{} {stream} ", crate::proc::rfc3339_now()).into_bytes();
        l.extend_from_slice(text);
        l.push(b'\n');
        if self.size + l.len() as u64 > self.max {
            let _ = std::fs::rename(&self.path, self.path.with_extension("log.1"));
            *self = Self::open(self.path.clone(), self.max);
        }
        if let Some(f) = &mut self.file
            && f.write_all(&l).is_ok()
        {
            self.size += l.len() as u64;
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Status {
    Created,
    Running,
    Exited,
    Restarting(Instant),
    Failed(String),
}

#[derive(Debug)]
struct Pipe {
    fd: OwnedFd,
    partial: Vec<u8>,
    stream: &'static str,
}

#[derive(Debug)]
struct Agent {
    idx: usize,
    id: String,
    profile: LoadedProfile,
    bundle: PathBuf,
    prepared: bool,
    pid: Option<i32>,
    pidfd: Option<OwnedFd>,
    pipes: Vec<Pipe>,
    restarts: u32,
    exit_code: Option<i32>,
    started: Option<u64>,
    status: Status,
    log: LogFile,
}

/// The supervisor of one swarm.
#[derive(Debug)]
pub struct Supervisor {
    dir: PathBuf,
    roots: Roots,
    tools: Tools,
    rt: warren_runtime::Runtime,
    st: SwarmState,
    agents: Vec<Agent>,
    null: File,
    events: LogFile,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Namespace {
            what: "pipe".into(),
            source: e,
        })?;
    Ok((r, w))
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

/// An agent's cgroup (absolute, directly below each hierarchy's root, so that nothing
/// shared between swarms is left to remove).
pub fn agent_cgroup(swarm: &str, agent: &str) -> String {
    format!("/warren-swarm.{swarm}.{agent}")
}

impl Supervisor {
    /// Loads the swarm in `dir` (written by `swarm up`).
    pub fn new(dir: &Path, roots: &Roots, tools: Tools) -> Result<Self> {
        let st = SwarmState::load_dir(dir)?;
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| Error::io("open", "/dev/null", e))?;
        let logs = roots.swarm_data(&st.config.name).join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| Error::io("create", &logs, e))?;
        let events = LogFile::open(logs.join("swarm.log"), LOG_MAX);
        Ok(Self {
            dir: dir.to_owned(),
            roots: roots.clone(),
            rt: roots.runtime(),
            tools,
            st,
            agents: Vec::new(),
            null,
            events,
        })
    }

    fn name(&self) -> &str {
        &self.st.config.name
    }

    fn event(&mut self, msg: &str) {
        tracing::info!(swarm = %self.st.config.name, "{msg}");
        self.events.line("event", msg.as_bytes());
    }

    fn save(&self) {
        if let Err(e) = self.st.save_dir(&self.dir) {
            tracing::warn!(error = %e, "save swarm state");
        }
    }

    /// Brings the swarm up and supervises it until `down`; exits the process then.
    pub fn run(mut self) -> Result<()> {
        // Signals arrive through a signalfd in the loop; the agents get an empty mask from
        // the runtime.
        let mut sigs = SigSet::empty();
        sigs.add(nix::sys::signal::SIGTERM);
        sigs.add(nix::sys::signal::SIGINT);
        sigs.add(nix::sys::signal::SIGHUP);
        sigs.thread_block().map_err(|e| Error::Namespace {
            what: "block signals".into(),
            source: e,
        })?;
        self.st.supervisor_pid = Some(std::process::id());
        self.st.phase = Phase::Starting;
        self.save();
        let socket = self.dir.join("ctl.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).map_err(|e| Error::io("bind", &socket, e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("configure", &socket, e))?;
        let t = Instant::now();
        if let Err(e) = self.bring_up() {
            self.event(&format!("up failed: {e}"));
            let left = self.tear_down(Duration::from_secs(2));
            self.st.phase = Phase::Failed;
            self.st.error = Some(if left.is_empty() {
                e.to_string()
            } else {
                format!("{e} (and cleanup left: {})", left.join(", "))
            });
            // The cleanup removed the run directory; `swarm up` reads the reason here and
            // removes it again.
            let _ = std::fs::create_dir_all(&self.dir);
            self.save();
            let _ = std::fs::remove_file(&socket);
            return Err(e);
        }
        self.st.phase = Phase::Running;
        self.save();
        let msg = format!(
            "up: {} agents in {:.0} ms",
            self.agents.len(),
            t.elapsed().as_secs_f64() * 1000.0
        );
        self.event(&msg);
        self.supervise(&listener)
    }

    fn bring_up(&mut self) -> Result<()> {
        // Stale containers of a supervisor that died.
        for a in &self.st.agents {
            let _ = warren_runtime::verbs::delete::delete(&self.rt, &a.id, true);
        }
        self.st.net.setup(&self.tools)?;
        let hosts = self.dir.join("hosts");
        std::fs::write(&hosts, self.st.net.hosts_file())
            .map_err(|e| Error::io("write", &hosts, e))?;
        let profiles = self.dir.join("profiles");
        let mut by_role = std::collections::BTreeMap::new();
        for r in &self.st.config.roles {
            by_role.insert(
                r.name.clone(),
                agent::role_profile(&profiles, &self.st.config, r)?,
            );
        }
        let logs = self.roots.swarm_data(self.name()).join("logs");
        for (i, a) in self.st.agents.iter().enumerate() {
            let profile = by_role
                .get(&a.role)
                .cloned()
                .ok_or_else(|| Error::Invalid(format!("agent {}: no role {}", a.name, a.role)))?;
            self.agents.push(Agent {
                idx: i,
                id: a.id.clone(),
                profile,
                bundle: self.dir.join("agents").join(&a.name).join("bundle"),
                prepared: false,
                pid: None,
                pidfd: None,
                pipes: Vec::new(),
                restarts: 0,
                exit_code: None,
                started: None,
                status: Status::Created,
                log: LogFile::open(logs.join(format!("{}.log", a.name)), LOG_MAX),
            });
        }
        for i in 0..self.agents.len() {
            self.start(i)?;
        }
        Ok(())
    }

    fn prepare(&mut self, i: usize) -> Result<()> {
        let plan = self.st.agents[self.agents[i].idx].clone();
        let role = self
            .st
            .config
            .role(&plan.role)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("no role {}", plan.role)))?;
        std::fs::create_dir_all(&plan.workspace)
            .map_err(|e| Error::io("create", &plan.workspace, e))?;
        let adir = self.dir.join("agents").join(&plan.name);
        let (rootfs, settings) = match &role.image {
            Some(img) => {
                let (r, s) = spec::image_rootfs(&self.roots.data, img, &plan.id, false, false)?;
                (r, Some(s))
            }
            None => {
                let r = adir.join("rootfs");
                std::fs::create_dir_all(&r).map_err(|e| Error::io("create", &r, e))?;
                (r, None)
            }
        };
        let mut s = agent::agent_spec(
            &self.st.config,
            &self.st.net,
            &plan,
            self.agents[i].idx,
            &self.agents[i].profile,
            &rootfs,
            settings.as_ref(),
            &self.dir.join("hosts"),
        )?;
        s.cgroups_path = Some(agent_cgroup(self.name(), &plan.name));
        let oci = spec::build(&s, &self.agents[i].profile)?;
        spec::write_bundle(&self.agents[i].bundle, &oci)?;
        self.agents[i].prepared = true;
        Ok(())
    }

    /// Creates and starts agent `i`, its stdout and stderr on fresh pipes.
    fn start(&mut self, i: usize) -> Result<()> {
        if !self.agents[i].prepared {
            self.prepare(i)?;
        }
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let id = self.agents[i].id.clone();
        // The runtime's init inherits our fds 1 and 2: point them at the agent's pipes for
        // the create, then back at /dev/null (our own log goes to a file, not fd 2).
        // SAFETY: dup2 onto our standard descriptors; this thread is the only one.
        unsafe {
            libc::dup2(out_w.as_raw_fd(), 1);
            libc::dup2(err_w.as_raw_fd(), 2);
        }
        let created = warren_runtime::verbs::create::create(
            &self.rt,
            &CreateOpts {
                id: id.clone(),
                bundle: self.agents[i].bundle.clone(),
                sigmask: Some(SigSet::empty()),
                ..Default::default()
            },
        );
        // SAFETY: as above.
        unsafe {
            libc::dup2(self.null.as_raw_fd(), 1);
            libc::dup2(self.null.as_raw_fd(), 2);
        }
        drop((out_w, err_w));
        let created = created?;
        if let Err(e) = warren_runtime::verbs::start::start(&self.rt, &id) {
            let _ = warren_runtime::verbs::delete::delete(&self.rt, &id, true);
            crate::proc::reap(created.pid);
            return Err(e.into());
        }
        set_nonblocking(out_r.as_raw_fd());
        set_nonblocking(err_r.as_raw_fd());
        let a = &mut self.agents[i];
        a.pid = Some(created.pid);
        a.pidfd = crate::proc::pidfd(created.pid);
        a.pipes = vec![
            Pipe {
                fd: out_r,
                partial: Vec::new(),
                stream: "stdout",
            },
            Pipe {
                fd: err_r,
                partial: Vec::new(),
                stream: "stderr",
            },
        ];
        a.started = Some(crate::proc::now_secs());
        a.status = Status::Running;
        Ok(())
    }

    /// Reads what an agent's pipes hold; whole lines go to its log. Returns false once
    /// every pipe is closed.
    fn pump(a: &mut Agent, flush: bool) {
        let mut buf = [0u8; 16384];
        for p in &mut a.pipes {
            loop {
                // SAFETY: read into our buffer from an fd we own.
                let n = unsafe { libc::read(p.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 {
                    break;
                }
                p.partial.extend_from_slice(&buf[..n as usize]);
                while let Some(pos) = p.partial.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = p.partial.drain(..=pos).collect();
                    a.log.line(p.stream, &line[..line.len() - 1]);
                }
                if p.partial.len() > 16384 {
                    let line = std::mem::take(&mut p.partial);
                    a.log.line(p.stream, &line);
                }
            }
            if flush && !p.partial.is_empty() {
                let line = std::mem::take(&mut p.partial);
                a.log.line(p.stream, &line);
            }
        }
    }

    /// Agent `i` exited: reap it, delete its container, apply the restart policy.
    fn on_exit(&mut self, i: usize) {
        let a = &mut self.agents[i];
        Self::pump(a, true);
        a.pipes.clear();
        a.pidfd = None;
        let code = a
            .pid
            .take()
            .and_then(crate::proc::reap)
            .map(crate::proc::exit_code);
        a.exit_code = code;
        if let Err(e) = warren_runtime::verbs::delete::delete(&self.rt, &a.id, true) {
            tracing::warn!(id = %a.id, error = %e, "delete exited agent");
        }
        let plan = &self.st.agents[a.idx];
        let role = self.st.config.role(&plan.role);
        let policy = role.map_or(Restart::Never, |r| r.restart);
        let max = role.and_then(|r| r.max_restarts);
        let failed = code != Some(0);
        let restart = match policy {
            Restart::Never => false,
            Restart::OnFailure => failed,
            Restart::Always => true,
        } && max.is_none_or(|m| a.restarts < m);
        let name = plan.name.clone();
        let msg = if restart {
            let delay = Duration::from_millis(100 * (1u64 << a.restarts.min(8)))
                .min(Duration::from_secs(30));
            a.restarts += 1;
            a.status = Status::Restarting(Instant::now() + delay);
            format!(
                "{name} exited with {}; restarting in {:.1} s (restart {})",
                code.map_or("unknown status".into(), |c| c.to_string()),
                delay.as_secs_f64(),
                a.restarts
            )
        } else {
            a.status = Status::Exited;
            format!(
                "{name} exited with {}",
                code.map_or("unknown status".into(), |c| c.to_string())
            )
        };
        self.event(&msg);
    }

    fn info(&self) -> SwarmInfo {
        SwarmInfo {
            name: self.name().to_owned(),
            phase: self.st.phase,
            supervisor_pid: self.st.supervisor_pid,
            created: self.st.created,
            agents: self
                .agents
                .iter()
                .map(|a| {
                    let p = &self.st.agents[a.idx];
                    let (status, error) = match &a.status {
                        Status::Created => ("created", None),
                        Status::Running => ("running", None),
                        Status::Exited => ("exited", None),
                        Status::Restarting(_) => ("restarting", None),
                        Status::Failed(e) => ("failed", Some(e.clone())),
                    };
                    AgentInfo {
                        name: p.name.clone(),
                        role: p.role.clone(),
                        ip: p.ip.to_string(),
                        status: status.to_owned(),
                        pid: a.pid,
                        restarts: a.restarts,
                        exit_code: a.exit_code,
                        started: a.started,
                        gpus: p.gpus.clone(),
                        error,
                    }
                })
                .collect(),
        }
    }

    fn supervise(&mut self, listener: &UnixListener) -> Result<()> {
        let mut sigs = SigSet::empty();
        sigs.add(nix::sys::signal::SIGTERM);
        sigs.add(nix::sys::signal::SIGINT);
        sigs.add(nix::sys::signal::SIGHUP);
        let sfd = nix::sys::signalfd::SignalFd::with_flags(
            &sigs,
            nix::sys::signalfd::SfdFlags::SFD_NONBLOCK | nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
        )
        .map_err(|e| Error::Namespace {
            what: "signalfd".into(),
            source: e,
        })?;
        loop {
            let mut fds = vec![
                libc::pollfd {
                    fd: listener.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: sfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            let mut owners = Vec::new();
            for (i, a) in self.agents.iter().enumerate() {
                if let Some(p) = &a.pidfd {
                    fds.push(libc::pollfd {
                        fd: p.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    owners.push((i, true));
                }
                for p in &a.pipes {
                    fds.push(libc::pollfd {
                        fd: p.fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    });
                    owners.push((i, false));
                }
            }
            let now = Instant::now();
            let next = self
                .agents
                .iter()
                .filter_map(|a| match a.status {
                    Status::Restarting(at) => Some(at.saturating_duration_since(now)),
                    _ => None,
                })
                .min()
                .unwrap_or(Duration::from_secs(1));
            // SAFETY: a valid array of pollfds of the given length.
            let r = unsafe {
                libc::poll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    next.as_millis().min(1000) as i32 + 1,
                )
            };
            if r < 0 && nix::Error::last() != nix::Error::EINTR {
                return Err(Error::Namespace {
                    what: "poll".into(),
                    source: nix::Error::last(),
                });
            }
            if fds[1].revents != 0 {
                while let Ok(Some(_)) = sfd.read_signal() {}
                self.event("stopping on a signal");
                let left = self.tear_down(Duration::from_secs(10));
                if !left.is_empty() {
                    tracing::warn!(?left, "left behind");
                }
                std::process::exit(0);
            }
            if fds[0].revents != 0
                && let Ok((conn, _)) = listener.accept()
            {
                self.control(conn);
            }
            let mut exited = Vec::new();
            for (k, &(i, is_pidfd)) in owners.iter().enumerate() {
                if fds[2 + k].revents == 0 {
                    continue;
                }
                if is_pidfd {
                    exited.push(i);
                } else {
                    Self::pump(&mut self.agents[i], false);
                }
            }
            for i in exited {
                self.on_exit(i);
            }
            let now = Instant::now();
            for i in 0..self.agents.len() {
                if let Status::Restarting(at) = self.agents[i].status
                    && at <= now
                {
                    if let Err(e) = self.start(i) {
                        let name = self.st.agents[self.agents[i].idx].name.clone();
                        self.event(&format!("{name}: restart failed: {e}"));
                        self.agents[i].status = Status::Failed(e.to_string());
                    }
                }
            }
        }
    }

    fn control(&mut self, conn: UnixStream) {
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        let mut w = match conn.try_clone() {
            Ok(w) => w,
            Err(_) => return,
        };
        if BufReader::new(conn).read_line(&mut line).is_err() {
            return;
        }
        let resp = match serde_json::from_str::<CtlRequest>(&line) {
            Ok(CtlRequest::Ps) => CtlResponse {
                ok: true,
                swarm: Some(self.info()),
                ..Default::default()
            },
            Ok(CtlRequest::Down { timeout_ms }) => {
                let t = Duration::from_millis(timeout_ms.unwrap_or(10_000));
                let left = self.tear_down(t);
                let resp = CtlResponse {
                    ok: left.is_empty(),
                    error: (!left.is_empty()).then(|| format!("left behind: {}", left.join(", "))),
                    leftovers: left,
                    ..Default::default()
                };
                let _ = reply(&mut w, &resp);
                std::process::exit(0);
            }
            Err(e) => CtlResponse {
                ok: false,
                error: Some(format!("invalid request: {e}")),
                ..Default::default()
            },
        };
        let _ = reply(&mut w, &resp);
    }

    /// Stops every agent (SIGTERM, SIGKILL after `grace`), deletes the containers, their
    /// image mounts and cgroups, the network and the run directory. Returns what is left.
    pub fn tear_down(&mut self, grace: Duration) -> Vec<String> {
        self.st.phase = Phase::Stopping;
        self.save();
        for a in &self.agents {
            if let Some(pid) = a.pid {
                // An agent's command is PID 1 of its namespace: without a SIGTERM handler
                // the signal is ignored, so waiting would only cost the whole grace.
                let sig = if catches(pid, libc::SIGTERM) {
                    "TERM"
                } else {
                    "KILL"
                };
                let _ = warren_runtime::verbs::kill::kill(&self.rt, &a.id, sig, false);
            }
        }
        let end = Instant::now() + grace;
        let mut killed = false;
        loop {
            for a in &mut self.agents {
                Self::pump(a, false);
            }
            let running: Vec<usize> = self
                .agents
                .iter()
                .enumerate()
                .filter(|(_, a)| {
                    a.pidfd
                        .as_ref()
                        .is_some_and(|p| !crate::proc::pidfd_exited(p))
                })
                .map(|(i, _)| i)
                .collect();
            if running.is_empty() {
                break;
            }
            if Instant::now() > end {
                if killed {
                    break;
                }
                for &i in &running {
                    let _ = warren_runtime::verbs::kill::kill(
                        &self.rt,
                        &self.agents[i].id,
                        "KILL",
                        true,
                    );
                }
                killed = true;
                continue;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for a in &mut self.agents {
            Self::pump(a, true);
            a.pipes.clear();
            a.pidfd = None;
            if let Some(pid) = a.pid.take() {
                let _ = warren_runtime::verbs::delete::delete(&self.rt, &a.id, true);
                if let Some(st) = crate::proc::reap(pid) {
                    a.exit_code = Some(crate::proc::exit_code(st));
                }
            }
            a.status = Status::Exited;
        }
        let left = cleanup(&self.roots, &self.tools, &self.st);
        let msg = if left.is_empty() {
            "down: every agent, mount, cgroup, namespace, veth and rule removed".to_owned()
        } else {
            format!("down: left behind: {}", left.join(", "))
        };
        self.event(&msg);
        left
    }
}

/// Whether process `pid` has a handler for signal `sig` (`SigCgt` in its status).
pub fn catches(pid: i32, sig: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & (1u64 << (sig - 1)) != 0)
}

/// Removes what a swarm made, whether or not its supervisor is alive (the containers must
/// be stopped or their supervisor gone): containers, image mounts, cgroups, the network,
/// the run directory. Returns what is still there afterwards.
pub fn cleanup(roots: &Roots, tools: &Tools, st: &SwarmState) -> Vec<String> {
    let rt = roots.runtime();
    for a in &st.agents {
        if let Err(e) = warren_runtime::verbs::delete::delete(&rt, &a.id, true)
            && !matches!(e, warren_runtime::RuntimeError::NotFound(_))
        {
            tracing::warn!(id = %a.id, error = %e, "delete agent");
        }
        let role = st.config.role(&a.role);
        if role.is_some_and(|r| r.image.is_some())
            && let Err(e) = spec::remove_image_rootfs(&roots.data, &a.id)
        {
            tracing::warn!(id = %a.id, error = %e, "remove agent rootfs");
        }
    }
    for a in &st.agents {
        spec::remove_cgroup(&agent_cgroup(&st.config.name, &a.name));
    }
    for e in st.net.teardown(tools) {
        tracing::warn!(error = %e, "network teardown");
    }
    let dir = roots.swarm_dir(&st.config.name);
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(?dir, error = %e, "remove swarm directory");
    }
    leftovers(roots, tools, st)
}

/// What of a swarm still exists: runtime containers, cgroups, namespaces, host link and
/// table, the run directory, agent processes.
pub fn leftovers(roots: &Roots, tools: &Tools, st: &SwarmState) -> Vec<String> {
    let mut v = st.net.leftovers(tools);
    for a in &st.agents {
        if roots.runtime_root().join(&a.id).exists() {
            v.push(format!("container {}", a.id));
        }
    }
    for a in &st.agents {
        for d in spec::cgroup_dirs(&agent_cgroup(&st.config.name, &a.name)) {
            if d.exists() {
                v.push(format!("cgroup {}", d.display()));
            }
        }
    }
    if roots.swarm_dir(&st.config.name).exists() {
        v.push(format!(
            "directory {}",
            roots.swarm_dir(&st.config.name).display()
        ));
    }
    v
}

fn reply(w: &mut UnixStream, r: &CtlResponse) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)
}
