//! Compiles the built-in profiles (`profiles/*.toml`) to seccomp BPF for the target
//! architecture and embeds the programs (Firecracker does the same with its JSON filters),
//! so that starting a container with a built-in profile compiles nothing.
//!
//! The compiler modules are the library's own files, included here by path.

#![allow(dead_code, unused_imports)]

#[path = "src/filter/mod.rs"]
mod filter;
#[path = "src/profile/mod.rs"]
mod profile;
#[path = "src/syscalls/mod.rs"]
mod syscalls;

use std::fmt::Write as _;

fn main() {
    for dir in ["profiles", "src/filter", "src/profile", "src/syscalls"] {
        println!("cargo::rerun-if-changed={dir}");
    }
    let target = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let mut out = String::from(
        "/// Built-in profile programs: (name, program, compiler warnings).\n\
         pub(super) static BUILTIN_FILTERS: &[(&str, &[sock_filter], &[&str])] = &[\n",
    );
    if let Some(arch) = syscalls::Arch::from_target_arch(&target) {
        for name in profile::builtin_names() {
            let p = match profile::load_builtin(name) {
                Ok(p) => p,
                Err(e) => panic!("built-in profile {name}: {e}"),
            };
            let (filter, warnings) =
                match filter::from_profile::filter_from_policy(&p.seccomp, arch) {
                    Ok(f) => f,
                    Err(e) => panic!("built-in profile {name}: {e}"),
                };
            let program = match filter::compile(&filter) {
                Ok(p) => p,
                Err(e) => panic!("built-in profile {name}: {e}"),
            };
            let _ = writeln!(out, "    ({name:?}, &[");
            for i in &program {
                let _ = writeln!(
                    out,
                    "        sock_filter {{ code: {:#06x}, jt: {}, jf: {}, k: {:#010x} }},",
                    i.code, i.jt, i.jf, i.k
                );
            }
            let _ = write!(out, "    ], &[");
            for w in &warnings {
                let _ = write!(out, "{w:?}, ");
            }
            let _ = writeln!(out, "]),");
        }
    }
    out.push_str("];\n");
    let dir = match std::env::var("OUT_DIR") {
        Ok(d) => d,
        Err(e) => panic!("OUT_DIR: {e}"),
    };
    let path = std::path::Path::new(&dir).join("builtin_filters.rs");
    if let Err(e) = std::fs::write(&path, out) {
        panic!("write {}: {e}", path.display());
    }
}
