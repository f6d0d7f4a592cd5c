//! GPU: when NVML finds an NVIDIA GPU, a matmul inside against outside and a host↔device
//! copy. Without one the suite is skipped, saying why.

use anyhow::Result;
use warren_gpu::nvidia::{Discovery, NvidiaRoots, discover};

use super::Ctx;
use crate::results::Suite;

const NAME: &str = "gpu";
const TITLE: &str = "GPU";
const METHOD: &str = "NVML discovery (warren_gpu::nvidia::discover on the host's roots); \
with a GPU: a matmul in a container with the GPU passed through against the host, and \
host↔device copy bandwidth.";

/// Runs the suite.
pub fn run(ctx: &Ctx) -> Result<Suite> {
    ctx.say("gpu: NVML discovery");
    let reason = match discover(&NvidiaRoots::host()) {
        Ok(Discovery::Absent { reason }) => format!("no NVIDIA GPU ({reason})"),
        Err(e) => format!("no NVIDIA GPU (NVML: {e})"),
        Ok(Discovery::Found(inv)) => {
            let names: Vec<String> = inv
                .gpus
                .iter()
                .map(|g| format!("{} {}", g.index, g.name))
                .collect();
            format!(
                "NVIDIA GPU found ({}; driver {}), but this build has no GPU workload yet \
                 (matmul and host↔device copy are not implemented)",
                names.join(", "),
                inv.driver_version
            )
        }
    };
    Ok(Suite::skipped(NAME, TITLE, METHOD, reason))
}
