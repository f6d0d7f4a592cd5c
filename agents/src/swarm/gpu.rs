//! GPU shares of a swarm: whole GPUs or MIG devices, named through CDI, assigned to agents
//! before anything starts, so that a missing GPU fails `up` with a clear message.
//!
//! Each agent gets its devices through the `cdi.k8s.io/warren-swarm` annotation (the
//! runtime injects them at create) and `CUDA_VISIBLE_DEVICES=0,…,k-1`, the indexes CUDA
//! gives the k devices visible inside the sandbox.

use warren_gpu::cdi::{QualifiedName, Registry};

use super::config::{GpuRequest, SwarmConfig};
use crate::error::{Error, Result};

/// The annotation carrying an agent's CDI devices.
pub const CDI_ANNOTATION: &str = "cdi.k8s.io/warren-swarm";

const HINT: &str = "on an NVIDIA host, generate the CDI specs with `warren-runtime cdi generate --kind nvidia --output /etc/cdi/nvidia.yaml`";

/// Whole NVIDIA GPUs the registry knows, by index.
fn whole_gpus(reg: &Registry) -> Vec<String> {
    let mut v: Vec<(u32, String)> = reg
        .devices()
        .filter_map(|d| {
            let q = d.qualified_name();
            (q.vendor() == "nvidia.com" && q.class() == "gpu")
                .then(|| q.name().parse::<u32>().ok().map(|i| (i, q.to_string())))
                .flatten()
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, n)| n).collect()
}

/// The CDI devices of every agent, in the order of the config's agents.
pub fn assign(cfg: &SwarmConfig, reg: &Registry) -> Result<Vec<Vec<String>>> {
    let mut free = whole_gpus(reg);
    let mut out = Vec::new();
    for r in &cfg.roles {
        match &r.gpus {
            GpuRequest::None => out.extend((0..r.replicas).map(|_| Vec::new())),
            GpuRequest::Count(n) => {
                let need = (*n * r.replicas) as usize;
                if free.len() < need {
                    let known = whole_gpus(reg).len();
                    return Err(Error::Gpu(format!(
                        "role {} asks for {n} whole GPU(s) per replica ({need} in all, none shared), but {}; {HINT}",
                        r.name,
                        if known == 0 {
                            "no NVIDIA GPU is known to CDI on this host (no NVIDIA GPUs found)"
                                .to_owned()
                        } else {
                            format!("only {} of the host's {known} are left", free.len())
                        }
                    )));
                }
                for _ in 0..r.replicas {
                    out.push(free.drain(..*n as usize).collect());
                }
            }
            GpuRequest::Devices(names) => {
                for n in names {
                    let q: QualifiedName = n.parse().map_err(|e| {
                        Error::Gpu(format!(
                            "role {}: {n:?} is not a CDI device name: {e}",
                            r.name
                        ))
                    })?;
                    if reg.get(&q).is_none() {
                        let known = reg.device_names();
                        return Err(Error::Gpu(format!(
                            "role {}: CDI device {n} is not on this host (known: {}); {HINT}",
                            r.name,
                            if known.is_empty() {
                                "none, no NVIDIA GPUs found".to_owned()
                            } else {
                                known.join(", ")
                            }
                        )));
                    }
                    free.retain(|f| f != n);
                }
                let k = names.len() / r.replicas as usize;
                for i in 0..r.replicas as usize {
                    out.push(names[i * k..(i + 1) * k].to_vec());
                }
            }
        }
    }
    Ok(out)
}

/// `CUDA_VISIBLE_DEVICES` for an agent with `n` devices.
pub fn cuda_visible(n: usize) -> String {
    (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::config::parse;
    use std::path::Path;

    fn cfg(text: &str) -> SwarmConfig {
        parse(Path::new("/x/t.toml"), text, None).expect("config")
    }

    fn registry(devices: &[&str]) -> Registry {
        let d = tempfile::tempdir().expect("tmp");
        let devs: Vec<String> = devices
            .iter()
            .map(|n| format!("{{\"name\": \"{n}\", \"containerEdits\": {{\"env\": [\"X=1\"]}}}}"))
            .collect();
        std::fs::write(
            d.path().join("nvidia.json"),
            format!(
                "{{\"cdiVersion\": \"0.6.0\", \"kind\": \"nvidia.com/gpu\", \"devices\": [{}]}}",
                devs.join(",")
            ),
        )
        .expect("write");
        let r = Registry::load(&[d.path()]);
        assert!(r.errors().is_empty(), "{:?}", r.errors());
        r
    }

    #[test]
    fn no_gpu_host_fails_clearly() {
        let c = cfg("[roles.t]\ncommand = [\"x\"]\ngpus = 1\n");
        let e = assign(&c, &Registry::new()).expect_err("no GPUs");
        let m = e.to_string();
        assert!(
            m.contains("role t asks for 1 whole GPU") && m.contains("no NVIDIA GPU"),
            "{m}"
        );
        let c = cfg("[roles.t]\ncommand = [\"x\"]\ngpus = [\"nvidia.com/gpu=0\"]\n");
        let m = assign(&c, &Registry::new())
            .expect_err("no device")
            .to_string();
        assert!(
            m.contains("CDI device nvidia.com/gpu=0 is not on this host"),
            "{m}"
        );
    }

    #[test]
    fn whole_gpus_are_not_shared() {
        let reg = registry(&["0", "1", "2", "all"]);
        let c = cfg(
            "[roles.a]\ncommand = [\"x\"]\nreplicas = 2\ngpus = 1\n[roles.b]\ncommand = [\"x\"]\ngpus = 1\n",
        );
        let got = assign(&c, &reg).expect("assign");
        assert_eq!(
            got,
            vec![
                vec!["nvidia.com/gpu=0".to_string()],
                vec!["nvidia.com/gpu=1".to_string()],
                vec!["nvidia.com/gpu=2".to_string()],
            ]
        );
        let c = cfg("[roles.a]\ncommand = [\"x\"]\nreplicas = 2\ngpus = 2\n");
        assert!(assign(&c, &reg).is_err());
        let c = cfg(
            "[roles.a]\ncommand = [\"x\"]\nreplicas = 2\ngpus = [\"nvidia.com/gpu=1\", \"nvidia.com/gpu=2\"]\n",
        );
        assert_eq!(
            assign(&c, &reg).expect("assign")[1],
            vec!["nvidia.com/gpu=2".to_string()]
        );
        assert_eq!(cuda_visible(2), "0,1");
    }
}
