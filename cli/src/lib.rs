//! The logic behind the `warren` CLI; `main.rs` only parses arguments.
//!
//! One module a verb (`run`, `exec`, `logs`, `inspect`, `events`, `stats`, `top`, and
//! `remove` for stop/rm/cleanup), plus the pieces they share: [`state`] (records, names,
//! journal), [`sandbox`] (a record joined with runtime state), [`hostview`] (the default
//! rootfs), [`detach`] and [`monitor`] (detached sandboxes), and [`cri`] (Kubernetes:
//! `warren cri install|status`).

pub mod cri;
pub mod detach;
pub mod events;
pub mod exec;
pub mod exit;
pub mod gpu;
pub mod hostview;
pub mod images;
pub mod inspect;
pub mod logs;
pub mod monitor;
pub mod remove;
pub mod run;
pub mod sandbox;
pub mod script;
pub mod state;
pub mod stats;
pub mod timefmt;
pub mod top;
