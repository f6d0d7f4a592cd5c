//! The CDI registry: every device of every valid spec file in the configured directories,
//! keyed by fully-qualified name.
//!
//! Semantics follow the reference Go cache: directories are scanned in order and a later
//! directory has higher priority; only `*.json` and `*.yaml` directly inside a directory
//! are read (no recursion); a file that fails to load is recorded and skipped while the
//! others still load; the same device defined by two files of the same priority is a
//! conflict and the device is dropped (both files are named in the error). A definition
//! from a higher-priority directory replaces a lower one silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::runtime::Spec;

use super::apply::apply;
use super::error::{Error, SpecError, SpecFileError};
use super::name::QualifiedName;
use super::spec::{CdiSpec, ContainerEdits, SpecFormat};
use crate::error::IoError;

/// Where spec files live by default, lowest priority first.
pub const DEFAULT_SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];

#[derive(Debug)]
pub(crate) struct LoadedSpec {
    pub(crate) spec: CdiSpec,
    pub(crate) path: PathBuf,
    priority: usize,
}

/// A resolved device: its spec, its position in it and its qualified name.
#[derive(Debug, Clone)]
pub struct Device {
    pub(crate) spec: Arc<LoadedSpec>,
    index: usize,
    name: QualifiedName,
}

impl Device {
    /// `vendor/class=name`.
    pub fn qualified_name(&self) -> &QualifiedName {
        &self.name
    }

    /// The spec file that defines the device.
    pub fn spec(&self) -> &CdiSpec {
        &self.spec.spec
    }

    /// Path of the defining file (or the origin given to [`Registry::add_spec`]).
    pub fn spec_path(&self) -> &Path {
        &self.spec.path
    }

    /// The device's own edits (the spec-wide edits are in [`Device::spec`]).
    pub fn edits(&self) -> &ContainerEdits {
        self.spec
            .spec
            .devices
            .get(self.index)
            .map_or(&EMPTY_EDITS, |d| &d.container_edits)
    }

    /// The device's annotations.
    pub fn annotations(&self) -> Option<&BTreeMap<String, String>> {
        self.spec
            .spec
            .devices
            .get(self.index)
            .map(|d| &d.annotations)
    }
}

static EMPTY_EDITS: ContainerEdits = ContainerEdits {
    env: Vec::new(),
    device_nodes: Vec::new(),
    hooks: Vec::new(),
    mounts: Vec::new(),
    intel_rdt: None,
    additional_gids: Vec::new(),
    net_devices: Vec::new(),
};

/// Every device known from the loaded spec files.
#[derive(Debug, Default)]
pub struct Registry {
    devices: BTreeMap<QualifiedName, Device>,
    conflicts: BTreeMap<QualifiedName, (PathBuf, PathBuf, usize)>,
    errors: Vec<SpecFileError>,
    next_priority: usize,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Load every spec in `dirs` (lowest priority first). Never fails: files that cannot
    /// be loaded and directories that cannot be read (other than missing ones) are listed
    /// by [`Registry::errors`].
    pub fn load<P: AsRef<Path>>(dirs: &[P]) -> Self {
        let mut registry = Self::new();
        for dir in dirs {
            registry.load_dir(dir.as_ref());
        }
        registry
    }

