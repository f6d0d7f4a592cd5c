//! The built-in profiles' programs for the native architecture, compiled by `build.rs`
//! from `profiles/*.toml` with the same compiler the library uses.

use seccompiler::sock_filter;

include!(concat!(env!("OUT_DIR"), "/builtin_filters.rs"));
