//! Image names in the store: `name:tag`, as written in the index's
//! `org.opencontainers.image.ref.name` annotation.

/// A name is not one we can store.
#[derive(Debug, thiserror::Error)]
#[error("invalid image name {0:?}: want [registry/]path[:tag] of letters, digits and ._-/:@+")]
pub struct NameError(pub String);

/// Normalizes a user-given image name: adds `:latest` when it has no tag.
///
/// ```
/// assert_eq!(warren_images::normalize_name("python").unwrap(), "python:latest");
/// assert_eq!(warren_images::normalize_name("127.0.0.1:5055/a/b").unwrap(), "127.0.0.1:5055/a/b:latest");
/// assert_eq!(warren_images::normalize_name("warren/python:3.11").unwrap(), "warren/python:3.11");
/// ```
pub fn normalize_name(name: &str) -> Result<String, NameError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@+".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && !name.contains("..")
        && !name.contains("//");
    if !ok {
        return Err(NameError(name.to_string()));
    }
    if name.contains('@') {
        return Ok(name.to_string());
    }
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        if name.ends_with(':') {
            return Err(NameError(name.to_string()));
        }
        Ok(name.to_string())
    } else {
        Ok(format!("{name}:latest"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names() {
        for bad in ["", "../x", "a//b", "a b", "/abs", "x:", ".hidden", "a/../b"] {
            assert!(normalize_name(bad).is_err(), "{bad}");
        }
    }
}
