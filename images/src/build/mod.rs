//! The builder: turns a recipe (and its parents) into images in the store.
//!
//! Each step becomes one layer. `apt`, `pip` and `run` steps run inside a container
//! made with `warren-runtime` from the layers so far plus a fresh overlay upper
//! directory (host network for package downloads; the only host file mounted is
//! `/etc/resolv.conf`); the upper directory, whiteouts converted, is packed
//! deterministically into the new layer. `download` steps fetch on the host and check
//! the sha256. After the last step the smoke test runs in a container of the new image
//! (no network); only then is the image committed and tagged `warren/<recipe>:latest`.
//! A failure anywhere leaves the store as it was (each recipe in a chain commits on its
//! own, so a failing child keeps its built parent).
//!
//! Layers are cached by a key over the parent's key and the step, so rebuilding an
//! unchanged recipe is fast; `no_cache` rebuilds every step.

mod container;
mod debootstrap;
mod download;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use oci_spec::image::{Config, ImageConfiguration};

use crate::digest::Digest;
use crate::fsutil;
use crate::layer::{Compression, Exclude, PackOptions, pack_dir};
use crate::recipe::{Base, Recipe, RecipeSet, StepKind};
use crate::store::{LayerRef, Store, Txn, config_for, stage_image};

/// Bumped when the builder's output for the same inputs changes (invalidates caches).
const BUILDER_VERSION: &str = "warren-images-builder-1";

/// Errors building images.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A step's command exited non-zero.
    #[error("recipe {recipe}: step {index} ({step}) failed: {status}\n{output}")]
    StepFailed {
        /// The recipe.
        recipe: String,
        /// 1-based step number.
        index: usize,
        /// The step's label.
        step: String,
        /// How it ended.
        status: String,
        /// The last lines of its output.
        output: String,
    },
    /// The smoke test failed.
    #[error("recipe {recipe}: smoke test `{command}` failed: {status}\n{output}")]
    SmokeFailed {
        /// The recipe.
        recipe: String,
        /// The command.
        command: String,
        /// How it ended.
        status: String,
        /// The last lines of its output.
        output: String,
    },
    /// The runtime binary could not be run.
    #[error("run {path}: {message}")]
    Runtime {
        /// The runtime path.
        path: PathBuf,
        /// The error.
        message: String,
    },
    /// debootstrap failed.
    #[error("debootstrap failed: {command}: {message}")]
    Debootstrap {
        /// The command line.
        command: String,
        /// What happened.
        message: String,
    },
    /// A download step failed (fetch or checksum).
    #[error("recipe {recipe}: step {step}: download {url}: {message}")]
    Download {
        /// The recipe.
        recipe: String,
        /// The step's label.
        step: String,
        /// The URL.
        url: String,
        /// What happened.
        message: String,
    },
    /// A recipe based on another has no parent result (internal ordering error).
    #[error("recipe {0}: parent was not built")]
    NoParent(String),
}

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The `warren-runtime` binary.
    pub runtime: PathBuf,
    /// State directory for the runtime's containers (`--root`).
    pub runtime_root: PathBuf,
    /// Rebuild every step even when a cached layer exists.
    pub no_cache: bool,
    /// Extra name for the final image.
    pub tag: Option<String>,
    /// Layer compression.
    pub compression: Compression,
    /// Skip smoke tests.
    pub skip_smoke: bool,
    /// Prefix of the names built images get (`warren/` → `warren/python:latest`).
    pub name_prefix: String,
    /// CA certificates that build steps trust for TLS (the host's bundle where a proxy
    /// intercepts TLS). Mounted read-only for the step; never part of a layer.
    pub ca_bundle: Option<PathBuf>,
}

impl BuildOptions {
    /// Defaults with the given runtime binary and runtime state directory.
    pub fn new(runtime: impl Into<PathBuf>, runtime_root: impl Into<PathBuf>) -> Self {
        Self {
            runtime: runtime.into(),
            runtime_root: runtime_root.into(),
            no_cache: false,
            tag: None,
            compression: Compression::Gzip,
            skip_smoke: false,
            name_prefix: "warren/".into(),
            ca_bundle: None,
        }
    }
}

