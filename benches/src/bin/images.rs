//! `warren-images-bench`: the image benchmarks of issue 4.
//!
//! ```text
//! warren-images-bench --store /var/lib/warren --image python [--image base] [--runs 3]
//!                     [--starts 50] [--warren PATH] [--workdir /var/tmp] [--json FILE]
//!                     [--only unpack|start]
//! ```
//! For each image: unpacking it with warren's unpacker (all layers into one directory,
//! and into the store's layer cache as overlay lower dirs) against `umoci raw unpack`,
//! `umoci unpack`, `podman load` and GNU tar; then starting a `/bin/true` container from it
//! (overlay rootfs + lifecycle + removal) against the plain-bundle lifecycle. Prints
//! markdown tables with ratios. Runs as root. Exit status: 0 done, 1 error (missing tool,
//! image or store, not root), 2 usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use warren_benches::images::{self, StartConfig, Tools, UnpackConfig};
use warren_benches::{lifecycle, machine::Machine};

/// Image unpack and container-start benchmarks (issue 4).
#[derive(Parser, Debug)]
#[command(name = "warren-images-bench", version)]
struct Args {
    /// The warren store (data root: `DIR/images/index.json`).
    #[arg(long, default_value = warren_images::DEFAULT_ROOT)]
    store: PathBuf,
    /// Image to measure (also found as `warren/NAME`); repeat for several.
    #[arg(long = "image", required = true)]
    images: Vec<String>,
    /// Rounds of the unpack comparison (each tool once per round, interleaved).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Timed container starts per subject.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    starts: u64,
    /// Untimed warm-up starts per subject.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// The warren-runtime binary (for the start comparison).
    #[arg(long, default_value = "/usr/local/bin/warren-runtime")]
    warren: PathBuf,
    /// Scratch space for unpacked trees; put it on the same filesystem as the store.
    #[arg(long, default_value = "/var/tmp")]
    workdir: PathBuf,
    /// Only one of the two comparisons.
    #[arg(long, value_parser = ["unpack", "start"])]
    only: Option<String>,
    /// Write all results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> ExitCode {
    let a = Args::parse();
    match run(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warren-images-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(a: &Args) -> Result<()> {
    let do_unpack = a.only.as_deref() != Some("start");
    let do_start = a.only.as_deref() != Some("unpack");
    if !nix::unistd::geteuid().is_root() {
        bail!("run as root (unpacking restores owners and device files; containers need it)");
    }
    // Check everything before measuring anything.
    let tools = if do_unpack {
        Some(Tools::find()?)
    } else {
        None
    };
    let warren = if do_start {
        Some(
            std::fs::canonicalize(&a.warren)
                .with_context(|| format!("--warren {}: not found", a.warren.display()))?,
        )
    } else {
        None
    };
    if !a.workdir.is_dir() {
        bail!("--workdir {}: not a directory", a.workdir.display());
    }
    let mut opened = Vec::new();
    for name in &a.images {
        opened.push(images::open_image(&a.store, name)?);
    }
    // Overlay mounts stay in this process's private mount namespace.
    lifecycle::private_mount_namespace()?;

    let m = Machine::describe("/proc".as_ref(), "/sys".as_ref());
    let fs = fs_type(&a.workdir);
    println!("## warren-images-bench\n");
    println!("- machine: {}", m.summary());
    println!(
        "- store {}, workdir {} ({fs})",
        a.store.display(),
        a.workdir.display()
    );
    if let Some(t) = &tools {
        println!("- tools: {}", t.versions().join("; "));
    }
    if let Some(w) = &warren {
        println!("- runtime: {}", w.display());
    }
    println!();

    let mut out = Vec::new();
    for (store, img) in &opened {
        let mut entry = serde_json::Map::new();
        entry.insert("image".into(), img.name.clone().into());
        if let Some(tools) = &tools {
            let r = images::unpack_bench(&UnpackConfig {
                store,
                image: img,
                tools,
                workdir: &a.workdir,
                runs: a.runs as usize,
                progress: !a.quiet,
            })?;
            println!("{}", images::unpack_markdown(&r));
            entry.insert("unpack".into(), serde_json::to_value(&r)?);
        }
        if let Some(w) = &warren {
            let r = images::start_bench(&StartConfig {
                store,
                image: img,
                runtime: w,
                workdir: &a.workdir,
                starts: a.starts as usize,
                warmup: a.warmup,
                progress: !a.quiet,
            })?;
            println!("{}", images::start_markdown(&r));
            entry.insert("start".into(), serde_json::to_value(&r)?);
        }
        out.push(serde_json::Value::Object(entry));
    }
    if let Some(p) = &a.json {
        let doc = serde_json::json!({
            "format": "warren-images-bench",
            "version": 1,
            "machine": m,
            "workdir": a.workdir,
            "workdir_fs": fs,
            "store": a.store,
            "tools": tools,
            "tool_versions": tools.as_ref().map(Tools::versions),
            "images": out,
        });
        std::fs::write(p, serde_json::to_vec_pretty(&doc)?)
            .with_context(|| format!("write {}", p.display()))?;
    }
    Ok(())
}

/// The filesystem type of `p`, by statfs magic.
fn fs_type(p: &std::path::Path) -> String {
    let Ok(s) = nix::sys::statfs::statfs(p) else {
        return "unknown".into();
    };
    let magic = s.filesystem_type().0 as u64;
    match magic {
        0xEF53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x794C_7630 => "overlay".into(),
        m => format!("fs magic {m:#x}"),
    }
}
