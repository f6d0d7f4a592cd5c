//! Maps runc's command line onto the library and prints results the way runc does.

use std::ffi::OsString;
use std::io::Write;

use anyhow::{Context, Result, bail};
use libcontainer::oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources,
};
use warren_runtime::verbs::{
    self, create::CreateOpts, exec::ExecOpts, run::RunOpts, update::parse_bytes,
};
use warren_runtime::{Runtime, exe_guard};

use crate::cli::{Cli, Cmd, CreateFlags};

/// Writes to stdout once; a closed pipe (`state | grep -q`) is not an error.
fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

fn create_opts(f: &CreateFlags, id: &str) -> CreateOpts {
    CreateOpts {
        id: id.to_owned(),
        bundle: f.bundle.clone(),
        console_socket: f.console_socket.clone(),
        pid_file: f.pid_file.clone(),
        no_pivot: f.no_pivot,
        no_new_keyring: f.no_new_keyring,
        preserve_fds: f.preserve_fds as i32,
        ..Default::default()
    }
}

fn parse_user(s: &str) -> Result<(u32, Option<u32>)> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u
        .parse()
        .with_context(|| format!("invalid --user {s:?}: uid must be a number"))?;
    let gid = match g {
        Some(g) => Some(
            g.parse()
                .with_context(|| format!("invalid --user {s:?}: gid must be a number"))?,
        ),
        None => None,
    };
    Ok((uid, gid))
}

