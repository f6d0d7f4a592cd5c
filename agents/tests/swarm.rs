//! Swarms end to end (as root): a coordinator and two workers on the swarm's network;
//! restarts and egress; `down` leaving nothing behind.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{SwarmGuard, helpers, root_or_skip, roots, unique};
use warren_agents::cmd::Tools;
use warren_agents::swarm::state::SwarmState;

/// Runs in every agent: serves "hello from AGENT" on $PORT, then tries each TCP target
/// of $TARGETS and sends a UDP datagram to each of $UDP, writes a secret to its workspace
/// and reports what it saw as one `RESULT {json}` line.
const PROBE: &str = r#"
import json, os, socket, threading, time
name = os.environ["WARREN_AGENT"]
port = int(os.environ["PORT"])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", port))
srv.listen(16)
def serve():
    while True:
        c, _ = srv.accept()
        c.sendall(("hello from " + name).encode())
        c.close()
threading.Thread(target=serve, daemon=True).start()
time.sleep(float(os.environ.get("WAIT", "1.5")))
res = {"tcp": {}, "udp": {}}
for t in filter(None, os.environ.get("TARGETS", "").split(",")):
    h, p = t.rsplit(":", 1)
    try:
        s = socket.create_connection((h, int(p)), timeout=2)
        res["tcp"][t] = "ok:" + s.recv(100).decode()
    except Exception as e:
        res["tcp"][t] = "fail:" + type(e).__name__
for t in filter(None, os.environ.get("UDP", "").split(",")):
    h, p = t.rsplit(":", 1)
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(("udp from " + name).encode(), (h, int(p)))
        res["udp"][t] = "sent"
    except Exception as e:
        res["udp"][t] = "fail:" + type(e).__name__
open("/workspace/secret-" + name, "w").write(name)
res["workspace"] = sorted(os.listdir("/workspace"))
res["procs"] = len([p for p in os.listdir("/proc") if p.isdigit()])
try:
    open("/data/x", "w")
    res["data_write"] = "ok"
except Exception as e:
    res["data_write"] = "fail:" + type(e).__name__
res["route"] = [l.split()[1] for l in open("/proc/net/route").read().splitlines()[1:]]
print("RESULT " + json.dumps(res), flush=True)
time.sleep(3600)
"#;

fn host_ip() -> Option<Ipv4Addr> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut it = l.split_whitespace();
        it.find(|w| *w == "inet")?;
        it.next()?.split('/').next()?.parse().ok()
    })
}

/// A TCP and a UDP service on the host, on `addr:port`; counts who reached them.
struct HostService {
    hits: Arc<AtomicUsize>,
}

fn host_service(addr: Ipv4Addr, port: u16) -> std::io::Result<HostService> {
    let hits = Arc::new(AtomicUsize::new(0));
    let tcp = TcpListener::bind((addr, port))?;
    let udp = UdpSocket::bind((addr, port))?;
    let h = hits.clone();
    std::thread::spawn(move || {
        for mut c in tcp.incoming().flatten() {
            h.fetch_add(1, Ordering::SeqCst);
            let _ = c.write_all(b"HOST-SERVICE");
        }
    });
    let h = hits.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while udp.recv_from(&mut b).is_ok() {
            h.fetch_add(1, Ordering::SeqCst);
        }
    });
    Ok(HostService { hits })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits for every agent's RESULT line.
fn results(st: &SwarmState) -> BTreeMap<String, serde_json::Value> {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let mut got = BTreeMap::new();
        for a in &st.agents {
            let text = std::fs::read_to_string(&a.log).unwrap_or_default();
            if let Some(l) = text.lines().find_map(|l| l.split_once(" RESULT ")) {
                got.insert(
                    a.name.clone(),
                    serde_json::from_str(l.1).expect("result json"),
                );
            }
        }
        if got.len() == st.agents.len() {
            return got;
        }
        assert!(Instant::now() < end, "agents did not report: {got:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn netns_with_prefix(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n == prefix || n.starts_with(&format!("{prefix}.")))
                .collect()
        })
        .unwrap_or_default()
}

