//! Whole-file validation of a parsed spec (Go's `Spec.validate`): version support and
//! gating, kind, annotations, device names, duplicate devices and edits.

use std::collections::{BTreeMap, BTreeSet};

use super::error::SpecError;
use super::name::{parse_kind, validate_device_name};
use super::spec::CdiSpec;
use super::version::{self, SUPPORTED_VERSIONS, Version};

/// Total size limit of annotation keys and values, as in Kubernetes.
const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

fn valid_segment(s: &str, max: usize, extra: &[char]) -> bool {
    let b = s.as_bytes();
    !s.is_empty()
        && s.len() <= max
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

/// Kubernetes-style qualified annotation key: `[prefix/]name`, prefix a DNS subdomain.
fn valid_annotation_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let lower = p.chars().all(|c| !c.is_ascii_uppercase());
        if !lower || p.len() > 253 || !p.split('.').all(|label| valid_segment(label, 63, &['-'])) {
            return false;
        }
    }
    valid_segment(name, 63, &['-', '_', '.'])
}

fn validate_annotations(at: &str, annotations: &BTreeMap<String, String>) -> Result<(), SpecError> {
    let mut total = 0usize;
    for (k, v) in annotations {
        if !valid_annotation_key(k) {
            return Err(SpecError::Annotations {
                at: at.to_owned(),
                reason: format!("invalid key {k:?}"),
            });
        }
        total = total.saturating_add(k.len()).saturating_add(v.len());
    }
    if total > ANNOTATIONS_MAX_BYTES {
        return Err(SpecError::Annotations {
            at: at.to_owned(),
            reason: format!("total size {total} exceeds {ANNOTATIONS_MAX_BYTES} bytes"),
        });
    }
    Ok(())
}

impl CdiSpec {
    /// Validate a parsed spec. Fields newer than the declared `cdiVersion` fail with an
    /// error naming the field and both versions.
    pub fn validate(&self) -> Result<(), SpecError> {
        let declared: Version = self
            .cdi_version
            .parse()
            .map_err(|()| SpecError::unsupported(&self.cdi_version))?;
        if !SUPPORTED_VERSIONS.contains(&declared) {
            return Err(SpecError::unsupported(&self.cdi_version));
        }
        if let Some(f) = version::features(self)
            .into_iter()
            .find(|f| f.since > declared)
        {
            return Err(SpecError::VersionGate {
                field: f.field,
                required: f.since,
                declared,
            });
        }
        parse_kind(&self.kind).map_err(SpecError::Kind)?;
        validate_annotations("annotations", &self.annotations)?;
        self.container_edits
            .validate()
            .map_err(|source| SpecError::Edits {
                at: "containerEdits".into(),
                source,
            })?;
        let mut names = BTreeSet::new();
        for (index, dev) in self.devices.iter().enumerate() {
            validate_device_name(&dev.name)
                .map_err(|source| SpecError::DeviceName { index, source })?;
            validate_annotations(&format!("devices[{index}].annotations"), &dev.annotations)?;
            if dev.container_edits.is_empty() {
                return Err(SpecError::EmptyDeviceEdits(dev.name.clone()));
            }
            dev.container_edits
                .validate()
                .map_err(|source| SpecError::Edits {
                    at: format!("devices[{index}].containerEdits"),
                    source,
                })?;
            if !names.insert(dev.name.as_str()) {
                return Err(SpecError::DuplicateDevice(dev.name.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdi::SpecFormat;

    fn parse(yaml: &str) -> Result<CdiSpec, SpecError> {
        CdiSpec::parse(yaml.as_bytes(), SpecFormat::Yaml)
    }

    #[test]
    fn annotation_keys() {
        for good in ["a", "cdi.k8s.io/x", "example.com/a.b_c-d"] {
            assert!(valid_annotation_key(good), "{good}");
        }
        for bad in ["", "-a", "Example.com/a", "a/", "/a", "a b"] {
            assert!(!valid_annotation_key(bad), "{bad}");
        }
    }

    #[test]
    fn version_gates_name_field_and_versions() {
        let err = parse(
            "cdiVersion: 0.6.0\nkind: v.com/c\ndevices:\n- name: d\n  containerEdits:\n    netDevices:\n    - {hostInterfaceName: eth1, name: eth0}\n",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `devices[0].containerEdits.netDevices` requires cdiVersion 1.1.0 or later, but the file declares 0.6.0"
        );
        let err = parse(
            "cdiVersion: 0.4.0\nkind: v.com/c\ndevices:\n- name: \"0\"\n  containerEdits:\n    env: [A=1]\n",
        )
        .unwrap_err();
        assert!(
            matches!(err, SpecError::VersionGate { required, .. } if required == Version::new(0, 5, 0))
        );
        let err = parse(
            "cdiVersion: 0.5.0\nkind: v.com/c.x\ndevices:\n- name: d\n  containerEdits:\n    env: [A=1]\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("kind"), "{err}");
    }

    #[test]
    fn rejects_unknown_keys_versions_duplicates_and_empty_devices() {
        let err = parse("cdiVersion: 0.3.0\nkind: v.com/c\nbogus: 1\ndevices: []\n").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        let err = parse("cdiVersion: 9.9.9\nkind: v.com/c\ndevices: []\n").unwrap_err();
        assert!(matches!(err, SpecError::UnsupportedVersion { .. }), "{err}");
        let err = parse(
            "cdiVersion: 0.3.0\nkind: v.com/c\ndevices:\n- name: d\n  containerEdits: {env: [A=1]}\n- name: d\n  containerEdits: {env: [A=1]}\n",
        )
        .unwrap_err();
        assert!(matches!(err, SpecError::DuplicateDevice(ref d) if d == "d"));
        let err = parse("cdiVersion: 0.3.0\nkind: v.com/c\ndevices:\n- name: d\n").unwrap_err();
        assert!(matches!(err, SpecError::EmptyDeviceEdits(_)));
        let err = parse("cdiVersion: 0.3.0\nkind: nokind\ndevices: []\n").unwrap_err();
        assert!(matches!(err, SpecError::Kind(_)));
    }

    #[test]
    fn accepts_real_keys() {
        let spec = parse(
            "cdiVersion: 1.1.0\nkind: v.com/c\ncontainerEdits:\n  additionalGids: [44]\n  intelRdt: {closID: g, schemata: [\"L3:0=f\"], enableMonitoring: true}\ndevices:\n- name: d\n  annotations: {a.com/b: c}\n  containerEdits:\n    deviceNodes: [{path: /dev/null, hostPath: /dev/null, type: c, permissions: rw}]\n    mounts: [{hostPath: /a, containerPath: /b, type: none, options: [bind]}]\n    hooks: [{hookName: createContainer, path: /bin/true, args: [true], env: [A=B], timeout: 5}]\n",
        )
        .unwrap();
        assert_eq!(spec.container_edits.additional_gids, vec![44]);
        assert_eq!(version::minimum_required(&spec), Version::new(1, 1, 0));
    }
}
