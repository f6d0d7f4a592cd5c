//! Image benchmarks (issue 4): unpacking an image with warren's unpacker against
//! `umoci unpack`, `podman load` and GNU tar, and starting a container from an image
//! (the store's overlay rootfs, the runtime's lifecycle, rootfs removal) against the
//! plain-bundle lifecycle. The binary `warren-images-bench` drives both.
//!
//! Unpack subjects take turns within each round (the order rotates from round to round)
//! so page-cache state and machine drift hit all alike; every blob is read once before
//! the first round, and `sync(2)` runs, untimed, before each measurement so no subject
//! pays for the previous one's writeback. Outputs go to fresh directories under the work
//! directory (choose it on the same filesystem as the store) and are removed, untimed,
//! after each measurement.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use warren_images::layer::{Compression, UnpackMode, UnpackStats, unpack};
use warren_images::{Image, ImportOptions, RootfsOptions, Store};

use crate::lifecycle::{self, Mode, Runtime};
use crate::stats::{Summary, summarize};

/// External tools the unpack comparison runs.
#[derive(Debug, Clone, Serialize)]
pub struct Tools {
    /// `umoci` (required).
    pub umoci: PathBuf,
    /// `podman`, when found.
    pub podman: Option<PathBuf>,
    /// GNU `tar`, when found.
    pub tar: Option<PathBuf>,
}

/// Finds `name` on `PATH` (or takes it as a path when it has a `/`).
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH")?
        .to_string_lossy()
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

impl Tools {
    /// Finds the tools; umoci missing is an error, podman and tar are optional.
    pub fn find() -> Result<Tools> {
        let Some(umoci) = which("umoci") else {
            bail!(
                "umoci not found on PATH: the unpack comparison needs it (Debian: apt-get install \
                 umoci), or pass --only start"
            );
        };
        Ok(Tools {
            umoci,
            podman: which("podman"),
            tar: which("tar"),
        })
    }

    /// First line of `TOOL --version` for each tool found.
    pub fn versions(&self) -> Vec<String> {
        let mut v = Vec::new();
        for p in [Some(&self.umoci), self.podman.as_ref(), self.tar.as_ref()]
            .into_iter()
            .flatten()
        {
            if let Ok(o) = Command::new(p).arg("--version").output() {
                let s = String::from_utf8_lossy(&o.stdout);
                if let Some(l) = s.lines().next() {
                    v.push(l.trim().to_owned());
                }
            }
        }
        v
    }
}

/// Opens an existing warren store (never creates one) and finds `name` in it, also as
/// `warren/NAME` (as `warren run` does for curated images).
pub fn open_image(store_root: &Path, name: &str) -> Result<(Store, Image)> {
    let index = store_root.join("images/index.json");
    if !index.is_file() {
        bail!(
            "--store {}: not a warren image store (no {})",
            store_root.display(),
            index.display()
        );
    }
    let store =
        Store::open(store_root).with_context(|| format!("open store {}", store_root.display()))?;
    let candidates = [name.to_owned(), format!("warren/{name}")];
    for c in &candidates {
        if let Ok(img) = store.image(c) {
            if img.layers.is_empty() {
                bail!("image {} has no layers", img.name);
            }
            return Ok((store, img));
        }
    }
    let known: Vec<String> = store
        .list()
        .map(|l| l.into_iter().map(|i| i.name).collect())
        .unwrap_or_default();
    bail!(
        "image {name:?} is not in the store {} (have: {})",
        store_root.display(),
        if known.is_empty() {
            "none".to_owned()
        } else {
            known.join(", ")
        }
    )
}