fn processes_mentioning(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).contains(needle))
                        .unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn workers_reach_the_coordinator_only_and_down_leaves_nothing() {
    if !root_or_skip("workers_reach_the_coordinator_only_and_down_leaves_nothing") {
        return;
    }
    let t = roots();
    let name = unique("s");
    let data = t.dir.path().join("dataset");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(data.join("probe.py"), PROBE).expect("probe");
    let port = free_port();
    let lo = host_service(Ipv4Addr::LOCALHOST, port).expect("host loopback service");
    let real = host_ip().and_then(|ip| host_service(ip, port).ok().map(|s| (ip, s)));
    let mut tcp = format!("127.0.0.1:{port}");
    let mut udp = format!("127.0.0.1:{port}");
    if let Some((ip, _)) = &real {
        tcp.push_str(&format!(",{ip}:{port}"));
        udp.push_str(&format!(",{ip}:{port}"));
    }
    let file = t.dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            r#"
[roles.coordinator]
command = ["python3", "/data/probe.py"]
ports = [{port}]
env = {{ PORT = "{port}", TARGETS = "worker-0:{port},worker-1:{port},{tcp}", UDP = "worker-0:{port},{udp}" }}
mounts = [{{ host = "{data}", path = "/data" }}]

[roles.worker]
replicas = 2
command = ["python3", "/data/probe.py"]
ports = [{port}]
talk_to = ["coordinator"]
env = {{ PORT = "{port}", TARGETS = "coordinator:{port},worker-0:{port},worker-1:{port},{tcp}", UDP = "{udp}" }}
mounts = [{{ host = "{data}", path = "/data" }}]
"#,
            data = data.display()
        ),
    )
    .expect("swarm file");
    let _g = SwarmGuard {
        roots: t.roots.clone(),
        name: name.clone(),
    };
    let tools = Tools::default();
    let t0 = Instant::now();
    let info = warren_agents::swarm::up(&t.roots, &helpers(), &tools, &file).expect("swarm up");
    eprintln!(
        "swarm up (3 agents): {:.0} ms",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(info.agents.len(), 3);
    assert!(
        info.agents.iter().all(|a| a.status == "running"),
        "{info:?}"
    );
    let st = SwarmState::load_dir(&t.roots.swarm_dir(&name)).expect("state");
    let r = results(&st);

    let tcp_of = |agent: &str, target: &str| -> String {
        r[agent]["tcp"][target]
            .as_str()
            .unwrap_or("missing")
            .to_owned()
    };
    for w in ["worker-0", "worker-1"] {
        // Workers reach the coordinator by name...
        assert_eq!(
            tcp_of(w, &format!("coordinator:{port}")),
            "ok:hello from coordinator-0",
            "{r:?}"
        );
    }
    // ...but not each other (the swarm's nftables rules: the agents' Landlock rules would
    // allow the port).
    assert!(
        tcp_of("worker-0", &format!("worker-1:{port}")).starts_with("fail:"),
        "{r:?}"
    );
    assert!(
        tcp_of("worker-1", &format!("worker-0:{port}")).starts_with("fail:"),
        "{r:?}"
    );
    // The coordinator opens nothing (no talk_to).
    assert!(
        tcp_of("coordinator-0", &format!("worker-0:{port}")).starts_with("fail:"),
        "{r:?}"
    );
    // Nobody reaches the host's services, on its loopback or its address, TCP or UDP;
    // 127.0.0.1 is each agent's own loopback.
    for (agent, v) in &r {
        for (target, res) in v["tcp"].as_object().expect("tcp") {
            assert!(
                !res.as_str().unwrap_or("").contains("HOST-SERVICE"),
                "{agent} reached the host at {target}"
            );
        }
        // Private workspace, one process visible, read-only dataset, no default route.
        assert_eq!(
            v["workspace"],
            serde_json::json!([format!("secret-{agent}")]),
            "{agent}"
        );
        assert_eq!(v["procs"], 1, "{agent}");
        assert!(
            v["data_write"].as_str().unwrap_or("").starts_with("fail:"),
            "{agent}"
        );
        assert!(
            !v["route"]
                .as_array()
                .expect("routes")
                .iter()
                .any(|d| d == "00000000"),
            "{agent} has a default route: {v}"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        lo.hits.load(Ordering::SeqCst),
        0,
        "host loopback service reached"
    );
    if let Some((_, s)) = &real {
        assert_eq!(s.hits.load(Ordering::SeqCst), 0, "host address reached");
    }
    for a in &st.agents {
        let names: Vec<String> = std::fs::read_dir(&a.workspace)
            .expect("workspace")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [format!("secret-{}", a.name)]);
    }
    let logs = {
        let mut b = Vec::new();
        warren_agents::swarm::logs(
            &t.roots,
            &name,
            &warren_agents::swarm::LogsOptions::default(),
            &mut b,
        )
        .expect("logs");
        String::from_utf8(b).expect("utf8")
    };
    assert!(logs.contains("worker-1      | RESULT"), "{logs}");

    let t0 = Instant::now();
    let rep = warren_agents::swarm::down(&t.roots, &tools, &name, Duration::from_secs(5), false)
        .expect("down");
    eprintln!(
        "swarm down (3 agents): {:.0} ms",
        t0.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(rep.leftovers, Vec::<String>::new());
    assert!(!rep.forced);
    assert_eq!(
        warren_agents::swarm::supervisor::leftovers(&t.roots, &tools, &st),
        Vec::<String>::new()
    );
    assert_eq!(netns_with_prefix(&st.net.netns), Vec::<String>::new());
    assert_eq!(
        processes_mentioning(&data.display().to_string()),
        Vec::<i32>::new()
    );
    assert_eq!(
        warren_runtime::state::list_ids(&t.roots.runtime_root()).unwrap_or_default(),
        Vec::<String>::new()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&st.net.netns), "netns mounts left");
    assert!(!mounts.contains(&t.roots.swarm_dir(&name).display().to_string()));
}

