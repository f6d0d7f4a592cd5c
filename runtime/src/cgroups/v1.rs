//! Applying OCI resources to cgroup v1 controllers, the way runc's fs driver does.

use std::path::Path;

use libcontainer::oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::{CgroupError, ContainerCgroup, Result, write_file};

fn need<'a>(
    cg: &'a ContainerCgroup,
    controller: &'static str,
    what: &'static str,
) -> Result<&'a Path> {
    cg.v1_dir(controller)
        .ok_or(CgroupError::MissingController { what, controller })
}

/// Applies `r`. `initial` (create, not `update`) also installs the device allow-list:
/// deny everything, then the spec's rules in order, then runc's default devices.
pub(super) fn apply(cg: &ContainerCgroup, r: &LinuxResources, initial: bool) -> Result<()> {
    if initial {
        let rules = r.devices().as_deref().unwrap_or(&[]);
        match cg.v1_dir("devices") {
            Some(dir) => apply_devices(dir, rules)?,
            // A hybrid host without a v1 devices hierarchy: the unified one's device
            // program enforces the same list.
            None if let Some(v2) = cg.v2_dir() => super::install_device_filter(v2, r)?,
            // Without a devices hierarchy the rules cannot be enforced; refuse.
            None if !rules.is_empty() => {
                return Err(CgroupError::MissingController {
                    what: "linux.resources.devices",
                    controller: "devices",
                });
            }
            None => {}
        }
    }
    if let Some(m) = r.memory() {
        let touched = m.limit().is_some()
            || m.reservation().is_some()
            || m.swap().is_some()
            || m.kernel_tcp().is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer().is_some();
        if touched {
            let dir = need(cg, "memory", "linux.resources.memory")?;
            if let Some(res) = m.reservation() {
                write_file(&dir.join("memory.soft_limit_in_bytes"), &limit_str(res))?;
            }
            set_memory_and_swap(dir, m.limit(), m.swap())?;
            if let Some(k) = m.kernel_tcp() {
                write_file(&dir.join("memory.kmem.tcp.limit_in_bytes"), &limit_str(k))?;
            }
            if let Some(s) = m.swappiness() {
                if s > 100 {
                    return Err(CgroupError::InvalidResource {
                        field: "memory.swappiness",
                        msg: format!("{s} is not in 0..=100"),
                    });
                }
                write_file(&dir.join("memory.swappiness"), &s.to_string())?;
            }
            if m.disable_oom_killer() == Some(true) {
                write_file(&dir.join("memory.oom_control"), "1")?;
            }
        }
    }
    if let Some(c) = r.cpu() {
        let cpu_touched = c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.realtime_period().is_some()
            || c.realtime_runtime().is_some()
            || c.idle().is_some()
            || c.burst().is_some();
        if cpu_touched {
            let dir = need(cg, "cpu", "linux.resources.cpu")?;
            if let Some(s) = c.shares()
                && s != 0
            {
                write_file(&dir.join("cpu.shares"), &s.to_string())?;
            }
            set_quota_period(dir, c.quota(), c.period())?;
            if let Some(b) = c.burst() {
                write_file(&dir.join("cpu.cfs_burst_us"), &b.to_string())?;
            }
            if let Some(p) = c.realtime_period()
                && p != 0
            {
                write_file(&dir.join("cpu.rt_period_us"), &p.to_string())?;
            }
            if let Some(rt) = c.realtime_runtime()
                && rt != 0
            {
                write_file(&dir.join("cpu.rt_runtime_us"), &rt.to_string())?;
            }
            if let Some(i) = c.idle()
                && dir.join("cpu.idle").exists()
            {
                write_file(&dir.join("cpu.idle"), &i.to_string())?;
            }
        }
        if c.cpus().is_some() || c.mems().is_some() {
            let dir = need(cg, "cpuset", "linux.resources.cpu.cpus/mems")?;
            if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
                write_file(&dir.join("cpuset.cpus"), cpus)?;
            }
            if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
                write_file(&dir.join("cpuset.mems"), mems)?;
            }
        }
    }
    if let Some(p) = r.pids() {
        let dir = need(cg, "pids", "linux.resources.pids")?;
        let v = if p.limit() > 0 {
            p.limit().to_string()
        } else {
            "max".to_owned()
        };
        write_file(&dir.join("pids.max"), &v)?;
    }
    if let Some(b) = r.block_io() {
        let any = b.weight().is_some()
            || b.leaf_weight().is_some()
            || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            || b.throttle_read_bps_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            || b.throttle_write_bps_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            || b.throttle_read_iops_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            || b.throttle_write_iops_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty());
        if any {
            let dir = need(cg, "blkio", "linux.resources.blockIO")?;
            if let Some(w) = b.weight()
                && w != 0
            {
                let f = if dir.join("blkio.weight").exists() {
                    "blkio.weight"
                } else {
                    "blkio.bfq.weight"
                };
                write_file(&dir.join(f), &w.to_string())?;
            }
            if let Some(w) = b.leaf_weight()
                && w != 0
            {
                write_file(&dir.join("blkio.leaf_weight"), &w.to_string())?;
            }
            for wd in b.weight_device().iter().flatten() {
                if let Some(w) = wd.weight() {
                    write_file(
                        &dir.join("blkio.weight_device"),
                        &format!("{}:{} {}", wd.major(), wd.minor(), w),
                    )?;
                }
                if let Some(w) = wd.leaf_weight() {
                    write_file(
                        &dir.join("blkio.leaf_weight_device"),
                        &format!("{}:{} {}", wd.major(), wd.minor(), w),
                    )?;
                }
            }
            let throttles = [
                (
                    "blkio.throttle.read_bps_device",
                    b.throttle_read_bps_device(),
                ),
                (
                    "blkio.throttle.write_bps_device",
                    b.throttle_write_bps_device(),
                ),
                (
                    "blkio.throttle.read_iops_device",
                    b.throttle_read_iops_device(),
                ),
                (
                    "blkio.throttle.write_iops_device",
                    b.throttle_write_iops_device(),
                ),
            ];
            for (file, list) in throttles {
                for t in list.iter().flatten() {
                    write_file(
                        &dir.join(file),
                        &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                    )?;
                }
            }
        }
    }
    if let Some(h) = r.hugepage_limits()
        && !h.is_empty()
    {
        let dir = need(cg, "hugetlb", "linux.resources.hugepageLimits")?;
        for l in h {
            write_file(
                &dir.join(format!("hugetlb.{}.limit_in_bytes", l.page_size())),
                &l.limit().to_string(),
            )?;
        }
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            let dir = need(cg, "net_cls", "linux.resources.network.classID")?;
            write_file(&dir.join("net_cls.classid"), &id.to_string())?;
        }
        if let Some(prios) = n.priorities()
            && !prios.is_empty()
        {
            let dir = need(cg, "net_prio", "linux.resources.network.priorities")?;
            for p in prios {
                write_file(
                    &dir.join("net_prio.ifpriomap"),
                    &format!("{} {}", p.name(), p.priority()),
                )?;
            }
        }
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::InvalidResource {
            field: "unified",
            msg: "cgroup v2 resources were given but this host uses cgroup v1".into(),
        });
    }
    Ok(())
}

