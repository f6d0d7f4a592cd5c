//! Device requests carried by an OCI spec: `cdi.k8s.io/*` annotations (how containerd and
//! CRI-O hand CDI devices to a runtime) and the legacy `NVIDIA_VISIBLE_DEVICES` /
//! `NVIDIA_DRIVER_CAPABILITIES` variables in the spec's `process.env` (data, not this
//! process's environment).

use std::collections::HashMap;

use oci_spec::runtime::Spec;

use crate::cdi::{NameError, QualifiedName};
use crate::nvidia::{DriverCapabilities, KIND as NVIDIA_KIND};

/// Annotation keys with this prefix carry CDI device requests.
pub const ANNOTATION_PREFIX: &str = "cdi.k8s.io/";

/// The legacy device selection variable.
pub const VISIBLE_DEVICES_ENV: &str = "NVIDIA_VISIBLE_DEVICES";

/// The legacy capability selection variable.
pub const DRIVER_CAPABILITIES_ENV: &str = "NVIDIA_DRIVER_CAPABILITIES";

/// Why a request could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// An annotation value holds something that is not a qualified device name.
    #[error("annotation {key}: {source}")]
    Annotation {
        /// The annotation key.
        key: String,
        /// What is wrong with the value.
        #[source]
        source: NameError,
    },
    /// An `NVIDIA_VISIBLE_DEVICES` entry is not an index, UUID, MIG id or CDI name.
    #[error(
        "{VISIBLE_DEVICES_ENV} entry {0:?} is not an index, GPU-/MIG- UUID, <gpu>:<mig>, GPU-<uuid>/<gi>/<ci> or CDI device name"
    )]
    VisibleDevice(String),
    /// An unknown driver capability.
    #[error(
        "unknown {DRIVER_CAPABILITIES_ENV} entry {0:?} (known: compute, compat32, display, graphics, ngx, utility, video, all)"
    )]
    Capability(String),
}

/// One `NVIDIA_VISIBLE_DEVICES` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSelector {
    /// A GPU index (`0`).
    Index(u32),
    /// A GPU or MIG UUID (`GPU-…`, `MIG-…`).
    Uuid(String),
    /// A MIG device by parent index and MIG index (`0:1`).
    Mig {
        /// Parent GPU index.
        gpu: u32,
        /// MIG index within it.
        mig: u32,
    },
    /// A MIG device in the legacy form `GPU-<uuid>/<gi>/<ci>` (or `MIG-GPU-<uuid>/<gi>/<ci>`).
    MigInstance {
        /// Parent GPU UUID (`GPU-…`).
        gpu_uuid: String,
        /// GPU instance id.
        gi: u32,
        /// Compute instance id.
        ci: u32,
    },
    /// A device of the generated `nvidia.com/gpu` spec by name (from
    /// `NVIDIA_VISIBLE_DEVICES=nvidia.com/gpu=<name>`).
    Name(String),
}

/// The value of `NVIDIA_VISIBLE_DEVICES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisibleDevices {
    /// `all`.
    All,
    /// `none`: the driver, but no GPU.
    None,
    /// `void` or empty: no NVIDIA injection at all.
    Void,
    /// A list of devices.
    List(Vec<DeviceSelector>),
}

/// A legacy NVIDIA request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvidiaRequest {
    /// Which GPUs.
    pub devices: VisibleDevices,
    /// Which driver parts.
    pub capabilities: DriverCapabilities,
}

/// Every device request found in a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceRequests {
    /// Fully-qualified CDI names from `cdi.k8s.io/*` annotations and from
    /// `NVIDIA_VISIBLE_DEVICES` entries of other kinds than `nvidia.com/gpu`, de-duplicated,
    /// in annotation-key order.
    pub cdi: Vec<QualifiedName>,
    /// The legacy NVIDIA request, if `NVIDIA_VISIBLE_DEVICES` asks for anything (absent,
    /// empty and `void` mean no request).
    pub nvidia: Option<NvidiaRequest>,
}

/// Collect the requests of `spec` (annotations and `process.env`).
pub fn requests_from_spec(spec: &Spec) -> Result<DeviceRequests, RequestError> {
    let mut out = DeviceRequests::default();
    if let Some(annotations) = spec.annotations() {
        out.cdi = parse_annotations(annotations)?;
    }
    let env = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    let (nvidia, extra) = nvidia_request_from_env(env)?;
    for name in extra {
        if !out.cdi.contains(&name) {
            out.cdi.push(name);
        }
    }
    out.nvidia = nvidia;
    Ok(out)
}