/// A reader that hashes what passes through it (the layer's diff id).
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// Applies every layer of `img`, bottom first, into the directory `dest` (created) with
/// `UnpackMode::Apply` (whiteouts delete), checking each layer's diff id as umoci does.
pub fn warren_apply(store: &Store, img: &Image, dest: &Path) -> Result<UnpackStats> {
    std::fs::create_dir(dest).with_context(|| format!("create {}", dest.display()))?;
    let mut total = UnpackStats::default();
    for (blob, diff) in img.layers.iter().zip(&img.diff_ids) {
        let p = store.blob_path(blob);
        let f = File::open(&p).with_context(|| format!("open {}", p.display()))?;
        let (_, dec) = Compression::auto_decoder(BufReader::with_capacity(1 << 20, f))
            .with_context(|| format!("decompress {}", p.display()))?;
        let mut h = Hashing {
            inner: dec,
            hash: Sha256::new(),
        };
        let s = unpack(&mut h, dest, UnpackMode::Apply)
            .with_context(|| format!("unpack layer {blob}"))?;
        io::copy(&mut h, &mut io::sink()).with_context(|| format!("read {}", p.display()))?;
        let got = warren_images::Digest::from_sha256(h.hash);
        if &got != diff {
            bail!("layer {blob}: diff id {got}, want {diff}");
        }
        total.entries += s.entries;
        total.bytes += s.bytes;
    }
    Ok(total)
}

/// One unpack tool under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnpackSubject {
    /// `layer::unpack` of every layer into one directory, `UnpackMode::Apply`.
    WarrenDir,
    /// `Store::unpack` into a fresh store's layer cache: each layer its own overlay lower
    /// directory (`UnpackMode::Overlay`), as containers use them.
    WarrenOverlay,
    /// `umoci raw unpack`: the rootfs only.
    UmociRaw,
    /// `umoci unpack`: a runtime bundle (rootfs, config.json, an mtree manifest).
    Umoci,
    /// `podman load` of the image's oci-archive into fresh overlay storage.
    PodmanLoad,
    /// GNU tar, every layer in turn into one directory.
    Tar,
}

impl UnpackSubject {
    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Self::WarrenDir => "warren, one directory",
            Self::WarrenOverlay => "warren, overlay lower dirs",
            Self::UmociRaw => "umoci raw unpack",
            Self::Umoci => "umoci unpack",
            Self::PodmanLoad => "podman load",
            Self::Tar => "GNU tar -x",
        }
    }

    /// What exactly is timed.
    pub fn what(self) -> &'static str {
        match self {
            Self::WarrenDir => {
                "layer::unpack, UnpackMode::Apply, all layers into one directory; gzip/zstd \
                 stream and diff-id sha256 checked"
            }
            Self::WarrenOverlay => {
                "Store::unpack on a fresh store (the layer cache: one overlay lower dir per \
                 layer, UnpackMode::Overlay, diff id checked); the import before it is untimed"
            }
            Self::UmociRaw => "umoci raw unpack --image LAYOUT:REF ROOTFS (rootfs only)",
            Self::Umoci => {
                "umoci unpack --image LAYOUT:REF BUNDLE (rootfs, config.json and an mtree \
                 manifest with a sha256 of every file, for umoci repack)"
            }
            Self::PodmanLoad => {
                "podman load -i oci-archive into a fresh --root (overlay driver): archive read, \
                 blobs copied, layers applied"
            }
            Self::Tar => "tar -x[z|--zstd]f BLOB -C DIR per layer (no whiteouts, no digest check)",
        }
    }
}

/// Results of one unpack subject.
#[derive(Debug, Clone, Serialize)]
pub struct UnpackResult {
    pub subject: UnpackSubject,
    pub label: String,
    pub what: String,
    /// Wall seconds of each successful run, in run order.
    pub samples_s: Vec<f64>,
    pub median_s: f64,
    pub min_s: f64,
    /// median / median of warren, one directory.
    pub ratio: f64,
    pub failures: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// The unpack comparison for one image.
#[derive(Debug, Clone, Serialize)]
pub struct UnpackReport {
    pub image: String,
    pub layers: usize,
    /// Tar entries and bytes of file content over all layers (from warren's unpack).
    pub entries: u64,
    pub bytes: u64,
    /// Sum of the layer blobs as stored.
    pub compressed_bytes: u64,
    pub runs: usize,
    pub results: Vec<UnpackResult>,
    /// Seconds of the (untimed) `Store::import_archive` before each overlay unpack: with
    /// it, the overlay row compares with `podman load`.
    pub warren_import_s: Vec<f64>,
    /// Subjects not measured, with why.
    pub skipped: Vec<String>,
}

/// How to run the unpack comparison.
#[derive(Debug)]
pub struct UnpackConfig<'a> {
    pub store: &'a Store,
    pub image: &'a Image,
    pub tools: &'a Tools,
    /// Scratch space, on the filesystem to measure.
    pub workdir: &'a Path,
    pub runs: usize,
    /// Progress lines on stderr.
    pub progress: bool,
}