#[test]
fn restart_policy_egress_and_a_failed_up_leave_nothing() {
    if !root_or_skip("restart_policy_egress_and_a_failed_up_leave_nothing") {
        return;
    }
    let t = roots();
    let name = unique("e");
    let port = free_port();
    let ip = host_ip();
    let svc = ip.and_then(|ip| host_service(ip, port).ok());
    let target = ip.map(|ip| format!("{ip}:{port}")).unwrap_or_default();
    let data = t.dir.path().join("dataset");
    std::fs::create_dir_all(&data).expect("mkdir");
    std::fs::write(data.join("probe.py"), PROBE).expect("probe");
    let file = t.dir.path().join("team.toml");
    std::fs::write(
        &file,
        format!(
            r#"
name = "{name}"
[network]
subnet = "10.99.0.0/24"

[roles.flaky]
command = ["sh", "-c", "echo try; exit 3"]
restart = "on-failure"
max_restarts = 2

[roles.out]
command = ["python3", "/data/probe.py"]
egress = true
ports = [{port}]
egress_ports = [{port}]
env = {{ PORT = "{port}", TARGETS = "{target}", WAIT = "0.2" }}
mounts = [{{ host = "{data}", path = "/data" }}]
"#,
            data = data.display()
        ),
    )
    .expect("swarm file");
    let _g = SwarmGuard {
        roots: t.roots.clone(),
        name: name.clone(),
    };
    let tools = Tools::default();
    warren_agents::swarm::up(&t.roots, &helpers(), &tools, &file).expect("up");
    let st = SwarmState::load_dir(&t.roots.swarm_dir(&name)).expect("state");
    let uplink = st.net.uplink.clone().expect("egress uplink");
    assert!(warren_agents::swarm::net::host_link_exists(&uplink.host_if));
    // flaky: started, then restarted twice, then left exited with its status.
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let infos = warren_agents::swarm::ps(&t.roots, Some(&name)).expect("ps");
        let f = infos[0]
            .agents
            .iter()
            .find(|a| a.name == "flaky-0")
            .cloned()
            .expect("flaky");
        if f.status == "exited" && f.restarts == 2 {
            assert_eq!(f.exit_code, Some(3));
            break;
        }
        assert!(Instant::now() < end, "{f:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut log = String::new();
    std::fs::File::open(&st.agents[0].log)
        .and_then(|mut f| f.read_to_string(&mut log))
        .expect("flaky log");
    assert_eq!(log.matches(" stdout try").count(), 3, "{log}");
    // out: a default route through the swarm, and still no way into the host.
    let r = results(&SwarmState {
        agents: st
            .agents
            .iter()
            .filter(|a| a.name == "out-0")
            .cloned()
            .collect(),
        ..st.clone()
    });
    let out = &r["out-0"];
    assert!(
        out["route"]
            .as_array()
            .expect("routes")
            .iter()
            .any(|d| d == "00000000"),
        "{out}"
    );
    if let Some(s) = &svc {
        assert!(
            out["tcp"][&target]
                .as_str()
                .unwrap_or("")
                .starts_with("fail:"),
            "{out}"
        );
        assert_eq!(s.hits.load(Ordering::SeqCst), 0);
    }
    let rep = warren_agents::swarm::down(&t.roots, &tools, &name, Duration::from_secs(5), true)
        .expect("down");
    assert_eq!(rep.leftovers, Vec::<String>::new());
    assert!(!warren_agents::swarm::net::host_link_exists(
        &uplink.host_if
    ));
    assert!(
        warren_agents::cmd::run(
            &tools.nft,
            &["list", "table", "inet", &uplink.table],
            None,
            "list"
        )
        .is_err()
    );
    assert!(!t.roots.swarm_data(&name).exists(), "purged");

    // An agent whose command cannot start fails `up`, which then removes everything.
    std::fs::write(
        &file,
        format!("name = \"{name}\"\n[roles.bad]\ncommand = [\"/nonexistent/cmd\"]\n"),
    )
    .expect("bad file");
    let e = warren_agents::swarm::up(&t.roots, &helpers(), &tools, &file).expect_err("bad");
    assert!(e.to_string().contains("/nonexistent/cmd"), "{e}");
    assert_eq!(
        netns_with_prefix(&format!("warren-{name}")),
        Vec::<String>::new()
    );
    assert!(!t.roots.swarm_dir(&name).exists());
    assert!(Path::new("/run/netns").exists());
}
