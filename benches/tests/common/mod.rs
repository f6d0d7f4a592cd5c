//! Shared by the benches' integration tests.

use std::path::{Path, PathBuf};

/// The warren-runtime binary: `$WARREN_RUNTIME` (which must exist), else the workspace's
/// static or plain release build; `None` when neither is built.
pub fn runtime() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WARREN_RUNTIME") {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "WARREN_RUNTIME={} does not exist", p.display());
        return Some(p);
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .join("target");
    [
        "x86_64-unknown-linux-gnu/release/warren-runtime",
        "release/warren-runtime",
    ]
    .iter()
    .map(|p| ws.join(p))
    .find(|p| p.is_file())
}