fn sync() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

/// Removes `dir`, unmounting anything mounted below it first (a tool that left a mount).
pub fn remove_tree(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") {
        let d = dir.to_string_lossy().into_owned();
        let below = format!("{}/", d.trim_end_matches('/'));
        let mut mounts: Vec<&str> = mi
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| *m == d || m.starts_with(&below))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))
}

fn run_tool(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawn {:?}", cmd.get_program()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        bail!(
            "{:?} {}: {}",
            cmd.get_program(),
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}

/// Reads every layer blob once so that all subjects find them in the page cache.
fn warm(store: &Store, img: &Image) -> Result<()> {
    for b in &img.layers {
        let p = store.blob_path(b);
        let mut f = File::open(&p).with_context(|| format!("open {}", p.display()))?;
        io::copy(&mut f, &mut io::sink()).with_context(|| format!("read {}", p.display()))?;
    }
    Ok(())
}

fn fmt_err(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

/// Runs the unpack comparison.
pub fn unpack_bench(c: &UnpackConfig<'_>) -> Result<UnpackReport> {
    let UnpackConfig {
        store, image: img, ..
    } = *c;
    let scratch = tempfile::Builder::new()
        .prefix("warren-images-bench-")
        .tempdir_in(c.workdir)
        .with_context(|| format!("create a directory in --workdir {}", c.workdir.display()))?;
    let work = scratch.path();
    let progress = |s: &str| {
        if c.progress {
            eprintln!("# {s}");
        }
    };
    progress(&format!("{}: reading the layer blobs once", img.name));
    warm(store, img)?;
    // The oci-archive podman loads and the overlay subject imports (untimed).
    let archive = work.join("image.oci.tar");
    store
        .export_archive(
            &[img.name.as_str()],
            &archive,
            warren_images::ArchiveFormat::Oci,
        )
        .with_context(|| format!("export {} to {}", img.name, archive.display()))?;
    let compressed_bytes = img
        .layers
        .iter()
        .map(|b| std::fs::metadata(store.blob_path(b)).map_or(0, |m| m.len()))
        .sum();
    let layout = store.layout_dir();
    let image_ref = format!("{}:{}", layout.display(), img.name);

    let mut subjects = vec![
        UnpackSubject::WarrenDir,
        UnpackSubject::WarrenOverlay,
        UnpackSubject::UmociRaw,
        UnpackSubject::Umoci,
    ];
    let mut skipped = Vec::new();
    if c.tools.podman.is_some() {
        subjects.push(UnpackSubject::PodmanLoad);
    } else {
        skipped.push("podman load: podman not found on PATH".to_owned());
    }
    if c.tools.tar.is_some() {
        subjects.push(UnpackSubject::Tar);
    } else {
        skipped.push("GNU tar: tar not found on PATH".to_owned());
    }
    let n = subjects.len();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut fails = vec![0usize; n];
    let mut first_err: Vec<Option<String>> = vec![None; n];
    let mut import_s = Vec::new();
    let mut stats = None;

    for round in 0..c.runs {
        for k in 0..n {
            let idx = (k + round) % n;
            let s = subjects[idx];
            let dest = work.join(format!("r{round}-{idx}"));
            progress(&format!(
                "{}: round {}/{}: {}",
                img.name,
                round + 1,
                c.runs,
                s.label()
            ));
            let r = measure_unpack(c, s, &dest, &archive, &image_ref, &mut import_s);
            let cleanup = remove_tree(&dest);
            sync();
            match r.and_then(|(d, st)| cleanup.map(|()| (d, st))) {
                Ok((d, st)) => {
                    samples[idx].push(d.as_secs_f64());
                    if st.is_some() {
                        stats = st;
                    }
                    progress(&format!("  {:.2} s", d.as_secs_f64()));
                }
                Err(e) => {
                    progress(&format!("  failed: {}", fmt_err(&e)));
                    fails[idx] += 1;
                    first_err[idx].get_or_insert_with(|| fmt_err(&e));
                }
            }
        }
    }
    // `summarize` is unit-agnostic: here its "_ms" fields hold seconds.
    let median = |v: &[f64]| summarize(v).median_ms;
    let base = median(&samples[0]);
    let results = subjects
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let sum = summarize(&samples[k]);
            UnpackResult {
                subject: *s,
                label: s.label().to_owned(),
                what: s.what().to_owned(),
                samples_s: samples[k].clone(),
                median_s: sum.median_ms,
                min_s: sum.min_ms,
                ratio: if base > 0.0 && sum.n > 0 {
                    sum.median_ms / base
                } else {
                    f64::NAN
                },
                failures: fails[k],
                first_error: first_err[k].clone(),
            }
        })
        .collect();
    let stats: UnpackStats = stats.unwrap_or_default();
    Ok(UnpackReport {
        image: img.name.clone(),
        layers: img.layers.len(),
        entries: stats.entries,
        bytes: stats.bytes,
        compressed_bytes,
        runs: c.runs,
        results,
        warren_import_s: import_s,
        skipped,
    })
}