/// Parse `cdi.k8s.io/*` annotations: each value is a comma-separated list of qualified
/// names. Keys are visited in sorted order; duplicates are dropped.
pub fn parse_annotations(
    annotations: &HashMap<String, String>,
) -> Result<Vec<QualifiedName>, RequestError> {
    let mut keys: Vec<&String> = annotations
        .keys()
        .filter(|k| k.starts_with(ANNOTATION_PREFIX))
        .collect();
    keys.sort();
    let mut out: Vec<QualifiedName> = Vec::new();
    for key in keys {
        let value = annotations.get(key).map(String::as_str).unwrap_or_default();
        for item in value.split(',') {
            let name: QualifiedName =
                item.trim()
                    .parse()
                    .map_err(|source| RequestError::Annotation {
                        key: key.clone(),
                        source,
                    })?;
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    Ok(out)
}

/// The last value of `key` in a `KEY=VALUE` list (later entries win, like execve).
pub(crate) fn env_lookup<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

fn parse_u32(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Parse one `NVIDIA_VISIBLE_DEVICES` entry that is not a CDI name.
pub fn parse_selector(entry: &str) -> Result<DeviceSelector, RequestError> {
    let bad = || RequestError::VisibleDevice(entry.to_owned());
    if let Some(i) = parse_u32(entry) {
        return Ok(DeviceSelector::Index(i));
    }
    if let Some((g, m)) = entry.split_once(':') {
        return match (parse_u32(g), parse_u32(m)) {
            (Some(gpu), Some(mig)) => Ok(DeviceSelector::Mig { gpu, mig }),
            _ => Err(bad()),
        };
    }
    let legacy = entry
        .strip_prefix("MIG-")
        .filter(|r| r.starts_with("GPU-"))
        .unwrap_or(entry);
    if legacy.starts_with("GPU-") && legacy.contains('/') {
        let mut parts = legacy.split('/');
        let (Some(uuid), Some(gi), Some(ci), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        return match (parse_u32(gi), parse_u32(ci)) {
            (Some(gi), Some(ci)) if uuid.len() > 4 => Ok(DeviceSelector::MigInstance {
                gpu_uuid: uuid.to_owned(),
                gi,
                ci,
            }),
            _ => Err(bad()),
        };
    }
    let is_uuid = |p: &str| {
        entry.strip_prefix(p).is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        })
    };
    if is_uuid("GPU-") || is_uuid("MIG-") {
        return Ok(DeviceSelector::Uuid(entry.to_owned()));
    }
    Err(bad())
}

/// Parse `NVIDIA_VISIBLE_DEVICES`.
pub fn parse_visible_devices(
    value: &str,
) -> Result<(VisibleDevices, Vec<QualifiedName>), RequestError> {
    let value = value.trim();
    match value {
        "" | "void" => return Ok((VisibleDevices::Void, Vec::new())),
        "none" => return Ok((VisibleDevices::None, Vec::new())),
        "all" => return Ok((VisibleDevices::All, Vec::new())),
        _ => {}
    }
    let mut list = Vec::new();
    let mut other = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if entry.contains('=') {
            let name: QualifiedName = entry
                .parse()
                .map_err(|_| RequestError::VisibleDevice(entry.to_owned()))?;
            if name.kind() == NVIDIA_KIND {
                list.push(DeviceSelector::Name(name.name().to_owned()));
            } else if !other.contains(&name) {
                other.push(name);
            }
        } else if entry == "all" {
            list.push(DeviceSelector::Name("all".into()));
        } else {
            list.push(parse_selector(entry)?);
        }
    }
    if list.is_empty() && !other.is_empty() {
        return Ok((VisibleDevices::Void, other));
    }
    Ok((VisibleDevices::List(list), other))
}

/// Parse the legacy variables from a process env. Returns the NVIDIA request (None when
/// the variable is absent, empty or `void`) and any CDI names of other kinds it listed.
pub fn nvidia_request_from_env(
    env: &[String],
) -> Result<(Option<NvidiaRequest>, Vec<QualifiedName>), RequestError> {
    let Some(value) = env_lookup(env, VISIBLE_DEVICES_ENV) else {
        return Ok((None, Vec::new()));
    };
    let (devices, other) = parse_visible_devices(value)?;
    if devices == VisibleDevices::Void {
        return Ok((None, other));
    }
    let capabilities =
        DriverCapabilities::parse(env_lookup(env, DRIVER_CAPABILITIES_ENV).unwrap_or_default())
            .map_err(RequestError::Capability)?;
    Ok((
        Some(NvidiaRequest {
            devices,
            capabilities,
        }),
        other,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nvidia::Capability;

    #[test]
    fn selectors() {
        assert_eq!(parse_selector("3").unwrap(), DeviceSelector::Index(3));
        assert_eq!(
            parse_selector("0:2").unwrap(),
            DeviceSelector::Mig { gpu: 0, mig: 2 }
        );
        assert_eq!(
            parse_selector("GPU-4b0e0a1c-aaaa-bbbb").unwrap(),
            DeviceSelector::Uuid("GPU-4b0e0a1c-aaaa-bbbb".into())
        );
        assert_eq!(
            parse_selector("MIG-0123abcd-1111").unwrap(),
            DeviceSelector::Uuid("MIG-0123abcd-1111".into())
        );
        let legacy = DeviceSelector::MigInstance {
            gpu_uuid: "GPU-ab12".into(),
            gi: 1,
            ci: 0,
        };
        assert_eq!(parse_selector("GPU-ab12/1/0").unwrap(), legacy);
        assert_eq!(parse_selector("MIG-GPU-ab12/1/0").unwrap(), legacy);
        for bad in [
            "gpu0",
            "-1",
            "0:x",
            "GPU-",
            "GPU-zz",
            "GPU-ab/1",
            "GPU-ab/1/0/2",
            "x/1/0",
        ] {
            assert!(parse_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn visible_devices_values() {
        assert_eq!(
            parse_visible_devices("void").unwrap().0,
            VisibleDevices::Void
        );
        assert_eq!(parse_visible_devices("").unwrap().0, VisibleDevices::Void);
        assert_eq!(
            parse_visible_devices("none").unwrap().0,
            VisibleDevices::None
        );
        assert_eq!(
            parse_visible_devices(" all ").unwrap().0,
            VisibleDevices::All
        );
        let (v, other) =
            parse_visible_devices("0, GPU-ab,nvidia.com/gpu=1:0,example.com/nic=a").unwrap();
        assert_eq!(
            v,
            VisibleDevices::List(vec![
                DeviceSelector::Index(0),
                DeviceSelector::Uuid("GPU-ab".into()),
                DeviceSelector::Name("1:0".into()),
            ])
        );
        assert_eq!(other[0].to_string(), "example.com/nic=a");
        let err = parse_visible_devices("0,bogus").unwrap_err();
        assert!(err.to_string().contains("\"bogus\""), "{err}");
    }

    #[test]
    fn env_last_wins_and_capabilities() {
        let env: Vec<String> = [
            "NVIDIA_VISIBLE_DEVICES=0",
            "NVIDIA_VISIBLE_DEVICES=1",
            "NVIDIA_DRIVER_CAPABILITIES=video,compute",
        ]
        .map(String::from)
        .to_vec();
        let (req, _) = nvidia_request_from_env(&env).unwrap();
        let req = req.unwrap();
        assert_eq!(
            req.devices,
            VisibleDevices::List(vec![DeviceSelector::Index(1)])
        );
        assert!(req.capabilities.contains(Capability::Video));
        assert!(!req.capabilities.contains(Capability::Utility));
        let env = vec!["NVIDIA_VISIBLE_DEVICES=all".to_string()];
        let req = nvidia_request_from_env(&env).unwrap().0.unwrap();
        assert_eq!(req.capabilities, DriverCapabilities::default());
        let env = vec![
            "NVIDIA_VISIBLE_DEVICES=all".to_string(),
            "NVIDIA_DRIVER_CAPABILITIES=compute,warp".to_string(),
        ];
        let err = nvidia_request_from_env(&env).unwrap_err();
        assert!(err.to_string().contains("warp"), "{err}");
        assert_eq!(nvidia_request_from_env(&[]).unwrap().0, None);
    }

    #[test]
    fn annotations() {
        let mut a = HashMap::new();
        a.insert("cdi.k8s.io/b".to_string(), "vendor.com/dev=x".to_string());
        a.insert(
            "cdi.k8s.io/a".to_string(),
            "nvidia.com/gpu=0, nvidia.com/gpu=1,vendor.com/dev=x".to_string(),
        );
        a.insert("other/key".to_string(), "not parsed".to_string());
        let names: Vec<String> = parse_annotations(&a)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            names,
            ["nvidia.com/gpu=0", "nvidia.com/gpu=1", "vendor.com/dev=x"]
        );
        a.insert("cdi.k8s.io/c".to_string(), "gpu0".to_string());
        let err = parse_annotations(&a).unwrap_err();
        assert!(err.to_string().contains("cdi.k8s.io/c"), "{err}");
    }
}
