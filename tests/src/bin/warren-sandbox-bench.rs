//! `warren-sandbox-bench`: per-syscall seccomp overhead of the `agent` profile against
//! crun with podman's default profile, Landlock's cost on an open(2) loop, and the
//! seccomp-bundle lifecycle. Run as root:
//!
//! ```sh
//! cargo build --release -p warren-runtime -p warren-e2e --bin warren-sandbox-bench
//! target/release/warren-sandbox-bench [--iters N] [--reps N] [--runs N] \
//!     [--lifecycle target/release/warren-lifecycle-bench] [--lifecycle-runs 40]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use warren_e2e::sandbox_bench::{BenchOptions, run};

const USAGE: &str = "usage: warren-sandbox-bench [--iters N] [--reps N] [--runs N] \
                     [--lifecycle PATH] [--lifecycle-runs N]";

fn parse(mut args: impl Iterator<Item = String>) -> Result<BenchOptions, String> {
    let mut o = BenchOptions::default();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        let num = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--iters" => o.iters = num(value()?)?,
            "--reps" => o.reps = num(value()?)? as u32,
            "--runs" => o.runs = num(value()?)? as u32,
            "--lifecycle" => o.lifecycle = Some(PathBuf::from(value()?)),
            "--lifecycle-runs" => o.lifecycle_runs = num(value()?)? as u32,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(report) => {
            println!("{}", report.markdown());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("warren-sandbox-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
