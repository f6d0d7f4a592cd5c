//! Registry pulls (placeholder, filled below).

/// Errors pulling from a registry.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The reference could not be parsed.
    #[error("invalid image reference {0:?}")]
    BadReference(String),
}