    /// Load one more directory, with a priority above everything loaded so far.
    pub fn load_dir(&mut self, dir: &Path) {
        let priority = self.bump_priority();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                self.record(dir, SpecError::Io(IoError::new("read directory", dir, e)));
                return;
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.record(dir, SpecError::Io(IoError::new("read directory", dir, e)));
                    continue;
                }
            };
            let path = entry.path();
            if SpecFormat::from_path(&path).is_none() {
                continue;
            }
            // No recursion: a directory named like a spec file is ignored too.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            files.push(path);
        }
        files.sort();
        for path in files {
            match CdiSpec::from_file(&path) {
                Ok(spec) => self.insert(spec, path, priority),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "skipping invalid CDI spec");
                    self.record(&path, error);
                }
            }
        }
    }

    /// Add a spec held in memory (e.g. one generated on the fly), validating it first. It
    /// gets a priority above everything loaded so far; `origin` names it in errors.
    pub fn add_spec(&mut self, spec: CdiSpec, origin: impl Into<PathBuf>) -> Result<(), Error> {
        let path = origin.into();
        if let Err(error) = spec.validate() {
            return Err(SpecFileError { path, error }.into());
        }
        let priority = self.bump_priority();
        self.insert(spec, path, priority);
        Ok(())
    }

    fn bump_priority(&mut self) -> usize {
        let p = self.next_priority;
        self.next_priority += 1;
        p
    }

    fn record(&mut self, path: &Path, error: SpecError) {
        self.errors.push(SpecFileError {
            path: path.to_path_buf(),
            error,
        });
    }

    fn insert(&mut self, spec: CdiSpec, path: PathBuf, priority: usize) {
        let loaded = Arc::new(LoadedSpec {
            spec,
            path,
            priority,
        });
        for (index, dev) in loaded.spec.devices.iter().enumerate() {
            // Validated already, so this only fails on a logic error; skip rather than panic.
            let Ok(name) = QualifiedName::from_kind(&loaded.spec.kind, &dev.name) else {
                continue;
            };
            if let Some((_, _, p)) = self.conflicts.get(&name) {
                if *p >= priority {
                    continue;
                }
                self.conflicts.remove(&name);
            }
            if let Some(old) = self.devices.get(&name) {
                if old.spec.priority == priority {
                    let (first, second) = (old.spec.path.clone(), loaded.path.clone());
                    tracing::warn!(%name, first = %first.display(), second = %second.display(), "conflicting CDI device");
                    for p in [&first, &second] {
                        self.errors.push(SpecFileError {
                            path: p.clone(),
                            error: SpecError::Conflict {
                                name: name.to_string(),
                                first: first.clone(),
                                second: second.clone(),
                            },
                        });
                    }
                    self.devices.remove(&name);
                    self.conflicts.insert(name, (first, second, priority));
                    continue;
                }
                if old.spec.priority > priority {
                    continue;
                }
            }
            self.devices.insert(
                name.clone(),
                Device {
                    spec: Arc::clone(&loaded),
                    index,
                    name,
                },
            );
        }
    }

    /// Files that were skipped and conflicts found, each naming its file.
    pub fn errors(&self) -> &[SpecFileError] {
        &self.errors
    }

    /// Every resolvable device, sorted by qualified name.
    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }

    /// Every resolvable qualified name, sorted.
    pub fn device_names(&self) -> Vec<String> {
        self.devices.keys().map(ToString::to_string).collect()
    }

    /// Look one device up.
    pub fn get(&self, name: &QualifiedName) -> Option<&Device> {
        self.devices.get(name)
    }

    /// Resolve requested names (duplicates are dropped, order kept). Unknown names fail
    /// with the list of known ones; a conflicted name fails naming both files.
    pub fn resolve(&self, names: &[QualifiedName]) -> Result<Vec<Device>, Error> {
        let mut out: Vec<Device> = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        let mut conflict = None;
        for name in names {
            if out.iter().any(|d| &d.name == name) {
                continue;
            }
            if let Some(dev) = self.devices.get(name) {
                out.push(dev.clone());
            } else if let Some((first, second, _)) = self.conflicts.get(name) {
                conflict.get_or_insert_with(|| Error::Conflict {
                    name: name.to_string(),
                    first: first.clone(),
                    second: second.clone(),
                });
            } else if !unknown.contains(&name.to_string()) {
                unknown.push(name.to_string());
            }
        }
        if !unknown.is_empty() {
            return Err(Error::UnknownDevices {
                unknown,
                known: self.device_names(),
            });
        }
        if let Some(conflict) = conflict {
            return Err(conflict);
        }
        Ok(out)
    }

    /// Resolve `names` and apply their edits to `spec`; on any error `spec` is unchanged.
    pub fn inject(&self, spec: &mut Spec, names: &[QualifiedName]) -> Result<(), Error> {
        if names.is_empty() {
            return Ok(());
        }
        let devices = self.resolve(names)?;
        apply(spec, &devices)
    }
}