fn limit_str(v: i64) -> String {
    if v < 0 {
        "-1".to_owned()
    } else {
        v.to_string()
    }
}

/// Sets memory and memory+swap limits in an order the kernel accepts: the memsw limit must
/// never be below the memory limit.
fn set_memory_and_swap(dir: &Path, limit: Option<i64>, swap: Option<i64>) -> Result<()> {
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    let lim = dir.join("memory.limit_in_bytes");
    let swap = swap.filter(|_| memsw.exists());
    match (limit, swap) {
        (None, None) => Ok(()),
        (Some(l), None) => write_file(&lim, &limit_str(l)),
        (None, Some(s)) => write_file(&memsw, &limit_str(s)),
        (Some(l), Some(s)) => {
            let cur: i64 = std::fs::read_to_string(&lim)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(i64::MAX);
            // Raising (or unlimiting) the memory limit: raise memsw first.
            if l < 0 || l > cur {
                write_file(&memsw, &limit_str(s))?;
                write_file(&lim, &limit_str(l))
            } else {
                write_file(&lim, &limit_str(l))?;
                write_file(&memsw, &limit_str(s))
            }
        }
    }
}

fn set_quota_period(dir: &Path, quota: Option<i64>, period: Option<u64>) -> Result<()> {
    let qf = dir.join("cpu.cfs_quota_us");
    let pf = dir.join("cpu.cfs_period_us");
    match (quota, period.filter(|p| *p != 0)) {
        (None, None) => Ok(()),
        (Some(q), None) => write_file(&qf, &q.to_string()),
        (None, Some(p)) => write_file(&pf, &p.to_string()),
        (Some(q), Some(p)) => {
            // A new period can be refused while the old quota is larger than it allows;
            // write the quota first and try again, as runc does.
            if write_file(&pf, &p.to_string()).is_err() {
                write_file(&qf, &q.to_string())?;
                write_file(&pf, &p.to_string())
            } else {
                write_file(&qf, &q.to_string())
            }
        }
    }
}