fn measure_unpack(
    c: &UnpackConfig<'_>,
    s: UnpackSubject,
    dest: &Path,
    archive: &Path,
    image_ref: &str,
    import_s: &mut Vec<f64>,
) -> Result<(Duration, Option<UnpackStats>)> {
    let (store, img) = (c.store, c.image);
    match s {
        UnpackSubject::WarrenDir => {
            sync();
            let t = Instant::now();
            let st = warren_apply(store, img, dest)?;
            Ok((t.elapsed(), Some(st)))
        }
        UnpackSubject::WarrenOverlay => {
            let fresh = Store::open(dest).with_context(|| format!("open {}", dest.display()))?;
            let t = Instant::now();
            fresh
                .import_archive(
                    archive,
                    &ImportOptions {
                        name: Some(img.name.clone()),
                    },
                )
                .with_context(|| format!("import {}", archive.display()))?;
            import_s.push(t.elapsed().as_secs_f64());
            sync();
            let t = Instant::now();
            let dirs = fresh.unpack(&img.name).context("Store::unpack")?;
            let d = t.elapsed();
            if dirs.len() != img.layers.len() {
                bail!("Store::unpack gave {} layer dirs", dirs.len());
            }
            Ok((d, None))
        }
        UnpackSubject::UmociRaw | UnpackSubject::Umoci => {
            let mut cmd = Command::new(&c.tools.umoci);
            if s == UnpackSubject::UmociRaw {
                std::fs::create_dir(dest)?;
                cmd.args(["raw", "unpack", "--image", image_ref])
                    .arg(dest.join("rootfs"));
            } else {
                cmd.args(["unpack", "--image", image_ref]).arg(dest);
            }
            sync();
            let t = Instant::now();
            run_tool(&mut cmd)?;
            let d = t.elapsed();
            if !dest.join("rootfs").is_dir() {
                bail!("umoci wrote no rootfs in {}", dest.display());
            }
            Ok((d, None))
        }
        UnpackSubject::PodmanLoad => {
            let podman = c.tools.podman.as_ref().context("podman")?;
            let tmp = dest.join("tmp");
            std::fs::create_dir_all(&tmp)?;
            // podman refuses a runroot longer than 50 characters.
            let runroot = tempfile::Builder::new()
                .prefix("wib-")
                .tempdir_in("/tmp")
                .context("create a podman runroot in /tmp")?;
            let mut cmd = Command::new(podman);
            cmd.arg("--root")
                .arg(dest.join("root"))
                .arg("--runroot")
                .arg(runroot.path())
                .args(["--storage-driver", "overlay", "--events-backend", "none"])
                .args(["load", "-q", "-i"])
                .arg(archive)
                .env("TMPDIR", &tmp);
            sync();
            let t = Instant::now();
            let r = run_tool(&mut cmd);
            let d = t.elapsed();
            remove_tree(runroot.path())?;
            r?;
            Ok((d, None))
        }
        UnpackSubject::Tar => {
            let tar = c.tools.tar.as_ref().context("tar")?;
            std::fs::create_dir(dest)?;
            let mut cmds = Vec::new();
            for b in &img.layers {
                let p = store.blob_path(b);
                let mut head = [0u8; 8];
                let n = File::open(&p)
                    .and_then(|mut f| f.read(&mut head))
                    .with_context(|| format!("read {}", p.display()))?;
                let mut cmd = Command::new(tar);
                cmd.arg("-x");
                match Compression::sniff(&head[..n]) {
                    Compression::Gzip => {
                        cmd.arg("-z");
                    }
                    Compression::Zstd => {
                        cmd.arg("--zstd");
                    }
                    _ => {}
                }
                cmd.arg("-f").arg(&p).arg("-C").arg(dest);
                cmds.push(cmd);
            }
            sync();
            let t = Instant::now();
            for cmd in &mut cmds {
                run_tool(cmd)?;
            }
            Ok((t.elapsed(), None))
        }
    }
}