pub fn run(cli: Cli, argv: &[OsString]) -> Result<i32> {
    if cli.version {
        out(&format!(
            "warren-runtime version {}\nspec: {}\n",
            env!("CARGO_PKG_VERSION"),
            warren_runtime::state::OCI_VERSION
        ));
        return Ok(0);
    }
    let Some(cmd) = cli.cmd else {
        bail!("no command given; see --help");
    };
    // Verbs that put a runtime process into a container re-execute from a read-only
    // view of this binary first (CVE-2019-5736).
    if matches!(cmd, Cmd::Create(_) | Cmd::Run(_) | Cmd::Exec(_)) {
        exe_guard::ensure_protected(argv)?;
    }
    tracing::debug!("main: arguments parsed");
    let mut rt = Runtime::new(cli.root.clone());
    rt.systemd_cgroup = cli.systemd_cgroup;
    // CDI spec directories (colon-separated, increasing priority), as the NVIDIA
    // toolkit's config allows; default /etc/cdi then /var/run/cdi.
    if let Some(dirs) = std::env::var_os("WARREN_CDI_SPEC_DIRS") {
        rt.devices.cdi_dirs = std::env::split_paths(&dirs).collect();
    }
    match cmd {
        Cmd::Create(c) => {
            verbs::create::create(&rt, &create_opts(&c.flags, &c.id))?;
            Ok(0)
        }
        Cmd::Start(c) => {
            verbs::start::start(&rt, &c.id)?;
            Ok(0)
        }
        Cmd::State(c) => {
            let v = verbs::state::state(&rt, &c.id)?;
            out(&(serde_json::to_string_pretty(&v)? + "\n"));
            Ok(0)
        }
        Cmd::Kill(c) => {
            verbs::kill::kill(&rt, &c.id, &c.signal, c.all)?;
            Ok(0)
        }
        Cmd::Delete(c) => {
            verbs::delete::delete(&rt, &c.id, c.force)?;
            Ok(0)
        }
        Cmd::Run(c) => {
            let o = RunOpts {
                create: create_opts(&c.flags, &c.id),
                detach: c.detach,
                keep: c.keep,
                no_subreaper: c.no_subreaper,
            };
            Ok(verbs::run::run(&rt, &o)?)
        }
        Cmd::Exec(c) => {
            let o = ExecOpts {
                id: c.id.clone(),
                process: c.process.clone(),
                args: c.command.clone(),
                cwd: c.cwd.clone(),
                env: c.env.clone(),
                tty: c.tty,
                user: c.user.as_deref().map(parse_user).transpose()?,
                additional_gids: c.additional_gids.clone(),
                caps: c.cap.clone(),
                no_new_privs: c.no_new_privs,
                apparmor: c.apparmor.clone(),
                process_label: c.process_label.clone(),
                detach: c.detach,
                pid_file: c.pid_file.clone(),
                console_socket: c.console_socket.clone(),
                preserve_fds: c.preserve_fds as i32,
                ignore_paused: c.ignore_paused,
                pre_exec: None,
            };
            Ok(verbs::exec::exec(&rt, &o)?)
        }
        Cmd::Ps(c) => {
            let pids = verbs::ps::pids(&rt, &c.id)?;
            if c.format == "json" {
                out(&(serde_json::to_string(&pids)? + "\n"));
            } else {
                out(&verbs::ps::table(&pids, &c.ps_args)?);
            }
            Ok(0)
        }
        Cmd::Events(c) => {
            if c.stats {
                let v = verbs::events::stats_event(&rt, &c.id)?;
                out(&(serde_json::to_string(&v)? + "\n"));
                return Ok(0);
            }
            let interval = verbs::events::parse_duration(&c.interval)?;
            verbs::events::stream(&rt, &c.id, interval, &mut |v| {
                let mut o = std::io::stdout().lock();
                writeln!(o, "{v}").and_then(|_| o.flush()).is_ok()
            })?;
            Ok(0)
        }
        Cmd::Update(c) => {
            let res = update_resources(&c)?;
            verbs::update::update(&rt, &c.id, &res)?;
            Ok(0)
        }
        Cmd::Pause(c) => {
            verbs::pause::pause(&rt, &c.id)?;
            Ok(0)
        }
        Cmd::Resume(c) => {
            verbs::pause::resume(&rt, &c.id)?;
            Ok(0)
        }
        Cmd::List(c) => {
            let rows = verbs::list::list(&rt)?;
            if c.quiet {
                let ids: String = rows.iter().map(|r| format!("{}\n", r.state.id)).collect();
                out(&ids);
            } else if c.format == "json" {
                // runc's list fills in the owner's user name (state leaves it empty).
                let v: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        let mut o = r.state.to_oci(r.status);
                        o.owner = user_name(r.state.owner);
                        o
                    })
                    .collect();
                // runc prints Go's nil slice, `null`, when there are no containers.
                let text = if v.is_empty() {
                    "null".to_owned()
                } else {
                    serde_json::to_string(&v)?
                };
                out(&(text + "\n"));
            } else {
                let mut t = String::from("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n");
                for r in &rows {
                    let pid = if r.status == warren_runtime::state::Status::Stopped {
                        0
                    } else {
                        r.state.init_pid
                    };
                    t.push_str(&format!(
                        "{}\t{}\t{}\t{}\t{}\t{}\n",
                        r.state.id,
                        pid,
                        r.status,
                        r.state.bundle.display(),
                        r.state.created,
                        user_name(r.state.owner)
                    ));
                }
                out(&tabulate(&t));
            }
            Ok(0)
        }
        Cmd::Spec(c) => {
            let bundle = c.bundle.clone().unwrap_or_else(|| ".".into());
            verbs::spec::write_spec(
                &bundle,
                c.rootless,
                nix::unistd::getuid().as_raw(),
                nix::unistd::getgid().as_raw(),
            )?;
            Ok(0)
        }
        Cmd::Features => {
            let probe = warren_sandbox::probe::Features::probe(
                std::path::Path::new("/proc"),
                std::path::Path::new("/sys"),
            );
            // The probe reports what this kernel lacks (and how warren degrades) itself.
            let extra: Vec<(String, String)> = probe.annotations().into_iter().collect();
            let v = verbs::features::features(&extra);
            out(&(serde_json::to_string_pretty(&v)? + "\n"));
            Ok(0)
        }
        Cmd::Cdi(crate::cli::CdiCmd::List) => {
            let dirs: Vec<&std::path::Path> =
                rt.devices.cdi_dirs.iter().map(|p| p.as_path()).collect();
            let (names, errors) = verbs::cdi::list(&dirs);
            for e in errors {
                eprintln!("warning: {e}");
            }
            out(&names.iter().map(|n| format!("{n}\n")).collect::<String>());
            Ok(0)
        }
        Cmd::Cdi(crate::cli::CdiCmd::Generate(g)) => {
            let kind: verbs::cdi::Kind = g.kind.parse()?;
            let mut roots = rt.devices.nvidia_roots.clone();
            roots.driver_root = g.driver_root.clone();
            let (text, found, absent) = verbs::cdi::render(
                verbs::cdi::generate(kind, &roots, g.builtin_hooks)?,
                g.format == "json",
            )?;
            for a in absent {
                eprintln!("{a}");
            }
            match &g.output {
                Some(p) => {
                    std::fs::write(p, &text).with_context(|| format!("write {}", p.display()))?
                }
                None => out(&text),
            }
            Ok(if found > 0 || kind == verbs::cdi::Kind::All {
                0
            } else {
                1
            })
        }
        Cmd::Checkpoint(_) | Cmd::Restore(_) => {
            bail!("checkpoint/restore is not supported by warren-runtime (no CRIU)")
        }
    }
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// Aligns tab-separated columns like Go's tabwriter as runc sets it up (minimum cell width
/// 12, padding 3).
fn tabulate(t: &str) -> String {
    let rows: Vec<Vec<&str>> = t.lines().map(|l| l.split('\t').collect()).collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut w = vec![0; cols];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}", width = (w[i] + 3).max(12)));
            }
        }
        s.push('\n');
    }
    s
}

