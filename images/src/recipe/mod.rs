//! Recipes: declarative image definitions in `recipes/*.toml`.
//!
//! A recipe starts from a base (a debootstrap of a Debian suite, an image already in the
//! store, or another recipe with `from`), adds one layer per step (`apt`, `pip`, `run`
//! or `download`), sets image config (env, workdir, entrypoint, cmd, labels) and names a
//! smoke test that must pass before the image is tagged.
//!
//! ```toml
//! name = "python"
//! description = "Debian 12's Python 3.11 with pip and the scientific stack"
//! from = "base"
//!
//! [[steps]]
//! apt = ["python3", "python3-pip"]
//!
//! [[steps]]
//! pip = ["numpy", "pandas"]
//!
//! [config]
//! cmd = ["python3"]
//!
//! [smoke]
//! run = "python3 -c 'import numpy, pandas'"
//! ```

mod parse;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use parse::{RecipeSet, load_dir, load_file, parse_str};
use serde::{Deserialize, Serialize};

/// Errors loading or resolving recipes.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The file is not valid TOML for a recipe (unknown keys included).
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The recipe file.
        path: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The recipe parses but says something impossible.
    #[error("{path}: {message}")]
    Invalid {
        /// The recipe file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No recipe has this name.
    #[error("no recipe named {name:?} in {dir}")]
    NotFound {
        /// The name looked for.
        name: String,
        /// Where.
        dir: PathBuf,
    },
    /// `from` chains loop.
    #[error("recipes inherit in a cycle: {0}")]
    Cycle(String),
    /// The recipe directory or file could not be read.
    #[error(transparent)]
    Io(#[from] crate::error::IoError),
}

/// A recipe file as written (see the module docs for the format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeFile {
    /// The recipe's name; must match the file name without `.toml`.
    pub name: String,
    /// One line saying what the image is for.
    pub description: String,
    /// The parent recipe (exclusive with `base`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Where the first layer comes from (exclusive with `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseFile>,
    /// The steps, one layer each.
    #[serde(default)]
    pub steps: Vec<StepFile>,
    /// Image config.
    #[serde(default)]
    pub config: ImageSettings,
    /// The smoke test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<Smoke>,
}

/// `[base]`: exactly one of its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseFile {
    /// Build the first layer with debootstrap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debootstrap: Option<Debootstrap>,
    /// Start from an image already in the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// `[base.debootstrap]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debootstrap {
    /// Debian suite (`bookworm`).
    pub suite: String,
    /// debootstrap variant.
    #[serde(default = "minbase")]
    pub variant: String,
    /// Mirror URL.
    #[serde(default = "default_mirror")]
    pub mirror: String,
    /// Archive components.
    #[serde(default = "main_component")]
    pub components: Vec<String>,
    /// Extra packages.
    #[serde(default)]
    pub include: Vec<String>,
}

fn minbase() -> String {
    "minbase".into()
}
fn default_mirror() -> String {
    "http://deb.debian.org/debian".into()
}
fn main_component() -> Vec<String> {
    vec!["main".into()]
}

/// `[[steps]]`: exactly one of `apt`, `pip`, `run`, `download`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    /// A label for progress and errors (default: derived from the step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Debian packages to `apt-get install`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apt: Option<Vec<String>>,
    /// PyPI requirements to `pip install`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pip: Option<Vec<String>>,
    /// `--index-url` for pip (CPU or CUDA wheels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pip_index_url: Option<String>,
    /// A shell script run with `/bin/sh -ec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// A file fetched on the host and checked against its sha256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<Download>,
    /// Environment for this step only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// `[steps.download]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Download {
    /// `http(s)://` or `file://` URL.
    pub url: String,
    /// Expected sha256 of the file, hex.
    pub sha256: String,
    /// Absolute path in the image: the file, or the directory to extract into.
    pub dest: String,
    /// Extract the (tar, tar.gz, tar.zst) file into `dest` instead of copying it.
    #[serde(default)]
    pub extract: bool,
    /// Leading directories to drop when extracting.
    #[serde(default)]
    pub strip_components: u32,
    /// Mode of a copied file (default 0644).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// `[config]`: what goes into the image config; merged over the parent's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSettings {
    /// Environment variables (override the parent's of the same name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Default command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Labels (merged with the parent's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// User (`uid[:gid]` or a name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// `[smoke]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smoke {
    /// Shell command that must exit 0 in a container of the new image.
    pub run: String,
}

/// A validated recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// The file it came from.
    pub path: PathBuf,
    /// Where it starts.
    pub base: Base,
    /// Its steps.
    pub steps: Vec<Step>,
    /// Config settings.
    pub config: ImageSettings,
    /// Smoke test command.
    pub smoke: Option<String>,
}

/// Where a recipe starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// debootstrap.
    Debootstrap(Debootstrap),
    /// A store image.
    Image(String),
    /// Another recipe.
    Recipe(String),
}

/// A validated step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Label for progress and errors.
    pub label: String,
    /// What it does.
    pub kind: StepKind,
    /// Extra environment for the step.
    pub env: BTreeMap<String, String>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StepKind {
    /// `apt-get install` these packages.
    Apt(Vec<String>),
    /// `pip install` these requirements.
    Pip {
        /// Requirements.
        packages: Vec<String>,
        /// `--index-url`.
        index_url: Option<String>,
    },
    /// A shell script.
    Run(String),
    /// A checked download.
    Download(Download),
}
