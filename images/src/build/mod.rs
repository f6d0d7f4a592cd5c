//! The builder (placeholder).

/// Errors building images.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Placeholder.
    #[error("build {0}")]
    Other(String),
}
