//! Registry pulls through `oci-client`. The client is async; a current-thread tokio
//! runtime lives only inside [`Store::pull`], so callers stay synchronous.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use oci_spec::image::ImageIndex;

use crate::archive::host_platform;
use crate::archive::oci_types::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use crate::digest::{Digest, HashWriter};
use crate::error::{IoContext, IoError};
use crate::store::{ImageInfo, Store, StoreError, Txn, bad_json};

/// Errors pulling from a registry.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The reference could not be parsed.
    #[error("invalid image reference {reference:?}: {message}")]
    BadReference {
        /// What was given.
        reference: String,
        /// The parser's message.
        message: String,
    },
    /// The registry answered with an error or could not be reached.
    #[error("pull {what} of {reference}: {message}")]
    Registry {
        /// The reference.
        reference: String,
        /// What was being fetched (manifest, blob digest).
        what: String,
        /// The client's message.
        message: String,
    },
    /// No manifest in the image index matches this host.
    #[error("{reference}: no manifest for platform {platform}")]
    NoPlatform {
        /// The reference.
        reference: String,
        /// The platform looked for.
        platform: String,
    },
    /// The tokio runtime could not be started.
    #[error("start async runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Credentials for a registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials (registries still hand out anonymous bearer tokens).
    #[default]
    Anonymous,
    /// HTTP basic auth.
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

/// Options for a pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// Credentials.
    pub auth: Auth,
    /// Talk plain HTTP (a loopback or test registry).
    pub insecure_http: bool,
    /// Local name for the image; default: the reference as given (`:latest` added).
    pub name: Option<String>,
}

const ACCEPT: &[&str] = &[OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST];

impl Store {
    /// Pulls `reference` (`registry/repo:tag` or `…@sha256:…`) into the store. A
    /// multi-platform index resolves to the host's platform (linux/amd64 here). Every
    /// blob is checked against its digest; nothing changes in the store unless the whole
    /// image arrives.
    pub fn pull(&self, reference: &str, opts: &PullOptions) -> crate::Result<ImageInfo> {
        let r: Reference =
            reference
                .parse()
                .map_err(|e: oci_client::ParseError| PullError::BadReference {
                    reference: reference.into(),
                    message: e.to_string(),
                })?;
        let name = crate::reference::normalize_name(opts.name.as_deref().unwrap_or(reference))
            .map_err(StoreError::from)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(PullError::Runtime)?;
        let client = Client::new(ClientConfig {
            protocol: if opts.insecure_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            ..Default::default()
        });
        let auth = match &opts.auth {
            Auth::Anonymous => RegistryAuth::Anonymous,
            Auth::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
        };
        let mut txn = Txn::new(self)?;
        let entry = rt.block_on(pull_into(&client, &auth, &r, reference, &mut txn))?;
        let info = ImageInfo {
            name: name.clone(),
            digest: entry.digest.clone(),
            media_type: entry.media_type.clone(),
        };
        txn.commit(&[(name, entry)])?;
        tracing::info!(%reference, digest = %info.digest, "pulled");
        Ok(info)
    }
}

fn reg_err(reference: &str, what: impl Into<String>, e: impl std::fmt::Display) -> PullError {
    PullError::Registry {
        reference: reference.to_string(),
        what: what.into(),
        message: e.to_string(),
    }
}

async fn pull_into(
    client: &Client,
    auth: &RegistryAuth,
    r: &Reference,
    shown: &str,
    txn: &mut Txn<'_>,
) -> crate::Result<crate::store::IndexEntry> {
    let (mut bytes, mut digest) = client
        .pull_manifest_raw(r, auth, ACCEPT)
        .await
        .map_err(|e| reg_err(shown, "manifest", e))?;
    let mut keep = Vec::new();
    for _ in 0..3 {
        let d = Digest::parse(&digest).map_err(|e| reg_err(shown, "manifest", e))?;
        if Digest::of(&bytes) != d {
            return Err(StoreError::DigestMismatch {
                what: format!("manifest of {shown}"),
                expected: d.to_string(),
                actual: Digest::of(&bytes).to_string(),
            }
            .into());
        }
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| bad_json(format!("manifest of {shown}"), e))?;
        let mt = v
            .get("mediaType")
            .and_then(|m| m.as_str())
            .unwrap_or(if v.get("manifests").is_some() {
                OCI_INDEX
            } else {
                OCI_MANIFEST
            })
            .to_string();
        txn.put_bytes(&bytes)?;
        keep.push(d.clone());
        if mt == OCI_INDEX || mt == DOCKER_LIST {
            let idx: ImageIndex = serde_json::from_slice(&bytes)
                .map_err(|e| bad_json(format!("index of {shown}"), e))?;
            let (os, arch) = host_platform();
            let m = idx
                .manifests()
                .iter()
                .find(|m| {
                    m.platform().as_ref().is_some_and(|p| {
                        p.os().to_string() == os && p.architecture().to_string() == arch
                    })
                })
                .ok_or_else(|| PullError::NoPlatform {
                    reference: shown.to_string(),
                    platform: format!("{os}/{arch}"),
                })?;
            let by_digest = Reference::with_digest(
                r.registry().to_string(),
                r.repository().to_string(),
                m.digest().to_string(),
            );
            (bytes, digest) = client
                .pull_manifest_raw(&by_digest, auth, ACCEPT)
                .await
                .map_err(|e| reg_err(shown, format!("manifest {}", m.digest()), e))?;
            continue;
        }
        let m: oci_spec::image::ImageManifest = serde_json::from_slice(&bytes)
            .map_err(|e| bad_json(format!("manifest of {shown}"), e))?;
        let mut blobs: Vec<(String, u64)> =
            vec![(m.config().digest().to_string(), m.config().size())];
        blobs.extend(
            m.layers()
                .iter()
                .map(|l| (l.digest().to_string(), l.size())),
        );
        for (bd, _) in &blobs {
            let bd = Digest::parse(bd).map_err(|e| bad_json(format!("manifest of {shown}"), e))?;
            if txn.blob_path(&bd).is_some() {
                continue;
            }
            let path = txn.scratch("pull");
            let f = File::create(&path).at("create", &path)?;
            let mut w = AsyncFile {
                w: HashWriter::new(f),
                path: path.clone(),
            };
            client
                .pull_blob(r, bd.as_str(), &mut w)
                .await
                .map_err(|e| reg_err(shown, format!("blob {bd}"), e))?;
            let (f, got, _) = w.w.finish();
            f.sync_all().at("fsync", &path)?;
            if got != bd {
                return Err(StoreError::DigestMismatch {
                    what: format!("blob of {shown}"),
                    expected: bd.to_string(),
                    actual: got.to_string(),
                }
                .into());
            }
            txn.adopt(path, &bd)?;
        }
        let img = crate::archive::check_staged_image(txn, shown, &d)?;
        let _ = img;
        return Ok(crate::store::index_entry(&mt, &d, bytes.len() as u64));
    }
    Err(StoreError::Unsupported {
        what: shown.to_string(),
        message: "image indexes nested too deep".into(),
    }
    .into())
}

/// A synchronous file behind tokio's `AsyncWrite` (writes complete immediately; this
/// runs on a current-thread runtime whose only job is this pull).
struct AsyncFile {
    w: HashWriter<File>,
    path: PathBuf,
}

impl tokio::io::AsyncWrite for AsyncFile {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let p = self.path.clone();
        Poll::Ready(
            self.w
                .write(buf)
                .map_err(|e| std::io::Error::new(e.kind(), IoError::new("write", p, e))),
        )
    }
    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.w.flush())
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
