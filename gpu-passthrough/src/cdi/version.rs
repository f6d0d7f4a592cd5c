//! `cdiVersion` handling: the versions we understand and which fields each one introduced.
//!
//! A file must declare a version at least as new as every feature it uses; a field from a
//! later version under an older `cdiVersion` fails the file, naming the field.

use std::fmt;
use std::str::FromStr;

use super::spec::{CdiSpec, ContainerEdits};

/// A CDI spec version (`major.minor.patch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major component.
    pub major: u32,
    /// Minor component.
    pub minor: u32,
    /// Patch component.
    pub patch: u32,
}

impl Version {
    /// Build a version from its components.
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }
}

impl FromStr for Version {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.strip_prefix('v').unwrap_or(s);
        let mut parts = s.split('.');
        let mut next = || -> Result<u32, ()> {
            let p = parts.next().ok_or(())?;
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            p.parse().map_err(|_| ())
        };
        let v = Self::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(());
        }
        Ok(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

const V030: Version = Version::new(0, 3, 0);
const V040: Version = Version::new(0, 4, 0);
const V050: Version = Version::new(0, 5, 0);
const V060: Version = Version::new(0, 6, 0);
const V070: Version = Version::new(0, 7, 0);
const V110: Version = Version::new(1, 1, 0);

/// The newest CDI spec version this crate understands.
pub const CURRENT_VERSION: Version = V110;

/// Every `cdiVersion` a spec file may declare.
pub const SUPPORTED_VERSIONS: [Version; 10] = [
    Version::new(0, 1, 0),
    Version::new(0, 2, 0),
    V030,
    V040,
    V050,
    V060,
    V070,
    Version::new(0, 8, 0),
    Version::new(1, 0, 0),
    V110,
];

/// A field used by a spec together with the version that introduced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Feature {
    /// Where in the file, e.g. `devices[0].containerEdits.netDevices`.
    pub field: String,
    /// The first version that has it.
    pub since: Version,
}

fn edits_features(at: &str, edits: &ContainerEdits, out: &mut Vec<Feature>) {
    let mut push = |field: String, since: Version| out.push(Feature { field, since });
    for (i, m) in edits.mounts.iter().enumerate() {
        if m.r#type.as_deref().is_some_and(|t| !t.is_empty()) {
            push(format!("{at}.mounts[{i}].type"), V040);
        }
    }
    for (i, d) in edits.device_nodes.iter().enumerate() {
        if d.host_path.as_deref().is_some_and(|p| !p.is_empty()) {
            push(format!("{at}.deviceNodes[{i}].hostPath"), V050);
        }
    }
    if let Some(rdt) = &edits.intel_rdt {
        push(format!("{at}.intelRdt"), V070);
        if !rdt.schemata.is_empty() {
            push(format!("{at}.intelRdt.schemata"), V110);
        }
        if rdt.enable_monitoring.is_some() {
            push(format!("{at}.intelRdt.enableMonitoring"), V110);
        }
    }
    if !edits.additional_gids.is_empty() {
        push(format!("{at}.additionalGids"), V070);
    }
    if !edits.net_devices.is_empty() {
        push(format!("{at}.netDevices"), V110);
    }
}

/// Every versioned feature `spec` uses, in file order.
pub(crate) fn features(spec: &CdiSpec) -> Vec<Feature> {
    let mut out = Vec::new();
    if !spec.annotations.is_empty() {
        out.push(Feature {
            field: "annotations".into(),
            since: V060,
        });
    }
    if let Some((_, class)) = spec.kind.split_once('/') {
        if class.contains('.') {
            out.push(Feature {
                field: "kind (a '.' in the class)".into(),
                since: V060,
            });
        }
    }
    edits_features("containerEdits", &spec.container_edits, &mut out);
    for (i, dev) in spec.devices.iter().enumerate() {
        if dev.name.starts_with(|c: char| !c.is_ascii_alphabetic()) {
            out.push(Feature {
                field: format!(
                    "devices[{i}].name {:?} (not starting with a letter)",
                    dev.name
                ),
                since: V050,
            });
        }
        if !dev.annotations.is_empty() {
            out.push(Feature {
                field: format!("devices[{i}].annotations"),
                since: V060,
            });
        }
        edits_features(
            &format!("devices[{i}].containerEdits"),
            &dev.container_edits,
            &mut out,
        );
    }
    out
}

/// The oldest version that can express `spec` (never older than 0.3.0). Generators use this
/// so their output loads in older consumers, like `nvidia-ctk cdi generate` does.
pub fn minimum_required(spec: &CdiSpec) -> Version {
    features(spec)
        .into_iter()
        .map(|f| f.since)
        .fold(V030, Ord::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders_versions() {
        let v: Version = "0.5.0".parse().unwrap();
        assert_eq!(v, V050);
        assert!(V050 < V060 && V060 < V110);
        assert_eq!("v1.1.0".parse::<Version>(), Ok(V110));
        for bad in ["", "1", "1.0", "1.0.0.0", "a.b.c", "1.-1.0", "1.0.x"] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?}");
        }
        assert_eq!(V110.to_string(), "1.1.0");
    }
}
