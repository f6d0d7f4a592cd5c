//! What a `warren bench` run measures: the typed configuration that the `warren bench`
//! subcommand and the `warren-bench` binary build from their flags, and the sizes each
//! level (quick, default, full) uses.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::BenchError;

/// The suites, in the order they run and appear in the report.
pub const SUITES: &[&str] = &[
    "lifecycle",
    "throughput",
    "syscall",
    "fs",
    "network",
    "cpu",
    "memory",
    "gpu",
];

/// A `warren bench` run.
///
/// ```no_run
/// use std::path::PathBuf;
/// use warren_benches::config::BenchConfig;
/// let config = BenchConfig {
///     quick: true,
///     vs: vec!["runc".into(), "crun".into()],
///     ..BenchConfig::new(PathBuf::from("/usr/local/bin/warren-runtime"), PathBuf::from("bench-out"))
/// };
/// let report = warren_benches::report::run(&config)?;
/// println!("{}", report.dir.join("report.md").display());
/// # Ok::<(), warren_benches::BenchError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct BenchConfig {
    /// Few runs and small sizes: under a minute on a 2-core machine (warren alone).
    pub quick: bool,
    /// Many runs, large sizes, several interleaved rounds.
    pub full: bool,
    /// Runtimes to compare with: names looked up on `PATH` (`runc`, `crun`) or paths.
    /// Missing ones are noted in the report and skipped.
    pub vs: Vec<String>,
    /// The warren-runtime binary.
    pub warren_runtime: PathBuf,
    /// Where `report.md`, `results.json` and the PNGs go (created if missing).
    pub out_dir: PathBuf,
    /// Suites to run (names from [`SUITES`]); empty means all.
    pub suites: Vec<String>,
    /// A line for the report header (e.g. "numbers taken on a shared 2-vCPU VM").
    pub note: Option<String>,
    /// Print progress lines (`# suite ...`) to stderr.
    pub progress: bool,
}

impl BenchConfig {
    /// A default-level run of every suite for `warren_runtime`, alone, into `out_dir`.
    pub fn new(warren_runtime: PathBuf, out_dir: PathBuf) -> Self {
        BenchConfig {
            warren_runtime,
            out_dir,
            ..BenchConfig::default()
        }
    }

    /// The level, or [`BenchError::QuickAndFull`].
    pub fn level(&self) -> Result<Level, BenchError> {
        match (self.quick, self.full) {
            (true, true) => Err(BenchError::QuickAndFull),
            (true, false) => Ok(Level::Quick),
            (false, true) => Ok(Level::Full),
            (false, false) => Ok(Level::Default),
        }
    }

    /// The suites to run, in report order, or [`BenchError::UnknownSuite`].
    pub fn selected_suites(&self) -> Result<Vec<&'static str>, BenchError> {
        for s in &self.suites {
            if !SUITES.contains(&s.as_str()) {
                return Err(BenchError::UnknownSuite {
                    name: s.clone(),
                    known: SUITES.join(", "),
                });
            }
        }
        Ok(SUITES
            .iter()
            .copied()
            .filter(|s| self.suites.is_empty() || self.suites.iter().any(|x| x == s))
            .collect())
    }
}

/// How thorough a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// `--quick`.
    Quick,
    /// Neither flag.
    Default,
    /// `--full`.
    Full,
}

/// Run counts and sizes for a level.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sizes {
    /// Timed lifecycles per runtime and configuration.
    pub lifecycle_runs: usize,
    /// Untimed lifecycles first.
    pub lifecycle_warmup: usize,
    /// Containers per throughput trial.
    pub throughput_containers: usize,
    /// Trials per parallelism.
    pub throughput_trials: usize,
    /// Interleaved rounds of the probe suites (each configuration runs once per round).
    pub rounds: usize,
    /// Timed repetitions inside one probe run (after one untimed).
    pub reps: usize,
    /// getpid calls per repetition.
    pub getpid_iters: usize,
    /// write+read pairs per repetition.
    pub rw_iters: usize,
    /// Files in the open/stat loop.
    pub files: usize,
    /// Size of the sequentially read file, MiB.
    pub seqread_mib: usize,
    /// TCP round trips per repetition.
    pub tcp_rtt_iters: usize,
    /// MiB streamed per TCP throughput repetition.
    pub tcp_mib: usize,
    /// 64×64 matrix products per CPU repetition.
    pub cpu_iters: usize,
    /// Containers per runtime for the memory measurements.
    pub memory_runs: usize,
    /// Order of the GPU suite's square fp32 matrix product.
    pub gpu_matmul_n: usize,
    /// MiB per GPU host↔device copy repetition.
    pub gpu_copy_mib: usize,
}

impl Level {
    /// The sizes of this level.
    pub fn sizes(self) -> Sizes {
        match self {
            Level::Quick => Sizes {
                lifecycle_runs: 10,
                lifecycle_warmup: 2,
                throughput_containers: 16,
                throughput_trials: 1,
                rounds: 1,
                reps: 5,
                getpid_iters: 100_000,
                rw_iters: 20_000,
                files: 500,
                seqread_mib: 256,
                tcp_rtt_iters: 2_000,
                tcp_mib: 64,
                cpu_iters: 600,
                memory_runs: 3,
                gpu_matmul_n: 1024,
                gpu_copy_mib: 64,
            },
            Level::Default => Sizes {
                lifecycle_runs: 30,
                lifecycle_warmup: 3,
                throughput_containers: 40,
                throughput_trials: 3,
                rounds: 2,
                reps: 8,
                getpid_iters: 100_000,
                rw_iters: 50_000,
                files: 1_000,
                seqread_mib: 512,
                tcp_rtt_iters: 5_000,
                tcp_mib: 128,
                cpu_iters: 1_000,
                memory_runs: 5,
                gpu_matmul_n: 2048,
                gpu_copy_mib: 256,
            },
            Level::Full => Sizes {
                lifecycle_runs: 60,
                lifecycle_warmup: 5,
                throughput_containers: 60,
                throughput_trials: 6,
                rounds: 4,
                reps: 10,
                getpid_iters: 200_000,
                rw_iters: 100_000,
                files: 2_000,
                seqread_mib: 1_024,
                tcp_rtt_iters: 10_000,
                tcp_mib: 256,
                cpu_iters: 1_500,
                memory_runs: 10,
                gpu_matmul_n: 4096,
                gpu_copy_mib: 1024,
            },
        }
    }

    /// `quick`, `default` or `full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Quick => "quick",
            Level::Default => "default",
            Level::Full => "full",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_and_full_exclude_each_other() {
        let c = BenchConfig {
            quick: true,
            full: true,
            ..BenchConfig::default()
        };
        assert!(matches!(c.level(), Err(BenchError::QuickAndFull)));
    }

    #[test]
    fn suites_are_checked_and_ordered() {
        let mut c = BenchConfig {
            suites: vec!["cpu".into(), "lifecycle".into()],
            ..BenchConfig::default()
        };
        assert_eq!(c.selected_suites().ok(), Some(vec!["lifecycle", "cpu"]));
        c.suites.push("disk".into());
        let e = c.selected_suites().err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("\"disk\"") && e.contains("lifecycle")));
        c.suites.clear();
        assert_eq!(
            c.selected_suites().ok().map(|v| v.len()),
            Some(SUITES.len())
        );
    }
}
