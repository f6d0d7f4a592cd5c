//! `warren stats`: per-sandbox resource use from cgroup files (through the runtime's
//! `cgroups::stats::collect`), PSI, network counters of the init's network namespace,
//! block I/O, and GPU use through NVML mapped to the sandbox's pids. Everything that is
//! missing (cgroup v1 PSI, NVML, a GPU) shows as `n/a` rather than failing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::sandbox::Info;

/// Pressure stall averages (avg10, "some") in percent.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Psi {
    pub cpu: Option<f64>,
    pub memory: Option<f64>,
    pub io: Option<f64>,
    /// `cgroup` (the sandbox's own), `host` (/proc/pressure) or `n/a`.
    pub source: &'static str,
}

/// GPU use of a sandbox's processes.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct GpuUse {
    /// SM utilisation of the sandbox's processes, summed over GPUs (percent).
    pub util_percent: u32,
    pub memory_bytes: u64,
    pub processes: usize,
}

/// One reading of one sandbox.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub at: Option<Instant>,
    pub cpu_ns: u64,
    /// Since the previous sample (None for the first one).
    pub cpu_percent: Option<f64>,
    pub memory_bytes: u64,
    pub memory_limit: Option<u64>,
    pub pids: u64,
    pub pids_limit: Option<u64>,
    pub psi: Psi,
    pub net_rx: Option<u64>,
    pub net_tx: Option<u64>,
    pub block_read: u64,
    pub block_write: u64,
    pub gpu: Option<GpuUse>,
}

/// Parses `some avg10=1.23 …` from a PSI file.
pub fn parse_psi(text: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with("some "))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("avg10="))?
        .parse()
        .ok()
}

fn psi_from(dir: &Path, suffix: &str) -> Psi {
    let r = |n: &str| {
        std::fs::read_to_string(dir.join(format!("{n}{suffix}")))
            .ok()
            .and_then(|t| parse_psi(&t))
    };
    Psi {
        cpu: r("cpu"),
        memory: r("memory"),
        io: r("io"),
        source: "",
    }
}

/// PSI of a sandbox: its cgroup2 directory's files when present, else the host's
/// `/proc/pressure`, else n/a.
pub fn psi(v2_dir: Option<&Path>, proc_root: &Path) -> Psi {
    if let Some(d) = v2_dir {
        let p = psi_from(d, ".pressure");
        if p.cpu.is_some() || p.memory.is_some() || p.io.is_some() {
            return Psi {
                source: "cgroup",
                ..p
            };
        }
    }
    let p = psi_from(&proc_root.join("pressure"), "");
    if p.cpu.is_some() || p.memory.is_some() || p.io.is_some() {
        return Psi {
            source: "host",
            ..p
        };
    }
    Psi {
        source: "n/a",
        ..Default::default()
    }
}

/// Sums rx and tx bytes over the interfaces (but loopback) of `/proc/PID/net/dev` text.
pub fn parse_net_dev(text: &str) -> (u64, u64) {
    let mut rx = 0;
    let mut tx = 0;
    for l in text.lines().skip(2) {
        let Some((iface, rest)) = l.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

/// NVML, if there is one.
pub struct Gpus {
    nvml: Option<nvml_wrapper::Nvml>,
    /// Why there is none.
    pub reason: Option<String>,
}

impl std::fmt::Debug for Gpus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpus")
            .field("present", &self.nvml.is_some())
            .field("reason", &self.reason)
            .finish()
    }
}

impl Gpus {
    /// Loads NVML; without it (no driver, no GPU) every sandbox shows no GPU use.
    pub fn probe() -> Self {
        match nvml_wrapper::Nvml::init() {
            Ok(n) => Self {
                nvml: Some(n),
                reason: None,
            },
            Err(e) => Self {
                nvml: None,
                reason: Some(format!("no NVIDIA GPUs: {e}")),
            },
        }
    }

    /// None: no NVML.
    pub fn none(reason: &str) -> Self {
        Self {
            nvml: None,
            reason: Some(reason.to_owned()),
        }
    }

    /// Whether NVML answered.
    pub fn present(&self) -> bool {
        self.nvml.is_some()
    }

    /// GPU use of the processes `pids` (host pids).
    pub fn usage(&self, pids: &HashSet<u32>) -> Option<GpuUse> {
        let nvml = self.nvml.as_ref()?;
        let mut u = GpuUse::default();
        for i in 0..nvml.device_count().unwrap_or(0) {
            let Ok(dev) = nvml.device_by_index(i) else {
                continue;
            };
            for p in dev.running_compute_processes().unwrap_or_default() {
                if pids.contains(&p.pid) {
                    u.processes += 1;
                    if let nvml_wrapper::enums::device::UsedGpuMemory::Used(b) = p.used_gpu_memory {
                        u.memory_bytes += b;
                    }
                }
            }
            for s in dev.process_utilization_stats(None).unwrap_or_default() {
                if pids.contains(&s.pid) {
                    u.util_percent += s.sm_util;
                }
            }
        }
        Some(u)
    }
}

const UNLIMITED: u64 = 1 << 60;

