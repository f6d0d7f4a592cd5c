//! `warren images`: the image store from the command line (list, remove, import, export,
//! pull, gc) and building the curated images from their recipes, with progress.

use std::io::Write;
use std::path::{Path, PathBuf};

use warren_images::Store;
use warren_images::archive::ArchiveFormat;
use warren_images::build::{BuildEvent, BuildOptions, build};
use warren_images::pull::{Auth, PullOptions};

/// Errors of `warren images`.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error(transparent)]
    Store(#[from] warren_images::Error),
    #[error("{0}")]
    Usage(String),
    #[error("write output: {0}")]
    Output(#[from] std::io::Error),
}

type Result<T> = std::result::Result<T, ImagesError>;

fn human(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// `images ls`: NAME, DIGEST, LAYERS, SIZE.
pub fn ls(store: &Store, json: bool, out: &mut dyn Write) -> Result<()> {
    let mut rows = Vec::new();
    for info in store.list()? {
        let img = store.image(&info.name)?;
        rows.push((
            info.name.clone(),
            info.digest.to_string(),
            img.layers.len(),
            img.size(),
        ));
    }
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(n, d, l, s)| serde_json::json!({"name": n, "digest": d, "layers": l, "size": s}))
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(v))?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<32} {:<19} {:>6} {:>10}",
        "NAME", "DIGEST", "LAYERS", "SIZE"
    )?;
    for (n, d, l, s) in rows {
        let short = d
            .strip_prefix("sha256:")
            .unwrap_or(&d)
            .chars()
            .take(12)
            .collect::<String>();
        writeln!(out, "{n:<32} sha256:{short:<12} {l:>6} {:>10}", human(s))?;
    }
    Ok(())
}

/// `images import FILE [--name NAME]`: an OCI archive or a docker-archive.
pub fn import(store: &Store, file: &Path, name: Option<String>) -> Result<Vec<String>> {
    let infos = store.import_archive(file, &warren_images::archive::ImportOptions { name })?;
    Ok(infos
        .into_iter()
        .map(|i| format!("{} {}", i.name, i.digest))
        .collect())
}

/// `images export NAME… -o FILE [--format oci|docker]`.
pub fn export(store: &Store, names: &[String], dest: &Path, format: &str) -> Result<()> {
    let f = match format {
        "oci" => ArchiveFormat::Oci,
        "docker" => ArchiveFormat::Docker,
        other => {
            return Err(ImagesError::Usage(format!(
                "invalid --format {other:?}: expected oci or docker"
            )));
        }
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    store.export_archive(&refs, dest, f)?;
    Ok(())
}

/// `images pull REF [--user U --password P] [--insecure]`.
pub fn pull(
    store: &Store,
    reference: &str,
    user: Option<String>,
    password: Option<String>,
    insecure: bool,
) -> Result<String> {
    let auth = match (user, password) {
        (Some(username), Some(password)) => Auth::Basic { username, password },
        (None, None) => Auth::Anonymous,
        _ => {
            return Err(ImagesError::Usage(
                "--user and --password go together".into(),
            ));
        }
    };
    let info = store.pull(
        reference,
        &PullOptions {
            auth,
            insecure_http: insecure,
            name: None,
        },
    )?;
    Ok(format!("{} {}", info.name, info.digest))
}

/// Where the recipes are: `--recipes`, else next to the installed binary
/// (`PREFIX/share/warren/recipes`), else the source tree's `images/recipes`.
pub fn recipes_dir(given: Option<PathBuf>, exe: &Path) -> PathBuf {
    if let Some(d) = given {
        return d;
    }
    let installed = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("share/warren/recipes"));
    if let Some(d) = installed.filter(|d| d.is_dir()) {
        return d;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/recipes")
}

/// `images build NAME`: builds a curated image and its parents, printing progress to
/// `err` (one line per step; step output with `verbose`).
#[allow(clippy::too_many_arguments)]
pub fn build_image(
    store: &Store,
    recipes: &Path,
    name: &str,
    runtime: &Path,
    runtime_root: &Path,
    no_cache: bool,
    verbose: bool,
    err: &mut dyn Write,
) -> Result<String> {
    let set = warren_images::recipe::load_dir(recipes).map_err(warren_images::Error::from)?;
    let mut opts = BuildOptions::new(runtime, runtime_root);
    opts.no_cache = no_cache;
    let ca = Path::new("/etc/ssl/certs/ca-certificates.crt");
    opts.ca_bundle = ca.exists().then(|| ca.to_owned());
    let mut progress = |e: &BuildEvent| {
        let line = match e {
            BuildEvent::Recipe { name } => format!("==> {name}"),
            BuildEvent::Step {
                recipe,
                index,
                total,
                label,
            } => {
                let width = 20usize;
                let done = if *total == 0 {
                    width
                } else {
                    width * index.saturating_sub(1) / total
                };
                format!(
                    "[{recipe}] [{}{}] step {index}/{total}: {label}",
                    "#".repeat(done),
                    ".".repeat(width - done)
                )
            }
            BuildEvent::Cached { recipe, index, .. } => format!("[{recipe}] step {index}: cached"),
            BuildEvent::Output { line } if verbose => format!("    {line}"),
            BuildEvent::Output { .. } => return,
            BuildEvent::Layer {
                recipe,
                index,
                size,
                seconds,
                ..
            } => {
                format!(
                    "[{recipe}] step {index}: layer {} in {seconds:.1} s",
                    human(*size)
                )
            }
            BuildEvent::Smoke { recipe, command } => format!("[{recipe}] smoke test: {command}"),
            BuildEvent::Image {
                name,
                size,
                seconds,
                ..
            } => format!("==> {name}: {} in {seconds:.1} s", human(*size)),
        };
        let _ = writeln!(err, "{line}");
    };
    let built = build(store, &set, name, &opts, &mut progress)?;
    Ok(format!(
        "{} {} ({} layers, {})",
        built.name,
        built.digest,
        built.layers,
        human(built.size)
    ))
}
