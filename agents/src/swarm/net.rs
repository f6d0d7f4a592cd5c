//! A swarm's private network.
//!
//! ```text
//!  host netns ──(only with egress: veth wswXXXXXXXX ↔ up0, NAT)──┐
//!                                                                │
//!  netns warren-SWARM:  br0 (gateway .1) ── a0 ── a1 ── a2 ... ── up0
//!                        │ nftables: bridge table (anti-spoofing, IPv4/ARP only)
//!                        │           inet table (role→role edges, conntrack, NAT)
//!  netns warren-SWARM.coordinator-0: eth0 10.77.0.2   (the agent's sandbox joins it)
//!  netns warren-SWARM.worker-0:      eth0 10.77.0.3
//! ```
//!
//! Bridged traffic reaches the `inet` hooks through br_netfilter
//! (`net.bridge.bridge-nf-call-iptables = 1` in the swarm's namespace: this kernel has no
//! conntrack in the `bridge` family), so the edges are stateful: an allowed role opens
//! connections, the replies come back, nothing else passes. Addresses live only inside
//! the swarm's namespaces; without egress there is no route out at all.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::SwarmConfig;
use crate::cmd::{self, Tools};
use crate::error::{Error, Result};

/// Where `ip netns` keeps named namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// One agent's end of the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentNet {
    pub name: String,
    /// Index into [`NetPlan::roles`].
    pub role: usize,
    /// Its network namespace (`warren-SWARM.AGENT`).
    pub netns: String,
    /// The veth end on the bridge, in the swarm's namespace.
    pub port: String,
    pub ip: Ipv4Addr,
}

impl AgentNet {
    pub fn netns_path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.netns)
    }
}

/// A role's place in the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleNet {
    pub name: String,
    pub egress: bool,
    /// Agent indexes.
    pub members: Vec<usize>,
    /// Role indexes it may open connections to.
    pub talk_to: Vec<usize>,
}

/// The link to the host for egress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uplink {
    /// The veth end in the host namespace.
    pub host_if: String,
    pub host_ip: Ipv4Addr,
    pub swarm_ip: Ipv4Addr,
    /// The host's nftables table (family inet).
    pub table: String,
}

/// Inside the swarm namespace.
pub const BRIDGE: &str = "br0";
pub const UPLINK_IF: &str = "up0";
/// nftables tables in the swarm namespace.
pub const TABLE: &str = "warren";

/// Everything about a swarm's network, computed before anything is made (and saved, so
/// that `down` can remove exactly this).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetPlan {
    pub swarm: String,
    pub netns: String,
    pub gateway: Ipv4Addr,
    pub prefix: u8,
    pub agents: Vec<AgentNet>,
    pub roles: Vec<RoleNet>,
    pub uplink: Option<Uplink>,
}