/// Reads one sample of sandbox `info` (None when it is not running).
pub fn sample(info: &Info, gpus: &Gpus, prev: Option<&Sample>, proc_root: &Path) -> Option<Sample> {
    let st = info.runtime.as_ref().filter(|_| info.status.is_live())?;
    let s = warren_runtime::cgroups::stats::collect(&st.cgroup);
    let at = Instant::now();
    let cpu_ns = s.cpu.usage.total;
    let cpu_percent = prev.and_then(|p| {
        let dt = at.duration_since(p.at?).as_nanos() as f64;
        (dt > 0.0).then(|| cpu_ns.saturating_sub(p.cpu_ns) as f64 / dt * 100.0)
    });
    let pids_list: HashSet<u32> = st
        .cgroup
        .pids()
        .unwrap_or_default()
        .into_iter()
        .map(|p| p as u32)
        .collect();
    let net = std::fs::read_to_string(proc_root.join(st.init_pid.to_string()).join("net/dev"))
        .ok()
        .map(|t| parse_net_dev(&t));
    let (mut br, mut bw) = (0, 0);
    for e in &s.blkio.io_service_bytes_recursive {
        match e.op.to_ascii_lowercase().as_str() {
            "read" => br += e.value,
            "write" => bw += e.value,
            _ => {}
        }
    }
    let v2: Option<PathBuf> = st.cgroup.v2_dir().map(Path::to_owned);
    Some(Sample {
        id: info.record.id.clone(),
        name: info.record.name.clone(),
        at: Some(at),
        cpu_ns,
        cpu_percent,
        memory_bytes: s.memory.usage.usage,
        memory_limit: (s.memory.usage.limit > 0 && s.memory.usage.limit < UNLIMITED)
            .then_some(s.memory.usage.limit),
        pids: s.pids.current,
        pids_limit: (s.pids.limit > 0 && s.pids.limit < UNLIMITED).then_some(s.pids.limit),
        psi: psi(v2.as_deref(), proc_root),
        net_rx: net.map(|n| n.0),
        net_tx: net.map(|n| n.1),
        block_read: br,
        block_write: bw,
        gpu: gpus.usage(&pids_list),
    })
}

/// `1.5GiB`, `512MiB`, `4KiB`, `12B`.
pub fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{b}B")
    } else {
        format!("{v:.1}{}", U[i])
    }
}

fn opt_pct(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.1}%"))
        .unwrap_or_else(|| "n/a".into())
}

/// The header of the `stats` table.
pub const TABLE_HEADER: &str = "NAME                 ID            CPU %    MEM USAGE / LIMIT       PIDS    PSI cpu/mem/io        NET RX / TX         BLOCK R / W         GPU";

/// One row of the `stats` table.
pub fn table_row(s: &Sample, gpus: &Gpus) -> String {
    let lim = s
        .memory_limit
        .map(human_bytes)
        .unwrap_or_else(|| "unlimited".into());
    let psi = if s.psi.source == "n/a" {
        "n/a".to_owned()
    } else {
        format!(
            "{}/{}/{}{}",
            opt_pct(s.psi.cpu),
            opt_pct(s.psi.memory),
            opt_pct(s.psi.io),
            if s.psi.source == "host" {
                " (host)"
            } else {
                ""
            }
        )
    };
    let net = match (s.net_rx, s.net_tx) {
        (Some(r), Some(t)) => format!("{} / {}", human_bytes(r), human_bytes(t)),
        _ => "n/a".into(),
    };
    let gpu = match (&s.gpu, gpus.present()) {
        (Some(g), _) => format!("{}% {}", g.util_percent, human_bytes(g.memory_bytes)),
        (None, false) => "n/a".into(),
        (None, true) => "-".into(),
    };
    format!(
        "{:<20} {:<12}  {:>6}   {:<22}  {:<6}  {:<20}  {:<18}  {:<18}  {}",
        truncate(&s.name, 20),
        &s.id[..12.min(s.id.len())],
        opt_pct(s.cpu_percent),
        format!("{} / {lim}", human_bytes(s.memory_bytes)),
        s.pids,
        psi,
        net,
        format!(
            "{} / {}",
            human_bytes(s.block_read),
            human_bytes(s.block_write)
        ),
        gpu
    )
}

/// Cuts `s` to `n` characters.
pub fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_and_net_parse() {
        assert_eq!(
            parse_psi("some avg10=1.50 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.00"),
            Some(1.5)
        );
        assert_eq!(parse_psi("garbage"), None);
        let dev = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 2048 3 0 0 0 0 0 0 4096 5 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(dev), (2048, 4096));
    }

    #[test]
    fn psi_falls_back_to_the_host_then_na() {
        let d = tempfile::tempdir().expect("tmp");
        let cg = d.path().join("cg");
        let proc_root = d.path().join("proc");
        std::fs::create_dir_all(&cg).expect("mkdir");
        std::fs::create_dir_all(proc_root.join("pressure")).expect("mkdir");
        assert_eq!(psi(Some(&cg), &proc_root).source, "n/a");
        std::fs::write(
            proc_root.join("pressure/cpu"),
            "some avg10=2.00 avg60=0 avg300=0 total=0\n",
        )
        .expect("w");
        assert_eq!(psi(Some(&cg), &proc_root).source, "host");
        std::fs::write(
            cg.join("memory.pressure"),
            "some avg10=3.00 avg60=0 avg300=0 total=0\n",
        )
        .expect("w");
        let p = psi(Some(&cg), &proc_root);
        assert_eq!((p.source, p.memory), ("cgroup", Some(3.0)));
        assert_eq!(human_bytes(1536 << 20), "1.5GiB");
    }
}