/// One container-start subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartSubject {
    /// The lifecycle of a bundle with a busybox rootfs directory.
    PlainBundle,
    /// The lifecycle with the image's overlay rootfs mounted once beforehand: what the
    /// image's content (dynamic `/bin/true`, overlay lookups) costs, without mount/umount.
    ImageMounted,
    /// `create_rootfs` + a bundle directory with config.json + lifecycle + `remove_rootfs`
    /// and the bundle directory: a start from an image.
    Image,
}

impl StartSubject {
    /// A short label.
    pub fn label(self) -> &'static str {
        match self {
            Self::PlainBundle => "plain bundle (busybox rootfs dir)",
            Self::ImageMounted => "image rootfs mounted beforehand (lifecycle only)",
            Self::Image => {
                "from image (volatile overlay, as for --rm): create_rootfs + lifecycle + remove_rootfs"
            }
        }
    }
}

/// Results of one start subject.
#[derive(Debug, Clone, Serialize)]
pub struct StartResult {
    pub subject: StartSubject,
    pub label: String,
    pub total: Summary,
    /// total median / plain-bundle median.
    pub ratio: f64,
    /// Per-phase summaries (the image subject: create_rootfs, bundle config.json,
    /// lifecycle, remove_rootfs + bundle directory).
    pub phases: Vec<(String, Summary)>,
    pub failures: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Every timed start, ms, in run order.
    pub samples_ms: Vec<f64>,
    /// Per phase, every timed start's share, ms, in run order (the image subject).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phase_samples_ms: Vec<Vec<f64>>,
}

/// The start comparison for one image.
#[derive(Debug, Clone, Serialize)]
pub struct StartReport {
    pub image: String,
    pub layers: usize,
    pub runtime: PathBuf,
    pub process: Vec<String>,
    pub starts: usize,
    pub warmup: usize,
    /// The target: from-image median / plain-bundle median ≤ this.
    pub target_ratio: f64,
    pub results: Vec<StartResult>,
}

/// How to run the start comparison.
#[derive(Debug)]
pub struct StartConfig<'a> {
    pub store: &'a Store,
    pub image: &'a Image,
    pub runtime: &'a Path,
    pub workdir: &'a Path,
    pub starts: usize,
    pub warmup: usize,
    pub progress: bool,
}