fn fnv(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The name of the swarm's namespace.
pub fn swarm_netns(swarm: &str) -> String {
    format!("warren-{swarm}")
}

/// The host-side veth of a swarm with egress.
pub fn uplink_if(swarm: &str) -> String {
    format!("wsw{:08x}", fnv(swarm))
}

/// The host table of a swarm with egress.
pub fn host_table(swarm: &str) -> String {
    format!("warren_swarm_{}", swarm.replace('-', "_"))
}

impl NetPlan {
    /// Plans the network of `cfg`. `host_addrs` are the IPv4 addresses in use on the
    /// host, which the egress link must avoid.
    pub fn new(cfg: &SwarmConfig, host_addrs: &[Ipv4Addr]) -> Self {
        let base = u32::from(cfg.subnet.0);
        let mut agents = Vec::new();
        let mut roles = Vec::new();
        for (ri, r) in cfg.roles.iter().enumerate() {
            let mut members = Vec::new();
            for a in r.agents() {
                let i = agents.len();
                members.push(i);
                agents.push(AgentNet {
                    netns: format!("warren-{}.{a}", cfg.name),
                    name: a,
                    role: ri,
                    port: format!("a{i}"),
                    ip: Ipv4Addr::from(base + 2 + i as u32),
                });
            }
            roles.push(RoleNet {
                name: r.name.clone(),
                egress: r.egress,
                members,
                talk_to: r
                    .talk_to
                    .iter()
                    .filter_map(|t| cfg.roles.iter().position(|x| &x.name == t))
                    .collect(),
            });
        }
        let uplink = roles.iter().any(|r| r.egress).then(|| {
            // A /30 in 100.64.0.0/10 (shared address space), derived from the name and
            // moved on while it collides with an address of the host.
            let mut k = fnv(&cfg.name) % (1 << 20);
            loop {
                let net = u32::from(Ipv4Addr::new(100, 64, 0, 0)) + k * 4;
                let host_ip = Ipv4Addr::from(net + 1);
                let swarm_ip = Ipv4Addr::from(net + 2);
                if !host_addrs.iter().any(|a| {
                    let v = u32::from(*a);
                    v >= net && v < net + 4
                }) {
                    break Uplink {
                        host_if: uplink_if(&cfg.name),
                        host_ip,
                        swarm_ip,
                        table: host_table(&cfg.name),
                    };
                }
                k = (k + 1) % (1 << 20);
            }
        });
        Self {
            swarm: cfg.name.clone(),
            netns: swarm_netns(&cfg.name),
            gateway: Ipv4Addr::from(base + 1),
            prefix: cfg.subnet.1,
            agents,
            roles,
            uplink,
        }
    }

    /// Every namespace of the swarm, the swarm's own first.
    pub fn all_netns(&self) -> Vec<String> {
        let mut v = vec![self.netns.clone()];
        v.extend(self.agents.iter().map(|a| a.netns.clone()));
        v
    }

    /// `/etc/hosts` of every agent.
    pub fn hosts_file(&self) -> String {
        let mut s = String::from(
            "# generated by warren swarm: the agents of this swarm\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        );
        for a in &self.agents {
            let role = &self.roles[a.role];
            if role.members.len() == 1 {
                s.push_str(&format!("{}\t{} {}\n", a.ip, a.name, role.name));
            } else {
                s.push_str(&format!("{}\t{}\n", a.ip, a.name));
            }
        }
        s
    }

    /// `ip -n SWARM -batch -`: loopback, the bridge, one veth per agent (its other end
    /// created directly in the agent's namespace as `eth0`), the uplink address.
    pub fn swarm_batch(&self) -> String {
        let mut s = format!(
            "link set lo up\nlink add {BRIDGE} type bridge\naddr add {}/{} dev {BRIDGE}\nlink set {BRIDGE} up\n",
            self.gateway, self.prefix
        );
        for a in &self.agents {
            s.push_str(&format!(
                "link add {} type veth peer name eth0 netns {}\nlink set {} master {BRIDGE}\nlink set {} up\n",
                a.port, a.netns, a.port, a.port
            ));
        }
        if let Some(u) = &self.uplink {
            s.push_str(&format!(
                "addr add {}/30 dev {UPLINK_IF}\nlink set {UPLINK_IF} up\nroute add default via {}\n",
                u.swarm_ip, u.host_ip
            ));
        }
        s
    }

    /// `ip -n AGENT -batch -` for agent `i`.
    pub fn agent_batch(&self, i: usize) -> String {
        let a = &self.agents[i];
        let mut s = format!(
            "link set lo up\naddr add {}/{} dev eth0\nlink set eth0 up\n",
            a.ip, self.prefix
        );
        if self.roles[a.role].egress {
            s.push_str(&format!("route add default via {}\n", self.gateway));
        }
        s
    }

    /// The swarm namespace's nftables ruleset.
    pub fn ruleset(&self) -> String {
        let mut s = format!(
            "table bridge {TABLE} {{\n\tchain prerouting {{\n\t\ttype filter hook prerouting priority -200; policy accept;\n\t\t# each port sends only its agent's address\n"
        );
        for a in &self.agents {
            s.push_str(&format!(
                "\t\tiifname \"{p}\" ether type ip ip saddr != {ip} drop comment \"{n}\"\n\t\tiifname \"{p}\" ether type arp arp saddr ip != {ip} drop comment \"{n}\"\n",
                p = a.port,
                ip = a.ip,
                n = a.name
            ));
        }
        s.push_str(
            "\t\t# IPv4 and ARP only between agents\n\t\tether type != { ip, arp } drop\n\t}\n}\n",
        );
        s.push_str(&format!("table inet {TABLE} {{\n"));
        for (i, r) in self.roles.iter().enumerate() {
            let elems: Vec<String> = r
                .members
                .iter()
                .map(|&m| self.agents[m].ip.to_string())
                .collect();
            s.push_str(&format!(
                "\tset role{i} {{\n\t\ttype ipv4_addr\n\t\tcomment \"role {}\"\n\t\telements = {{ {} }}\n\t}}\n",
                r.name,
                elems.join(", ")
            ));
        }
        s.push_str(
            "\tchain forward {\n\t\ttype filter hook forward priority 0; policy drop;\n\t\tct state established,related accept\n\t\tct state invalid drop\n",
        );
        for (i, r) in self.roles.iter().enumerate() {
            for &t in &r.talk_to {
                s.push_str(&format!(
                    "\t\tip saddr @role{i} ip daddr @role{t} accept comment \"{} -> {}\"\n",
                    r.name, self.roles[t].name
                ));
            }
        }
        if self.uplink.is_some() {
            for (i, r) in self.roles.iter().enumerate() {
                if r.egress {
                    s.push_str(&format!(
                        "\t\tip saddr @role{i} oifname \"{UPLINK_IF}\" accept comment \"{} egress\"\n",
                        r.name
                    ));
                }
            }
        }
        s.push_str("\t\tmeta l4proto tcp reject with tcp reset\n\t\treject with icmpx admin-prohibited\n\t}\n");
        s.push_str("\tchain input {\n\t\ttype filter hook input priority 0; policy drop;\n\t\tiifname \"lo\" accept\n\t\tct state established,related accept\n\t}\n");
        if self.uplink.is_some() {
            s.push_str(&format!(
                "\tchain postrouting {{\n\t\ttype nat hook postrouting priority 100; policy accept;\n\t\toifname \"{UPLINK_IF}\" masquerade\n\t}}\n"
            ));
        }
        s.push_str("}\n");
        s
    }

    /// The host's table for egress: NAT out, nothing in (the host's own services stay
    /// unreachable), no link-local destinations (cloud metadata).
    pub fn host_ruleset(&self) -> Option<String> {
        let u = self.uplink.as_ref()?;
        let net = Ipv4Addr::from(u32::from(u.host_ip) - 1);
        Some(format!(
            "table inet {t} {{\n\tchain input {{\n\t\ttype filter hook input priority -10; policy accept;\n\t\tiifname \"{i}\" ct state established,related accept\n\t\tiifname \"{i}\" drop\n\t}}\n\tchain forward {{\n\t\ttype filter hook forward priority -10; policy accept;\n\t\tiifname \"{i}\" ip daddr 169.254.0.0/16 drop\n\t\toifname \"{i}\" ct state established,related accept\n\t\toifname \"{i}\" drop\n\t}}\n\tchain postrouting {{\n\t\ttype nat hook postrouting priority 100; policy accept;\n\t\tip saddr {net}/30 oifname != \"{i}\" masquerade\n\t}}\n}}\n",
            t = u.table,
            i = u.host_if
        ))
    }
}

/// The host's IPv4 addresses (`ip -o -4 addr show`).
pub fn host_addrs(tools: &Tools) -> Vec<Ipv4Addr> {
    cmd::run(
        &tools.ip,
        &["-o", "-4", "addr", "show"],
        None,
        "list addresses",
    )
    .map(|out| {
        out.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                it.find(|w| *w == "inet")?;
                it.next()?.split('/').next()?.parse().ok()
            })
            .collect()
    })
    .unwrap_or_default()
}

