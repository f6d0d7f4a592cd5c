//! The entry point of `warren bench`: checks the configuration, finds the runtimes,
//! measures every selected suite, and writes `report.md`, `results.json` and the PNG plots
//! to the output directory.
//!
//! The measuring runs on a thread of its own inside a private mount namespace (overlay
//! mounts, and a hybrid host's cgroup2 controller list hidden so crun 1.8 accepts it: see
//! [`crate::lifecycle::private_mount_namespace`]); the caller's thread and its mounts are
//! left alone.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::{BenchConfig, Level};
use crate::error::BenchError;
use crate::lifecycle::{self, Runtime};
use crate::machine::Machine;
use crate::probe::Probe;
use crate::results::{FORMAT, FORMAT_VERSION, Results, RuntimeInfo, Suite, SuiteStatus};
use crate::suites::{self, Ctx};
use crate::{bundle, markdown, plot, runtimes};

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Report {
    /// The output directory.
    pub dir: PathBuf,
    /// Everything measured (also in `dir/results.json`).
    pub results: Results,
    /// The files written (`report.md`, `results.json`, PNGs).
    pub files: Vec<PathBuf>,
}

/// Runs `warren bench` as `config` says and writes the report.
///
/// Errors are about the configuration (`--quick` with `--full`, an unknown suite, a
/// missing warren-runtime, not root) or the environment (output directory, scratch space);
/// runtimes from `--vs` that are missing are noted and skipped, and a runtime that fails a
/// workload is reported as failed in the results.
pub fn run(config: &BenchConfig) -> Result<Report, BenchError> {
    let level = config.level()?;
    let suites = config.selected_suites()?;
    let warren = runtimes::warren(&config.warren_runtime)?;
    let runtimes::Resolved {
        found: others,
        infos: other_infos,
        mut notes,
    } = runtimes::resolve_vs(&config.vs)?;
    if !nix::unistd::geteuid().is_root() {
        return Err(BenchError::NotRoot);
    }
    std::fs::create_dir_all(&config.out_dir).map_err(|source| BenchError::Output {
        path: config.out_dir.clone(),
        source,
    })?;
    let started_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let t0 = Instant::now();
    let machine = Machine::describe(Path::new("/proc"), Path::new("/sys"));
    let mut infos = vec![RuntimeInfo {
        name: warren.name.clone(),
        path: Some(warren.path.display().to_string()),
        version: runtimes::version(&warren.path),
        found: true,
    }];
    infos.extend(other_infos);
    if let Some(n) = raise_nofile() {
        notes.push(n);
    }
    let mut all = vec![warren];
    all.extend(others);
    let measured = std::thread::scope(|s| s.spawn(|| measure(config, level, &suites, all)).join())
        .map_err(|_| BenchError::Setup(anyhow::anyhow!("the measuring thread panicked")))??;
    let (suites, more_notes) = measured;
    notes.extend(more_notes);
    let results = Results {
        format: FORMAT.to_owned(),
        version: FORMAT_VERSION,
        started_at,
        seconds: t0.elapsed().as_secs_f64(),
        level: level.as_str().to_owned(),
        note: config.note.clone(),
        machine,
        runtimes: infos,
        notes,
        suites,
    };
    write(&results, &config.out_dir)
}