/// Progress, as the CLI shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEvent {
    /// A recipe starts.
    Recipe {
        /// Its name.
        name: String,
    },
    /// A step starts (`index` is 1-based; 0 is the base).
    Step {
        /// The recipe.
        recipe: String,
        /// Step number.
        index: usize,
        /// Number of steps.
        total: usize,
        /// Label.
        label: String,
    },
    /// A step's layer came from the cache.
    Cached {
        /// The recipe.
        recipe: String,
        /// Step number.
        index: usize,
        /// The layer digest.
        layer: Digest,
    },
    /// A line of output from a step.
    Output {
        /// The line.
        line: String,
    },
    /// A layer was packed.
    Layer {
        /// The recipe.
        recipe: String,
        /// Step number.
        index: usize,
        /// Blob digest.
        digest: Digest,
        /// Blob size.
        size: u64,
        /// Seconds the step took.
        seconds: f64,
    },
    /// The smoke test starts.
    Smoke {
        /// The recipe.
        recipe: String,
        /// The command.
        command: String,
    },
    /// An image was committed.
    Image {
        /// Its name.
        name: String,
        /// Manifest digest.
        digest: Digest,
        /// Compressed size of all its layers.
        size: u64,
        /// Seconds this recipe took.
        seconds: f64,
    },
}

/// A built image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// Its name.
    pub name: String,
    /// Manifest digest.
    pub digest: Digest,
    /// Number of layers.
    pub layers: usize,
    /// Compressed size of its layers.
    pub size: u64,
}

/// What the next recipe in a chain builds on.
#[derive(Debug, Clone)]
struct Parent {
    layers: Vec<LayerRef>,
    config: Option<ImageConfiguration>,
    key: Digest,
}

/// Paths left out of every built layer: caches, logs, per-host files.
pub fn default_excludes() -> Vec<Exclude> {
    let mut v: Vec<Exclude> = [
        "etc/resolv.conf",
        "etc/hostname",
        "root/.cache",
        "var/cache/ldconfig/aux-cache",
    ]
    .into_iter()
    .map(|p| Exclude::Tree(p.into()))
    .collect();
    v.extend(
        [
            "dev",
            "proc",
            "sys",
            "run",
            "tmp",
            "var/tmp",
            "var/log",
            "var/cache/apt",
            "var/lib/apt/lists",
            "var/cache/debconf/templates.dat-old",
        ]
        .into_iter()
        .map(|p| Exclude::Contents(p.into())),
    );
    v.extend(
        [
            "config.dat-old",
            "templates.dat-old",
            "status-old",
            "available-old",
        ]
        .into_iter()
        .map(|n| Exclude::Name(n.into())),
    );
    v
}

/// Builds the recipe `name` and every recipe it derives from, committing each to the
/// store as `<prefix><recipe>:latest`. `progress` sees every event.
pub fn build(
    store: &Store,
    recipes: &RecipeSet,
    name: &str,
    opts: &BuildOptions,
    progress: &mut dyn FnMut(&BuildEvent),
) -> crate::Result<BuiltImage> {
    let chain = recipes.chain(name)?;
    let mut parent: Option<Parent> = None;
    let mut last = None;
    for (i, r) in chain.iter().enumerate() {
        let final_tag = if i + 1 == chain.len() {
            opts.tag.as_deref()
        } else {
            None
        };
        let (p, built) = build_one(store, r, parent.take(), opts, final_tag, progress)?;
        parent = Some(p);
        last = Some(built);
    }
    last.ok_or_else(|| BuildError::NoParent(name.to_string()).into())
}

fn key_of(parts: &[&str]) -> Digest {
    Digest::of(parts.join("\n\0").as_bytes())
}

fn cache_path(store: &Store, key: &Digest) -> PathBuf {
    store
        .cache_dir()
        .join("build")
        .join(format!("{}.json", key.hex()))
}

fn cache_get(store: &Store, key: &Digest) -> Option<LayerRef> {
    let data = std::fs::read(cache_path(store, key)).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&data).ok()?;
    let l = LayerRef {
        digest: Digest::parse(v.get("digest")?.as_str()?).ok()?,
        size: v.get("size")?.as_u64()?,
        diff_id: Digest::parse(v.get("diff_id")?.as_str()?).ok()?,
        media_type: v.get("media_type")?.as_str()?.to_string(),
    };
    store.blob_path(&l.digest).exists().then_some(l)
}

