//! Warm sandbox pools: [`config`] (what `warren pool create` asks for), [`daemon`] (the
//! pool daemon), [`sandbox`] and [`reset`] (one pooled sandbox and how it is made clean
//! again), [`wire`] (daemon ↔ init frames), [`api`] and [`client`] (the public JSON API
//! and its Rust client), [`manage`] (create, ls, rm, exec from the CLI).

pub mod api;
pub mod client;
pub mod config;
pub mod daemon;
pub mod manage;
pub mod reset;
pub mod sandbox;
pub mod wire;

pub use api::{Encoding, ErrorCode, ExecRequest, ExecResult, PoolStatus};
pub use client::{Client, ClientError, Output, OutputStream};
pub use config::{PoolConfig, PoolOptions};
