//! Container Device Interface: spec files, a registry of devices, and applying
//! `containerEdits` to an OCI runtime spec with the reference Go library's semantics.

pub(crate) mod apply;
mod edits;
mod error;
mod name;
mod registry;
mod spec;
mod validate;
mod version;

pub use apply::{apply, apply_edits};
pub use edits::EditsError;
pub use error::{Error, SpecError, SpecFileError};
pub use name::{
    NameError, QualifiedName, validate_class_name, validate_device_name, validate_vendor_name,
};
pub use registry::{DEFAULT_SPEC_DIRS, Device, Registry};
pub use spec::{
    CdiDevice, CdiSpec, ContainerEdits, DeviceNode, Hook, HookName, IntelRdt, Mount, NetDevice,
    SpecFormat,
};
pub use version::{CURRENT_VERSION, SUPPORTED_VERSIONS, Version, minimum_required};
