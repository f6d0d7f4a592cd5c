//! Kubernetes through a real CRI client: a private containerd 1.6 with the CRI plugin, the
//! `warren` runtime handler added by `warren cri install`, Debian's CNI plugins, and pods
//! driven over CRI v1 exactly as kubelet drives them.
//!
//! One node for the whole file (containerd takes seconds to start); every check prints
//! `ok - NAME` or `not ok - NAME` with a diagnosis, and the test fails if any did.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use k8s_cri::v1 as cri;
use warren_cri_tests::{ContainerOpts, Node, NodeOptions, PodSpec};

const AGENT: &str = "warren.dev/profile";

#[derive(Default)]
struct Checks {
    passed: usize,
    failed: Vec<String>,
}

impl Checks {
    fn check<T>(&mut self, name: &str, f: impl FnOnce() -> Result<T>) -> Option<T> {
        match f() {
            Ok(v) => {
                println!("ok - {name}");
                self.passed += 1;
                Some(v)
            }
            Err(e) => {
                println!("not ok - {name}");
                for l in format!("{e:#}").lines() {
                    println!("#   {l}");
                }
                self.failed.push(name.to_owned());
                None
            }
        }
    }
}

fn annotations(spec: &serde_json::Value) -> HashMap<String, String> {
    spec["annotations"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn netns_path(spec: &serde_json::Value) -> Option<String> {
    spec["linux"]["namespaces"]
        .as_array()?
        .iter()
        .find(|n| n["type"] == "network")?
        .get("path")?
        .as_str()
        .map(str::to_owned)
}

/// The inode of the network namespace at `path` (a /proc/PID/ns/net link or a bind-mounted
/// netns file), which identifies it.
fn ns_ino(path: impl AsRef<Path>) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let p = path.as_ref();
    Ok(std::fs::metadata(p)
        .with_context(|| format!("stat {}", p.display()))?
        .ino())
}

/// The container's init pid from the verbose `ContainerStatus` info.
fn info_pid(info: &HashMap<String, String>) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    v["pid"].as_i64()
}

/// Proves that warren-runtime created `id`: its own `state` (under the shim's `--root`)
/// says running with the container's pid, and runc's root has no such container.
fn owned_by_warren(node: &Node, id: &str, pid: Option<i64>) -> Result<()> {
    let st = node.warren_state(id)?;
    ensure!(st["status"] == "running", "warren-runtime state: {st}");
    if let Some(pid) = pid {
        ensure!(
            st["pid"] == pid,
            "warren-runtime state pid {} != CRI pid {pid}",
            st["pid"]
        );
    }
    ensure!(
        !node.runc_root.join(id).exists(),
        "runc has state for {id} too"
    );
    Ok(())
}

fn exec(node: &Node, id: &str, cmd: &str) -> Result<warren_cri_tests::ExecResult> {
    Ok(node.cri().exec_sync(id, &["sh", "-c", cmd], 20)?)
}

fn cgroup_file(pid: i64, controller: &str, file: &str) -> Result<String> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let rel = cg
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls.split(',').any(|c| c == controller).then_some(path)
        })
        .ok_or_else(|| anyhow!("no {controller} cgroup for pid {pid}: {cg}"))?;
    let p = Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(rel.trim_start_matches('/'))
        .join(file);
    Ok(std::fs::read_to_string(&p)
        .with_context(|| p.display().to_string())?
        .trim()
        .to_owned())
}

