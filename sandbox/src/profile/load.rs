//! Loading: read a file, follow `extends`, validate every value where it was written, and
//! fold the chain into one [`Profile`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::access;
use super::error::ProfileError;
use super::model::{
    CgroupLimits, FsRule, LandlockMode, LandlockPolicy, Namespaces, NetRule, NetworkMode, Origin,
    Profile, Rlimit, SeccompPolicy, SeccompRule,
};
use super::raw::{
    RawArg, RawErrno, RawLandlock, RawLimitValue, RawProfile, RawRlimit, RawRule, RawSeccomp,
};
use crate::filter::errno::{errno_by_name, errno_names};
use crate::filter::{Action, ArgCondition, CmpOp, Width};

/// The built-in profiles: name and TOML source.
pub(crate) const BUILTINS: &[(&str, &str)] = &[
    ("agent", include_str!("../../profiles/agent.toml")),
    ("experiment", include_str!("../../profiles/experiment.toml")),
    ("trusted", include_str!("../../profiles/trusted.toml")),
];

/// Longest `extends` chain accepted.
const MAX_CHAIN: usize = 16;

/// Capability names a profile may use.
const CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_CONTROL",
    "CAP_AUDIT_READ",
    "CAP_AUDIT_WRITE",
    "CAP_BLOCK_SUSPEND",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_KILL",
    "CAP_LEASE",
    "CAP_LINUX_IMMUTABLE",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_MKNOD",
    "CAP_NET_ADMIN",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_RAW",
    "CAP_PERFMON",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYSLOG",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_CHROOT",
    "CAP_SYS_MODULE",
    "CAP_SYS_NICE",
    "CAP_SYS_PACCT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_WAKE_ALARM",
];

/// Resource limit names a profile may use, and their `RLIMIT_*` names.
const RLIMITS: &[(&str, &str)] = &[
    ("as", "RLIMIT_AS"),
    ("core", "RLIMIT_CORE"),
    ("cpu", "RLIMIT_CPU"),
    ("data", "RLIMIT_DATA"),
    ("fsize", "RLIMIT_FSIZE"),
    ("locks", "RLIMIT_LOCKS"),
    ("memlock", "RLIMIT_MEMLOCK"),
    ("msgqueue", "RLIMIT_MSGQUEUE"),
    ("nice", "RLIMIT_NICE"),
    ("nofile", "RLIMIT_NOFILE"),
    ("nproc", "RLIMIT_NPROC"),
    ("rss", "RLIMIT_RSS"),
    ("rtprio", "RLIMIT_RTPRIO"),
    ("rttime", "RLIMIT_RTTIME"),
    ("sigpending", "RLIMIT_SIGPENDING"),
    ("stack", "RLIMIT_STACK"),
];

/// One file of a chain.
struct Layer {
    /// `path` as given, or `builtin:NAME`.
    label: String,
    /// Directory relative `extends` paths start from (none for built-ins).
    dir: Option<PathBuf>,
    text: String,
    raw: RawProfile,
}

/// Reports errors against one file's text.
struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        line_col(self.text, offset).0
    }

    fn origin(&self, span: &Range<usize>) -> Origin {
        Origin {
            file: self.file.to_owned(),
            line: self.line(span.start),
        }
    }

    fn invalid(&self, span: &Range<usize>, rule: &str, message: impl Into<String>) -> ProfileError {
        ProfileError::Invalid {
            file: self.file.to_owned(),
            line: self.line(span.start),
            rule: rule.to_owned(),
            message: message.into(),
        }
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, col)
}

/// Loads the profile in `path`, following its `extends` chain.
pub fn load_file(path: &Path) -> Result<Profile, ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
        path: path.to_owned(),
        source,
    })?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "profile".to_owned());
    let dir = path.parent().map(Path::to_owned);
    let label = path.display().to_string();
    build(name, chain(parse_layer(label, dir, text)?)?)
}

/// Parses a profile from `text`; `label` names it in errors and relative `extends` paths
/// start from `dir` (none: only built-in names may be extended).
pub fn load_str(
    name: &str,
    label: &str,
    text: &str,
    dir: Option<&Path>,
) -> Result<Profile, ProfileError> {
    let layer = parse_layer(label.to_owned(), dir.map(Path::to_owned), text.to_owned())?;
    build(name.to_owned(), chain(layer)?)
}

