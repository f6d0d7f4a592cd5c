//! Injection for the legacy `NVIDIA_VISIBLE_DEVICES` request by generating the NVIDIA CDI
//! spec on the fly (the toolkit's "jit-cdi" mode) and applying it with CDI semantics.

use oci_spec::runtime::Spec;

use super::Error;
use super::discover::{Discovery, Inventory, discover};
use super::generate::{GenerateOptions, GeneratedSpec, HookStyle, KIND, generate};
use super::rootfs::RootfsSetup;
use super::roots::NvidiaRoots;
use crate::cdi::{QualifiedName, Registry, apply_edits};
use crate::requests::{DeviceSelector, NvidiaRequest, VisibleDevices};

/// Map a request onto device names of the generated spec (`all`, `0`, `GPU-…`, `0:1`,
/// `MIG-…`). `none` maps to no devices. An entry matching nothing fails with the list of
/// known names.
pub fn select_devices(
    generated: &GeneratedSpec,
    request: &NvidiaRequest,
) -> Result<Vec<String>, Error> {
    let known: Vec<String> = generated
        .spec
        .devices
        .iter()
        .map(|d| d.name.clone())
        .collect();
    let selectors = match &request.devices {
        VisibleDevices::All => return Ok(vec!["all".into()]),
        VisibleDevices::None | VisibleDevices::Void => return Ok(Vec::new()),
        VisibleDevices::List(list) => list,
    };
    let inv: &Inventory = &generated.inventory;
    let mut out: Vec<String> = Vec::new();
    for sel in selectors {
        let name = match sel {
            DeviceSelector::Index(i) => Some(i.to_string()),
            DeviceSelector::Uuid(u) => Some(u.clone()),
            DeviceSelector::Mig { gpu, mig } => Some(format!("{gpu}:{mig}")),
            DeviceSelector::MigInstance { gpu_uuid, gi, ci } => inv
                .gpus
                .iter()
                .find(|g| g.uuid.eq_ignore_ascii_case(gpu_uuid))
                .and_then(|g| {
                    g.migs
                        .iter()
                        .find(|m| m.gpu_instance == *gi && m.compute_instance == *ci)
                        .map(|m| format!("{}:{}", g.index, m.index))
                }),
            DeviceSelector::Name(n) => Some(n.clone()),
        };
        match name {
            Some(name) if known.contains(&name) => {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            _ => {
                return Err(Error::UnknownDevice {
                    requested: selector_text(sel),
                    known,
                });
            }
        }
    }
    Ok(out)
}

fn selector_text(sel: &DeviceSelector) -> String {
    match sel {
        DeviceSelector::Index(i) => i.to_string(),
        DeviceSelector::Uuid(u) | DeviceSelector::Name(u) => u.clone(),
        DeviceSelector::Mig { gpu, mig } => format!("{gpu}:{mig}"),
        DeviceSelector::MigInstance { gpu_uuid, gi, ci } => format!("{gpu_uuid}/{gi}/{ci}"),
    }
}

/// Apply `generated` to `spec` for `request`: the selected devices with the spec-wide
/// edits, or for `none` the spec-wide edits alone. All-or-nothing.
pub fn inject(
    spec: &mut Spec,
    request: &NvidiaRequest,
    generated: &GeneratedSpec,
) -> Result<(), Error> {
    let names = select_devices(generated, request)?;
    if names.is_empty() {
        apply_edits(spec, &generated.spec.container_edits)?;
        return Ok(());
    }
    let mut registry = Registry::new();
    registry.add_spec(generated.spec.clone(), "<generated nvidia.com/gpu spec>")?;
    let qualified = names
        .iter()
        .map(|n| QualifiedName::from_kind(KIND, n))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::UnknownDevice {
            requested: e.to_string(),
            known: registry.device_names(),
        })?;
    registry.inject(spec, &qualified)?;
    Ok(())
}

/// Discover the host's GPUs under `roots`, generate a spec for the request's capabilities
/// and inject it. Returns the rootfs work to do (non-empty with [`HookStyle::Builtin`]).
/// Fails with [`Error::NotPresent`] when GPUs are requested and there are none.
pub fn inject_request(
    spec: &mut Spec,
    request: &NvidiaRequest,
    roots: &NvidiaRoots,
    hooks: HookStyle,
) -> Result<RootfsSetup, Error> {
    let inventory = match discover(roots)? {
        Discovery::Found(inv) => inv,
        Discovery::Absent { reason } => return Err(Error::NotPresent(reason)),
    };
    let builtin = hooks == HookStyle::Builtin;
    let opts = GenerateOptions {
        capabilities: request.capabilities,
        hooks,
    };
    let generated = generate(&inventory, roots, &opts)?;
    inject(spec, request, &generated)?;
    Ok(if builtin {
        generated.setup
    } else {
        RootfsSetup::default()
    })
}
