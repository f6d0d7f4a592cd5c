//! `cdi generate` and `cdi list`: CDI specs for this host's devices (what
//! `nvidia-ctk cdi generate` does for NVIDIA, plus RDMA, AMD and TPU), and the devices the
//! registry knows.

use std::path::Path;

use warren_gpu::cdi::{CdiSpec, Registry};
use warren_gpu::nvidia::{self, Discovery, GenerateOptions, HookStyle, NvidiaRoots};

use crate::error::{Result, RuntimeError, chain};

/// Which kinds of devices to generate specs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Nvidia,
    Rdma,
    Amd,
    Tpu,
    All,
}

impl std::str::FromStr for Kind {
    type Err = RuntimeError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "nvidia" => Kind::Nvidia,
            "rdma" => Kind::Rdma,
            "amd" => Kind::Amd,
            "tpu" => Kind::Tpu,
            "all" => Kind::All,
            _ => {
                return Err(RuntimeError::InvalidArgument {
                    what: "--kind",
                    value: s.into(),
                    msg: "expected nvidia, rdma, amd, tpu or all".into(),
                });
            }
        })
    }
}

/// A generated spec, or why none was.
#[derive(Debug)]
pub enum Generated {
    Spec(Box<CdiSpec>),
    /// Nothing of this kind on the host (with the reason).
    Absent(&'static str, String),
}

fn dev_err(e: impl std::error::Error + 'static) -> RuntimeError {
    RuntimeError::Device(chain(&e))
}

/// Discovers devices under the given roots and generates one spec per kind found.
/// `builtin_hooks` leaves the NVIDIA createContainer work to warren (no hook binary).
pub fn generate(kind: Kind, roots: &NvidiaRoots, builtin_hooks: bool) -> Result<Vec<Generated>> {
    let mut out = Vec::new();
    let want = |k| kind == Kind::All || kind == k;
    if want(Kind::Nvidia) {
        match nvidia::discover(roots).map_err(dev_err)? {
            Discovery::Found(inv) => {
                let opts = GenerateOptions {
                    hooks: if builtin_hooks {
                        HookStyle::Builtin
                    } else {
                        GenerateOptions::default().hooks
                    },
                    ..Default::default()
                };
                out.push(Generated::Spec(Box::new(
                    nvidia::generate(&inv, roots, &opts).map_err(dev_err)?.spec,
                )));
            }
            Discovery::Absent { reason } => out.push(Generated::Absent("nvidia", reason)),
        }
    }
    let sys = roots.sysfs_root.as_path();
    let dev = roots.dev_root.join("dev");
    if want(Kind::Rdma) {
        let inv = warren_gpu::rdma::discover(sys).map_err(dev_err)?;
        match warren_gpu::rdma::generate(&inv, &dev) {
            Some(s) => out.push(Generated::Spec(Box::new(s))),
            None => out.push(Generated::Absent("rdma", "no RDMA devices in sysfs".into())),
        }
    }
    if want(Kind::Amd) {
        let inv = warren_gpu::amd::discover(sys).map_err(dev_err)?;
        match warren_gpu::amd::generate(&inv, &dev) {
            Some(s) => out.push(Generated::Spec(Box::new(s))),
            None => out.push(Generated::Absent("amd", "no AMD GPUs in sysfs".into())),
        }
    }
    if want(Kind::Tpu) {
        let inv = warren_gpu::tpu::discover(sys).map_err(dev_err)?;
        match warren_gpu::tpu::generate(&inv, &dev) {
            Some(s) => out.push(Generated::Spec(Box::new(s))),
            None => out.push(Generated::Absent("tpu", "no TPUs on the PCI bus".into())),
        }
    }
    Ok(out)
}

/// Generated specs rendered as one text: YAML documents separated by `---`, or JSON
/// documents one after the other. Also returns how many specs there were and, for each
/// kind absent from the host, `kind: none: why`.
pub fn render(generated: Vec<Generated>, json: bool) -> Result<(String, usize, Vec<String>)> {
    let mut text = String::new();
    let mut found = 0;
    let mut absent = Vec::new();
    for g in generated {
        match g {
            Generated::Spec(s) => {
                found += 1;
                let doc = if json { s.to_json() } else { s.to_yaml() }.map_err(dev_err)?;
                if !json && !text.is_empty() {
                    text.push_str("---\n");
                }
                text.push_str(&doc);
                if !doc.ends_with('\n') {
                    text.push('\n');
                }
            }
            Generated::Absent(k, why) => absent.push(format!("{k}: none: {why}")),
        }
    }
    Ok((text, found, absent))
}

/// Devices known to the registry in `dirs`, and the files it skipped (with reasons).
pub fn list(dirs: &[&Path]) -> (Vec<String>, Vec<String>) {
    let r = Registry::load(dirs);
    let mut names = r.device_names();
    names.sort();
    (names, r.errors().iter().map(ToString::to_string).collect())
}