fn update_resources(c: &crate::cli::Update) -> Result<LinuxResources> {
    let mut res: LinuxResources = match &c.resources {
        Some(p) => {
            let data = if p.as_os_str() == "-" {
                let mut s = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)
                    .context("read resources from stdin")?;
                s
            } else {
                std::fs::read(p).with_context(|| format!("read {}", p.display()))?
            };
            let de = &mut serde_json::Deserializer::from_slice(&data);
            serde_path_to_error::deserialize(de).map_err(|e| {
                anyhow::anyhow!("invalid resources: field `{}`: {}", e.path(), e.inner())
            })?
        }
        None => LinuxResources::default(),
    };
    let mut mem: LinuxMemory = (*res.memory()).unwrap_or_default();
    let mut mem_set = res.memory().is_some();
    let sizes = [
        ("--memory", &c.memory),
        ("--memory-reservation", &c.memory_reservation),
        ("--memory-swap", &c.memory_swap),
        ("--kernel-memory", &c.kernel_memory),
        ("--kernel-memory-tcp", &c.kernel_memory_tcp),
    ];
    for (flag, val) in sizes {
        let Some(v) = val else { continue };
        let n = parse_bytes(v).with_context(|| format!("invalid {flag}"))?;
        match flag {
            "--memory" => mem.set_limit(Some(n)),
            "--memory-reservation" => mem.set_reservation(Some(n)),
            "--memory-swap" => mem.set_swap(Some(n)),
            "--kernel-memory" => mem.set_kernel(Some(n)),
            _ => mem.set_kernel_tcp(Some(n)),
        };
        mem_set = true;
    }
    if mem_set {
        res.set_memory(Some(mem));
    }
    let mut cpu: LinuxCpu = res.cpu().clone().unwrap_or_default();
    let mut cpu_set = res.cpu().is_some();
    if let Some(v) = c.cpu_period {
        cpu.set_period(Some(v));
        cpu_set = true;
    }
    if let Some(v) = c.cpu_quota {
        cpu.set_quota(Some(v));
        cpu_set = true;
    }
    if let Some(v) = c.cpu_share {
        cpu.set_shares(Some(v));
        cpu_set = true;
    }
    if let Some(v) = c.cpu_rt_period {
        cpu.set_realtime_period(Some(v));
        cpu_set = true;
    }
    if let Some(v) = c.cpu_rt_runtime {
        cpu.set_realtime_runtime(Some(v));
        cpu_set = true;
    }
    if let Some(v) = &c.cpuset_cpus {
        cpu.set_cpus(Some(v.clone()));
        cpu_set = true;
    }
    if let Some(v) = &c.cpuset_mems {
        cpu.set_mems(Some(v.clone()));
        cpu_set = true;
    }
    if cpu_set {
        res.set_cpu(Some(cpu));
    }
    if let Some(v) = c.pids_limit {
        let mut p = LinuxPids::default();
        p.set_limit(v);
        res.set_pids(Some(p));
    }
    if let Some(w) = c.blkio_weight {
        let mut b: LinuxBlockIo = res.block_io().clone().unwrap_or_default();
        b.set_weight(Some(w));
        res.set_block_io(Some(b));
    }
    if c.l3_cache_schema.is_some() || c.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema/--mem-bw-schema: Intel RDT updates are not supported");
    }
    Ok(res)
}
