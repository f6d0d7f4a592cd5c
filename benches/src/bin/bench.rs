//! `warren-bench`: what `warren bench` does, as a standalone binary.
//!
//! ```text
//! warren-bench [--quick|--full] [--vs runc,crun] [--out DIR] [--warren PATH]
//!              [--suites lifecycle,cpu] [--note TEXT]
//! warren-bench --render results.json --out DIR     # report and plots again, no measuring
//! ```
//! Exit status: 0 when the report was written, 1 on an error (the message says which flag
//! or file), 2 on a usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use warren_benches::{BenchConfig, report};

/// Measure what the sandbox costs: warren-runtime side by side with runc, crun and the host.
#[derive(Parser, Debug)]
#[command(name = "warren-bench", version)]
struct Args {
    /// Few runs and small sizes (under a minute on 2 cores).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Many runs, large sizes, several interleaved rounds.
    #[arg(long)]
    full: bool,
    /// Runtimes to compare with, comma-separated names on PATH or paths.
    #[arg(long, value_delimiter = ',')]
    vs: Vec<String>,
    /// Output directory for report.md, results.json and the PNG plots.
    #[arg(long, default_value = "warren-bench-report")]
    out: PathBuf,
    /// The warren-runtime binary.
    #[arg(long, default_value = "/usr/local/bin/warren-runtime")]
    warren: PathBuf,
    /// Only these suites, comma-separated (lifecycle, throughput, syscall, fs, network,
    /// cpu, memory, gpu).
    #[arg(long, value_delimiter = ',')]
    suites: Vec<String>,
    /// A line for the report header.
    #[arg(long)]
    note: Option<String>,
    /// Measure nothing: write report.md and the plots again from this results.json
    /// (into --out).
    #[arg(long, value_name = "RESULTS_JSON")]
    render: Option<PathBuf>,
}

fn main() -> ExitCode {
    let a = Args::parse();
    if let Some(json) = &a.render {
        return finish(report::render(json, &a.out));
    }
    let config = BenchConfig {
        quick: a.quick,
        full: a.full,
        vs: a.vs,
        warren_runtime: a.warren,
        out_dir: a.out,
        suites: a.suites,
        note: a.note,
        progress: true,
    };
    finish(report::run(&config))
}

fn finish(r: Result<report::Report, warren_benches::BenchError>) -> ExitCode {
    match r {
        Ok(r) => {
            for f in &r.files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("warren-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