fn write_sysctl(name: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(Path::new("/proc/sys").join(name.replace('.', "/")), value)
}

/// Writes net sysctls inside the named namespace from a short-lived thread (network
/// sysctls are per namespace, looked up through the writing thread's namespace).
fn netns_sysctls(netns: &str, values: &[(&str, &str)]) -> Result<()> {
    let path = Path::new(NETNS_DIR).join(netns);
    let f = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
    let values: Vec<(String, String)> = values
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let netns = netns.to_owned();
    std::thread::spawn(move || -> Result<()> {
        nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| {
            Error::Namespace {
                what: format!("enter {netns}"),
                source,
            }
        })?;
        for (k, v) in &values {
            write_sysctl(k, v).map_err(|e| Error::Command {
                cmd: format!("sysctl {k}={v} in {netns}"),
                msg: e.to_string(),
            })?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| Error::Invalid("sysctl thread panicked".into()))?
}

/// Runs `nft -f -` with `rules` inside the named namespace.
fn nft_in(tools: &Tools, netns: &str, rules: &str) -> Result<()> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let path = Path::new(NETNS_DIR).join(netns);
    let f = std::fs::File::open(&path).map_err(|e| Error::io("open", &path, e))?;
    let fd = f.as_raw_fd();
    let mut c = Command::new(&tools.nft);
    c.args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setns(2) is a single system call, safe between fork and exec; `fd` stays
    // open in the child until exec (it is the parent's open file).
    unsafe {
        c.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let label = format!("load the swarm's nftables rules in {netns}");
    let mut child = c.spawn().map_err(|e| Error::Command {
        cmd: label.clone(),
        msg: format!("cannot run {}: {e}", tools.nft.display()),
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(rules.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| Error::Command {
        cmd: label.clone(),
        msg: e.to_string(),
    })?;
    drop(f);
    if !out.status.success() {
        return Err(Error::Command {
            cmd: label,
            msg: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Whether a named network namespace exists.
pub fn netns_exists(name: &str) -> bool {
    Path::new(NETNS_DIR).join(name).exists()
}

impl NetPlan {
    /// Makes the network. On error whatever was made is removed again.
    pub fn setup(&self, tools: &Tools) -> Result<()> {
        for ns in self.all_netns() {
            if netns_exists(&ns) {
                return Err(Error::Swarm {
                    name: self.swarm.clone(),
                    msg: format!(
                        "network namespace {ns} exists already (is the swarm up? `warren swarm down {}` removes it)",
                        self.swarm
                    ),
                });
            }
        }
        let r = self.make(tools);
        if r.is_err() {
            for e in self.teardown(tools) {
                tracing::warn!(error = %e, "cleanup after a failed network setup");
            }
        }
        r
    }

    fn make(&self, tools: &Tools) -> Result<()> {
        let adds: String = self
            .all_netns()
            .iter()
            .map(|n| format!("netns add {n}\n"))
            .collect();
        cmd::run(
            &tools.ip,
            &["-batch", "-"],
            Some(&adds),
            "create network namespaces",
        )?;
        if let Some(u) = &self.uplink {
            let batch = format!(
                "link add {h} type veth peer name {UPLINK_IF} netns {ns}\naddr add {ip}/30 dev {h}\nlink set {h} up\n",
                h = u.host_if,
                ns = self.netns,
                ip = u.host_ip
            );
            cmd::run(
                &tools.ip,
                &["-batch", "-"],
                Some(&batch),
                "create the egress link",
            )?;
        }
        cmd::run(
            &tools.ip,
            &["-n", &self.netns, "-batch", "-"],
            Some(&self.swarm_batch()),
            "create the swarm bridge and veths",
        )?;
        for (i, a) in self.agents.iter().enumerate() {
            cmd::run(
                &tools.ip,
                &["-n", &a.netns, "-batch", "-"],
                Some(&self.agent_batch(i)),
                &format!("configure the network of agent {}", a.name),
            )?;
        }
        let forward = if self.uplink.is_some() { "1" } else { "0" };
        netns_sysctls(
            &self.netns,
            &[
                ("net.bridge.bridge-nf-call-iptables", "1"),
                ("net.bridge.bridge-nf-call-ip6tables", "1"),
                ("net.bridge.bridge-nf-call-arptables", "0"),
                ("net.ipv4.ip_forward", forward),
            ],
        )?;
        nft_in(tools, &self.netns, &self.ruleset())?;
        if let Some(rules) = self.host_ruleset() {
            cmd::run(
                &tools.nft,
                &["-f", "-"],
                Some(&rules),
                "load the host's egress rules",
            )?;
            // Forwarding must be on in the host namespace for NAT to the outside.
            if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
                .map(|v| v.trim() != "1")
                .unwrap_or(true)
            {
                write_sysctl("net.ipv4.ip_forward", "1").map_err(|e| Error::Command {
                    cmd: "sysctl net.ipv4.ip_forward=1".into(),
                    msg: e.to_string(),
                })?;
                tracing::warn!("enabled net.ipv4.ip_forward on the host for swarm egress");
            }
        }
        Ok(())
    }

    /// Removes the namespaces (which removes the bridge and every veth with them), the
    /// host's egress link and table. Returns what could not be removed.
    pub fn teardown(&self, tools: &Tools) -> Vec<Error> {
        let mut errs = Vec::new();
        if let Some(u) = &self.uplink {
            if let Err(e) = cmd::run(
                &tools.nft,
                &["delete", "table", "inet", &u.table],
                None,
                "remove the host's egress rules",
            ) && !e.to_string().contains("No such file")
            {
                errs.push(e);
            }
            if host_link_exists(&u.host_if)
                && let Err(e) = cmd::run(
                    &tools.ip,
                    &["link", "del", &u.host_if],
                    None,
                    "remove the egress link",
                )
            {
                errs.push(e);
            }
        }
        let dels: String = self
            .all_netns()
            .iter()
            .rev()
            .filter(|n| netns_exists(n))
            .map(|n| format!("netns del {n}\n"))
            .collect();
        if !dels.is_empty()
            && let Err(e) = cmd::run(
                &tools.ip,
                &["-force", "-batch", "-"],
                Some(&dels),
                "remove network namespaces",
            )
        {
            errs.push(e);
        }
        errs
    }

    /// What of this network still exists (for `down` and the tests): namespaces, the
    /// host link, the host table.
    pub fn leftovers(&self, tools: &Tools) -> Vec<String> {
        let mut v: Vec<String> = self
            .all_netns()
            .into_iter()
            .filter(|n| netns_exists(n))
            .map(|n| format!("network namespace {n}"))
            .collect();
        if let Some(u) = &self.uplink {
            if host_link_exists(&u.host_if) {
                v.push(format!("host link {}", u.host_if));
            }
            if cmd::run(
                &tools.nft,
                &["list", "table", "inet", &u.table],
                None,
                "list table",
            )
            .is_ok()
            {
                v.push(format!("host nftables table inet {}", u.table));
            }
        }
        v
    }
}

/// Whether a link of that name exists in the host namespace.
pub fn host_link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::config::parse;

    fn plan(text: &str) -> NetPlan {
        let c = parse(Path::new("/x/t.toml"), text, None).expect("config");
        NetPlan::new(&c, &[Ipv4Addr::new(100, 64, 0, 1)])
    }

    const TEAM: &str = r#"
[roles.coordinator]
command = ["x"]
[roles.worker]
replicas = 2
command = ["x"]
talk_to = ["coordinator"]
"#;

    #[test]
    fn addresses_names_and_edges() {
        let p = plan(TEAM);
        assert_eq!(p.netns, "warren-t");
        let names: Vec<_> = p
            .agents
            .iter()
            .map(|a| (a.name.as_str(), a.ip.to_string(), a.port.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("coordinator-0", "10.77.0.2".to_string(), "a0"),
                ("worker-0", "10.77.0.3".to_string(), "a1"),
                ("worker-1", "10.77.0.4".to_string(), "a2"),
            ]
        );
        assert_eq!(p.agents[1].netns, "warren-t.worker-0");
        assert!(p.uplink.is_none());
        let hosts = p.hosts_file();
        assert!(
            hosts.contains("10.77.0.2\tcoordinator-0 coordinator\n"),
            "{hosts}"
        );
        assert!(hosts.contains("10.77.0.4\tworker-1\n"), "{hosts}");
        let rules = p.ruleset();
        assert!(
            rules.contains(
                "ip saddr @role1 ip daddr @role0 accept comment \"worker -> coordinator\""
            ),
            "{rules}"
        );
        assert!(!rules.contains("@role0 ip daddr @role1"), "{rules}");
        assert!(!rules.contains("masquerade"), "{rules}");
        assert!(
            rules.contains("iifname \"a2\" ether type ip ip saddr != 10.77.0.4 drop"),
            "{rules}"
        );
        assert!(!p.agent_batch(1).contains("default"));
        assert!(
            p.swarm_batch()
                .contains("link add a2 type veth peer name eth0 netns warren-t.worker-1")
        );
        assert!(p.host_ruleset().is_none());
    }

    #[test]
    fn egress_gets_an_uplink_that_avoids_host_addresses() {
        let p = plan("[roles.a]\ncommand = [\"x\"]\negress = true\n[roles.b]\ncommand = [\"x\"]\n");
        let u = p.uplink.as_ref().expect("uplink");
        assert_eq!(u.host_if.len(), 11);
        assert!(u.host_if.len() <= 15);
        let h = u32::from(u.host_ip);
        assert_eq!(h % 4, 1);
        assert!(p.agent_batch(0).contains("route add default via 10.77.0.1"));
        assert!(!p.agent_batch(1).contains("default"));
        let rules = p.ruleset();
        assert!(
            rules.contains("ip saddr @role0 oifname \"up0\" accept"),
            "{rules}"
        );
        assert!(!rules.contains("ip saddr @role1 oifname"), "{rules}");
        let host = p.host_ruleset().expect("host rules");
        assert!(
            host.contains(&format!("iifname \"{}\" drop", u.host_if)),
            "{host}"
        );
        // The same name with that /30 taken moves on.
        let c = parse(
            Path::new("/x/t.toml"),
            "[roles.a]\ncommand = [\"x\"]\negress = true\n",
            None,
        )
        .expect("config");
        let p2 = NetPlan::new(&c, &[u.host_ip]);
        assert_ne!(p2.uplink.as_ref().map(|x| x.host_ip), Some(u.host_ip));
    }
}
