//! A private Kubernetes node without kubelet: containerd 1.6 with the CRI plugin, CNI,
//! local images and the `warren` handler; plus what kubelet would otherwise do (pod
//! configs, pod cgroups) and leak checks.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;

use crate::bins::{Binaries, run, run_ok};
use crate::client::Cri;
use crate::error::{Error, Result, io};
use crate::image;

/// The containerd namespace of the CRI plugin.
pub const K8S_NS: &str = "k8s.io";
/// Where containerd 1.6 mounts pod network namespaces (unless under its state dir).
const NETNS_DIR: &str = "/var/run/netns";

/// How to set up the node.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub bins: Binaries,
    /// Keep the temp dir (debugging; daemons and mounts are still cleaned up).
    pub keep: bool,
}

impl NodeOptions {
    /// Binaries from the environment (`WARREN_RUNTIME`, `WARREN_CLI`, PATH);
    /// `WARREN_CRI_KEEP=1` keeps the temp dir.
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            bins: Binaries::find()?,
            keep: std::env::var_os("WARREN_CRI_KEEP").is_some_and(|v| v == "1"),
        })
    }
}

/// A pod to run.
#[derive(Debug, Clone)]
pub struct PodSpec {
    pub name: String,
    /// The CRI runtime handler (`warren`, `runc`).
    pub handler: String,
    /// Pod annotations (kubelet passes the pod's metadata.annotations).
    pub annotations: HashMap<String, String>,
}

impl PodSpec {
    /// A pod `name` under `handler`, without annotations.
    pub fn new(name: &str, handler: &str) -> Self {
        Self {
            name: name.to_owned(),
            handler: handler.to_owned(),
            annotations: HashMap::new(),
        }
    }

    /// Adds a pod annotation.
    pub fn annotate(mut self, k: &str, v: &str) -> Self {
        self.annotations.insert(k.to_owned(), v.to_owned());
        self
    }
}

/// A running pod sandbox.
#[derive(Debug, Clone)]
pub struct Pod {
    pub id: String,
    pub handler: String,
    pub config: cri::PodSandboxConfig,
}

/// Per-container settings.
#[derive(Debug, Clone, Default)]
pub struct ContainerOpts {
    /// Container annotations (device plugins' CDI requests arrive here).
    pub annotations: HashMap<String, String>,
    pub memory_limit: Option<i64>,
}

/// The private node. Dropping it removes everything it created.
#[derive(Debug)]
pub struct Node {
    pub bins: Binaries,
    /// Private temp dir: containerd root/state/socket/config, runtime roots, CNI, logs.
    pub dir: PathBuf,
    /// Short random hex naming the bridge, the cgroup parent and the CDI kind.
    pub tag: String,
    /// containerd's (and CRI's) socket.
    pub socket: PathBuf,
    /// The containerd config `warren cri install` edited.
    pub config: PathBuf,
    /// What `warren cri install` printed (the RuntimeClass).
    pub install_stdout: String,
    /// What `warren cri status` printed, and whether it passed.
    pub status_report: (bool, String),
    /// The `--root` the shim passes to warren-runtime (options.Root/NAMESPACE).
    pub warren_root: PathBuf,
    /// The same for runc.
    pub runc_root: PathBuf,
    pub bridge: String,
    /// The cgroup parent of every pod (`/wcri-TAG`), as kubelet's `kubepods`.
    pub cgroup_parent: String,
    /// CDI kind of the fake device (`wcri-TAG.warren.dev/fake`), device `dev0`, whose spec
    /// is in `DIR/cdi`, the only CDI directory warren-runtime reads here
    /// (`WARREN_CDI_SPEC_DIRS` in containerd's environment reaches it through the shim).
    pub cdi_kind: String,
    cdi_spec: PathBuf,
    containerd: RefCell<Option<Child>>,
    cri: Option<Cri>,
    netns_before: BTreeSet<String>,
    run_containerd_existed: bool,
    pods: Cell<u32>,
    keep: bool,
}

fn tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{:06x}",
        (std::process::id().wrapping_mul(2_654_435_761) ^ nanos) & 0xff_ffff
    )
}

