//! `swarm.toml`: parsed strictly (`deny_unknown_fields` everywhere) and validated into a
//! [`SwarmConfig`]; every error names the file, line and column.
//!
//! ```toml
//! name = "review"                  # default: the file's stem
//! [network]
//! subnet = "10.77.0.0/24"          # private range, inside the swarm's namespace only
//!
//! [roles.coordinator]
//! command = ["python3", "/data/coordinator.py"]
//! ports = [8000]                   # TCP ports it listens on
//!
//! [roles.worker]
//! replicas = 2
//! image = "python"                 # default: the host view
//! profile = "agent"                # agent | experiment | trusted | path.toml
//! command = ["python3", "/data/worker.py"]
//! talk_to = ["coordinator"]        # roles it may open connections to
//! egress = false                   # a route out through the host (NAT)
//! restart = "on-failure"           # never | on-failure | always
//! resources = { memory = "2g", cpus = 1.0, pids = 256 }
//! gpus = 1                         # whole GPUs per replica, or a list of CDI names
//! mounts = [{ host = "/srv/data", path = "/data" }]   # read-only unless read_only = false
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::spec::{LoadedProfile, Resources};

/// An error in swarm.toml, at a line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{col}: {msg}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

/// Restart policy of a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    Never,
    OnFailure,
    Always,
}

/// GPUs of each replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GpuRequest {
    None,
    /// This many whole GPUs per replica, picked from the host's `nvidia.com/gpu=N` CDI
    /// devices, no GPU shared between agents.
    Count(u32),
    /// CDI device names (whole GPUs or MIG devices), split evenly between the replicas.
    Devices(Vec<String>),
}

/// A bind mount of a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub host: PathBuf,
    pub path: PathBuf,
    pub read_only: bool,
}

/// A validated role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub image: Option<String>,
    /// The profile as given (a built-in name, or a path resolved against the file's
    /// directory).
    pub profile: String,
    /// Empty: the image's entrypoint and command.
    pub command: Vec<String>,
    pub replicas: u32,
    pub env: Vec<String>,
    pub ports: Vec<u16>,
    pub talk_to: Vec<String>,
    pub egress: bool,
    pub egress_ports: Vec<u16>,
    pub restart: Restart,
    pub max_restarts: Option<u32>,
    pub workdir: Option<PathBuf>,
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    pub pids: Option<i64>,
    pub gpus: GpuRequest,
    pub mounts: Vec<MountSpec>,
}

impl Role {
    pub fn resources(&self) -> Resources {
        Resources {
            memory: self.memory,
            pids: self.pids,
            cpus: self.cpus,
        }
    }

    /// Agent names of this role: `ROLE-0`, `ROLE-1`, ...
    pub fn agents(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.replicas).map(move |i| format!("{}-{i}", self.name))
    }
}

/// A validated swarm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwarmConfig {
    pub name: String,
    pub file: PathBuf,
    /// Network address and prefix length of the agents' subnet.
    pub subnet: (Ipv4Addr, u8),
    /// Sorted by name.
    pub roles: Vec<Role>,
}

impl SwarmConfig {
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    pub fn agent_count(&self) -> usize {
        self.roles.iter().map(|r| r.replicas as usize).sum()
    }
}

