//! Container resource statistics in the JSON shape of runc's `events --stats`
//! (runc `libcontainer/types/events.go`), read straight from cgroup files.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::Serialize;

use super::{ContainerCgroup, Mode};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// runc `types.Stats`.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub cpu: Cpu,
    pub cpuset: CpuSet,
    pub memory: Memory,
    pub pids: Pids,
    pub blkio: Blkio,
    pub hugetlb: BTreeMap<String, Hugetlb>,
    pub intel_rdt: IntelRdt,
    pub network_interfaces: Option<Vec<serde_json::Value>>,
}

#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cpus: Vec<u16>,
    pub cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mems: Vec<u16>,
    pub mem_hardwall: u64,
    pub mem_exclusive: u64,
    pub memory_migrate: u64,
    pub memory_spread_page: u64,
    pub memory_spread_slab: u64,
    pub memory_pressure: u64,
    pub sched_load_balance: u64,
    pub sched_relax_domain_level: i64,
}

#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

#[derive(Debug, Default, Serialize, Clone)]
pub struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    pub major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub value: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Blkio {
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct IntelRdt {}

fn num(path: &Path) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn kv(path: &Path) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    if let Ok(s) = fs::read_to_string(path) {
        for line in s.lines() {
            let mut it = line.split_whitespace();
            if let (Some(k), Some(v)) = (it.next(), it.next())
                && let Ok(v) = v.parse()
            {
                m.insert(k.to_owned(), v);
            }
        }
    }
    m
}

fn list(path: &Path) -> Vec<u64> {
    fs::read_to_string(path)
        .map(|s| {
            s.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn cpu_list(path: &Path) -> Vec<u16> {
    let Ok(s) = fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u16>().ok()),
        }
    }
    out
}

fn limit(path: &Path) -> u64 {
    match fs::read_to_string(path) {
        Ok(s) if s.trim() == "max" => u64::MAX,
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

fn page_sizes(dir: &Path, suffix: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(ps) = name
                .strip_prefix("hugetlb.")
                .and_then(|n| n.strip_suffix(suffix))
            {
                out.push(ps.to_owned());
            }
        }
    }
    out.sort();
    out
}

/// Reads every statistic the container's cgroups offer; missing files read as zero.
pub fn collect(cg: &ContainerCgroup) -> Stats {
    match (cg.mode, cg.v2_dir()) {
        (Mode::Unified, Some(dir)) => v2(dir),
        _ => v1(cg),
    }
}

fn v1(cg: &ContainerCgroup) -> Stats {
    let mut s = Stats::default();
    // USER_HZ is 100 on every Linux ABI we run on.
    const TICK_NS: u64 = 10_000_000;
    if let Some(d) = cg.v1_dir("cpuacct") {
        s.cpu.usage.total = num(&d.join("cpuacct.usage"));
        s.cpu.usage.percpu = list(&d.join("cpuacct.usage_percpu"));
        s.cpu.usage.percpu_kernel = list(&d.join("cpuacct.usage_percpu_sys"));
        s.cpu.usage.percpu_user = list(&d.join("cpuacct.usage_percpu_user"));
        let st = kv(&d.join("cpuacct.stat"));
        s.cpu.usage.user = st.get("user").copied().unwrap_or(0) * TICK_NS;
        s.cpu.usage.kernel = st.get("system").copied().unwrap_or(0) * TICK_NS;
    }
    if let Some(d) = cg.v1_dir("cpu") {
        let st = kv(&d.join("cpu.stat"));
        s.cpu.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttling.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
    }
    if let Some(d) = cg.v1_dir("cpuset") {
        s.cpuset.cpus = cpu_list(&d.join("cpuset.cpus"));
        s.cpuset.mems = cpu_list(&d.join("cpuset.mems"));
        s.cpuset.cpu_exclusive = num(&d.join("cpuset.cpu_exclusive"));
        s.cpuset.mem_hardwall = num(&d.join("cpuset.mem_hardwall"));
        s.cpuset.mem_exclusive = num(&d.join("cpuset.mem_exclusive"));
        s.cpuset.memory_migrate = num(&d.join("cpuset.memory_migrate"));
        s.cpuset.memory_spread_page = num(&d.join("cpuset.memory_spread_page"));
        s.cpuset.memory_spread_slab = num(&d.join("cpuset.memory_spread_slab"));
        s.cpuset.memory_pressure = num(&d.join("cpuset.memory_pressure"));
        s.cpuset.sched_load_balance = num(&d.join("cpuset.sched_load_balance"));
        s.cpuset.sched_relax_domain_level =
            fs::read_to_string(d.join("cpuset.sched_relax_domain_level"))
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
    }
    if let Some(d) = cg.v1_dir("memory") {
        let entry = |prefix: &str| MemoryEntry {
            limit: num(&d.join(format!("{prefix}.limit_in_bytes"))),
            usage: num(&d.join(format!("{prefix}.usage_in_bytes"))),
            max: num(&d.join(format!("{prefix}.max_usage_in_bytes"))),
            failcnt: num(&d.join(format!("{prefix}.failcnt"))),
        };
        s.memory.usage = entry("memory");
        s.memory.swap = entry("memory.memsw");
        s.memory.kernel = entry("memory.kmem");
        s.memory.kernel_tcp = entry("memory.kmem.tcp");
        s.memory.raw = kv(&d.join("memory.stat"));
        s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
    }
    if let Some(d) = cg.v1_dir("pids") {
        s.pids.current = num(&d.join("pids.current"));
        s.pids.limit = match limit(&d.join("pids.max")) {
            u64::MAX => 0,
            v => v,
        };
    }
    if let Some(d) = cg.v1_dir("blkio") {
        let read = |f: &str| -> Vec<BlkioEntry> {
            let mut out = Vec::new();
            if let Ok(text) = fs::read_to_string(d.join(f)) {
                for line in text.lines() {
                    let p: Vec<&str> = line.split_whitespace().collect();
                    if p.len() == 3
                        && let Some((ma, mi)) = p[0].split_once(':')
                    {
                        out.push(BlkioEntry {
                            major: ma.parse().unwrap_or(0),
                            minor: mi.parse().unwrap_or(0),
                            op: p[1].to_owned(),
                            value: p[2].parse().unwrap_or(0),
                        });
                    }
                }
            }
            out
        };
        s.blkio.io_service_bytes_recursive = read("blkio.io_service_bytes_recursive");
        if s.blkio.io_service_bytes_recursive.is_empty() {
            s.blkio.io_service_bytes_recursive = read("blkio.throttle.io_service_bytes_recursive");
        }
        s.blkio.io_serviced_recursive = read("blkio.io_serviced_recursive");
        if s.blkio.io_serviced_recursive.is_empty() {
            s.blkio.io_serviced_recursive = read("blkio.throttle.io_serviced_recursive");
        }
    }
    if let Some(d) = cg.v1_dir("hugetlb") {
        for ps in page_sizes(d, ".limit_in_bytes") {
            s.hugetlb.insert(
                ps.clone(),
                Hugetlb {
                    usage: num(&d.join(format!("hugetlb.{ps}.usage_in_bytes"))),
                    max: num(&d.join(format!("hugetlb.{ps}.max_usage_in_bytes"))),
                    failcnt: num(&d.join(format!("hugetlb.{ps}.failcnt"))),
                },
            );
        }
    }
    s
}