/// The device rules runc always appends: the standard character devices, ptys, and mknod
/// of anything (creating a node is harmless when opening it is denied).
pub(crate) fn default_allowed_devices() -> Vec<(char, i64, i64, &'static str)> {
    vec![
        ('c', -1, -1, "m"),
        ('b', -1, -1, "m"),
        ('c', 1, 3, "rwm"),
        ('c', 1, 8, "rwm"),
        ('c', 1, 7, "rwm"),
        ('c', 5, 0, "rwm"),
        ('c', 1, 5, "rwm"),
        ('c', 1, 9, "rwm"),
        ('c', 136, -1, "rwm"),
        ('c', 5, 2, "rwm"),
        ('c', 10, 200, "rwm"),
    ]
}

fn rule_text(typ: char, major: i64, minor: i64, access: &str) -> String {
    let n = |v: i64| if v < 0 { "*".to_owned() } else { v.to_string() };
    format!("{typ} {}:{} {access}", n(major), n(minor))
}

fn type_char(t: Option<LinuxDeviceType>) -> char {
    match t {
        Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::P) => 'p',
        _ => 'a',
    }
}

fn apply_devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let mut allow = RuleFile::open(dir.join("devices.allow"))?;
    let mut deny = RuleFile::open(dir.join("devices.deny"))?;
    deny.write("a")?;
    for r in rules {
        let typ = type_char(r.typ());
        let access = r.access().clone().unwrap_or_else(|| "rwm".to_owned());
        let major = r.major().unwrap_or(-1);
        let minor = r.minor().unwrap_or(-1);
        let file = if r.allow() { &mut allow } else { &mut deny };
        if typ == 'a' && major < 0 && minor < 0 {
            // "a" alone switches the whole list (deny all / allow all).
            file.write("a")?;
        } else {
            file.write(&rule_text(typ, major, minor, &access))?;
        }
    }
    for (t, ma, mi, acc) in default_allowed_devices() {
        allow.write(&rule_text(t, ma, mi, acc))?;
    }
    Ok(())
}

/// A devices.allow/deny file kept open: each write(2) is one rule.
struct RuleFile {
    f: std::fs::File,
    path: std::path::PathBuf,
}

impl RuleFile {
    fn open(path: std::path::PathBuf) -> Result<Self> {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| CgroupError::io("open", &path, e))?;
        Ok(Self { f, path })
    }

    fn write(&mut self, rule: &str) -> Result<()> {
        use std::io::Write;
        self.f
            .write_all(rule.as_bytes())
            .map_err(|source| CgroupError::Write {
                path: self.path.clone(),
                value: rule.to_owned(),
                source,
            })
    }
}