/// Default subnet of the agents.
pub const DEFAULT_SUBNET: &str = "10.77.0.0/24";
/// Most agents in one swarm.
pub const MAX_AGENTS: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSwarm {
    name: Option<Spanned<String>>,
    #[serde(default)]
    network: RawNetwork,
    roles: Option<BTreeMap<String, Spanned<RawRole>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    subnet: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    image: Option<Spanned<String>>,
    profile: Option<Spanned<String>>,
    command: Option<Spanned<Vec<String>>>,
    replicas: Option<Spanned<i64>>,
    #[serde(default)]
    env: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    ports: Vec<Spanned<i64>>,
    #[serde(default)]
    talk_to: Vec<Spanned<String>>,
    #[serde(default)]
    egress: bool,
    egress_ports: Option<Vec<Spanned<i64>>>,
    restart: Option<Spanned<String>>,
    max_restarts: Option<Spanned<i64>>,
    workdir: Option<Spanned<String>>,
    resources: Option<Spanned<RawResources>>,
    gpus: Option<Spanned<toml::Value>>,
    #[serde(default)]
    mounts: Vec<Spanned<RawMount>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResources {
    memory: Option<Spanned<String>>,
    cpus: Option<Spanned<f64>>,
    pids: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMount {
    host: Spanned<String>,
    path: Spanned<String>,
    read_only: Option<bool>,
}

/// Turns byte offsets into `file:line:col` errors.
struct Src<'a> {
    file: String,
    text: &'a str,
}

impl Src<'_> {
    fn err(&self, span: Range<usize>, msg: impl Into<String>) -> ConfigError {
        let mut at = span.start.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        let before = &self.text[..at];
        let line = before.matches('\n').count() + 1;
        let col = at - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ConfigError {
            file: self.file.clone(),
            line,
            col,
            msg: msg.into(),
        }
    }
}

/// Checks an absolute path inside a sandbox.
fn sandbox_path(p: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(p);
    if !path.is_absolute() {
        return Err(format!("{p:?} must be an absolute path"));
    }
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!("{p:?} must not contain .."));
    }
    for reserved in ["/proc", "/sys", "/dev", "/etc"] {
        if path.starts_with(reserved) {
            return Err(format!("{p:?} is under {reserved}, which warren manages"));
        }
    }
    if path == Path::new("/") {
        return Err("cannot mount over /".into());
    }
    Ok(path)
}

fn parse_subnet(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (a, p) = s
        .split_once('/')
        .ok_or_else(|| format!("subnet {s:?}: expected ADDRESS/PREFIX such as 10.77.0.0/24"))?;
    let addr: Ipv4Addr = a
        .parse()
        .map_err(|_| format!("subnet {s:?}: {a:?} is not an IPv4 address"))?;
    let prefix: u8 = p
        .parse()
        .map_err(|_| format!("subnet {s:?}: {p:?} is not a prefix length"))?;
    if !(16..=28).contains(&prefix) {
        return Err(format!(
            "subnet {s:?}: the prefix length must be between 16 and 28"
        ));
    }
    if !addr.is_private() {
        return Err(format!(
            "subnet {s:?}: use a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)"
        ));
    }
    let mask = u32::MAX << (32 - prefix);
    let net = u32::from(addr) & mask;
    if net != u32::from(addr) {
        return Err(format!(
            "subnet {s:?}: host bits are set (did you mean {}/{prefix}?)",
            Ipv4Addr::from(net)
        ));
    }
    Ok((addr, prefix))
}

fn port(src: &Src, p: &Spanned<i64>, what: &str) -> Result<u16, ConfigError> {
    u16::try_from(*p.get_ref())
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| {
            src.err(
                p.span(),
                format!("{what}: {} is not a TCP port", p.get_ref()),
            )
        })
}