fn list_dir(d: &Path) -> BTreeSet<String> {
    std::fs::read_dir(d)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Mount points (field 5 of mountinfo) under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    let mut v: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix) || *m == prefix.trim_end_matches('/'))
        .map(str::to_owned)
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.len()));
    v
}

fn umount(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path; umount2 takes no other pointers.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) == 0 }
}

/// Every cgroup hierarchy's mount point (v1 controllers, named ones, cgroup2).
fn cgroup_mounts() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 2 && (f[2] == "cgroup" || f[2] == "cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .collect()
}

/// Directories below `root` (not `root` itself), deepest first.
fn subdirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        if let Ok(it) = std::fs::read_dir(&d) {
            for e in it.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(e.path());
                    stack.push(e.path());
                }
            }
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out
}

fn procs_in(d: &Path) -> Vec<i32> {
    std::fs::read_to_string(d.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Pids whose command line contains `needle`.
fn pids_with_arg(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    list_dir(Path::new("/proc"))
        .into_iter()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter(|&p| p != me)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill takes integers only.
    unsafe {
        libc::kill(pid, sig);
    }
}

impl Node {
    /// Builds the node: config, `warren cri install`, CNI, containerd, images, CDI spec.
    pub fn start(o: &NodeOptions) -> Result<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Error::Other("the CRI test needs root".into()));
        }
        let dir = tempfile::Builder::new()
            .prefix("warren-cri.")
            .tempdir_in("/tmp")
            .map_err(io("create temp dir in", "/tmp"))?
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
            .map_err(io("chmod", &dir))?;
        let tag = tag();
        let mut node = Node {
            bins: o.bins.clone(),
            socket: dir.join("containerd.sock"),
            config: dir.join("config.toml"),
            install_stdout: String::new(),
            status_report: (false, String::new()),
            warren_root: dir.join("warren-root").join(K8S_NS),
            runc_root: dir.join("runc-root").join(K8S_NS),
            bridge: format!("wcri{tag}"),
            cgroup_parent: format!("/wcri-{tag}"),
            cdi_kind: format!("wcri-{tag}.warren.dev/fake"),
            cdi_spec: dir.join("cdi").join(format!("warren-cri-{tag}.json")),
            containerd: RefCell::new(None),
            cri: None,
            netns_before: list_dir(Path::new(NETNS_DIR)),
            run_containerd_existed: Path::new("/run/containerd").exists(),
            pods: Cell::new(0),
            keep: o.keep,
            tag,
            dir,
        };
        node.setup()?;
        Ok(node)
    }

    fn setup(&mut self) -> Result<()> {
        let d = self.dir.clone();
        for sub in [
            "root",
            "state",
            "cni/net.d",
            "cni/ipam",
            "logs",
            "dev",
            "opt",
            "cdi",
        ] {
            std::fs::create_dir_all(d.join(sub)).map_err(io("create", d.join(sub)))?;
        }
        self.write_config()?;
        self.install()?;
        self.write_cni()?;
        self.write_cdi()?;
        self.start_containerd()?;
        image::build_and_import(&self.bins, &d.join("images"), &self.socket)?;
        self.wait_images()?;
        Ok(())
    }

    /// containerd's config before `warren cri install`: a private daemon, the CRI plugin
    /// with a `runc` handler, and only the runtime root of the `warren` handler (so the
    /// install has to add the rest and keep that).
    fn write_config(&self) -> Result<()> {
        let d = self.dir.display();
        let runc = self.bins.runc.display();
        let cni = self.bins.cni_bin_dir.display();
        let text = format!(
            r#"# private containerd of warren's CRI test
version = 2
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  enable_selinux = false
  # the sandbox's oom_score_adj -998 needs CAP_SYS_RESOURCE, which some hosts (and
  # rootless or nested setups) do not have: clamp to containerd's own
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  BinaryName = "{runc}"
  Root = "{d}/runc-root"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.warren.options]
  Root = "{d}/warren-root"

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{cni}"
  conf_dir = "{d}/cni/net.d"
  max_conf_num = 1
"#,
            pause = image::PAUSE,
        );
        std::fs::write(&self.config, text).map_err(io("write", &self.config))
    }

    /// `warren cri install --config` adds the handler; `warren cri status` checks it.
    fn install(&mut self) -> Result<()> {
        let t = Duration::from_secs(30);
        let out = run_ok(
            Command::new(&self.bins.warren)
                .args(["cri", "install", "--config"])
                .arg(&self.config)
                .arg("--runtime")
                .arg(&self.bins.warren_runtime),
            t,
        )?;
        self.install_stdout = out.stdout;
        let st = run(
            Command::new(&self.bins.warren)
                .args(["cri", "status", "--config"])
                .arg(&self.config)
                .arg("--engine-binary")
                .arg(&self.bins.containerd),
            t,
        )?;
        self.status_report = (st.status == 0, st.stdout + &st.stderr);
        Ok(())
    }

    fn write_cni(&self) -> Result<()> {
        // A /24 in 10.200.0.0/13 picked from the tag, not on any route of the host.
        let routes = run(
            Command::new(&self.bins.ip).args(["-4", "route", "show"]),
            Duration::from_secs(10),
        )
        .map(|o| o.stdout)
        .unwrap_or_default();
        let seed = u32::from_str_radix(&self.tag, 16).unwrap_or(0);
        let subnet = (0..64)
            .map(|i| {
                let n = (seed + i * 97) % 2048;
                format!("10.{}.{}", 200 + n / 256, n % 256)
            })
            .find(|s| !routes.contains(&format!("{s}.")))
            .ok_or_else(|| Error::Other("no free subnet in 10.200.0.0/13".into()))?;
        let conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("wcri-{}", self.tag),
            "plugins": [{
                "type": "bridge",
                "bridge": self.bridge,
                // no gateway: the bridge plugin would turn on the host's ip_forward
                "isGateway": false,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": format!("{subnet}.0/24")}]],
                    "dataDir": self.dir.join("cni/ipam"),
                }
            }]
        });
        let p = self.dir.join("cni/net.d/10-wcri.conflist");
        std::fs::write(&p, conf.to_string()).map_err(io("write", &p))
    }

    /// The fake device (a character device aliasing /dev/null, 1:3) and its CDI spec.
    fn write_cdi(&self) -> Result<()> {
        let dev = self.fake_device();
        let c = std::ffi::CString::new(dev.as_os_str().as_encoded_bytes())
            .map_err(|e| Error::Other(e.to_string()))?;
        // SAFETY: `c` is a valid NUL-terminated path; mknod takes no other pointers.
        if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } != 0 {
            return Err(io("mknod", &dev)(std::io::Error::last_os_error()));
        }
        let spec = serde_json::json!({
            "cdiVersion": "0.5.0",
            "kind": self.cdi_kind,
            "devices": [{
                "name": "dev0",
                "containerEdits": {
                    "deviceNodes": [{"path": "/dev/wcri-fake0", "hostPath": dev}],
                    "env": ["WCRI_FAKE=dev0"]
                }
            }]
        });
        std::fs::write(&self.cdi_spec, spec.to_string()).map_err(io("write", &self.cdi_spec))
    }

    /// The host node behind the fake CDI device.
    pub fn fake_device(&self) -> PathBuf {
        self.dir.join("dev/wcri-null")
    }

    fn containerd_log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The lines of containerd's log that mention `needle`.
    pub fn containerd_log_grep(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("containerd.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }

    fn start_containerd(&mut self) -> Result<()> {
        let logp = self.dir.join("containerd.log");
        let log = std::fs::File::create(&logp).map_err(io("create", &logp))?;
        let err = log.try_clone().map_err(io("dup", &logp))?;
        let child = Command::new(&self.bins.containerd)
            .arg("--config")
            .arg(&self.config)
            .args(["--log-level", "info"])
            // the shims inherit it, and so does warren-runtime: CDI specs from our dir only
            .env("WARREN_CDI_SPEC_DIRS", self.dir.join("cdi"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::Command {
                cmd: "containerd".into(),
                msg: e.to_string(),
            })?;
        *self.containerd.borrow_mut() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.socket.exists() {
            self.ensure_containerd_alive()?;
            if Instant::now() > deadline {
                return Err(Error::Other(format!(
                    "containerd did not create {} in 30s:\n{}",
                    self.socket.display(),
                    self.containerd_log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let cri = Cri::connect(&self.socket)?;
        // Ready: RuntimeReady and NetworkReady (the CNI config is loaded).
        let mut last: String;
        loop {
            self.ensure_containerd_alive()?;
            match cri.status() {
                Ok(conds) if conds.iter().all(|c| c.1) && conds.len() >= 2 => break,
                Ok(conds) => last = format!("{conds:?}"),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                return Err(Error::Other(format!(
                    "CRI not ready in 30s ({last}):\n{}",
                    self.containerd_log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.cri = Some(cri);
        Ok(())
    }

    fn ensure_containerd_alive(&self) -> Result<()> {
        if let Some(c) = self.containerd.borrow_mut().as_mut()
            && let Ok(Some(st)) = c.try_wait()
        {
            return Err(Error::Other(format!(
                "containerd exited ({st}):\n{}",
                self.containerd_log_tail()
            )));
        }
        Ok(())
    }

    fn wait_images(&self) -> Result<()> {
        // The CRI plugin learns about imported images from containerd's events.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let tags = self.cri().list_images()?;
            if [image::BUSYBOX, image::PAUSE]
                .iter()
                .all(|i| tags.iter().any(|t| t == i))
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Other(format!("CRI ListImages: {tags:?}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The CRI client.
    pub fn cri(&self) -> &Cri {
        // Set by `start` before a Node is handed out.
        match &self.cri {
            Some(c) => c,
            None => unreachable!("Node::start connects the client"),
        }
    }

    /// The pod config kubelet would send for `spec`.
    pub fn pod_config(&self, spec: &PodSpec) -> cri::PodSandboxConfig {
        let n = self.pods.get() + 1;
        self.pods.set(n);
        let log_dir = self.dir.join("logs").join(format!("{}-{n}", spec.name));
        let _ = std::fs::create_dir_all(&log_dir);
        cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: spec.name.clone(),
                uid: format!("uid-{}-{n}", self.tag),
                namespace: "warren-cri".into(),
                attempt: 0,
            }),
            hostname: spec.name.clone(),
            log_directory: log_dir.display().to_string(),
            annotations: spec.annotations.clone(),
            labels: HashMap::from([("app".to_owned(), spec.name.clone())]),
            linux: Some(cri::LinuxPodSandboxConfig {
                cgroup_parent: format!("{}/pod-{n}", self.cgroup_parent),
                security_context: Some(cri::LinuxSandboxSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: cri::NamespaceMode::Pod as i32,
                        pid: cri::NamespaceMode::Container as i32,
                        ipc: cri::NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// `RunPodSandbox`.
    pub fn run_pod(&self, spec: &PodSpec) -> Result<Pod> {
        let config = self.pod_config(spec);
        let id = match self.cri().run_pod_sandbox(config.clone(), &spec.handler) {
            Ok(id) => id,
            Err(e) => {
                // kubelet removes the pod's cgroup when it gives up on the pod
                if let Some(l) = &config.linux {
                    self.remove_cgroup(&l.cgroup_parent);
                }
                return Err(e);
            }
        };
        Ok(Pod {
            id,
            handler: spec.handler.clone(),
            config,
        })
    }

    /// The container config kubelet would send.
    pub fn container_config(
        &self,
        name: &str,
        cmd: &[&str],
        o: &ContainerOpts,
    ) -> cri::ContainerConfig {
        cri::ContainerConfig {
            metadata: Some(cri::ContainerMetadata {
                name: name.to_owned(),
                attempt: 0,
            }),
            image: Some(cri::ImageSpec {
                image: image::BUSYBOX.into(),
                ..Default::default()
            }),
            command: cmd.iter().map(|s| (*s).to_owned()).collect(),
            log_path: format!("{name}.log"),
            annotations: o.annotations.clone(),
            linux: Some(cri::LinuxContainerConfig {
                resources: Some(cri::LinuxContainerResources {
                    memory_limit_in_bytes: o.memory_limit.unwrap_or(0),
                    cpu_shares: 512,
                    ..Default::default()
                }),
                security_context: Some(cri::LinuxContainerSecurityContext {
                    namespace_options: Some(cri::NamespaceOption {
                        network: cri::NamespaceMode::Pod as i32,
                        pid: cri::NamespaceMode::Container as i32,
                        ipc: cri::NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    /// `CreateContainer`.
    pub fn create_container(
        &self,
        pod: &Pod,
        name: &str,
        cmd: &[&str],
        o: ContainerOpts,
    ) -> Result<String> {
        let c = self.container_config(name, cmd, &o);
        self.cri().create_container(&pod.id, c, pod.config.clone())
    }

    /// `CreateContainer` + `StartContainer`.
    pub fn start_container(
        &self,
        pod: &Pod,
        name: &str,
        cmd: &[&str],
        o: ContainerOpts,
    ) -> Result<String> {
        let id = self.create_container(pod, name, cmd, o)?;
        self.cri().start_container(&id)?;
        Ok(id)
    }

    /// The runtime's `--root` for `handler`'s containers.
    pub fn runtime_root(&self, handler: &str) -> &Path {
        if handler == "runc" {
            &self.runc_root
        } else {
            &self.warren_root
        }
    }

    /// `warren-runtime --root ROOT state ID` as JSON: proof that warren-runtime (not runc)
    /// created container `id`.
    pub fn warren_state(&self, id: &str) -> Result<serde_json::Value> {
        let out = run_ok(
            Command::new(&self.bins.warren_runtime)
                .arg("--root")
                .arg(&self.warren_root)
                .args(["state", id]),
            Duration::from_secs(10),
        )?;
        serde_json::from_str(&out.stdout)
            .map_err(|e| Error::Other(format!("state {id}: {e}: {}", out.stdout)))
    }

    /// The OCI spec the shim handed the runtime for container (or sandbox) `id`.
    pub fn bundle_spec(&self, id: &str) -> Result<serde_json::Value> {
        let p = self
            .dir
            .join("state/io.containerd.runtime.v2.task")
            .join(K8S_NS)
            .join(id)
            .join("config.json");
        let text = std::fs::read_to_string(&p).map_err(io("read", &p))?;
        serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", p.display())))
    }

    /// Stops and removes every container of the pod, then the pod, then (kubelet's job)
    /// the pod's cgroup directories.
    pub fn teardown_pod(&self, pod: &Pod) -> Result<()> {
        for (c, _) in self.cri().list_containers(Some(&pod.id))? {
            self.cri().stop_container(&c, 2)?;
            self.cri().remove_container(&c)?;
        }
        self.cri().stop_pod_sandbox(&pod.id)?;
        self.cri().remove_pod_sandbox(&pod.id)?;
        if let Some(l) = &pod.config.linux {
            self.remove_cgroup(&l.cgroup_parent);
        }
        Ok(())
    }

    fn remove_cgroup(&self, rel: &str) {
        let rel = rel.trim_start_matches('/');
        for m in cgroup_mounts() {
            let d = m.join(rel);
            if d.is_dir() {
                for s in subdirs(&d) {
                    let _ = std::fs::remove_dir(s);
                }
                let _ = std::fs::remove_dir(&d);
            }
        }
    }

    /// What a teardown left behind: pods, containers, shims, mounts, network namespaces,
    /// veths, cgroups, runtime state, bundles. Empty when clean.
    pub fn leaks(&self) -> Result<Vec<String>> {
        let mut v = Vec::new();
        let pods = self.cri().list_pod_sandboxes()?;
        if !pods.is_empty() {
            v.push(format!("pod sandboxes: {pods:?}"));
        }
        let ctrs = self.cri().list_containers(None)?;
        if !ctrs.is_empty() {
            v.push(format!("containers: {ctrs:?}"));
        }
        // shims exit asynchronously after their last task is deleted
        let needle = format!("-address {}", self.socket.display());
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut shims = pids_with_arg(&needle);
        while !shims.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            shims = pids_with_arg(&needle);
        }
        if !shims.is_empty() {
            v.push(format!("shim processes: {shims:?}"));
        }
        let m = mounts_under(&self.dir);
        if !m.is_empty() {
            v.push(format!("mounts: {m:?}"));
        }
        let netns: Vec<String> = list_dir(Path::new(NETNS_DIR))
            .difference(&self.netns_before)
            .cloned()
            .collect();
        if !netns.is_empty() {
            v.push(format!("network namespaces in {NETNS_DIR}: {netns:?}"));
        }
        let netns_state = self.dir.join("state/io.containerd.grpc.v1.cri");
        for d in subdirs(&netns_state)
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "netns"))
        {
            let left = list_dir(&d);
            if !left.is_empty() {
                v.push(format!("network namespaces in {}: {left:?}", d.display()));
            }
        }
        if let Ok(o) = run(
            Command::new(&self.bins.ip).args(["-o", "link", "show", "master", &self.bridge]),
            Duration::from_secs(10),
        ) && o.status == 0
            && !o.stdout.trim().is_empty()
        {
            v.push(format!("veths on {}: {}", self.bridge, o.stdout.trim()));
        }
        let rel = self.cgroup_parent.trim_start_matches('/');
        for mnt in cgroup_mounts() {
            let root = mnt.join(rel);
            for d in subdirs(&root) {
                v.push(format!("cgroup {}", d.display()));
            }
            if root.is_dir() && !procs_in(&root).is_empty() {
                v.push(format!("processes in {}", root.display()));
            }
        }
        for (what, d) in [
            ("warren-runtime state", self.warren_root.clone()),
            ("runc state", self.runc_root.clone()),
            (
                "bundles",
                self.dir
                    .join("state/io.containerd.runtime.v2.task")
                    .join(K8S_NS),
            ),
        ] {
            let left = list_dir(&d);
            if !left.is_empty() {
                v.push(format!("{what} in {}: {left:?}", d.display()));
            }
        }
        Ok(v)
    }

    fn cleanup(&mut self) {
        // 1. what the CRI can still remove
        if let (Some(c), true) = (&self.cri, self.containerd_alive())
            && let Ok(pods) = c.list_pod_sandboxes()
        {
            for p in pods {
                let _ = c.stop_pod_sandbox(&p);
                let _ = c.remove_pod_sandbox(&p);
            }
        }
        self.cri = None;
        // 2. containerd
        if let Some(mut child) = self.containerd.borrow_mut().take() {
            kill(child.id() as i32, libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // 3. shims and anything left in our cgroups
        for p in pids_with_arg(&format!("-address {}", self.socket.display())) {
            kill(p, libc::SIGKILL);
        }
        let rel = self.cgroup_parent.trim_start_matches('/').to_owned();
        for mnt in cgroup_mounts() {
            let root = mnt.join(&rel);
            for d in subdirs(&root).into_iter().chain([root.clone()]) {
                for p in procs_in(&d) {
                    kill(p, libc::SIGKILL);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        // 4. mounts (container rootfs, shm, netns under the state dir), deepest first
        for _ in 0..3 {
            for m in mounts_under(&self.dir) {
                umount(&m);
            }
        }
        // 5. network namespaces containerd mounted in /var/run/netns during the run
        for n in list_dir(Path::new(NETNS_DIR)).difference(&self.netns_before) {
            if n.starts_with("cni-") {
                let p = Path::new(NETNS_DIR).join(n);
                umount(&p.display().to_string());
                let _ = std::fs::remove_file(p);
            }
        }
        // 6. cgroups, the bridge, the CDI spec
        self.remove_cgroup(&rel);
        let _ = run(
            Command::new(&self.bins.ip).args(["link", "del", &self.bridge]),
            Duration::from_secs(10),
        );
        // 7. the shim sockets' directory if we made it, then the temp dir
        if !self.run_containerd_existed {
            for d in ["s", "fifo", "runc", ""] {
                let _ = std::fs::remove_dir(Path::new("/run/containerd").join(d));
            }
        }
        if self.keep {
            eprintln!("warren-cri: kept {}", self.dir.display());
        } else if mounts_under(&self.dir).is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!(
                "warren-cri: {} still has mounts, not removed",
                self.dir.display()
            );
        }
    }

    fn containerd_alive(&self) -> bool {
        self.containerd
            .borrow_mut()
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.cleanup();
    }
}