fn v2(d: &Path) -> Stats {
    let mut s = Stats::default();
    let cpu = kv(&d.join("cpu.stat"));
    let g = |k: &str| cpu.get(k).copied().unwrap_or(0);
    s.cpu.usage.total = g("usage_usec") * 1000;
    s.cpu.usage.user = g("user_usec") * 1000;
    s.cpu.usage.kernel = g("system_usec") * 1000;
    s.cpu.throttling.periods = g("nr_periods");
    s.cpu.throttling.throttled_periods = g("nr_throttled");
    s.cpu.throttling.throttled_time = g("throttled_usec") * 1000;
    s.cpuset.cpus = cpu_list(&d.join("cpuset.cpus.effective"));
    s.cpuset.mems = cpu_list(&d.join("cpuset.mems.effective"));
    s.memory.raw = kv(&d.join("memory.stat"));
    s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
    let events = kv(&d.join("memory.events"));
    s.memory.usage = MemoryEntry {
        limit: limit(&d.join("memory.max")),
        usage: num(&d.join("memory.current")),
        max: num(&d.join("memory.peak")),
        failcnt: events.get("max").copied().unwrap_or(0),
    };
    s.memory.swap = MemoryEntry {
        limit: limit(&d.join("memory.swap.max")),
        usage: num(&d.join("memory.swap.current")),
        max: 0,
        failcnt: 0,
    };
    s.pids.current = num(&d.join("pids.current"));
    s.pids.limit = match limit(&d.join("pids.max")) {
        u64::MAX => 0,
        v => v,
    };
    if let Ok(text) = fs::read_to_string(d.join("io.stat")) {
        for line in text.lines() {
            let mut it = line.split_whitespace();
            let Some((ma, mi)) = it.next().and_then(|x| x.split_once(':')) else {
                continue;
            };
            let (major, minor) = (ma.parse().unwrap_or(0), mi.parse().unwrap_or(0));
            for f in it {
                let Some((k, v)) = f.split_once('=') else {
                    continue;
                };
                let value = v.parse().unwrap_or(0);
                let (list, op) = match k {
                    "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                    "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                    "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_owned(),
                    value,
                });
            }
        }
    }
    for ps in page_sizes(d, ".max") {
        let ev = kv(&d.join(format!("hugetlb.{ps}.events")));
        s.hugetlb.insert(
            ps.clone(),
            Hugetlb {
                usage: num(&d.join(format!("hugetlb.{ps}.current"))),
                max: 0,
                failcnt: ev.get("max").copied().unwrap_or(0),
            },
        );
    }
    s
}