fn cache_put(store: &Store, key: &Digest, l: &LayerRef) -> crate::Result<()> {
    let p = cache_path(store, key);
    if let Some(d) = p.parent() {
        fsutil::mkdir_p(d)?;
    }
    let v = serde_json::json!({"version": 1, "digest": l.digest, "size": l.size, "diff_id": l.diff_id, "media_type": l.media_type});
    fsutil::write_atomic(&p, v.to_string().as_bytes())?;
    Ok(())
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn step_script(kind: &StepKind) -> String {
    match kind {
        StepKind::Apt(pkgs) => format!(
            "apt-get update -q\napt-get install -y -q --no-install-recommends {}\napt-get clean\nrm -rf /var/lib/apt/lists/*",
            pkgs.iter()
                .map(|p| sh_quote(p))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        StepKind::Pip {
            packages,
            index_url,
        } => {
            let idx = index_url
                .as_ref()
                .map(|u| format!("--index-url {} ", sh_quote(u)))
                .unwrap_or_default();
            format!(
                "python3 -m pip install --no-cache-dir --break-system-packages --root-user-action=ignore --progress-bar off {idx}{}\nrm -rf /root/.cache",
                packages
                    .iter()
                    .map(|p| sh_quote(p))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        StepKind::Run(s) => s.clone(),
        StepKind::Download(_) => String::new(),
    }
}

/// Environment of a build or smoke container: the image's, then build settings.
fn container_env(config: Option<&Config>, extra: &BTreeMap<String, String>) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    };
    set(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    for e in config.and_then(|c| c.env().clone()).unwrap_or_default() {
        if let Some((k, v)) = e.split_once('=') {
            set(k, v);
        }
    }
    set("HOME", "/root");
    set("LANG", "C.UTF-8");
    set("DEBIAN_FRONTEND", "noninteractive");
    set("SOURCE_DATE_EPOCH", &crate::SOURCE_DATE_EPOCH.to_string());
    set("PIP_NO_CACHE_DIR", "1");
    set("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    set("PYTHONDONTWRITEBYTECODE", "");
    for (k, v) in extra {
        set(k, v);
    }
    env.retain(|(k, v)| !(k == "PYTHONDONTWRITEBYTECODE" && v.is_empty()));
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Merges a recipe's `[config]` over its parent's image config.
fn merged_config(parent: Option<&ImageConfiguration>, r: &Recipe) -> crate::Result<Config> {
    let mut c = parent.and_then(|p| p.config().clone()).unwrap_or_default();
    let mut env: Vec<String> = c.env().clone().unwrap_or_else(|| {
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()]
    });
    for (k, v) in &r.config.env {
        env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
        env.push(format!("{k}={v}"));
    }
    c.set_env(Some(env));
    if let Some(w) = &r.config.workdir {
        c.set_working_dir(Some(w.clone()));
    }
    if let Some(e) = &r.config.entrypoint {
        c.set_entrypoint(Some(e.clone()));
    }
    if let Some(cmd) = &r.config.cmd {
        c.set_cmd(Some(cmd.clone()));
    }
    if let Some(u) = &r.config.user {
        c.set_user(Some(u.clone()));
    }
    let mut labels = c.labels().clone().unwrap_or_default();
    for (k, v) in &r.config.labels {
        labels.insert(k.clone(), v.clone());
    }
    labels.insert("dev.warren.recipe".into(), r.name.clone());
    labels.insert("org.opencontainers.image.title".into(), r.name.clone());
    labels.insert(
        "org.opencontainers.image.description".into(),
        r.description.clone(),
    );
    c.set_labels(Some(labels));
    Ok(c)
}

struct StepCtx<'a, 'p> {
    opts: &'a BuildOptions,
    progress: &'p mut dyn FnMut(&BuildEvent),
}

impl StepCtx<'_, '_> {
    fn pack(&mut self, txn: &mut Txn<'_>, src: &Path, overlay: bool) -> crate::Result<LayerRef> {
        let out = txn.scratch("layer-blob");
        let packed = pack_dir(
            src,
            &out,
            &PackOptions {
                clamp_mtime: crate::SOURCE_DATE_EPOCH,
                exclude: default_excludes(),
                compression: self.opts.compression,
                overlay_whiteouts: overlay,
            },
        )?;
        txn.adopt(out, &packed.digest)?;
        Ok(LayerRef {
            digest: packed.digest,
            size: packed.size,
            diff_id: packed.diff_id,
            media_type: packed.media_type.to_string(),
        })
    }

    fn lowers(&mut self, txn: &mut Txn<'_>, layers: &[LayerRef]) -> crate::Result<Vec<PathBuf>> {
        layers
            .iter()
            .map(|l| Ok(txn.layer_dir(&l.diff_id, &l.digest)?.0.path))
            .collect()
    }

    fn emit(&mut self, e: BuildEvent) {
        (self.progress)(&e);
    }
}

fn build_one(
    store: &Store,
    r: &Recipe,
    parent: Option<Parent>,
    opts: &BuildOptions,
    final_tag: Option<&str>,
    progress: &mut dyn FnMut(&BuildEvent),
) -> crate::Result<(Parent, BuiltImage)> {
    let t0 = Instant::now();
    let mut cx = StepCtx { opts, progress };
    cx.emit(BuildEvent::Recipe {
        name: r.name.clone(),
    });
    let mut txn = Txn::new(store)?;
    let mut new_cache: Vec<(Digest, LayerRef)> = Vec::new();
    let total = r.steps.len();
    let (mut layers, base_config, mut key) = match &r.base {
        Base::Recipe(_) => {
            let p = parent.ok_or_else(|| BuildError::NoParent(r.name.clone()))?;
            (p.layers, p.config, p.key)
        }
        Base::Image(n) => {
            let img = store.image(n)?;
            let layers = img
                .manifest
                .layers()
                .iter()
                .zip(&img.layers)
                .zip(&img.diff_ids)
                .map(|((d, dg), di)| LayerRef {
                    digest: dg.clone(),
                    size: d.size(),
                    diff_id: di.clone(),
                    media_type: d.media_type().to_string(),
                })
                .collect();
            (
                layers,
                Some(img.config),
                key_of(&[BUILDER_VERSION, "image", img.digest.as_str()]),
            )
        }
        Base::Debootstrap(d) => {
            let key = key_of(&[
                BUILDER_VERSION,
                "debootstrap",
                debootstrap::key(d).as_str(),
                &format!("{:?}", opts.compression),
            ]);
            let layer = match cache_get(store, &key).filter(|_| !opts.no_cache) {
                Some(l) => {
                    cx.emit(BuildEvent::Cached {
                        recipe: r.name.clone(),
                        index: 0,
                        layer: l.digest.clone(),
                    });
                    l
                }
                None => {
                    let ts = Instant::now();
                    cx.emit(BuildEvent::Step {
                        recipe: r.name.clone(),
                        index: 0,
                        total,
                        label: format!("debootstrap {} ({})", d.suite, d.variant),
                    });
                    let scratch = txn.scratch("debootstrap");
                    let rootfs = debootstrap::debootstrap(store, d, &scratch, &mut |l| {
                        (cx.progress)(&BuildEvent::Output {
                            line: l.to_string(),
                        })
                    })?;
                    let l = cx.pack(&mut txn, &rootfs, false)?;
                    fsutil::remove_tree(&scratch)?;
                    cx.emit(BuildEvent::Layer {
                        recipe: r.name.clone(),
                        index: 0,
                        digest: l.digest.clone(),
                        size: l.size,
                        seconds: ts.elapsed().as_secs_f64(),
                    });
                    new_cache.push((key.clone(), l.clone()));
                    l
                }
            };
            (vec![layer], None, key)
        }
    };
    let mut built_any = !new_cache.is_empty();
    for (i, step) in r.steps.iter().enumerate() {
        let index = i + 1;
        let step_json =
            serde_json::to_string(step).map_err(|e| crate::store::bad_json("step", e))?;
        key = key_of(&[
            BUILDER_VERSION,
            key.as_str(),
            &step_json,
            &format!("{:?}", opts.compression),
        ]);
        if !opts.no_cache {
            if let Some(l) = cache_get(store, &key) {
                cx.emit(BuildEvent::Cached {
                    recipe: r.name.clone(),
                    index,
                    layer: l.digest.clone(),
                });
                layers.push(l);
                continue;
            }
        }
        built_any = true;
        let ts = Instant::now();
        cx.emit(BuildEvent::Step {
            recipe: r.name.clone(),
            index,
            total,
            label: step.label.clone(),
        });
        let layer = match &step.kind {
            StepKind::Download(d) => {
                let scratch = txn.scratch("download");
                let root = download::stage(d, &step.label, &r.name, &scratch)?;
                let l = cx.pack(&mut txn, &root, false)?;
                fsutil::remove_tree(&scratch)?;
                l
            }
            kind => {
                let lowers = cx.lowers(&mut txn, &layers)?;
                let scratch = txn.scratch("step");
                let env = container_env(
                    base_config.as_ref().and_then(|c| c.config().as_ref()),
                    &step.env,
                );
                let run = container::Run {
                    runtime: &opts.runtime,
                    runtime_root: &opts.runtime_root,
                    lowers: &lowers,
                    scratch: &scratch,
                    args: vec!["/bin/sh".into(), "-ec".into(), step_script(kind)],
                    env,
                    cwd: "/".into(),
                    host_network: true,
                    ca_bundle: opts.ca_bundle.as_deref(),
                };
                let out = container::run(&run, &mut |l| {
                    (cx.progress)(&BuildEvent::Output {
                        line: l.to_string(),
                    })
                })?;
                if !out.status.success() {
                    let _ = fsutil::remove_tree(&scratch);
                    return Err(BuildError::StepFailed {
                        recipe: r.name.clone(),
                        index,
                        step: step.label.clone(),
                        status: out.status.to_string(),
                        output: out.tail,
                    }
                    .into());
                }
                let l = cx.pack(&mut txn, &out.upper, true)?;
                fsutil::remove_tree(&scratch)?;
                l
            }
        };
        cx.emit(BuildEvent::Layer {
            recipe: r.name.clone(),
            index,
            digest: layer.digest.clone(),
            size: layer.size,
            seconds: ts.elapsed().as_secs_f64(),
        });
        new_cache.push((key.clone(), layer.clone()));
        layers.push(layer);
    }

    let cfg = merged_config(base_config.as_ref(), r)?;
    let image_config = config_for(Some(cfg), &layers)?;
    let entry = stage_image(&mut txn, &image_config, &layers)?;
    let name = format!("{}{}:latest", opts.name_prefix, r.name);
    let up_to_date = !built_any && store.entry(&name).is_ok_and(|e| e.digest == entry.digest);
    if let (Some(cmd), false, false) = (&r.smoke, opts.skip_smoke, up_to_date) {
        cx.emit(BuildEvent::Smoke {
            recipe: r.name.clone(),
            command: cmd.clone(),
        });
        let lowers = cx.lowers(&mut txn, &layers)?;
        let scratch = txn.scratch("smoke");
        let run = container::Run {
            runtime: &opts.runtime,
            runtime_root: &opts.runtime_root,
            lowers: &lowers,
            scratch: &scratch,
            args: vec!["/bin/sh".into(), "-ec".into(), cmd.clone()],
            env: container_env(image_config.config().as_ref(), &BTreeMap::new()),
            cwd: image_config
                .config()
                .as_ref()
                .and_then(|c| c.working_dir().clone())
                .unwrap_or_else(|| "/".into()),
            host_network: false,
            ca_bundle: None,
        };
        let out = container::run(&run, &mut |l| {
            (cx.progress)(&BuildEvent::Output {
                line: l.to_string(),
            })
        })?;
        let _ = fsutil::remove_tree(&scratch);
        if !out.status.success() {
            return Err(BuildError::SmokeFailed {
                recipe: r.name.clone(),
                command: cmd.clone(),
                status: out.status.to_string(),
                output: out.tail,
            }
            .into());
        }
    }
    let mut names = vec![(name.clone(), entry.clone())];
    if let Some(t) = final_tag {
        let t = crate::reference::normalize_name(t).map_err(crate::StoreError::from)?;
        names.push((t, entry.clone()));
    }
    let digest = entry.digest.clone();
    txn.commit(&names)?;
    for (k, l) in &new_cache {
        cache_put(store, k, l)?;
    }
    let size = layers.iter().map(|l| l.size).sum();
    cx.emit(BuildEvent::Image {
        name: name.clone(),
        digest: digest.clone(),
        size,
        seconds: t0.elapsed().as_secs_f64(),
    });
    let built = BuiltImage {
        name,
        digest,
        layers: layers.len(),
        size,
    };
    Ok((
        Parent {
            layers,
            config: Some(image_config),
            key,
        },
        built,
    ))
}
