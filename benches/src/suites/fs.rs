//! File system: open/stat loops over many small files and a large sequential read, on the
//! host, in a container whose rootfs is the data's own directory, on an overlay rootfs
//! (mounted here), through a bind mount, and through a bind mount under Landlock (profile
//! `agent`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Config, Ctx, args, collect_configs, interleave, need_probe};
use crate::probe::{BundleOpts, Probe};
use crate::results::Suite;

const NAME: &str = "fs";
const TITLE: &str = "File system";
const METHOD: &str = "A data tree of N small files and one large file. wprobe opens and \
closes every file (ns per open+close), stats every file (ns per stat), and reads the large \
file with 1 MiB reads (MiB/s; the file was just written, so this is a page-cache read: it \
measures the path through the file system layers, not the disk). Places: the host; a \
warren-runtime container whose rootfs is the data tree's directory; an overlay rootfs \
(lower = that directory, mounted by the harness); a bind mount of the data at /data; and \
the same bind mount with the `agent` profile (Landlock: read-only `/`). Interleaved \
rounds; ratio: median over the host's median.";

/// Creates the data tree (`root/data/files/f<i>`, `root/data/big`) plus what a busybox
/// rootfs needs, so that `root` can serve as a rootfs and as an overlay lower dir.
fn make_tree(root: &Path, probe: &Probe, files: usize, big_mib: usize) -> Result<()> {
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "data/files"] {
        let p = root.join(d);
        std::fs::create_dir_all(&p).with_context(|| format!("create {}", p.display()))?;
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).context("copy busybox")?;
    std::fs::copy(&probe.path, root.join("bin/wprobe")).context("copy the probe")?;
    for i in 0..files {
        let p = root.join(format!("data/files/f{i}"));
        std::fs::write(&p, b"warren bench\n").with_context(|| format!("write {}", p.display()))?;
    }
    let big = root.join("data/big");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&big).with_context(|| format!("create {}", big.display()))?,
    );
    let mut block = vec![0u8; 1 << 20];
    for (i, b) in block.iter_mut().enumerate() {
        *b = (i.wrapping_mul(2654435761) >> 13) as u8;
    }
    for _ in 0..big_mib {
        f.write_all(&block)
            .with_context(|| format!("write {}", big.display()))?;
    }
    f.flush()
        .with_context(|| format!("write {}", big.display()))?;
    Ok(())
}

/// An overlay mount, unmounted on drop.
#[derive(Debug)]
struct Overlay(PathBuf);

impl Overlay {
    fn mount(lower: &Path, dir: &Path) -> Result<Overlay> {
        let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
        for d in [&upper, &work, &merged] {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )
        .with_context(|| format!("mount overlay on {} ({opts})", merged.display()))?;
        Ok(Overlay(merged))
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Runs the suite.
pub fn run(ctx: &Ctx) -> Result<Suite> {
    let mut suite = Suite::new(NAME, TITLE, METHOD);
    let probe = match need_probe(ctx, &suite) {
        Ok(p) => p,
        Err(s) => return Ok(*s),
    };
    let s = ctx.sizes;
    let tree = ctx.dir("fs-tree")?;
    ctx.say(&format!(
        "fs: writing {} files and a {} MiB file",
        s.files, s.seqread_mib
    ));
    make_tree(&tree, probe, s.files, s.seqread_mib)?;
    let w = ctx.warren();
    let overlay = Overlay::mount(&tree, &ctx.dir("fs-overlay")?);
    let data_bind = vec![(tree.join("data"), "/data".to_owned())];
    let mut made = vec![
        ("host".to_owned(), Ok(Config::host())),
        (
            "rootfs directory".to_owned(),
            Config::container(
                ctx,
                w,
                Some("rootfs dir"),
                "fs-dir",
                &BundleOpts {
                    rootfs: Some(tree.clone()),
                    ..BundleOpts::default()
                },
            ),
        ),
    ];
    made.push((
        "overlay".to_owned(),
        overlay
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .and_then(|o| {
                Config::container(
                    ctx,
                    w,
                    Some("overlay"),
                    "fs-overlay-bundle",
                    &BundleOpts {
                        rootfs: Some(o.0.clone()),
                        ..BundleOpts::default()
                    },
                )
            }),
    ));
    made.push((
        "bind mount".to_owned(),
        Config::container(
            ctx,
            w,
            Some("bind mount"),
            "fs-bind",
            &BundleOpts {
                binds: data_bind.clone(),
                ..BundleOpts::default()
            },
        ),
    ));
    made.push((
        "bind mount + Landlock".to_owned(),
        Config::container(
            ctx,
            w,
            Some("bind mount + Landlock (agent)"),
            "fs-landlock",
            &BundleOpts {
                binds: data_bind,
                profile: Some("agent".into()),
                ..BundleOpts::default()
            },
        ),
    ));
    let configs = collect_configs(&mut suite, made);
    let host_data = tree.join("data");
    let reps = s.reps + 1;
    // The host reads the tree where it is; containers see it at /data.
    let dir_of = |c: &Config| {
        if c.runtime.is_none() {
            host_data.display().to_string()
        } else {
            "/data".to_owned()
        }
    };
    let measure =
        |suite: &mut Suite, group: &str, unit: &str, hib: bool, f: &dyn Fn(&str) -> Vec<String>| {
            suite.measurements.extend(interleave(
                ctx,
                &configs,
                s.rounds,
                &|c| f(&dir_of(c)),
                group,
                unit,
                hib,
            ));
            suite.set_baseline(group, &["host"]);
        };
    ctx.say("fs: open+close");
    measure(&mut suite, "open+close", "ns/op", false, &|d| {
        args(&[&"open", &format!("{d}/files"), &s.files, &reps])
    });
    ctx.say("fs: stat");
    measure(&mut suite, "stat", "ns/op", false, &|d| {
        args(&[&"stat", &format!("{d}/files"), &s.files, &reps])
    });
    ctx.say("fs: sequential read");
    measure(
        &mut suite,
        &format!("sequential read {} MiB (page cache)", s.seqread_mib),
        "MiB/s",
        true,
        &|d| args(&[&"seqread", &format!("{d}/big"), &reps.min(4)]),
    );
    drop(overlay);
    Ok(suite)
}