#[test]
fn kubernetes_pods_under_warren_through_cri() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the CRI test needs root");
        return;
    }
    let opts = NodeOptions::from_env().expect("find binaries");
    let node = Node::start(&opts).unwrap_or_else(|e| panic!("set up the private node: {e}"));
    let mut c = Checks::default();
    let (name, version, api) = node.cri().version().unwrap();
    println!(
        "# {name} {version} (CRI {api}); warren-runtime {}; temp {}",
        opts.bins.warren_runtime.display(),
        node.dir.display()
    );

    // ------------------------------------------------------------- install
    c.check(
        "warren cri install: handler added, RuntimeClass printed, backup kept",
        || {
            ensure!(
                node.install_stdout.contains("kind: RuntimeClass")
                    && node.install_stdout.contains("handler: warren"),
                "stdout: {}",
                node.install_stdout
            );
            let text = std::fs::read_to_string(&node.config)?;
            ensure!(text.contains("BinaryName = "), "{text}");
            ensure!(
                text.contains(&format!(
                    "Root = \"{}\"",
                    node.warren_root.parent().unwrap().display()
                )),
                "the existing options.Root was not kept:\n{text}"
            );
            let backup =
                std::fs::read_to_string(format!("{}.warren-backup", node.config.display()))?;
            ensure!(
                !backup.contains("BinaryName = \"") || !backup.contains("warren-runtime"),
                "backup holds the edit"
            );
            Ok(())
        },
    );
    c.check(
        "warren cri status: the node is ready for the handler",
        || {
            ensure!(node.status_report.0, "{}", node.status_report.1);
            ensure!(
                node.status_report.1.contains("ok   handler: warren"),
                "{}",
                node.status_report.1
            );
            Ok(())
        },
    );

    // ------------------------------------------------------------- a plain pod
    let pod = c.check("RunPodSandbox with runtime_handler warren", || {
        // warren.dev/note: a pod annotation the runtime ignores, to follow it through
        // containerd's pod_annotations filter; other.example/x must be filtered out.
        let p = node.run_pod(
            &PodSpec::new("basic", "warren")
                .annotate("warren.dev/note", "hello")
                .annotate("other.example/x", "dropped"),
        )?;
        let (st, _) = node.cri().pod_sandbox_status(&p.id)?;
        ensure!(
            st.state == cri::PodSandboxState::SandboxReady as i32,
            "state {}",
            st.state
        );
        ensure!(
            st.runtime_handler == "warren",
            "handler {:?}",
            st.runtime_handler
        );
        Ok(p)
    });
    if let Some(pod) = &pod {
        c.check(
            "the pause container is run by warren-runtime; sandbox annotations and netns reach it",
            || {
                let (st, info) = node.cri().pod_sandbox_status(&pod.id)?;
                let pid = serde_json::from_str::<serde_json::Value>(
                    info.get("info").map_or("{}", String::as_str),
                )?["pid"]
                    .as_i64();
                owned_by_warren(&node, &pod.id, pid)?;
                let spec = node.bundle_spec(&pod.id)?;
                let a = annotations(&spec);
                ensure!(
                    a.get("io.kubernetes.cri.container-type")
                        .map(String::as_str)
                        == Some("sandbox"),
                    "{a:?}"
                );
                ensure!(
                    a.get("io.kubernetes.cri.sandbox-id") == Some(&pod.id),
                    "{a:?}"
                );
                let ns =
                    netns_path(&spec).ok_or_else(|| anyhow!("sandbox joins no netns by path"))?;
                ensure!(
                    st.network.as_ref().is_some_and(|n| n.ip.starts_with("10.")),
                    "pod IP: {:?}",
                    st.network
                );
                println!(
                    "#   sandbox netns {ns}, pod IP {}",
                    st.network.map(|n| n.ip).unwrap_or_default()
                );
                Ok(())
            },
        );
        let main = c.check(
            "CreateContainer + StartContainer; ContainerStatus RUNNING; run by warren-runtime",
            || {
                let id = node.start_container(
                    pod,
                    "main",
                    &["sh", "-c", "echo started; exec sleep 3600"],
                    ContainerOpts {
                        memory_limit: Some(128 << 20),
                        ..Default::default()
                    },
                )?;
                let (st, info) = node.cri().container_status(&id)?;
                ensure!(
                    st.state == cri::ContainerState::ContainerRunning as i32,
                    "state {}",
                    st.state
                );
                owned_by_warren(&node, &id, info_pid(&info))?;
                Ok((id.clone(), info_pid(&info).unwrap_or(0)))
            },
        );
        if let Some((id, pid)) = main {
            c.check(
                "container annotations: container-type container, sandbox-id, pod netns by path; pod annotations filtered by pod_annotations",
                || {
                    let spec = node.bundle_spec(&id)?;
                    let a = annotations(&spec);
                    let mut keys: Vec<&String> = a.keys().collect();
                    keys.sort();
                    println!("#   container annotations: {keys:?}");
                    let sb = annotations(&node.bundle_spec(&pod.id)?);
                    let mut sbk: Vec<&String> = sb.keys().collect();
                    sbk.sort();
                    println!("#   sandbox annotations: {sbk:?}");
                    for (what, m) in [("container", &a), ("sandbox", &sb)] {
                        ensure!(
                            m.get("warren.dev/note").map(String::as_str) == Some("hello"),
                            "{what}: the warren.dev/* pod annotation did not pass: {m:?}"
                        );
                        ensure!(
                            !m.contains_key("other.example/x"),
                            "{what}: an unlisted pod annotation passed: {m:?}"
                        );
                    }
                    ensure!(
                        a.get("io.kubernetes.cri.container-type")
                            .map(String::as_str)
                            == Some("container"),
                        "{a:?}"
                    );
                    ensure!(
                        a.get("io.kubernetes.cri.sandbox-id") == Some(&pod.id),
                        "{a:?}"
                    );
                    let ns = netns_path(&spec)
                        .ok_or_else(|| anyhow!("container joins no netns by path"))?;
                    let mine = ns_ino(format!("/proc/{pid}/ns/net"))?;
                    let pause = ns_ino(&ns)?;
                    ensure!(
                        mine == pause,
                        "container netns {mine:?} != pod netns {pause:?} ({ns})"
                    );
                    Ok(())
                },
            );
            c.check("ExecSync: stdout, stderr and exit codes", || {
                let r = exec(&node, &id, "echo out; echo err >&2")?;
                ensure!(
                    r.out() == "out\n" && r.err() == "err\n" && r.exit_code == 0,
                    "{r:?}"
                );
                let r = exec(&node, &id, "exit 3")?;
                ensure!(r.exit_code == 3, "exit code {}", r.exit_code);
                let r = exec(&node, &id, "ip -4 addr show eth0")?;
                ensure!(
                    r.out().contains("inet 10."),
                    "no pod IP on eth0: {}",
                    r.out()
                );
                Ok(())
            });
            c.check(
                "ContainerStats: memory and CPU from the container's cgroup",
                || {
                    exec(
                        &node,
                        &id,
                        "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done",
                    )?;
                    let s = node.cri().container_stats(&id)?;
                    let mem = s
                        .memory
                        .as_ref()
                        .and_then(|m| m.working_set_bytes.as_ref())
                        .map_or(0, |v| v.value);
                    let cpu = s
                        .cpu
                        .as_ref()
                        .and_then(|c| c.usage_core_nano_seconds.as_ref())
                        .map_or(0, |v| v.value);
                    ensure!(
                        mem > 0 && cpu > 0,
                        "memory working set {mem}, cpu {cpu} ns: {s:?}"
                    );
                    let limit = cgroup_file(pid, "memory", "memory.limit_in_bytes")
                        .or_else(|_| cgroup_file(pid, "", "memory.max"))?;
                    ensure!(limit == (128u64 << 20).to_string(), "memory limit {limit}");
                    Ok(())
                },
            );
            c.check("ListContainers lists it RUNNING", || {
                let l = node.cri().list_containers(Some(&pod.id))?;
                ensure!(
                    l.iter().any(
                        |(c, s)| c == &id && *s == cri::ContainerState::ContainerRunning as i32
                    ),
                    "{l:?}"
                );
                Ok(())
            });
            c.check(
                "StopContainer (grace 2s) → EXITED; RemoveContainer → warren-runtime state gone",
                || {
                    node.cri().stop_container(&id, 2)?;
                    let (st, _) = node.cri().container_status(&id)?;
                    ensure!(
                        st.state == cri::ContainerState::ContainerExited as i32,
                        "state {}",
                        st.state
                    );
                    node.cri().remove_container(&id)?;
                    ensure!(
                        node.warren_state(&id).is_err(),
                        "warren-runtime still knows {id}"
                    );
                    ensure!(
                        node.cri().list_containers(Some(&pod.id))?.is_empty(),
                        "still listed"
                    );
                    Ok(())
                },
            );
        }
    }

    // ------------------------------------------------------------- sandbox profile
    c.check(
        "control: unshare -r and a mount in the new user namespace work in a pod without a profile",
        || {
            let p = node.run_pod(&PodSpec::new("control", "warren"))?;
            let id =
                node.start_container(&p, "work", &["sleep", "3600"], ContainerOpts::default())?;
            let r = exec(
                &node,
                &id,
                "unshare -rm sh -c 'mount -t tmpfs none /mnt && echo mounted'",
            );
            node.teardown_pod(&p)?;
            let r = r?;
            ensure!(
                r.exit_code == 0 && r.out() == "mounted\n",
                "fails without a profile too, so the agent check would prove nothing: {} {}",
                r.out(),
                r.err()
            );
            Ok(())
        },
    );
    let agent = c.check(
        "pod with warren.dev/profile: agent runs (pause and container)",
        || {
            let p = node.run_pod(&PodSpec::new("agent", "warren").annotate(AGENT, "agent"))?;
            let id = node.start_container(
                &p,
                "work",
                &["sleep", "3600"],
                ContainerOpts {
                    memory_limit: Some(128 << 20),
                    ..Default::default()
                },
            )?;
            let (st, info) = node.cri().container_status(&id)?;
            ensure!(
                st.state == cri::ContainerState::ContainerRunning as i32,
                "state {}",
                st.state
            );
            owned_by_warren(&node, &id, info_pid(&info))?;
            Ok((p, id))
        },
    );
    if let Some((pod, id)) = &agent {
        c.check(
            "agent profile: unshare and mount are denied, plain commands work",
            || {
                let r = exec(&node, id, "echo allowed")?;
                ensure!(r.exit_code == 0 && r.out() == "allowed\n", "{r:?}");
                let r = exec(&node, id, "unshare -r true")?;
                ensure!(r.exit_code != 0, "unshare -r succeeded under agent: {r:?}");
                let r = exec(&node, id, "unshare -rm sh -c 'mount -t tmpfs none /mnt'")?;
                ensure!(
                    r.exit_code != 0,
                    "a user-namespace mount succeeded under agent: {r:?}"
                );
                let spec = node.bundle_spec(id)?;
                let a = annotations(&spec);
                ensure!(
                    a.get(AGENT).map(String::as_str) == Some("agent"),
                    "annotation did not reach the runtime: {a:?}"
                );
                Ok(())
            },
        );
        c.check(
            "agent profile tightens, never loosens, the pod's limits (memory 128 MiB stays)",
            || {
                let (_, info) = node.cri().container_status(id)?;
                let pid = info_pid(&info).ok_or_else(|| anyhow!("no pid"))?;
                let limit = cgroup_file(pid, "memory", "memory.limit_in_bytes")?;
                ensure!(limit == (128u64 << 20).to_string(), "memory limit {limit}");
                Ok(())
            },
        );
        c.check(
            "agent profile in a pod: network none holds (no IPv4/IPv6 sockets, UDP included)",
            || {
                // nslookup sends UDP, which Landlock does not cover: only the filter stops it.
                let r = exec(
                    &node,
                    id,
                    "nslookup -timeout=1 example.com 127.0.0.1 2>&1; echo rc=$?",
                )?;
                ensure!(
                    r.out().contains("Permission denied") && !r.out().contains("rc=0"),
                    "a UDP socket was made under agent in a pod: {r:?}"
                );
                Ok(())
            },
        );
        c.check(
            "agent profile: the container stays in the pod's network namespace",
            || {
                let spec = node.bundle_spec(&pod.id)?;
                let ns = netns_path(&spec).ok_or_else(|| anyhow!("no pod netns"))?;
                let (_, info) = node.cri().container_status(id)?;
                let pid = info_pid(&info).ok_or_else(|| anyhow!("no pid"))?;
                let mine = ns_ino(format!("/proc/{pid}/ns/net"))?;
                ensure!(
                    mine == ns_ino(&ns)?,
                    "container netns {mine:?} is not the pod's ({ns})"
                );
                Ok(())
            },
        );
    }

    c.check(
        "a network-host profile (trusted) in a pod keeps the pod network namespace",
        || {
            // trusted with this host's nofile limit (raising it needs CAP_SYS_RESOURCE)
            let prof = node.dir.join("hostnet.toml");
            std::fs::write(&prof, "extends = \"trusted\"\n[rlimits]\nnofile = 1024\n")
                .context("write the profile")?;
            let spec =
                PodSpec::new("hostnet", "warren").annotate(AGENT, &prof.display().to_string());
            let p = node.run_pod(&spec)?;
            let r = (|| {
                let id =
                    node.start_container(&p, "work", &["sleep", "3600"], ContainerOpts::default())?;
                let (_, info) = node.cri().container_status(&id)?;
                let pid = info_pid(&info).ok_or_else(|| anyhow!("no pid"))?;
                let mine = ns_ino(format!("/proc/{pid}/ns/net"))?;
                let host = ns_ino("/proc/self/ns/net")?;
                ensure!(
                    mine != host,
                    "a pod annotation put the container in the host's network namespace ({mine:?})"
                );
                let spec = node.bundle_spec(&p.id)?;
                let ns = netns_path(&spec).ok_or_else(|| anyhow!("no pod netns"))?;
                ensure!(
                    mine == ns_ino(&ns)?,
                    "container netns {mine:?} is not the pod's ({ns})"
                );
                Ok(())
            })();
            node.teardown_pod(&p)?;
            r
        },
    );

    // ------------------------------------------------------------- CDI
    let cdi_pod = c.check(
        "CDI: a cdi.k8s.io container annotation gives the container the device",
        || {
            let p = node.run_pod(&PodSpec::new("cdi", "warren"))?;
            let r = (|| {
                let mut o = ContainerOpts::default();
                o.annotations
                    .insert("cdi.k8s.io/wcri".into(), format!("{}=dev0", node.cdi_kind));
                let id = node.start_container(&p, "gpu", &["sleep", "3600"], o)?;
                let r = exec(
                    &node,
                    &id,
                    "test -c /dev/wcri-fake0 && echo x > /dev/wcri-fake0 && echo ok",
                )?;
                ensure!(r.exit_code == 0 && r.out() == "ok\n", "device node: {r:?}");
                // The env edit is in the container's own process; exec'd processes get
                // containerd's copy of the spec (checked below).
                let r = exec(
                    &node,
                    &id,
                    "tr '\\0' '\\n' < /proc/1/environ | grep '^WCRI_FAKE='",
                )?;
                ensure!(
                    r.out() == "WCRI_FAKE=dev0\n",
                    "CDI env in the container's init: {r:?}"
                );
                let plain = node.start_container(
                    &p,
                    "plain",
                    &["sleep", "3600"],
                    ContainerOpts::default(),
                )?;
                let r = exec(&node, &plain, "test -e /dev/wcri-fake0")?;
                ensure!(
                    r.exit_code != 0,
                    "a container without the annotation sees the device"
                );
                Ok(id)
            })();
            match r {
                Ok(id) => Ok((p, id)),
                Err(e) => {
                    node.teardown_pod(&p)?;
                    Err(e)
                }
            }
        },
    );
    if let Some((p, id)) = cdi_pod {
        c.check(
            "CDI env edits also reach exec'd processes (kubectl exec)",
            || {
                let r = exec(&node, &id, "echo \"$WCRI_FAKE\"")?;
                ensure!(
                    r.out() == "dev0\n",
                    "ExecSync sees WCRI_FAKE={:?}",
                    r.out().trim()
                );
                Ok(())
            },
        );
        c.check("CDI pod teardown", || Ok(node.teardown_pod(&p)?));
    }

    // ------------------------------------------------------------- bad input
    c.check(
        "bad input: unknown profile on a container fails with a clear CRI error",
        || {
            let p = node.run_pod(&PodSpec::new("badprofile", "warren"))?;
            let r = (|| {
                let mut o = ContainerOpts::default();
                o.annotations.insert(AGENT.into(), "no-such-profile".into());
                let e = match node.create_container(&p, "bad", &["true"], o) {
                    Err(e) => e,
                    Ok(id) => match node.cri().start_container(&id) {
                        Ok(()) => bail!("StartContainer succeeded with profile no-such-profile"),
                        Err(e) => e,
                    },
                };
                let m = e.rpc_message().unwrap_or_default().to_owned();
                println!("#   CRI error: {m}");
                ensure!(
                    m.contains("no-such-profile") && m.contains(AGENT),
                    "unclear error: {e}"
                );
                Ok(())
            })();
            node.teardown_pod(&p)?;
            r
        },
    );
    c.check(
        "bad input: unknown profile on a pod fails RunPodSandbox with a clear CRI error",
        || match node.run_pod(&PodSpec::new("badpod", "warren").annotate(AGENT, "no-such-profile"))
        {
            Ok(p) => {
                node.teardown_pod(&p)?;
                bail!("RunPodSandbox succeeded with profile no-such-profile")
            }
            Err(e) => {
                let m = e.rpc_message().unwrap_or_default().to_owned();
                println!("#   CRI error: {m}");
                ensure!(m.contains("no-such-profile"), "unclear error: {e}");
                Ok(())
            }
        },
    );

    // ------------------------------------------------------------- runc on the same node
    c.check(
        "the proof discriminates: a runc-handler pod is not warren-runtime's",
        || {
            let p = node.run_pod(&PodSpec::new("runc", "runc"))?;
            let r = (|| {
                let id =
                    node.start_container(&p, "main", &["sleep", "3600"], ContainerOpts::default())?;
                ensure!(
                    node.warren_state(&id).is_err(),
                    "warren-runtime claims a runc container"
                );
                ensure!(node.runc_root.join(&id).exists(), "no runc state for {id}");
                Ok(())
            })();
            node.teardown_pod(&p)?;
            r
        },
    );

    // ------------------------------------------------------------- teardown
    c.check("StopPodSandbox + RemovePodSandbox of every pod", || {
        for p in [pod.clone(), agent.map(|a| a.0)].into_iter().flatten() {
            node.teardown_pod(&p)?;
        }
        Ok(())
    });
    c.check(
        "after teardown nothing is left (containers, shims, mounts, cgroups, netns, veths, state)",
        || {
            let l = node.leaks()?;
            ensure!(l.is_empty(), "{}", l.join("\n"));
            Ok(())
        },
    );

    println!("{} passed, {} failed", c.passed, c.failed.len());
    drop(node);
    assert!(c.failed.is_empty(), "failed: {:?}", c.failed);
}
