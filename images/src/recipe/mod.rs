//! Recipes (placeholder).

/// Errors in recipes.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// Placeholder.
    #[error("recipe {0}")]
    Other(String),
}
