//! Loading and validating a bundle's `config.json`.
//!
//! Parse errors name the JSON field (`linux.resources.memory.limit`) and the line, so a
//! malformed config is reported as precisely as a compiler would.

use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Result, RuntimeError};

/// A validated container configuration with its rootfs resolved to an absolute path.
#[derive(Debug, Clone)]
pub struct BundleConfig {
    /// The absolute, canonical bundle directory.
    pub bundle: PathBuf,
    /// The parsed spec; `root.path` is absolute and canonical.
    pub spec: Spec,
}

impl BundleConfig {
    /// Canonical rootfs path.
    pub fn rootfs(&self) -> &Path {
        self.spec
            .root()
            .as_ref()
            .map(|r| r.path().as_path())
            .unwrap_or(Path::new("/"))
    }
}

/// Reads `BUNDLE/config.json`, parses it strictly and validates what the runtime relies on.
pub fn load_bundle(bundle: &Path) -> Result<BundleConfig> {
    let bundle = std::fs::canonicalize(bundle).map_err(|source| RuntimeError::Bundle {
        path: bundle.to_owned(),
        source,
    })?;
    if !bundle.is_dir() {
        return Err(RuntimeError::Bundle {
            path: bundle,
            source: std::io::Error::from_raw_os_error(libc::ENOTDIR),
        });
    }
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|e| RuntimeError::io("read", &path, e))?;
    let mut spec = parse_spec(&path, &bytes)?;
    validate(&spec)?;
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .ok_or_else(|| invalid("root", "missing: the spec must name a root filesystem"))?;
    let rootfs = if root.is_absolute() {
        root.clone()
    } else {
        bundle.join(&root)
    };
    let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| RuntimeError::ConfigInvalid {
        field: "root.path".into(),
        msg: format!("rootfs {}: {e}", rootfs.display()),
    })?;
    if !rootfs.is_dir() {
        return Err(invalid(
            "root.path",
            format!("rootfs {} is not a directory", rootfs.display()),
        ));
    }
    if let Some(r) = spec.root_mut().as_mut() {
        r.set_path(rootfs);
    }
    Ok(BundleConfig { bundle, spec })
}

/// Parses spec JSON, reporting the failing field path and position.
pub fn parse_spec(path: &Path, bytes: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize::<_, Spec>(de).map_err(|e| {
        let field = e.path().to_string();
        RuntimeError::ConfigParse {
            path: path.to_owned(),
            field: if field == "." {
                "(document)".into()
            } else {
                field
            },
            msg: e.into_inner().to_string(),
        }
    })
}

fn invalid(field: &str, msg: impl Into<String>) -> RuntimeError {
    RuntimeError::ConfigInvalid {
        field: field.into(),
        msg: msg.into(),
    }
}

/// Checks the parts of the spec that runc rejects at create time.
pub fn validate(spec: &Spec) -> Result<()> {
    if !spec.version().starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("{:?} is not supported (only 1.x)", spec.version()),
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing: the spec must describe a process"))?;
    match process.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => {
            return Err(invalid(
                "process.args",
                "must name at least the program to run",
            ));
        }
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    if let Some(env) = process.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') {
                return Err(invalid(
                    &format!("process.env[{i}]"),
                    format!("{e:?} is not KEY=value"),
                ));
            }
        }
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "missing: only Linux containers are supported"))?;
    if let Some(nss) = linux.namespaces() {
        let mut seen = Vec::new();
        for (i, ns) in nss.iter().enumerate() {
            if seen.contains(&ns.typ()) {
                return Err(invalid(
                    &format!("linux.namespaces[{i}]"),
                    format!("namespace {:?} is listed twice", ns.typ()),
                ));
            }
            seen.push(ns.typ());
            if let Some(p) = ns.path()
                && !p.is_absolute()
            {
                return Err(invalid(
                    &format!("linux.namespaces[{i}].path"),
                    format!("{} is not absolute", p.display()),
                ));
            }
        }
    }
    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            if !m.destination().is_absolute() {
                return Err(invalid(
                    &format!("mounts[{i}].destination"),
                    format!("{} is not an absolute path", m.destination().display()),
                ));
            }
        }
    }
    if let Some(hooks) = spec.hooks() {
        let kinds = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (kind, list) in kinds {
            for (i, h) in list.iter().flatten().enumerate() {
                if !h.path().is_absolute() {
                    return Err(invalid(
                        &format!("hooks.{kind}[{i}].path"),
                        format!("{} is not an absolute path", h.path().display()),
                    ));
                }
            }
        }
    }
    if linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(RuntimeError::Unsupported(
            "linux.netDevices (moving host network devices into the container)".into(),
        ));
    }
    if let Some(sc) = linux.seccomp()
        && sc.listener_path().is_some()
    {
        return Err(RuntimeError::Unsupported(
            "linux.seccomp.listenerPath (SCMP_ACT_NOTIFY user notification)".into(),
        ));
    }
    libcontainer::validator::Validator::validate_spec(spec)
        .map_err(|e| invalid("linux", crate::error::chain(&e)))?;
    Ok(())
}

/// True when the spec asks for a namespace of `typ` (new or joined).
pub fn has_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    namespace_path(spec, typ).is_some()
}

/// `Some(None)` for a new namespace of `typ`, `Some(Some(path))` to join one, `None` for
/// the host's.
pub fn namespace_path(spec: &Spec, typ: LinuxNamespaceType) -> Option<Option<PathBuf>> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|ns| ns.typ() == typ)
        .map(|ns| ns.path().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_the_field() {
        let json = br#"{"ociVersion":"1.0.2","process":{"cwd":"/","args":["sh"],"user":{"uid":"root","gid":0}}}"#;
        let err = parse_spec(Path::new("/b/config.json"), json).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("process.user.uid"), "{msg}");
        assert!(msg.contains("/b/config.json"), "{msg}");
    }

    #[test]
    fn syntax_error_gives_position() {
        let err =
            parse_spec(Path::new("c.json"), b"{\"ociVersion\": \"1.0\",\n  oops}").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
