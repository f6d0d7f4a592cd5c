//! Fully-qualified CDI device names (`vendor.com/class=name`) and their validation rules,
//! matching the reference Go parser.

use std::fmt;
use std::str::FromStr;

/// Why a vendor, class, kind or device name is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name was empty.
    #[error("invalid (empty) {what} name")]
    Empty {
        /// "vendor", "class" or "device".
        what: &'static str,
    },
    /// The first character is not allowed.
    #[error("invalid {what} name {name:?}: should start with {expected}")]
    BadStart {
        /// "vendor", "class" or "device".
        what: &'static str,
        /// The offending name.
        name: String,
        /// What the first character must be.
        expected: &'static str,
    },
    /// The last character is not a letter or digit.
    #[error("invalid {what} name {name:?}: should end with a letter or digit")]
    BadEnd {
        /// "vendor", "class" or "device".
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// A character in the middle is not allowed.
    #[error("invalid character {ch:?} in {what} name {name:?}")]
    BadChar {
        /// "vendor", "class" or "device".
        what: &'static str,
        /// The offending name.
        name: String,
        /// The offending character.
        ch: char,
    },
    /// A kind is not of the form `vendor/class`.
    #[error("invalid kind {0:?}: expected vendor/class")]
    Kind(String),
    /// A device reference is not of the form `vendor/class=name`.
    #[error("invalid CDI device name {0:?}: expected vendor/class=name")]
    Unqualified(String),
}

fn validate_vendor_or_class(what: &'static str, name: &str) -> Result<(), NameError> {
    let bytes = name.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return Err(NameError::Empty { what });
    };
    if !first.is_ascii_alphabetic() {
        return Err(NameError::BadStart {
            what,
            name: name.to_owned(),
            expected: "a letter",
        });
    }
    if bytes.len() > 2 {
        for ch in name[1..name.len() - 1].chars() {
            if !(ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.')) {
                return Err(NameError::BadChar {
                    what,
                    name: name.to_owned(),
                    ch,
                });
            }
        }
    }
    if !last.is_ascii_alphanumeric() {
        return Err(NameError::BadEnd {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Check a vendor name: ASCII letters, digits, `_`, `-`, `.`; starts with a letter and
/// ends with a letter or digit.
pub fn validate_vendor_name(vendor: &str) -> Result<(), NameError> {
    validate_vendor_or_class("vendor", vendor)
}

/// Check a class name (same alphabet as vendor names; a `.` needs cdiVersion 0.6.0).
pub fn validate_class_name(class: &str) -> Result<(), NameError> {
    validate_vendor_or_class("class", class)
}

/// Check a device name: ASCII letters, digits, `_`, `-`, `.`, `:`; starts and ends with a
/// letter or digit (a leading digit needs cdiVersion 0.5.0).
pub fn validate_device_name(name: &str) -> Result<(), NameError> {
    let what = "device";
    let bytes = name.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return Err(NameError::Empty { what });
    };
    if !first.is_ascii_alphanumeric() {
        return Err(NameError::BadStart {
            what,
            name: name.to_owned(),
            expected: "a letter or digit",
        });
    }
    if bytes.len() == 1 {
        return Ok(());
    }
    if bytes.len() > 2 {
        for ch in name[1..name.len() - 1].chars() {
            if !(ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | ':')) {
                return Err(NameError::BadChar {
                    what,
                    name: name.to_owned(),
                    ch,
                });
            }
        }
    }
    if !last.is_ascii_alphanumeric() {
        return Err(NameError::BadEnd {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Split and validate a kind (`vendor/class`).
pub(crate) fn parse_kind(kind: &str) -> Result<(&str, &str), NameError> {
    let Some((vendor, class)) = kind.split_once('/') else {
        return Err(NameError::Kind(kind.to_owned()));
    };
    if vendor.is_empty() || class.is_empty() {
        return Err(NameError::Kind(kind.to_owned()));
    }
    validate_vendor_name(vendor)?;
    validate_class_name(class)?;
    Ok((vendor, class))
}

/// A fully-qualified CDI device name, `vendor/class=name`, e.g. `nvidia.com/gpu=0`.
///
/// The device part may contain `:` (`nvidia.com/gpu=0:1` names a MIG device); `all` is an
/// ordinary device name that generators emit, not a wildcard.
///
/// ```
/// use warren_gpu::cdi::QualifiedName;
/// let q: QualifiedName = "nvidia.com/gpu=GPU-1234".parse().unwrap();
/// assert_eq!(q.kind(), "nvidia.com/gpu");
/// assert_eq!(q.name(), "GPU-1234");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName {
    vendor: String,
    class: String,
    name: String,
}

impl QualifiedName {
    /// Build and validate a name from its parts.
    pub fn new(vendor: &str, class: &str, name: &str) -> Result<Self, NameError> {
        validate_vendor_name(vendor)?;
        validate_class_name(class)?;
        validate_device_name(name)?;
        Ok(Self {
            vendor: vendor.to_owned(),
            class: class.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Build from a kind (`vendor/class`) and a device name.
    pub fn from_kind(kind: &str, name: &str) -> Result<Self, NameError> {
        let (vendor, class) = parse_kind(kind)?;
        Self::new(vendor, class, name)
    }

    /// The vendor part (`nvidia.com`).
    pub fn vendor(&self) -> &str {
        &self.vendor
    }

    /// The class part (`gpu`).
    pub fn class(&self) -> &str {
        &self.class
    }

    /// The device part (`0`, `GPU-…`, `all`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `vendor/class`.
    pub fn kind(&self) -> String {
        format!("{}/{}", self.vendor, self.class)
    }

    /// Whether `s` parses as a fully-qualified device name.
    pub fn is_qualified(s: &str) -> bool {
        s.parse::<Self>().is_ok()
    }
}

impl FromStr for QualifiedName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unqualified = || NameError::Unqualified(s.to_owned());
        if s.starts_with('/') {
            return Err(unqualified());
        }
        let (kind, name) = s.split_once('=').ok_or_else(unqualified)?;
        if kind.is_empty() || name.is_empty() {
            return Err(unqualified());
        }
        let (vendor, class) = kind.split_once('/').ok_or_else(unqualified)?;
        if vendor.is_empty() || class.is_empty() {
            return Err(unqualified());
        }
        Self::new(vendor, class, name)
    }
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}={}", self.vendor, self.class, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qualified_names() {
        let q: QualifiedName = "nvidia.com/gpu=0:1".parse().unwrap();
        assert_eq!(
            (q.vendor(), q.class(), q.name()),
            ("nvidia.com", "gpu", "0:1")
        );
        assert_eq!(q.to_string(), "nvidia.com/gpu=0:1");
        // Only the first '=' splits; '=' is not a valid device-name character.
        assert!(
            "vendor.com/class=name=with"
                .parse::<QualifiedName>()
                .is_err()
        );
    }

    #[test]
    fn rejects_unqualified_and_invalid_names() {
        for bad in [
            "",
            "gpu0",
            "/dev/nvidia0",
            "nvidia.com=0",
            "nvidia.com/=0",
            "/gpu=0",
            "nvidia.com/gpu=",
            "1vendor/gpu=0",
            "vendor-/gpu=0",
            "vendor/gpu=-0",
            "vendor/gpu=a b",
            "vendor/g$u=0",
        ] {
            assert!(bad.parse::<QualifiedName>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn device_name_rules() {
        for good in ["0", "a", "GPU-abc", "0:1", "MIG-x.y_z", "all"] {
            validate_device_name(good).unwrap();
        }
        for bad in ["", "-a", "a-", "a/b", ":0"] {
            assert!(validate_device_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