/// The config.json of the benchmark bundles, as `bundle::make` writes it, with
/// `root.path` = `rootfs`.
fn config_for(template: &Value, rootfs: &Path) -> Value {
    let mut c = template.clone();
    c["root"]["path"] = json!(rootfs);
    c
}

fn write_config(dir: &Path, c: &Value) -> Result<()> {
    let p = dir.join("config.json");
    std::fs::write(&p, serde_json::to_vec_pretty(c)?)
        .with_context(|| format!("write {}", p.display()))
}

/// Removes the container rootfs `id` when dropped.
struct RootfsGuard<'a> {
    store: &'a Store,
    id: String,
}

impl Drop for RootfsGuard<'_> {
    fn drop(&mut self) {
        let _ = self.store.remove_rootfs(&self.id);
    }
}

/// Runs the start comparison. Call it in a private mount namespace
/// ([`lifecycle::private_mount_namespace`]).
pub fn start_bench(c: &StartConfig<'_>) -> Result<StartReport> {
    let args = ["/bin/true"];
    let scratch = tempfile::Builder::new()
        .prefix("warren-images-bench-")
        .tempdir_in(c.workdir)
        .with_context(|| format!("create a directory in --workdir {}", c.workdir.display()))?;
    let work = scratch.path();
    let rt = Runtime {
        name: "warren-runtime".into(),
        path: c.runtime.to_owned(),
    };
    let plain = crate::bundle::make(&work.join("plain"), c.runtime, &args)?;
    let template: Value = serde_json::from_slice(
        &std::fs::read(plain.join("config.json")).context("read the plain bundle's config")?,
    )?;
    let pid = std::process::id();

    // The image, mounted once for the whole run.
    let mounted_id = format!("wib-{pid}-mounted");
    let _ = c.store.remove_rootfs(&mounted_id);
    let mounted = c
        .store
        .create_rootfs(&c.image.name, &mounted_id, EPHEMERAL)
        .with_context(|| format!("create_rootfs {}", c.image.name))?;
    let _mounted_guard = RootfsGuard {
        store: c.store,
        id: mounted_id.clone(),
    };
    let mounted_bundle = work.join("mounted");
    std::fs::create_dir(&mounted_bundle)?;
    write_config(&mounted_bundle, &config_for(&template, &mounted.merged))?;
    if !mounted.merged.join("bin/true").exists() {
        bail!(
            "image {} has no /bin/true (the benchmark's process)",
            c.image.name
        );
    }

    let subjects = [
        StartSubject::PlainBundle,
        StartSubject::ImageMounted,
        StartSubject::Image,
    ];
    let roots: Vec<tempfile::TempDir> = subjects
        .iter()
        .map(|_| tempfile::tempdir_in(work))
        .collect::<io::Result<_>>()?;
    let mut totals: Vec<Vec<f64>> = vec![Vec::new(); subjects.len()];
    let mut phases: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut fails = vec![0usize; subjects.len()];
    let mut first_err: Vec<Option<String>> = vec![None; subjects.len()];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let n = c.warmup + c.starts;
    if c.progress {
        eprintln!(
            "# {}: {} starts of each ({} warm-up)",
            c.image.name, c.starts, c.warmup
        );
    }
    for i in 0..n {
        for k in 0..subjects.len() {
            let idx = (k + i) % subjects.len();
            let root = roots[idx].path();
            let r: Result<(f64, Option<[f64; 4]>)> = match subjects[idx] {
                StartSubject::PlainBundle => {
                    lifecycle::one(&rt, root, &plain, Mode::Run).map(|(d, _)| (ms(d), None))
                }
                StartSubject::ImageMounted => lifecycle::one(&rt, root, &mounted_bundle, Mode::Run)
                    .map(|(d, _)| (ms(d), None)),
                StartSubject::Image => {
                    let id = format!("wib-{pid}-{i}");
                    let t0 = Instant::now();
                    match c
                        .store
                        .create_rootfs(&c.image.name, &id, EPHEMERAL)
                        .context("create_rootfs")
                    {
                        Err(e) => Err(e),
                        Ok(r) => {
                            // A bundle directory of its own per container, as a start
                            // from an image writes one (no config.json rewritten in place).
                            let t1 = Instant::now();
                            let bundle = work.join(format!("image-{i}"));
                            let cfg = std::fs::create_dir(&bundle)
                                .with_context(|| format!("create {}", bundle.display()))
                                .and_then(|()| {
                                    write_config(&bundle, &config_for(&template, &r.merged))
                                });
                            let t2 = Instant::now();
                            let life =
                                cfg.and_then(|()| lifecycle::one(&rt, root, &bundle, Mode::Run));
                            let t3 = Instant::now();
                            let rm = c.store.remove_rootfs(&id).context("remove_rootfs");
                            let rm = rm.and(
                                std::fs::remove_dir_all(&bundle)
                                    .with_context(|| format!("remove {}", bundle.display())),
                            );
                            let t4 = Instant::now();
                            life.and(rm).map(|()| {
                                (
                                    ms(t4 - t0),
                                    Some([ms(t1 - t0), ms(t2 - t1), ms(t3 - t2), ms(t4 - t3)]),
                                )
                            })
                        }
                    }
                }
            };
            match r {
                Ok((total, ph)) if i >= c.warmup => {
                    totals[idx].push(total);
                    if let Some(ph) = ph {
                        for (j, v) in ph.iter().enumerate() {
                            phases[j].push(*v);
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    fails[idx] += 1;
                    first_err[idx].get_or_insert_with(|| fmt_err(&e));
                }
            }
        }
    }
    let base = summarize(&totals[0]).median_ms;
    let phase_names = [
        "create_rootfs",
        "bundle config.json",
        "lifecycle",
        "remove_rootfs + bundle",
    ];
    let results = subjects
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let total = summarize(&totals[k]);
            StartResult {
                subject: *s,
                label: s.label().to_owned(),
                total,
                ratio: if base > 0.0 && total.n > 0 {
                    total.median_ms / base
                } else {
                    f64::NAN
                },
                phases: if *s == StartSubject::Image {
                    phase_names
                        .iter()
                        .zip(&phases)
                        .map(|(n, v)| ((*n).to_owned(), summarize(v)))
                        .collect()
                } else {
                    Vec::new()
                },
                failures: fails[k],
                first_error: first_err[k].clone(),
                samples_ms: totals[k].clone(),
                phase_samples_ms: if *s == StartSubject::Image {
                    phases.clone()
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    Ok(StartReport {
        image: c.image.name.clone(),
        layers: c.image.layers.len(),
        runtime: c.runtime.to_owned(),
        process: args.iter().map(|s| (*s).to_owned()).collect(),
        starts: c.starts,
        warmup: c.warmup,
        target_ratio: TARGET_RATIO,
        results,
    })
}

/// The rootfs of a container whose writable layer dies with it, as `warren run --rm`
/// and pooled sandboxes mount it (volatile overlay).
const EPHEMERAL: RootfsOptions = RootfsOptions {
    readonly: false,
    volatile: true,
};

/// Issue 4's target for a start from an image against the plain bundle.
pub const TARGET_RATIO: f64 = 1.2;

fn mib(b: u64) -> f64 {
    b as f64 / (1u64 << 20) as f64
}

fn num(x: u64) -> String {
    let s = x.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The unpack comparison as a markdown section.
pub fn unpack_markdown(r: &UnpackReport) -> String {
    let mut s = format!(
        "### Unpack {} ({} layer{}, {} entries, {:.1} MiB of files; {:.1} MiB compressed), {} run{}\n\n",
        r.image,
        r.layers,
        if r.layers == 1 { "" } else { "s" },
        num(r.entries),
        mib(r.bytes),
        mib(r.compressed_bytes),
        r.runs,
        if r.runs == 1 { "" } else { "s" }
    );
    s.push_str("| tool | median s | min s | × warren, one directory |\n|---|---:|---:|---:|\n");
    for x in &r.results {
        if x.samples_s.is_empty() {
            s.push_str(&format!("| {} | failed | | |\n", x.label));
        } else {
            s.push_str(&format!(
                "| {} | {:.2} | {:.2} | {:.2} |\n",
                x.label, x.median_s, x.min_s, x.ratio
            ));
        }
    }
    if !r.warren_import_s.is_empty() {
        let imp = summarize(&r.warren_import_s);
        let ov = r
            .results
            .iter()
            .find(|x| x.subject == UnpackSubject::WarrenOverlay)
            .map_or(f64::NAN, |x| x.median_s);
        s.push_str(&format!(
            "\n`warren images import` of the same oci-archive (untimed above): median {:.2} s; \
             import + overlay unpack ≈ {:.2} s, the counterpart of `podman load`.\n",
            imp.median_ms,
            imp.median_ms + ov
        ));
    }
    s.push('\n');
    for x in &r.results {
        s.push_str(&format!("- {}: {}", x.label, x.what));
        if x.failures > 0 {
            s.push_str(&format!(
                " — **{} failed**: {}",
                x.failures,
                x.first_error.as_deref().unwrap_or("")
            ));
        }
        s.push('\n');
    }
    for k in &r.skipped {
        s.push_str(&format!("- skipped: {k}\n"));
    }
    s
}

/// The start comparison as a markdown section.
pub fn start_markdown(r: &StartReport) -> String {
    let mut s = format!(
        "### Container start from {} ({} layer{}), `{}`, run mode, {} starts each ({} warm-up), interleaved\n\n",
        r.image,
        r.layers,
        if r.layers == 1 { "" } else { "s" },
        r.process.join(" "),
        r.starts,
        r.warmup
    );
    s.push_str(
        "| subject | median ms | min ms | p95 ms | × plain bundle |\n|---|---:|---:|---:|---:|\n",
    );
    for x in &r.results {
        s.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.3} |\n",
            x.label, x.total.median_ms, x.total.min_ms, x.total.p95_ms, x.ratio
        ));
    }
    if let Some(img) = r.results.iter().find(|x| x.subject == StartSubject::Image) {
        let met = img.ratio <= r.target_ratio;
        s.push_str(&format!(
            "\nTarget ≤ {:.1}×: {} ({:.3}×).",
            r.target_ratio,
            if img.ratio.is_nan() {
                "not measured"
            } else if met {
                "met"
            } else {
                "**not met**"
            },
            img.ratio
        ));
        if !img.phases.is_empty() {
            let p: Vec<String> = img
                .phases
                .iter()
                .map(|(n, v)| format!("{n} {:.2}", v.median_ms))
                .collect();
            s.push_str(&format!(
                " Phases of a start from the image (medians, ms): {}.",
                p.join(", ")
            ));
            // The measure is "overlay mount plus lifecycle": the same starts
            // without the teardown of the rootfs after the container has exited.
            let up: Vec<f64> = (0..img.samples_ms.len())
                .filter_map(|i| {
                    let t = img.samples_ms.get(i)?;
                    let rm = img.phase_samples_ms.get(3)?.get(i)?;
                    Some(t - rm)
                })
                .collect();
            let base = r
                .results
                .iter()
                .find(|x| x.subject == StartSubject::PlainBundle)
                .map(|x| x.total.median_ms)
                .unwrap_or(f64::NAN);
            if !up.is_empty() && base > 0.0 {
                let m = summarize(&up).median_ms;
                s.push_str(&format!(
                    " Without the teardown (overlay mount + bundle + lifecycle): {m:.2} ms, \
                     {:.3}× the plain bundle.",
                    m / base
                ));
            }
        }
        s.push('\n');
    }
    for x in &r.results {
        if x.failures > 0 {
            s.push_str(&format!(
                "- {}: **{} failed**: {}\n",
                x.label,
                x.failures,
                x.first_error.as_deref().unwrap_or("")
            ));
        }
    }
    s
}