/// Parses and validates `text` (the contents of `file`). `images` checks that an image
/// exists (the CLI passes the image store; `None` skips the check).
pub fn parse(
    file: &Path,
    text: &str,
    images: Option<&dyn Fn(&str) -> bool>,
) -> Result<SwarmConfig, ConfigError> {
    let src = Src {
        file: file.display().to_string(),
        text,
    };
    let raw: RawSwarm = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        src.err(span, e.message().trim().to_owned())
    })?;
    let name = match &raw.name {
        Some(n) => {
            crate::paths::validate_name("swarm", n.get_ref()).map_err(|m| src.err(n.span(), m))?;
            n.get_ref().clone()
        }
        None => {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            crate::paths::validate_name("swarm", &stem).map_err(|m| {
                src.err(
                    0..0,
                    format!("{m} (the swarm is named after the file; set name = \"...\")"),
                )
            })?;
            stem
        }
    };
    let subnet = match &raw.network.subnet {
        Some(s) => parse_subnet(s.get_ref()).map_err(|m| src.err(s.span(), m))?,
        None => parse_subnet(DEFAULT_SUBNET).map_err(|m| src.err(0..0, m))?,
    };
    let Some(raw_roles) = &raw.roles else {
        return Err(src.err(0..0, "no roles: add at least one [roles.NAME] table"));
    };
    if raw_roles.is_empty() {
        return Err(src.err(
            text.find("roles").map_or(0..0, |i| i..i),
            "no roles: add at least one [roles.NAME] table",
        ));
    }
    let names: BTreeSet<&str> = raw_roles.keys().map(String::as_str).collect();
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut roles = Vec::new();
    for (rname, rr) in raw_roles {
        roles.push(role(&src, dir, rname, rr, &names, images)?);
    }
    let total: usize = roles.iter().map(|r| r.replicas as usize).sum();
    let capacity = (1usize << (32 - subnet.1)) - 3;
    if total > capacity.min(MAX_AGENTS) {
        return Err(src.err(
            raw.network.subnet.as_ref().map_or(0..0, |s| s.span()),
            format!(
                "{total} agents do not fit: subnet {}/{} holds {} (at most {MAX_AGENTS} per swarm)",
                subnet.0,
                subnet.1,
                capacity.min(MAX_AGENTS)
            ),
        ));
    }
    // A writable mount seen by two agents would let them share files.
    let mut rw: BTreeMap<&Path, (&str, u32)> = BTreeMap::new();
    for (r, (_, rr)) in roles.iter().zip(raw_roles) {
        for (m, rm) in r.mounts.iter().zip(&rr.get_ref().mounts) {
            if m.read_only {
                continue;
            }
            let seen = rw.entry(m.host.as_path()).or_insert((&r.name, 0));
            seen.1 += r.replicas;
            if seen.1 > 1 {
                return Err(src.err(
                    rm.span(),
                    format!(
                        "writable mount {} would be shared by several agents (role {}{}); agents must not see each other's files: make it read_only or give each its own",
                        m.host.display(),
                        r.name,
                        if seen.0 != r.name { format!(" and role {}", seen.0) } else { format!(", {} replicas", r.replicas) }
                    ),
                ));
            }
        }
    }
    Ok(SwarmConfig {
        name,
        file: file.to_owned(),
        subnet,
        roles,
    })
}