/// Reads a `results.json` written earlier (validating it against the schema) and writes
/// the report and plots again into `dir` (`warren-bench --render FILE`): for a report
/// layout or plot change, without measuring again.
pub fn render(results_json: &Path, dir: &Path) -> Result<Report, BenchError> {
    let bad = |msg: String| BenchError::Render {
        path: results_json.to_owned(),
        msg,
    };
    let text = std::fs::read_to_string(results_json).map_err(|e| bad(e.to_string()))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    crate::schema::validate_results(&doc).map_err(|errors| bad(errors.join("; ")))?;
    let results: Results = serde_json::from_value(doc).map_err(|e| bad(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|source| BenchError::Output {
        path: dir.to_owned(),
        source,
    })?;
    write_report(&results, dir, text.as_bytes())
}

/// Writes `results.json`, `report.md` and the plots of `results` into `dir`.
pub fn write(results: &Results, dir: &Path) -> Result<Report, BenchError> {
    write_report(results, dir, &serde_json::to_vec_pretty(results)?)
}

/// Writes `json` as `results.json`, and the report and plots of `results`, into `dir`.
fn write_report(results: &Results, dir: &Path, json: &[u8]) -> Result<Report, BenchError> {
    let out = |name: &str, bytes: &[u8]| -> Result<PathBuf, BenchError> {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|source| BenchError::Output {
            path: p.clone(),
            source,
        })?;
        Ok(p)
    };
    let mut files = vec![out("results.json", json)?];
    files.push(out("report.md", markdown::render(results).as_bytes())?);
    files.extend(plot::draw_all(results, dir)?);
    Ok(Report {
        dir: dir.to_owned(),
        results: results.clone(),
        files,
    })
}

/// Raises this process's `RLIMIT_NOFILE` to 1048576 (or `fs.nr_open`), as container
/// engines run (containerd's and podman's units set `LimitNOFILE=infinity`), so that
/// profiles asking for a high `nofile` limit can be measured. Returns a note when changed.
fn raise_nofile() -> Option<String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    let want = nr_open.min(1 << 20);
    if soft >= want && hard >= want {
        return None;
    }
    if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, want, want.max(hard)) {
        return Some(format!(
            "RLIMIT_NOFILE of the harness is {soft}/{hard} and could not be raised ({e}; \
             CAP_SYS_RESOURCE missing?): profiles asking for more are measured with nofile \
             capped (marked *)"
        ));
    }
    Some(format!(
        "RLIMIT_NOFILE of the harness (inherited by the runtimes) raised from {soft}/{hard} \
         to {want}/{}, as container engines run",
        want.max(hard)
    ))
}

fn measure(
    config: &BenchConfig,
    level: Level,
    names: &[&str],
    runtimes: Vec<Runtime>,
) -> Result<(Vec<Suite>, Vec<String>), BenchError> {
    lifecycle::private_mount_namespace().map_err(BenchError::Setup)?;
    let work = tempfile::Builder::new()
        .prefix("warren-bench-")
        .tempdir()
        .map_err(|e| BenchError::Setup(anyhow::anyhow!("create a scratch directory: {e}")))?;
    let mut notes = Vec::new();
    let probe_dir = work.path().join("probe");
    let probe = std::fs::create_dir_all(&probe_dir)
        .map_err(anyhow::Error::from)
        .and_then(|()| Probe::build(&probe_dir))
        .map_err(|e| format!("{e:#}"));
    if let Err(e) = &probe {
        notes.push(format!("probe suites skipped: {e}"));
    }
    let podman_profile = Path::new(bundle::DEFAULT_PROFILE).exists();
    let ctx = Ctx {
        runtimes,
        level,
        sizes: level.sizes(),
        work: work.path().to_owned(),
        probe,
        podman_profile,
        progress: config.progress,
    };
    let mut out = Vec::new();
    for name in names {
        let t = Instant::now();
        let r = match *name {
            "lifecycle" => suites::lifecycle::run(&ctx),
            "throughput" => suites::throughput::run(&ctx),
            "syscall" => suites::syscall::run(&ctx),
            "fs" => suites::fs::run(&ctx),
            "network" => suites::network::run(&ctx),
            "cpu" => suites::cpu::run(&ctx),
            "memory" => suites::memory::run(&ctx),
            "gpu" => suites::gpu::run(&ctx),
            other => Err(anyhow::anyhow!("no suite {other}")),
        };
        let mut suite = r.unwrap_or_else(|e| {
            let mut s = Suite::new(name, name, "");
            s.status = SuiteStatus::Failed;
            s.reason = Some(format!("{e:#}"));
            s
        });
        suite.seconds = t.elapsed().as_secs_f64();
        ctx.say(&format!("{name}: done in {:.1} s", suite.seconds));
        out.push(suite);
    }
    Ok((out, notes))
}
