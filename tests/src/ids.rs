//! Container ids unique across tests, test processes and runs.
//!
//! The shape `e2e<N>-<tag>-<salt>` keeps one id from being a substring of another (`e2e1-`
//! never occurs inside `e2e10-`), so a leak check looking for one id cannot trip over a
//! container of a test running in parallel.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Per-process salt: pid and start time, as 8 hex digits.
pub fn salt() -> &'static str {
    static SALT: OnceLock<String> = OnceLock::new();
    SALT.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0);
        format!("{:08x}", nanos.rotate_left(16) ^ std::process::id())
    })
}

/// A fresh id: `e2e<N>-<tag>-<salt>`; `tag` should be short, lowercase, `[a-z0-9-]`.
pub fn unique_id(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("e2e{n}-{tag}-{}", salt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_do_not_contain_each_other() {
        let ids: Vec<String> = (0..200).map(|_| unique_id("t")).collect();
        for a in &ids {
            for b in &ids {
                assert!(a == b || !b.contains(a.as_str()), "{a} in {b}");
            }
        }
    }
}