fn role(
    src: &Src,
    dir: &Path,
    name: &str,
    rr: &Spanned<RawRole>,
    names: &BTreeSet<&str>,
    images: Option<&dyn Fn(&str) -> bool>,
) -> Result<Role, ConfigError> {
    let span = rr.span();
    let r = rr.get_ref();
    crate::paths::validate_name("role", name).map_err(|m| src.err(span.clone(), m))?;
    let at = |s: Range<usize>, m: String| src.err(s, format!("role {name}: {m}"));
    let image = match &r.image {
        Some(i) => {
            warren_images::normalize_name(i.get_ref())
                .map_err(|e| at(i.span(), format!("image {:?}: {e}", i.get_ref())))?;
            if let Some(exists) = images
                && !exists(i.get_ref())
            {
                return Err(at(
                    i.span(),
                    format!(
                        "image {:?} is not in the image store (build or import it, or remove `image` to use the host view)",
                        i.get_ref()
                    ),
                ));
            }
            Some(i.get_ref().clone())
        }
        None => None,
    };
    let profile = match &r.profile {
        Some(p) => {
            let v = p.get_ref();
            let resolved = if v.contains('/') || v.ends_with(".toml") {
                dir.join(v).display().to_string()
            } else {
                v.clone()
            };
            LoadedProfile::load(&resolved).map_err(|e| at(p.span(), e.to_string()))?;
            resolved
        }
        None => "agent".to_owned(),
    };
    let command = match &r.command {
        Some(c) if c.get_ref().is_empty() => {
            return Err(at(c.span(), "command is empty".into()));
        }
        Some(c) => c.get_ref().clone(),
        None if image.is_none() => {
            return Err(at(
                span,
                "no command (give `command = [...]`; only an image can supply its own)".into(),
            ));
        }
        None => Vec::new(),
    };
    let replicas = match &r.replicas {
        Some(n) => u32::try_from(*n.get_ref())
            .ok()
            .filter(|&v| (1..=MAX_AGENTS as u32).contains(&v))
            .ok_or_else(|| {
                at(
                    n.span(),
                    format!(
                        "replicas must be between 1 and {MAX_AGENTS}, not {}",
                        n.get_ref()
                    ),
                )
            })?,
        None => 1,
    };
    let mut env = Vec::new();
    for (k, v) in &r.env {
        if k.is_empty() || k.contains('=') {
            return Err(at(
                v.span(),
                format!("invalid environment variable name {k:?}"),
            ));
        }
        env.push(format!("{k}={}", v.get_ref()));
    }
    let ports = r
        .ports
        .iter()
        .map(|p| port(src, p, &format!("role {name}: ports")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut talk_to = Vec::new();
    for t in &r.talk_to {
        if !names.contains(t.get_ref().as_str()) {
            return Err(at(
                t.span(),
                format!(
                    "talk_to names unknown role {:?} (roles: {})",
                    t.get_ref(),
                    names.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        if !talk_to.contains(t.get_ref()) {
            talk_to.push(t.get_ref().clone());
        }
    }
    let egress_ports = match &r.egress_ports {
        Some(v) => {
            if !r.egress {
                return Err(at(
                    v.first().map_or(span.clone(), |p| p.span()),
                    "egress_ports without egress = true".into(),
                ));
            }
            v.iter()
                .map(|p| port(src, p, &format!("role {name}: egress_ports")))
                .collect::<Result<Vec<_>, _>>()?
        }
        None if r.egress => vec![53, 80, 443],
        None => Vec::new(),
    };
    let restart = match &r.restart {
        Some(s) => match s.get_ref().as_str() {
            "never" | "no" => Restart::Never,
            "on-failure" => Restart::OnFailure,
            "always" => Restart::Always,
            other => {
                return Err(at(
                    s.span(),
                    format!("restart {other:?}: expected never, on-failure or always"),
                ));
            }
        },
        None => Restart::Never,
    };
    let max_restarts = match &r.max_restarts {
        Some(n) => Some(u32::try_from(*n.get_ref()).map_err(|_| {
            at(
                n.span(),
                format!("max_restarts must be 0 or more, not {}", n.get_ref()),
            )
        })?),
        None => None,
    };
    let workdir = match &r.workdir {
        Some(w) => {
            Some(sandbox_path(w.get_ref()).map_err(|m| at(w.span(), format!("workdir {m}")))?)
        }
        None => None,
    };
    let (mut memory, mut cpus, mut pids) = (None, None, None);
    if let Some(res) = &r.resources {
        let res = res.get_ref();
        if let Some(m) = &res.memory {
            let v = crate::units::parse_size(m.get_ref())
                .map_err(|e| at(m.span(), format!("resources.memory: {e}")))?;
            if v < (16 << 20) {
                return Err(at(m.span(), "resources.memory is below 16 MiB".into()));
            }
            memory = Some(v);
        }
        if let Some(c) = &res.cpus {
            let v = *c.get_ref();
            if !v.is_finite() || v <= 0.0 {
                return Err(at(
                    c.span(),
                    "resources.cpus must be a positive number".into(),
                ));
            }
            cpus = Some(v);
        }
        if let Some(p) = &res.pids {
            if *p.get_ref() < 1 {
                return Err(at(p.span(), "resources.pids must be at least 1".into()));
            }
            pids = Some(*p.get_ref());
        }
    }
    let gpus = match &r.gpus {
        None => GpuRequest::None,
        Some(g) => match g.get_ref() {
            toml::Value::Integer(n) => {
                let n = u32::try_from(*n).ok().filter(|&v| v >= 1).ok_or_else(|| {
                    at(
                        g.span(),
                        format!("gpus = {n}: give 1 or more whole GPUs per replica"),
                    )
                })?;
                GpuRequest::Count(n)
            }
            toml::Value::Array(a) => {
                let mut names = Vec::new();
                for v in a {
                    let Some(s) = v.as_str() else {
                        return Err(at(g.span(), "gpus: every entry must be a CDI device name such as \"nvidia.com/gpu=0\"".into()));
                    };
                    s.parse::<warren_gpu::cdi::QualifiedName>().map_err(|e| {
                        at(
                            g.span(),
                            format!(
                                "gpus: {s:?} is not a CDI device name (vendor/class=name): {e}"
                            ),
                        )
                    })?;
                    names.push(s.to_owned());
                }
                if names.is_empty() {
                    return Err(at(g.span(), "gpus: the list is empty".into()));
                }
                if names.len() % replicas as usize != 0 {
                    return Err(at(
                        g.span(),
                        format!(
                            "gpus: {} devices cannot be split evenly between {replicas} replicas",
                            names.len()
                        ),
                    ));
                }
                GpuRequest::Devices(names)
            }
            _ => {
                return Err(at(
                    g.span(),
                    "gpus: expected a count of whole GPUs or a list of CDI device names".into(),
                ));
            }
        },
    };
    let mut mounts = Vec::new();
    for m in &r.mounts {
        let rm = m.get_ref();
        let host = PathBuf::from(rm.host.get_ref());
        let host = if host.is_absolute() {
            host
        } else {
            dir.join(host)
        };
        let host = std::fs::canonicalize(&host).map_err(|e| {
            at(
                rm.host.span(),
                format!("mount host path {}: {e}", host.display()),
            )
        })?;
        let path = sandbox_path(rm.path.get_ref())
            .map_err(|e| at(rm.path.span(), format!("mount path {e}")))?;
        mounts.push(MountSpec {
            host,
            path,
            read_only: rm.read_only.unwrap_or(true),
        });
    }
    Ok(Role {
        name: name.to_owned(),
        image,
        profile,
        command,
        replicas,
        env,
        ports,
        talk_to,
        egress: r.egress,
        egress_ports,
        restart,
        max_restarts,
        workdir,
        memory,
        cpus,
        pids,
        gpus,
        mounts,
    })
}

/// Reads and validates a swarm file.
pub fn load(
    file: &Path,
    images: Option<&dyn Fn(&str) -> bool>,
) -> Result<SwarmConfig, crate::Error> {
    let text = std::fs::read_to_string(file).map_err(|e| crate::Error::io("read", file, e))?;
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    Ok(parse(&abs, &text, images)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "team"
[network]
subnet = "10.88.0.0/24"

[roles.coordinator]
command = ["python3", "-m", "http.server", "8000"]
ports = [8000]

[roles.worker]
replicas = 2
command = ["sleep", "infinity"]
talk_to = ["coordinator"]
restart = "on-failure"
resources = { memory = "256m", cpus = 0.5, pids = 64 }
mounts = [{ host = "/tmp", path = "/data" }]
"#;

    fn p(text: &str) -> Result<SwarmConfig, ConfigError> {
        parse(Path::new("/x/swarm.toml"), text, None)
    }

    #[test]
    fn a_good_file() {
        let c = p(GOOD).expect("valid");
        assert_eq!(c.name, "team");
        assert_eq!(c.subnet, (Ipv4Addr::new(10, 88, 0, 0), 24));
        assert_eq!(c.agent_count(), 3);
        let w = c.role("worker").expect("worker");
        assert_eq!(w.talk_to, ["coordinator"]);
        assert_eq!(w.restart, Restart::OnFailure);
        assert_eq!(w.memory, Some(256 << 20));
        assert!(w.mounts[0].read_only);
        assert_eq!(w.agents().collect::<Vec<_>>(), ["worker-0", "worker-1"]);
        assert_eq!(
            c.role("coordinator").map(|r| r.profile.as_str()),
            Some("agent")
        );
    }

    fn err(text: &str) -> ConfigError {
        p(text).expect_err("invalid")
    }

    #[test]
    fn errors_name_the_line() {
        // Malformed TOML.
        let e = err("name = \"t\"\n[roles.a]\ncommand = [\"x\"\n");
        assert_eq!(e.file, "/x/swarm.toml");
        assert!(e.line >= 3, "{e}");
        // Unknown field.
        let e = err("[roles.a]\ncommand = [\"x\"]\nreplica = 2\n");
        assert_eq!(e.line, 3, "{e}");
        assert!(e.msg.contains("replica"), "{e}");
        // Unknown role in an edge.
        let e = err(
            "[roles.a]\ncommand = [\"x\"]\n\n[roles.b]\ncommand = [\"y\"]\ntalk_to = [\"a\", \"c\"]\n",
        );
        assert_eq!((e.line, e.col), (6, 17), "{e}");
        assert!(
            e.msg.contains("unknown role \"c\"") && e.msg.contains("roles: a, b"),
            "{e}"
        );
        // Bad values.
        let e = err("[roles.a]\ncommand = [\"x\"]\nreplicas = 0\n");
        assert_eq!(e.line, 3);
        assert!(e.msg.contains("replicas must be between 1"), "{e}");
        let e = err("[roles.a]\ncommand = [\"x\"]\nrestart = \"sometimes\"\n");
        assert!(e.msg.contains("never, on-failure or always"), "{e}");
        let e = err("[network]\nsubnet = \"8.8.8.0/24\"\n[roles.a]\ncommand = [\"x\"]\n");
        assert_eq!(e.line, 2);
        assert!(e.msg.contains("private range"), "{e}");
        let e = err("[roles.a]\ncommand = [\"x\"]\ngpus = [\"gpu0\"]\n");
        assert!(e.msg.contains("not a CDI device name"), "{e}");
        let e = err("[roles.a]\ncommand = [\"x\"]\nports = [70000]\n");
        assert!(e.msg.contains("not a TCP port"), "{e}");
        let e = err("[roles.A]\ncommand = [\"x\"]\n");
        assert!(e.msg.contains("invalid role name"), "{e}");
        let e = err("name = \"t\"\n");
        assert!(e.msg.contains("no roles"), "{e}");
        let e = err("[roles.a]\nimage = \"\"\n");
        assert_eq!(e.line, 2, "{e}");
        let e = err("[roles.a]\nprofile = \"agent\"\n");
        assert!(e.msg.contains("no command"), "{e}");
        let e = err("[roles.a]\ncommand = [\"x\"]\nprofile = \"nosuch\"\n");
        assert!(e.msg.contains("nosuch"), "{e}");
        let e = err(
            "[roles.a]\ncommand = [\"x\"]\nmounts = [{ host = \"/nonexistent-w\", path = \"/d\" }]\n",
        );
        assert!(e.msg.contains("/nonexistent-w"), "{e}");
        let e = err(
            "[roles.a]\ncommand = [\"x\"]\nreplicas = 2\nmounts = [{ host = \"/tmp\", path = \"/d\", read_only = false }]\n",
        );
        assert!(e.msg.contains("shared by several agents"), "{e}");
        let e = err(
            "[network]\nsubnet = \"10.1.0.0/28\"\n[roles.a]\ncommand = [\"x\"]\nreplicas = 20\n",
        );
        assert!(e.msg.contains("do not fit"), "{e}");
    }
}
