//! `NVIDIA_DRIVER_CAPABILITIES`: which parts of the driver a container gets.

use std::fmt;

/// One driver capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// CUDA and OpenCL.
    Compute,
    /// nvidia-smi and NVML.
    Utility,
    /// OpenGL, Vulkan, EGL.
    Graphics,
    /// Video encode and decode.
    Video,
    /// X11 display (modeset device).
    Display,
    /// 32-bit libraries.
    Compat32,
    /// NGX (DLSS).
    Ngx,
}

impl Capability {
    /// Every capability, in the order `all` expands to.
    pub const ALL: [Capability; 7] = [
        Self::Compute,
        Self::Compat32,
        Self::Graphics,
        Self::Utility,
        Self::Video,
        Self::Display,
        Self::Ngx,
    ];

    /// The spelling used in `NVIDIA_DRIVER_CAPABILITIES`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compute => "compute",
            Self::Utility => "utility",
            Self::Graphics => "graphics",
            Self::Video => "video",
            Self::Display => "display",
            Self::Compat32 => "compat32",
            Self::Ngx => "ngx",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of driver capabilities.
///
/// ```
/// use warren_gpu::nvidia::{Capability, DriverCapabilities};
/// let caps = DriverCapabilities::parse("compute,utility").unwrap();
/// assert!(caps.contains(Capability::Compute) && !caps.contains(Capability::Graphics));
/// assert_eq!(DriverCapabilities::parse("").unwrap(), DriverCapabilities::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DriverCapabilities(u8);

impl Default for DriverCapabilities {
    /// `utility,compute`, the toolkit's default when the variable is unset or empty.
    fn default() -> Self {
        Self::EMPTY
            .with(Capability::Utility)
            .with(Capability::Compute)
    }
}

impl DriverCapabilities {
    /// No capabilities.
    pub const EMPTY: Self = Self(0);

    /// Every capability.
    pub fn all() -> Self {
        Capability::ALL.into_iter().fold(Self::EMPTY, Self::with)
    }

    /// This set plus `cap`.
    pub fn with(self, cap: Capability) -> Self {
        Self(self.0 | cap.bit())
    }

    /// Whether `cap` is in the set.
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & cap.bit() != 0
    }

    /// Whether every capability is in the set.
    pub fn is_all(self) -> bool {
        self == Self::all()
    }

    /// Parse a comma-separated list (`compute,utility`, `all`). Empty means the default
    /// (`utility,compute`); an unknown name is returned as the error.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(Self::default());
        }
        let mut caps = Self::EMPTY;
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "all" {
                caps = Self::all();
                continue;
            }
            let cap = Capability::ALL
                .into_iter()
                .find(|c| c.as_str() == item)
                .ok_or_else(|| item.to_owned())?;
            caps = caps.with(cap);
        }
        Ok(caps)
    }
}

impl fmt::Display for DriverCapabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Capability::ALL
            .into_iter()
            .filter(|c| self.contains(*c))
            .map(Capability::as_str)
            .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lists_all_and_unknown() {
        let all = DriverCapabilities::parse("all").unwrap();
        assert!(all.is_all());
        assert_eq!(
            DriverCapabilities::parse("video, graphics,").unwrap(),
            DriverCapabilities::EMPTY
                .with(Capability::Video)
                .with(Capability::Graphics)
        );
        assert_eq!(
            DriverCapabilities::parse("compute,bogus"),
            Err("bogus".into())
        );
        assert_eq!(DriverCapabilities::default().to_string(), "compute,utility");
    }
}
