//! Container ids: they become directory names under the state root, so they are checked
//! before anything touches the file system.

use crate::error::{Result, RuntimeError};

/// Longest id accepted; leaves room under `NAME_MAX` for the suffixes we add.
pub const MAX_ID_LEN: usize = 1024;

/// Checks that `id` is a safe, runc-compatible container id: non-empty, not `.` or `..`,
/// and made only of ASCII letters, digits and `_ + - .` (runc's `^[\w+-\.]+$`).
pub fn validate(id: &str) -> Result<()> {
    let bad = |reason| RuntimeError::InvalidId {
        id: id.to_owned(),
        reason,
    };
    if id.is_empty() {
        return Err(bad("it is empty"));
    }
    if id == "." || id == ".." {
        return Err(bad("it is a relative path component"));
    }
    if id.len() > 250 {
        return Err(bad("it is longer than 250 bytes"));
    }
    if id.contains('/') {
        return Err(bad("it contains '/'"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        return Err(bad("only letters, digits and _ + - . are allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_runc_style_ids() {
        for id in ["a", "abc-123", "x_y+z.w", "...", &"f".repeat(64)] {
            assert!(validate(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn rejects_path_like_ids() {
        for id in ["", ".", "..", "a/b", "../x", "/abs", "sp ace", "nul\0", "ü"] {
            assert!(validate(id).is_err(), "{id:?}");
        }
    }
}
