//! Harness for warren's Kubernetes test: a real CRI v1 client (the `k8s-cri` crate, tonic)
//! talking to a private containerd 1.6 with the CRI plugin, Debian's CNI plugins, locally
//! built images, and `warren` registered as a runtime handler by `warren cri install`.
//!
//! ```no_run
//! use warren_cri_tests::{Node, NodeOptions, PodSpec};
//! let node = Node::start(&NodeOptions::from_env()?)?;
//! let pod = node.run_pod(&PodSpec::new("hello", "warren"))?;
//! let c = node.start_container(&pod, "main", &["sleep", "3600"], Default::default())?;
//! let out = node.cri().exec_sync(&c, &["echo", "hi"], 10)?;
//! assert_eq!(out.stdout, b"hi\n");
//! node.teardown_pod(&pod)?;
//! assert!(node.leaks()?.is_empty());
//! # Ok::<(), warren_cri_tests::Error>(())
//! ```
//!
//! Everything the test creates is private: containerd's root, state, sockets and config,
//! the runtimes' `--root` directories, the CNI config and IPAM data, the CDI spec directory
//! (`WARREN_CDI_SPEC_DIRS`, which containerd's shims pass on to warren-runtime), a bridge
//! named `wcri<hex>`, a cgroup parent `/wcri-<hex>`, and logs.
//! [`Node`]'s `Drop` removes all of it, also after a failed assertion.
//!
//! Needs root, containerd, containerd-shim-runc-v2, ctr, runc, umoci, busybox-static, gcc,
//! iproute2 and containernetworking-plugins (all in `scripts/deps.sh`).

pub mod bins;
pub mod client;
pub mod error;
pub mod image;
pub mod node;

pub use bins::Binaries;
pub use client::{Cri, ExecResult};
pub use error::{Error, Result};
pub use node::{ContainerOpts, Node, NodeOptions, Pod, PodSpec};
