//! A blocking CRI v1 client over a unix socket: `k8s-cri`'s tonic clients driven by a
//! current-thread tokio runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::error::{Error, Result};

/// Output of `ExecSync`.
#[derive(Debug, Clone)]
pub struct ExecResult {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

impl ExecResult {
    /// stdout as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// stderr as text.
    pub fn err(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// A connected CRI client.
#[derive(Debug)]
pub struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    /// Deadline of every call.
    pub timeout: Duration,
}

macro_rules! call {
    ($self:ident, $svc:ident, $method:ident, $name:literal, $req:expr) => {{
        let mut req = tonic::Request::new($req);
        req.set_timeout($self.timeout);
        let mut svc = $self.$svc.clone();
        $self
            .rt
            .block_on(async move { svc.$method(req).await })
            .map(tonic::Response::into_inner)
            .map_err(|status| Error::Rpc {
                call: $name,
                status: Box::new(status),
            })
    }};
}

impl Cri {
    /// Connects to the CRI socket at `socket` (lazily: the first call dials).
    pub fn connect(socket: &Path) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Other(format!("start tokio runtime: {e}")))?;
        let path: PathBuf = socket.to_owned();
        // The URI is a placeholder: the connector dials the unix socket.
        let channel = rt.block_on(async {
            let ep = Endpoint::try_from("http://[::]:50051")
                .map_err(|e| Error::Other(format!("endpoint: {e}")))?
                .connect_timeout(Duration::from_secs(5));
            Ok::<_, Error>(
                ep.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        let s = tokio::net::UnixStream::connect(path).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(s))
                    }
                })),
            )
        })?;
        Ok(Self {
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
            timeout: Duration::from_secs(60),
        })
    }

    /// `Version`: (runtime name, runtime version, CRI API version).
    pub fn version(&self) -> Result<(String, String, String)> {
        let r = call!(
            self,
            runtime,
            version,
            "Version",
            cri::VersionRequest {
                version: "v1".into()
            }
        )?;
        Ok((r.runtime_name, r.runtime_version, r.runtime_api_version))
    }

    /// `Status`: the runtime's conditions as (type, status, message).
    pub fn status(&self) -> Result<Vec<(String, bool, String)>> {
        let r = call!(
            self,
            runtime,
            status,
            "Status",
            cri::StatusRequest { verbose: false }
        )?;
        Ok(r.status
            .map(|s| {
                s.conditions
                    .into_iter()
                    .map(|c| (c.r#type, c.status, c.message))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `ListImages`: every tag.
    pub fn list_images(&self) -> Result<Vec<String>> {
        let r = call!(
            self,
            images,
            list_images,
            "ListImages",
            cri::ListImagesRequest { filter: None }
        )?;
        Ok(r.images.into_iter().flat_map(|i| i.repo_tags).collect())
    }

    /// `RunPodSandbox`: the sandbox id.
    pub fn run_pod_sandbox(&self, config: cri::PodSandboxConfig, handler: &str) -> Result<String> {
        let r = call!(
            self,
            runtime,
            run_pod_sandbox,
            "RunPodSandbox",
            cri::RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: handler.to_owned(),
            }
        )?;
        Ok(r.pod_sandbox_id)
    }

    /// `PodSandboxStatus`: the status and the verbose info map.
    pub fn pod_sandbox_status(
        &self,
        id: &str,
    ) -> Result<(cri::PodSandboxStatus, HashMap<String, String>)> {
        let r = call!(
            self,
            runtime,
            pod_sandbox_status,
            "PodSandboxStatus",
            cri::PodSandboxStatusRequest {
                pod_sandbox_id: id.to_owned(),
                verbose: true,
            }
        )?;
        let s = r
            .status
            .ok_or_else(|| Error::Other(format!("PodSandboxStatus {id}: no status")))?;
        Ok((s, r.info))
    }

    /// `StopPodSandbox`.
    pub fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        call!(
            self,
            runtime,
            stop_pod_sandbox,
            "StopPodSandbox",
            cri::StopPodSandboxRequest {
                pod_sandbox_id: id.to_owned()
            }
        )
        .map(drop)
    }

    /// `RemovePodSandbox`.
    pub fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        call!(
            self,
            runtime,
            remove_pod_sandbox,
            "RemovePodSandbox",
            cri::RemovePodSandboxRequest {
                pod_sandbox_id: id.to_owned()
            }
        )
        .map(drop)
    }

    /// `ListPodSandbox`: ids.
    pub fn list_pod_sandboxes(&self) -> Result<Vec<String>> {
        let r = call!(
            self,
            runtime,
            list_pod_sandbox,
            "ListPodSandbox",
            cri::ListPodSandboxRequest { filter: None }
        )?;
        Ok(r.items.into_iter().map(|p| p.id).collect())
    }

    /// `CreateContainer`: the container id.
    pub fn create_container(
        &self,
        pod: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String> {
        let r = call!(
            self,
            runtime,
            create_container,
            "CreateContainer",
            cri::CreateContainerRequest {
                pod_sandbox_id: pod.to_owned(),
                config: Some(config),
                sandbox_config: Some(sandbox_config),
            }
        )?;
        Ok(r.container_id)
    }

    /// `StartContainer`.
    pub fn start_container(&self, id: &str) -> Result<()> {
        call!(
            self,
            runtime,
            start_container,
            "StartContainer",
            cri::StartContainerRequest {
                container_id: id.to_owned()
            }
        )
        .map(drop)
    }

    /// `ContainerStatus`: the status and the verbose info map.
    pub fn container_status(
        &self,
        id: &str,
    ) -> Result<(cri::ContainerStatus, HashMap<String, String>)> {
        let r = call!(
            self,
            runtime,
            container_status,
            "ContainerStatus",
            cri::ContainerStatusRequest {
                container_id: id.to_owned(),
                verbose: true,
            }
        )?;
        let s = r
            .status
            .ok_or_else(|| Error::Other(format!("ContainerStatus {id}: no status")))?;
        Ok((s, r.info))
    }

    /// `ExecSync` with a timeout in seconds.
    pub fn exec_sync(&self, id: &str, cmd: &[&str], timeout_s: i64) -> Result<ExecResult> {
        let r = call!(
            self,
            runtime,
            exec_sync,
            "ExecSync",
            cri::ExecSyncRequest {
                container_id: id.to_owned(),
                cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
                timeout: timeout_s,
            }
        )?;
        Ok(ExecResult {
            stdout: r.stdout,
            stderr: r.stderr,
            exit_code: r.exit_code,
        })
    }

    /// `ContainerStats`.
    pub fn container_stats(&self, id: &str) -> Result<cri::ContainerStats> {
        let r = call!(
            self,
            runtime,
            container_stats,
            "ContainerStats",
            cri::ContainerStatsRequest {
                container_id: id.to_owned()
            }
        )?;
        r.stats
            .ok_or_else(|| Error::Other(format!("ContainerStats {id}: no stats")))
    }

    /// `ListContainers`, optionally of one pod: (id, state).
    pub fn list_containers(&self, pod: Option<&str>) -> Result<Vec<(String, i32)>> {
        let filter = pod.map(|p| cri::ContainerFilter {
            pod_sandbox_id: p.to_owned(),
            ..Default::default()
        });
        let r = call!(
            self,
            runtime,
            list_containers,
            "ListContainers",
            cri::ListContainersRequest { filter }
        )?;
        Ok(r.containers.into_iter().map(|c| (c.id, c.state)).collect())
    }

    /// `StopContainer` with a grace period in seconds.
    pub fn stop_container(&self, id: &str, timeout_s: i64) -> Result<()> {
        call!(
            self,
            runtime,
            stop_container,
            "StopContainer",
            cri::StopContainerRequest {
                container_id: id.to_owned(),
                timeout: timeout_s,
            }
        )
        .map(drop)
    }

    /// `RemoveContainer`.
    pub fn remove_container(&self, id: &str) -> Result<()> {
        call!(
            self,
            runtime,
            remove_container,
            "RemoveContainer",
            cri::RemoveContainerRequest {
                container_id: id.to_owned()
            }
        )
        .map(drop)
    }
}