/// Loads built-in profile `name` (`agent`, `experiment` or `trusted`).
pub fn load_builtin(name: &str) -> Result<Profile, ProfileError> {
    let layer =
        builtin_layer(name).ok_or_else(|| ProfileError::UnknownBuiltin(name.to_owned()))??;
    build(name.to_owned(), chain(layer)?)
}

/// Names of the built-in profiles.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|(n, _)| *n)
}

fn builtin_layer(name: &str) -> Option<Result<Layer, ProfileError>> {
    BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| parse_layer(format!("builtin:{n}"), None, (*text).to_owned()))
}

fn parse_layer(label: String, dir: Option<PathBuf>, text: String) -> Result<Layer, ProfileError> {
    let raw: RawProfile = toml::from_str(&text).map_err(|e| {
        let (line, column) = e.span().map_or((0, 0), |s| line_col(&text, s.start));
        ProfileError::Parse {
            file: label.clone(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    Ok(Layer {
        label,
        dir,
        text,
        raw,
    })
}

/// Follows `extends` from `first`; returns the chain, the extending file first.
fn chain(first: Layer) -> Result<Vec<Layer>, ProfileError> {
    let mut seen: HashSet<String> = HashSet::new();
    seen.insert(canonical_label(&first));
    let mut layers = vec![first];
    loop {
        let last = &layers[layers.len() - 1];
        let Some(ext) = &last.raw.extends else {
            return Ok(layers);
        };
        let ctx = Ctx {
            file: &last.label,
            text: &last.text,
        };
        let line = ctx.line(ext.span().start);
        let err = |message: String| ProfileError::Extends {
            file: last.label.clone(),
            line,
            message,
        };
        if layers.len() >= MAX_CHAIN {
            return Err(err(format!("the chain is longer than {MAX_CHAIN} files")));
        }
        let target = ext.get_ref();
        let next = if !target.contains('/') && !target.ends_with(".toml") {
            builtin_layer(target)
                .ok_or_else(|| err(format!("no built-in profile is called `{target}`")))??
        } else {
            let Some(dir) = &last.dir else {
                return Err(err(format!(
                    "a built-in profile cannot extend the file `{target}`"
                )));
            };
            let path = dir.join(target);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err(format!("read {}: {e}", path.display())))?;
            let next_dir = path.parent().map(Path::to_owned);
            parse_layer(path.display().to_string(), next_dir, text)?
        };
        if !seen.insert(canonical_label(&next)) {
            return Err(err(format!("`{target}` is already in the chain (a loop)")));
        }
        layers.push(next);
    }
}

fn canonical_label(layer: &Layer) -> String {
    if layer.dir.is_none() {
        return layer.label.clone();
    }
    std::fs::canonicalize(&layer.label)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| layer.label.clone())
}

/// The profile being folded together, base file first.
#[derive(Default)]
struct Acc {
    description: Option<String>,
    no_new_privs: Option<bool>,
    readonly_root: Option<bool>,
    workspace: Option<(PathBuf, Origin)>,
    namespaces: Namespaces,
    network: Option<NetworkMode>,
    capabilities: BTreeSet<String>,
    default_action: Option<Action>,
    deny_newer_syscalls: Option<bool>,
    /// Rules per layer, base first; reversed at the end.
    seccomp_rules: Vec<Vec<SeccompRule>>,
    ll_enabled: Option<bool>,
    ll_seen: bool,
    ll_mode: Option<LandlockMode>,
    ll_abi: Option<(u32, Origin)>,
    ll_restrict_fs: Option<bool>,
    ll_restrict_net: Option<(bool, Origin)>,
    ll_scope: Option<(u64, Origin)>,
    ll_fs: Vec<FsRule>,
    ll_net: Vec<NetRule>,
    rlimits: BTreeMap<String, Rlimit>,
    cgroup: CgroupLimits,
}

fn build(name: String, layers: Vec<Layer>) -> Result<Profile, ProfileError> {
    let mut acc = Acc::default();
    for layer in layers.iter().rev() {
        let ctx = Ctx {
            file: &layer.label,
            text: &layer.text,
        };
        apply_layer(&ctx, &layer.raw, &mut acc)?;
    }
    let first = &layers[0];
    finish(
        name,
        layers.iter().map(|l| l.label.clone()).collect(),
        first,
        acc,
    )
}

fn apply_layer(ctx: &Ctx<'_>, raw: &RawProfile, acc: &mut Acc) -> Result<(), ProfileError> {
    if let Some(d) = &raw.description {
        acc.description = Some(d.clone());
    }
    if let Some(n) = raw.no_new_privs {
        acc.no_new_privs = Some(n);
    }
    if let Some(r) = raw.readonly_root {
        acc.readonly_root = Some(r);
    }
    if let Some(w) = &raw.workspace {
        let path = PathBuf::from(w.get_ref());
        if !path.is_absolute() {
            return Err(ctx.invalid(&w.span(), "workspace", "must be an absolute path"));
        }
        acc.workspace = Some((path, ctx.origin(&w.span())));
    }
    if let Some(ns) = &raw.namespaces {
        let n = &mut acc.namespaces;
        for (dst, src) in [
            (&mut n.pid, ns.pid),
            (&mut n.ipc, ns.ipc),
            (&mut n.uts, ns.uts),
            (&mut n.mount, ns.mount),
            (&mut n.cgroup, ns.cgroup),
            (&mut n.user, ns.user),
            (&mut n.time, ns.time),
        ] {
            if src.is_some() {
                *dst = src;
            }
        }
    }
    if let Some(mode) = raw.network.as_ref().and_then(|n| n.mode.as_ref()) {
        acc.network = Some(match mode.get_ref().as_str() {
            "none" => NetworkMode::None,
            "loopback" => NetworkMode::Loopback,
            "host" => NetworkMode::Host,
            other => {
                return Err(ctx.invalid(
                    &mode.span(),
                    "network.mode",
                    format!("`{other}` is not one of none, loopback, host"),
                ));
            }
        });
    }
    if let Some(caps) = &raw.capabilities {
        let check = |list: &Vec<Spanned<String>>, key: &str| -> Result<Vec<String>, ProfileError> {
            list.iter()
                .map(|c| {
                    let name = c.get_ref();
                    if CAPABILITIES.contains(&name.as_str()) {
                        Ok(name.clone())
                    } else {
                        Err(ctx.invalid(
                            &c.span(),
                            key,
                            format!("unknown capability `{name}` (write CAP_*)"),
                        ))
                    }
                })
                .collect()
        };
        if let Some(set) = &caps.set {
            acc.capabilities = check(set, "capabilities.set")?.into_iter().collect();
        }
        if let Some(add) = &caps.add {
            acc.capabilities.extend(check(add, "capabilities.add")?);
        }
        if let Some(drop) = &caps.drop {
            for c in check(drop, "capabilities.drop")? {
                acc.capabilities.remove(&c);
            }
        }
    }
    if let Some(s) = &raw.seccomp {
        apply_seccomp(ctx, s, acc)?;
    }
    if let Some(l) = &raw.landlock {
        apply_landlock(ctx, l, acc)?;
    }
    if let Some(limits) = &raw.rlimits {
        for (key, value) in limits {
            let rule = format!("rlimits.{key}");
            let Some((_, name)) = RLIMITS.iter().find(|(k, _)| k == key) else {
                let known: Vec<&str> = RLIMITS.iter().map(|(k, _)| *k).collect();
                return Err(ctx.invalid(
                    &value.span(),
                    &rule,
                    format!("unknown limit (known: {})", known.join(", ")),
                ));
            };
            let limit = |v: &RawLimitValue| -> Result<u64, ProfileError> {
                match v {
                    RawLimitValue::Number(n) => u64::try_from(*n).map_err(|_| {
                        ctx.invalid(&value.span(), &rule, "a limit cannot be negative")
                    }),
                    RawLimitValue::Word(w) if w == "unlimited" => Ok(u64::MAX),
                    RawLimitValue::Word(w) => Err(ctx.invalid(
                        &value.span(),
                        &rule,
                        format!("`{w}` is neither a number nor \"unlimited\""),
                    )),
                }
            };
            let (soft, hard) = match value.get_ref() {
                RawRlimit::Both(v) => {
                    let l = limit(v)?;
                    (l, l)
                }
                RawRlimit::Pair(p) => (limit(&p.soft)?, limit(&p.hard)?),
            };
            if soft > hard {
                return Err(ctx.invalid(
                    &value.span(),
                    &rule,
                    "the soft limit is above the hard limit",
                ));
            }
            acc.rlimits
                .insert((*name).to_owned(), Rlimit { soft, hard });
        }
    }
    if let Some(c) = &raw.cgroup {
        if let Some(m) = &c.memory {
            acc.cgroup.memory = Some(bytes(ctx, m, "cgroup.memory")?);
        }
        if let Some(m) = &c.memory_swap {
            acc.cgroup.memory_swap = Some(bytes(ctx, m, "cgroup.memory_swap")?);
        }
        if let Some(p) = &c.pids {
            let v = *p.get_ref();
            if v < 1 && v != -1 {
                return Err(ctx.invalid(
                    &p.span(),
                    "cgroup.pids",
                    "must be at least 1 (or -1: unlimited)",
                ));
            }
            acc.cgroup.pids = Some(v);
        }
        if let Some(period) = &c.cpu_period_us {
            let v = *period.get_ref();
            if !(1000..=1_000_000).contains(&v) {
                return Err(ctx.invalid(
                    &period.span(),
                    "cgroup.cpu_period_us",
                    "must be between 1000 and 1000000",
                ));
            }
            acc.cgroup.cpu_period = Some(v as u64);
        }
        if let Some(cpus) = &c.cpus {
            let v = *cpus.get_ref();
            if !(v > 0.0 && v <= 4096.0) {
                return Err(ctx.invalid(
                    &cpus.span(),
                    "cgroup.cpus",
                    "must be above 0 and at most 4096",
                ));
            }
            let period = acc.cgroup.cpu_period.unwrap_or(100_000);
            acc.cgroup.cpu_period = Some(period);
            acc.cgroup.cpu_quota = Some(((v * period as f64).round() as i64).max(1000));
        }
        for (src, dst, key) in [
            (
                &c.cpuset_cpus,
                &mut acc.cgroup.cpuset_cpus,
                "cgroup.cpuset_cpus",
            ),
            (
                &c.cpuset_mems,
                &mut acc.cgroup.cpuset_mems,
                "cgroup.cpuset_mems",
            ),
        ] {
            if let Some(s) = src {
                let v = s.get_ref();
                let ok = !v.is_empty()
                    && v.split(',').all(|part| {
                        let mut ends = part.splitn(2, '-');
                        ends.all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    });
                if !ok {
                    return Err(ctx.invalid(
                        &s.span(),
                        key,
                        format!("`{v}` is not a list like 0-3,8"),
                    ));
                }
                *dst = Some(v.clone());
            }
        }
    }
    Ok(())
}

fn bytes(ctx: &Ctx<'_>, v: &Spanned<RawLimitValue>, key: &str) -> Result<i64, ProfileError> {
    match v.get_ref() {
        RawLimitValue::Number(n) if *n > 0 => Ok(*n),
        RawLimitValue::Number(_) => Err(ctx.invalid(&v.span(), key, "must be positive")),
        RawLimitValue::Word(w) if w == "unlimited" => Ok(-1),
        RawLimitValue::Word(w) => parse_size(w).ok_or_else(|| {
            ctx.invalid(
                &v.span(),
                key,
                format!("`{w}` is not a size like 512MiB or 4GiB"),
            )
        }),
    }
}

/// `"4GiB"` → 4 × 2^30. Binary units only: k/K/KiB, M/MiB, G/GiB, T/TiB.
fn parse_size(s: &str) -> Option<i64> {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    let n: i64 = digits.trim().parse().ok()?;
    let mult: i64 = match unit {
        "" | "B" => 1,
        "k" | "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult).filter(|v| *v > 0)
}

fn apply_seccomp(ctx: &Ctx<'_>, s: &RawSeccomp, acc: &mut Acc) -> Result<(), ProfileError> {
    if let Some(a) = &s.default_action {
        acc.default_action = Some(action(
            ctx,
            a,
            s.default_errno.as_ref(),
            "seccomp.default_action",
        )?);
    } else if let Some(e) = &s.default_errno {
        return Err(ctx.invalid(
            &e.span(),
            "seccomp.default_errno",
            "goes with default_action",
        ));
    }
    if let Some(d) = s.deny_newer_syscalls {
        acc.deny_newer_syscalls = Some(d);
    }
    let mut rules = Vec::new();
    for (i, r) in s.rule.iter().flatten().enumerate() {
        rules.push(seccomp_rule(ctx, r, &format!("seccomp.rule[{i}]"))?);
    }
    acc.seccomp_rules.push(rules);
    Ok(())
}

fn seccomp_rule(
    ctx: &Ctx<'_>,
    r: &Spanned<RawRule>,
    label: &str,
) -> Result<SeccompRule, ProfileError> {
    let raw: &RawRule = r.get_ref();
    if raw.syscalls.is_empty() {
        return Err(ctx.invalid(&r.span(), label, "names no syscall"));
    }
    let mut syscalls = Vec::with_capacity(raw.syscalls.len());
    for name in &raw.syscalls {
        if !crate::syscalls::is_known(name.get_ref()) {
            return Err(ctx.invalid(
                &name.span(),
                label,
                format!("unknown syscall `{}`", name.get_ref()),
            ));
        }
        syscalls.push(name.get_ref().clone());
    }
    let action = action(ctx, &raw.action, raw.errno.as_ref(), label)?;
    let mut args = Vec::new();
    for a in raw.args.iter().flatten() {
        args.push(arg(ctx, a, label)?);
    }
    Ok(SeccompRule {
        syscalls,
        action,
        args,
        origin: ctx.origin(&r.span()),
    })
}

fn action(
    ctx: &Ctx<'_>,
    name: &Spanned<String>,
    errno: Option<&Spanned<RawErrno>>,
    label: &str,
) -> Result<Action, ProfileError> {
    let errno_value = |default: u16| -> Result<u16, ProfileError> {
        let Some(e) = errno else { return Ok(default) };
        match e.get_ref() {
            RawErrno::Number(n) => u16::try_from(*n)
                .ok()
                .filter(|v| *v <= crate::filter::ir::MAX_ERRNO)
                .ok_or_else(|| {
                    ctx.invalid(&e.span(), label, format!("errno {n} is not in 0..=4095"))
                }),
            RawErrno::Name(s) => errno_by_name(s).ok_or_else(|| {
                let known: Vec<&str> = errno_names().collect();
                ctx.invalid(
                    &e.span(),
                    label,
                    format!(
                        "unknown errno `{s}` (known: {}; or give a number)",
                        known.join(", ")
                    ),
                )
            }),
        }
    };
    let no_errno = |a: Action| -> Result<Action, ProfileError> {
        match errno {
            Some(e) => Err(ctx.invalid(
                &e.span(),
                label,
                format!("`errno` does not go with action {a}"),
            )),
            None => Ok(a),
        }
    };
    match name.get_ref().as_str() {
        "allow" => no_errno(Action::Allow),
        "log" => no_errno(Action::Log),
        "trap" => no_errno(Action::Trap),
        "kill_thread" => no_errno(Action::KillThread),
        "kill_process" => no_errno(Action::KillProcess),
        "errno" => Ok(Action::Errno(errno_value(libc::EPERM as u16)?)),
        "trace" => Ok(Action::Trace(errno_value(0)?)),
        other => Err(ctx.invalid(
            &name.span(),
            label,
            format!("unknown action `{other}` (allow, errno, kill_thread, kill_process, trap, trace, log)"),
        )),
    }
}

fn arg(ctx: &Ctx<'_>, a: &Spanned<RawArg>, label: &str) -> Result<ArgCondition, ProfileError> {
    let raw = a.get_ref();
    let bad = |m: String| ctx.invalid(&a.span(), label, m);
    let index = u8::try_from(raw.index)
        .ok()
        .filter(|i| *i <= 5)
        .ok_or_else(|| bad(format!("argument index {} is not in 0..=5", raw.index)))?;
    let value =
        u64::try_from(raw.value).map_err(|_| bad(format!("value {} is negative", raw.value)))?;
    let width = match raw.width {
        None | Some(64) => Width::Bits64,
        Some(32) => Width::Bits32,
        Some(w) => return Err(bad(format!("width {w} is neither 32 nor 64"))),
    };
    let op = match (raw.op.as_str(), raw.mask) {
        ("masked_eq", Some(m)) => CmpOp::MaskedEq {
            mask: u64::try_from(m).map_err(|_| bad(format!("mask {m} is negative")))?,
        },
        ("masked_eq", None) => return Err(bad("masked_eq needs a mask".to_owned())),
        (_, Some(_)) => return Err(bad("only masked_eq takes a mask".to_owned())),
        ("eq", None) => CmpOp::Eq,
        ("ne", None) => CmpOp::Ne,
        ("lt", None) => CmpOp::Lt,
        ("le", None) => CmpOp::Le,
        ("gt", None) => CmpOp::Gt,
        ("ge", None) => CmpOp::Ge,
        (other, None) => {
            return Err(bad(format!(
                "unknown operator `{other}` (eq, ne, lt, le, gt, ge, masked_eq)"
            )));
        }
    };
    if width == Width::Bits32 {
        let mask = match op {
            CmpOp::MaskedEq { mask } => mask,
            _ => 0,
        };
        if value > u64::from(u32::MAX) || mask > u64::from(u32::MAX) {
            return Err(bad("a 32-bit comparison takes values below 2^32".to_owned()));
        }
    }
    Ok(ArgCondition {
        index,
        op,
        value,
        width,
    })
}

fn access_bits(
    ctx: &Ctx<'_>,
    span: &Range<usize>,
    label: &str,
    names: &[String],
    table: &[(&str, u64)],
) -> Result<u64, ProfileError> {
    let mut bits = 0;
    for n in names {
        let Some((_, b)) = table.iter().find(|(k, _)| k == n) else {
            let known: Vec<&str> = table.iter().map(|(k, _)| *k).collect();
            return Err(ctx.invalid(
                span,
                label,
                format!("unknown access `{n}` (known: {})", known.join(", ")),
            ));
        };
        bits |= b;
    }
    if bits == 0 {
        return Err(ctx.invalid(span, label, "grants nothing"));
    }
    Ok(bits)
}

fn apply_landlock(ctx: &Ctx<'_>, l: &RawLandlock, acc: &mut Acc) -> Result<(), ProfileError> {
    acc.ll_seen = true;
    if let Some(e) = l.enabled {
        acc.ll_enabled = Some(e);
    }
    if let Some(m) = &l.mode {
        acc.ll_mode = Some(match m.get_ref().as_str() {
            "best_effort" => LandlockMode::BestEffort,
            "strict" => LandlockMode::Strict,
            other => {
                return Err(ctx.invalid(
                    &m.span(),
                    "landlock.mode",
                    format!("`{other}` is neither best_effort nor strict"),
                ));
            }
        });
    }
    if let Some(abi) = &l.abi {
        let v = *abi.get_ref();
        let v = u32::try_from(v)
            .ok()
            .filter(|v| (1..=access::MAX_ABI).contains(v))
            .ok_or_else(|| {
                ctx.invalid(
                    &abi.span(),
                    "landlock.abi",
                    format!("{v} is not in 1..={}", access::MAX_ABI),
                )
            })?;
        acc.ll_abi = Some((v, ctx.origin(&abi.span())));
    }
    if let Some(r) = l.restrict_fs {
        acc.ll_restrict_fs = Some(r);
    }
    if let Some(r) = &l.restrict_net {
        acc.ll_restrict_net = Some((*r.get_ref(), ctx.origin(&r.span())));
    }
    if let Some(s) = &l.scope {
        let bits = if s.get_ref().is_empty() {
            0
        } else {
            access_bits(
                ctx,
                &s.span(),
                "landlock.scope",
                s.get_ref(),
                access::SCOPE_NAMES,
            )?
        };
        acc.ll_scope = Some((bits, ctx.origin(&s.span())));
    }
    for (i, r) in l.fs.iter().flatten().enumerate() {
        let label = format!("landlock.fs[{i}]");
        let raw = r.get_ref();
        let path = PathBuf::from(&raw.path);
        if !path.is_absolute() {
            return Err(ctx.invalid(
                &r.span(),
                &label,
                format!("`{}` is not an absolute path", raw.path),
            ));
        }
        let access = access_bits(ctx, &r.span(), &label, &raw.access, access::FS_NAMES)?;
        acc.ll_fs.push(FsRule {
            path,
            access,
            origin: ctx.origin(&r.span()),
        });
    }
    for (i, r) in l.net.iter().flatten().enumerate() {
        let label = format!("landlock.net[{i}]");
        let raw = r.get_ref();
        let port = u16::try_from(raw.port).map_err(|_| {
            ctx.invalid(
                &r.span(),
                &label,
                format!("port {} is not in 0..=65535", raw.port),
            )
        })?;
        let access = access_bits(ctx, &r.span(), &label, &raw.access, access::NET_NAMES)?;
        acc.ll_net.push(NetRule {
            port,
            access,
            origin: ctx.origin(&r.span()),
        });
    }
    Ok(())
}

fn finish(
    name: String,
    chain: Vec<String>,
    first: &Layer,
    acc: Acc,
) -> Result<Profile, ProfileError> {
    let whole_file = |rule: &str, message: &str| ProfileError::Invalid {
        file: first.label.clone(),
        line: 1,
        rule: rule.to_owned(),
        message: message.to_owned(),
    };
    let default_action = acc.default_action.ok_or_else(|| {
        whole_file(
            "seccomp.default_action",
            "no file in the chain sets it; a profile without seccomp is refused",
        )
    })?;
    let mut rules = Vec::new();
    for layer in acc.seccomp_rules.into_iter().rev() {
        rules.extend(layer);
    }

    let abi = acc.ll_abi.as_ref().map_or(access::MAX_ABI, |(v, _)| *v);
    let at = |o: &Origin, rule: &str, message: String| ProfileError::Invalid {
        file: o.file.clone(),
        line: o.line,
        rule: rule.to_owned(),
        message,
    };
    let restrict_net = acc.ll_restrict_net.as_ref().is_some_and(|(r, _)| *r);
    if let Some((true, o)) = &acc.ll_restrict_net {
        if abi < 4 {
            return Err(at(
                o,
                "landlock.restrict_net",
                format!("needs abi >= 4, the profile says {abi}"),
            ));
        }
    }
    if let Some((bits, o)) = &acc.ll_scope {
        if *bits != 0 && abi < 6 {
            return Err(at(
                o,
                "landlock.scope",
                format!("needs abi >= 6, the profile says {abi}"),
            ));
        }
    }
    let mut fs = acc.ll_fs;
    for r in &fs {
        let missing = r.access & !access::fs_rights(abi);
        if missing != 0 {
            return Err(at(
                &r.origin,
                "landlock.fs",
                format!(
                    "{} needs abi >= {}, the profile says {abi}",
                    access::names(access::FS_NAMES, missing).join(", "),
                    access::fs_min_abi(r.access)
                ),
            ));
        }
    }
    if let Some((ws, origin)) = &acc.workspace {
        // The workspace is the one place the workload writes: everything the ABI offers.
        fs.push(FsRule {
            path: ws.clone(),
            access: (access::FS_GROUP_READ | access::FS_GROUP_WRITE | access::FS_EXECUTE)
                & access::fs_rights(abi),
            origin: origin.clone(),
        });
    }
    if !acc.ll_net.is_empty() && !restrict_net {
        return Err(at(
            &acc.ll_net[0].origin,
            "landlock.net",
            "port rules need restrict_net = true".to_owned(),
        ));
    }
    fs.sort_by(|a, b| a.path.cmp(&b.path).then(a.access.cmp(&b.access)));
    fs.dedup_by(|a, b| a.path == b.path && a.access == b.access);
    let mut net = acc.ll_net;
    net.sort_by_key(|r| (r.port, r.access));
    net.dedup_by(|a, b| a.port == b.port && a.access == b.access);

    Ok(Profile {
        name,
        chain,
        description: acc.description.unwrap_or_default(),
        no_new_privs: acc.no_new_privs.unwrap_or(true),
        readonly_root: acc.readonly_root.unwrap_or(false),
        workspace: acc.workspace.map(|(p, _)| p),
        namespaces: acc.namespaces,
        network: acc.network.unwrap_or_default(),
        capabilities: acc.capabilities,
        seccomp: SeccompPolicy {
            default_action,
            deny_newer_syscalls: acc.deny_newer_syscalls.unwrap_or(false),
            rules,
        },
        landlock: LandlockPolicy {
            enabled: acc.ll_enabled.unwrap_or(acc.ll_seen),
            mode: acc.ll_mode.unwrap_or_default(),
            abi,
            restrict_fs: acc.ll_restrict_fs.unwrap_or(true),
            restrict_net,
            scope: acc.ll_scope.map_or(0, |(b, _)| b),
            fs,
            net,
        },
        rlimits: acc.rlimits,
        cgroup: acc.cgroup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1GB"), None);
        assert_eq!(parse_size("GiB"), None);
    }

    #[test]
    fn line_and_column() {
        let t = "a = 1\nbb = 2\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 8), (2, 3));
    }
}
