//! The logic behind the `warren` CLI: turning `warren run` options into an OCI spec and
//! running it with the runtime library. `main.rs` only parses arguments.

pub mod hostview;
pub mod run;
