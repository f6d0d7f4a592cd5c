//! Harness for warren's end-to-end tests: drive `warren-runtime` (and runc, the oracle)
//! as engines do, on bundles built in temp dirs, with hard timeouts and leak checks.
//!
//! ```no_run
//! use warren_e2e::{Bundle, LeakCheck, Runtime, unique_id};
//! let rt = Runtime::warren()?;
//! let mut b = Bundle::new()?;
//! b.set_sh("echo hello");
//! b.save()?;
//! let id = unique_id("hello");
//! let out = rt.run(b.path(), &id, std::time::Duration::from_secs(20))?;
//! assert_eq!(out.stdout, "hello\n");
//! LeakCheck::new().id(&id).path(b.path()).state_root(rt.root()).assert_clean()?;
//! # Ok::<(), warren_e2e::HarnessError>(())
//! ```
//!
//! Tests run as root. The runtime binary is `$WARREN_RUNTIME`, else
//! `target/release/warren-runtime`, else `target/debug/warren-runtime`.

pub mod bundle;
pub mod cgroup;
pub mod command;
pub mod error;
pub mod ids;
pub mod leaks;
pub mod runtime;
pub mod sandbox;
pub mod sandbox_bench;

pub use bundle::Bundle;
pub use command::{DEFAULT_TIMEOUT, Invocation, Output, Running, host_sh, wait_until};
pub use error::{HarnessError, Result};
pub use ids::unique_id;
pub use leaks::{LeakCheck, LeakReport};
pub use runtime::{Container, ContainerGuard, Runtime, runc_binary, warren_binary};

/// Returns `Err(HarnessError::Other(format!(…)))` from the enclosing function unless
/// `cond` holds: assertions for closures that return [`Result`], so that one runtime's
/// failure does not stop the same check on the other.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::HarnessError::Other(format!($($fmt)+)));
        }
    };
}
