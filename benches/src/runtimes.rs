//! Finding the runtimes to compare: warren-runtime from its path, the others (`--vs`) by
//! name on `PATH` or by path. A missing one is reported and skipped, not an error.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::BenchError;
use crate::lifecycle::Runtime;
use crate::results::RuntimeInfo;

/// The display name of warren-runtime in every table.
pub const WARREN: &str = "warren-runtime";

fn executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `name` on `PATH`, or `name` itself when it contains a `/`; `None` when it is not an
/// executable file.
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then(|| std::fs::canonicalize(&p).unwrap_or(p));
    }
    std::env::var_os("PATH")?
        .to_string_lossy()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| executable(p))
}

/// First line of `path --version`, when it answers with status 0.
pub fn version(path: &Path) -> Option<String> {
    let out = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
}

/// The warren-runtime binary, checked: it must exist and be executable.
pub fn warren(path: &Path) -> Result<Runtime, BenchError> {
    let err = |reason: &str| BenchError::WarrenRuntime {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            err("not found (build it with `cargo build --release -p warren-runtime`)")
        }
        _ => err(&e.to_string()),
    })?;
    if !meta.is_file() {
        return Err(err("not a file"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(err("not executable"));
    }
    let path = std::fs::canonicalize(path).map_err(|e| err(&e.to_string()))?;
    Ok(Runtime {
        name: WARREN.into(),
        path,
    })
}

/// What `--vs` resolved to.
#[derive(Debug, Default)]
pub struct Resolved {
    /// The runtimes found, in the order given.
    pub found: Vec<Runtime>,
    /// Every entry, found or not.
    pub infos: Vec<RuntimeInfo>,
    /// `NAME: not found, skipped` and similar.
    pub notes: Vec<String>,
}

/// Resolves `--vs` entries: the runtimes found and, for every entry, what was found (with
/// a `not found, skipped` note for the missing ones).
pub fn resolve_vs(vs: &[String]) -> Result<Resolved, BenchError> {
    let mut found: Vec<Runtime> = Vec::new();
    let mut infos = Vec::new();
    let mut notes = Vec::new();
    for entry in vs {
        let entry = entry.trim();
        if entry.is_empty() {
            return Err(BenchError::Vs("empty runtime name".into()));
        }
        let name = entry
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or(entry)
            .to_owned();
        if name == WARREN || found.iter().any(|r| r.name == name) {
            notes.push(format!("{entry}: listed twice, measured once"));
            continue;
        }
        match which(entry) {
            Some(path) => {
                infos.push(RuntimeInfo {
                    name: name.clone(),
                    path: Some(path.display().to_string()),
                    version: version(&path),
                    found: true,
                });
                found.push(Runtime { name, path });
            }
            None => {
                notes.push(format!("{entry}: not found, skipped"));
                infos.push(RuntimeInfo {
                    name,
                    path: None,
                    version: None,
                    found: false,
                });
            }
        }
    }
    Ok(Resolved {
        found,
        infos,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_runtimes_are_skipped_with_a_note() {
        let r = resolve_vs(&["nosuchruntime-xyz".into(), "/no/such/crun".into()]);
        let Ok(Resolved {
            found,
            infos,
            notes,
        }) = r
        else {
            panic!("resolve failed")
        };
        assert!(found.is_empty());
        assert_eq!(infos.len(), 2);
        assert!(infos.iter().all(|i| !i.found));
        assert_eq!(infos[1].name, "crun");
        assert!(notes[0].contains("nosuchruntime-xyz: not found, skipped"));
        assert!(resolve_vs(&[" ".into()]).is_err());
    }

    #[test]
    fn warren_path_is_checked() {
        let e = warren(Path::new("/no/such/warren-runtime")).err();
        assert!(e.is_some_and(|e| e.to_string().contains("not found")));
        let e = warren(Path::new("/")).err();
        assert!(e.is_some_and(|e| e.to_string().contains("not a file")));
    }
}
