//! The container's mounts, devices and device symlinks, set up inside its new mount
//! namespace before pivot_root.
//!
//! Every destination is resolved inside the rootfs with openat2(`RESOLVE_IN_ROOT`) and
//! mounted through its `/proc/self/fd/N` handle, so a symlink in the image cannot send a
//! mount to the host. Mount options are parsed by libcontainer (`parse_mount`), so both
//! paths accept exactly the same option strings.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use libcontainer::rootfs::utils::{default_devices, parse_mount};
use nix::mount::MsFlags;
use nix::sys::stat::{Mode, SFlag};

use super::fs::{Kind, ensure_in_root, fd_path, open_in_root};
use crate::cgroups::{ContainerCgroup, Mode as CgMode};

type Result<T> = std::result::Result<T, String>;

const PROPAGATION: MsFlags = MsFlags::MS_SHARED
    .union(MsFlags::MS_PRIVATE)
    .union(MsFlags::MS_SLAVE)
    .union(MsFlags::MS_UNBINDABLE);

fn mnt(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    nix::mount::mount(src, target, fstype, flags, data)
}

fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Host path of a bind source: relative sources are relative to the bundle.
fn bind_source(m: &Mount, bundle: &Path) -> PathBuf {
    let src = m.source().clone().unwrap_or_default();
    if src.is_absolute() {
        src
    } else {
        bundle.join(src)
    }
}

fn apply_propagation(target: &Path, flags: MsFlags) -> nix::Result<()> {
    let prop = flags & (PROPAGATION | MsFlags::MS_REC);
    if prop.intersects(PROPAGATION) {
        mnt(None, target, None, prop, None)?;
    }
    Ok(())
}

fn apply_rec_attr(
    root: &OwnedFd,
    dest: &Path,
    attr: &libcontainer::syscall::linux::MountAttr,
) -> Result<()> {
    let fd =
        open_in_root(root, dest, false).map_err(|e| format!("reopen {}: {e}", dest.display()))?;
    // SAFETY: mount_setattr on an fd we own, AT_EMPTY_PATH|AT_RECURSIVE, and a correctly
    // sized attribute struct borrowed from the caller.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | 0x8000,
            attr as *const libcontainer::syscall::linux::MountAttr,
            std::mem::size_of::<libcontainer::syscall::linux::MountAttr>(),
        )
    };
    if r < 0 {
        return Err(format!(
            "set recursive mount attributes on {}: {}",
            dest.display(),
            nix::Error::last()
        ));
    }
    Ok(())
}

/// Sets up `/` propagation, binds the rootfs onto itself and mounts every spec mount.
pub fn mount_rootfs(
    spec: &Spec,
    rootfs: &Path,
    bundle: &Path,
    cg: &ContainerCgroup,
    cgroup_ns: bool,
) -> Result<OwnedFd> {
    let linux = spec.linux().as_ref().ok_or("spec has no linux section")?;
    let prop = match linux.rootfs_propagation().as_deref() {
        Some("shared") => MsFlags::MS_SHARED,
        Some("private") => MsFlags::MS_PRIVATE,
        Some("slave") | Some("unbindable") | None => MsFlags::MS_SLAVE,
        Some(other) => {
            return Err(format!(
                "linux.rootfsPropagation {other:?} is not one of shared, private, slave, unbindable"
            ));
        }
    };
    mnt(None, Path::new("/"), None, prop | MsFlags::MS_REC, None)
        .map_err(|e| format!("set / propagation: {e}"))?;
    if prop == MsFlags::MS_SHARED {
        make_parent_private(rootfs)?;
    }
    mnt(
        Some(rootfs),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(|e| format!("bind rootfs {}: {e}", rootfs.display()))?;
    let root = nix::fcntl::open(
        rootfs,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open rootfs {}: {e}", rootfs.display()))?;
    // SAFETY: fresh fd from open(2).
    let root = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(root) };
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        mount_one(&root, m, bundle, cg, cgroup_ns)
            .map_err(|e| format!("mounts[{i}] ({}): {e}", m.destination().display()))?;
    }
    Ok(root)
}

fn make_parent_private(rootfs: &Path) -> Result<()> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("read mountinfo: {e}"))?;
    let mut best: Option<PathBuf> = None;
    for line in mi.lines() {
        let Some(mp) = line.split(' ').nth(4) else {
            continue;
        };
        let mp = PathBuf::from(mp);
        if rootfs.starts_with(&mp)
            && best
                .as_ref()
                .is_none_or(|b| mp.as_os_str().len() > b.as_os_str().len())
        {
            best = Some(mp);
        }
    }
    if let Some(p) = best {
        mnt(None, &p, None, MsFlags::MS_PRIVATE, None)
            .map_err(|e| format!("make {} private: {e}", p.display()))?;
    }
    Ok(())
}

fn mount_one(
    root: &OwnedFd,
    m: &Mount,
    bundle: &Path,
    cg: &ContainerCgroup,
    cgroup_ns: bool,
) -> Result<()> {
    let typ = m.typ().as_deref().unwrap_or("");
    let cfg = parse_mount(m).map_err(|e| crate::error::chain(&e))?;
    let data = cfg.data.join(",");
    let data = (!data.is_empty()).then_some(data.as_str());
    let dest = m.destination();
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(root, dest, cfg.flags, cg, cgroup_ns);
    }
    if is_bind(m) {
        let src = bind_source(m, bundle);
        let meta =
            std::fs::metadata(&src).map_err(|e| format!("bind source {}: {e}", src.display()))?;
        let kind = if meta.is_dir() { Kind::Dir } else { Kind::File };
        let target_fd = ensure_in_root(root, dest, kind, false)?;
        let target = fd_path(&target_fd);
        let rec = cfg.flags & MsFlags::MS_REC;
        mnt(Some(&src), &target, None, MsFlags::MS_BIND | rec, None)
            .map_err(|e| format!("bind {}: {e}", src.display()))?;
        let extra =
            cfg.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | PROPAGATION | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            // The target handle still names the covered inode; reopen to reach the mount.
            let newfd = open_in_root(root, dest, false).map_err(|e| format!("reopen: {e}"))?;
            mnt(
                None,
                &fd_path(&newfd),
                None,
                extra | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rec,
                None,
            )
            .map_err(|e| format!("remount bind with {extra:?}: {e}"))?;
        }
        let newfd = open_in_root(root, dest, false).map_err(|e| format!("reopen: {e}"))?;
        apply_propagation(&fd_path(&newfd), cfg.flags)
            .map_err(|e| format!("set propagation: {e}"))?;
    } else {
        let no_symlinks = matches!(typ, "proc" | "sysfs");
        let target_fd = ensure_in_root(root, dest, Kind::Dir, no_symlinks)?;
        let target = fd_path(&target_fd);
        let mut flags = cfg.flags & !(PROPAGATION | MsFlags::MS_REC);
        if dest == Path::new("/dev") {
            // Device nodes are created below; /dev itself is never read-only.
            flags.remove(MsFlags::MS_RDONLY);
        }
        let src = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
        match mnt(Some(&src), &target, Some(typ), flags, data) {
            Ok(()) => {}
            Err(nix::Error::EPERM) if typ == "sysfs" => {
                // No own network namespace (or no privilege for a new sysfs): bind the
                // host's /sys instead, as runc does.
                mnt(
                    Some(Path::new("/sys")),
                    &target,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )
                .map_err(|e| format!("bind /sys: {e}"))?;
                let newfd = open_in_root(root, dest, true).map_err(|e| format!("reopen: {e}"))?;
                mnt(
                    None,
                    &fd_path(&newfd),
                    None,
                    flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_REC,
                    None,
                )
                .map_err(|e| format!("remount /sys: {e}"))?;
            }
            Err(e) => return Err(format!("mount {typ}: {e}")),
        }
        let newfd = open_in_root(root, dest, no_symlinks).map_err(|e| format!("reopen: {e}"))?;
        apply_propagation(&fd_path(&newfd), cfg.flags)
            .map_err(|e| format!("set propagation: {e}"))?;
    }
    if let Some(attr) = &cfg.rec_attr {
        apply_rec_attr(root, dest, attr)?;
    }
    Ok(())
}

/// cgroup mounts: with a cgroup namespace the kernel shows the container's own cgroup as
/// the root; without one we bind only the container's directories, never the host tree.
fn mount_cgroup(
    root: &OwnedFd,
    dest: &Path,
    flags: MsFlags,
    cg: &ContainerCgroup,
    cgroup_ns: bool,
) -> Result<()> {
    let flags = flags & !(PROPAGATION | MsFlags::MS_REC | MsFlags::MS_BIND);
    let ro = flags.contains(MsFlags::MS_RDONLY);
    let target_fd = ensure_in_root(root, dest, Kind::Dir, true)?;
    let target = fd_path(&target_fd);
    if cg.mode == CgMode::Unified {
        let dir = cg.v2_dir().ok_or("no cgroup2 directory")?;
        if cgroup_ns {
            mnt(
                Some(Path::new("cgroup2")),
                &target,
                Some("cgroup2"),
                flags,
                None,
            )
            .map_err(|e| format!("mount cgroup2: {e}"))?;
        } else {
            bind_ro(root, dir, dest, &target, ro)?;
        }
        return Ok(());
    }
    let base = flags & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    mnt(
        Some(Path::new("tmpfs")),
        &target,
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .map_err(|e| format!("mount tmpfs for cgroups: {e}"))?;
    // Like runc: only the v1 hierarchies (a hybrid host's unified tree stays hidden), and
    // the tmpfs holding them stays writable while each hierarchy is read-only.
    for d in cg.dirs.iter().filter(|d| !d.v2) {
        let name = if d.v2 {
            "unified".to_owned()
        } else {
            d.controllers
                .iter()
                .map(|c| c.strip_prefix("name=").unwrap_or(c))
                .collect::<Vec<_>>()
                .join(",")
        };
        let sub = dest.join(&name);
        let sub_fd = ensure_in_root(root, &sub, Kind::Dir, true)?;
        let sub_path = fd_path(&sub_fd);
        if cgroup_ns {
            let (fstype, opts) = if d.v2 {
                ("cgroup2", String::new())
            } else {
                ("cgroup", d.controllers.join(","))
            };
            let opts = if opts.starts_with("name=") {
                format!("none,{opts}")
            } else {
                opts
            };
            mnt(
                Some(Path::new(fstype)),
                &sub_path,
                Some(fstype),
                flags,
                (!opts.is_empty()).then_some(opts.as_str()),
            )
            .map_err(|e| format!("mount {fstype} {name}: {e}"))?;
        } else {
            bind_ro(root, &d.path, &sub, &sub_path, ro)?;
        }
        if d.controllers.len() > 1 {
            // cpu,cpuacct is also reachable as cpu and cpuacct, as on the host.
            let dir_fd = open_dir(root, dest)?;
            for c in &d.controllers {
                let link = CString::new(c.as_bytes()).map_err(|_| "bad controller name")?;
                let to = CString::new(name.as_bytes()).map_err(|_| "bad controller name")?;
                // SAFETY: symlinkat with NUL-terminated strings into a directory fd we own.
                unsafe { libc::symlinkat(to.as_ptr(), dir_fd.as_raw_fd(), link.as_ptr()) };
            }
        }
    }
    Ok(())
}

fn bind_ro(root: &OwnedFd, src: &Path, dest: &Path, target: &Path, ro: bool) -> Result<()> {
    mnt(
        Some(src),
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(|e| format!("bind {}: {e}", src.display()))?;
    if ro {
        // The pre-mount handle names the covered directory; reopen to reach the mount.
        let fd = open_in_root(root, dest, true)
            .map_err(|e| format!("reopen {}: {e}", dest.display()))?;
        mnt(
            None,
            &fd_path(&fd),
            None,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None,
        )
        .map_err(|e| format!("remount {} read-only: {e}", src.display()))?;
    }
    Ok(())
}

fn open_dir(root: &OwnedFd, p: &Path) -> Result<OwnedFd> {
    let fd = open_in_root(root, p, false).map_err(|e| format!("resolve {}: {e}", p.display()))?;
    let c = CString::new(fd_path(&fd).as_os_str().as_bytes()).map_err(|_| "bad path")?;
    // SAFETY: open(2) of /proc/self/fd/N, a NUL-terminated path.
    let r = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if r < 0 {
        return Err(format!("open {}: {}", p.display(), nix::Error::last()));
    }
    // SAFETY: fresh fd.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r) })
}

fn dev_type(t: LinuxDeviceType) -> Result<SFlag> {
    Ok(match t {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => return Err("device type \"a\" cannot be created".into()),
    })
}

/// Creates `linux.devices` plus the default devices, and the standard /dev symlinks,
/// unless /dev is the host's own (bind-mounted).
pub fn create_devices(root: &OwnedFd, spec: &Spec) -> Result<()> {
    let dev_is_host_bind = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination() == Path::new("/dev") && is_bind(m));
    if dev_is_host_bind {
        return Ok(());
    }
    let linux = spec.linux().as_ref().ok_or("spec has no linux section")?;
    let requested: Vec<LinuxDevice> = linux.devices().clone().unwrap_or_default();
    let defaults: Vec<LinuxDevice> = default_devices()
        .into_iter()
        .filter(|d| !requested.iter().any(|r| r.path() == d.path()))
        .collect();
    // SAFETY: umask(2) only changes our file-creation mask.
    let old = unsafe { libc::umask(0) };
    let r = (|| -> Result<()> {
        for d in requested.iter().chain(defaults.iter()) {
            create_device(root, d)?;
        }
        Ok(())
    })();
    // SAFETY: restoring the previous mask.
    unsafe { libc::umask(old) };
    r?;
    let dev = open_dir(root, Path::new("/dev"))?;
    let mut links: Vec<(&str, &str)> = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    let has_pts = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination() == Path::new("/dev/pts"));
    if has_pts {
        // SAFETY: unlinkat of a fixed name in a directory fd we own.
        unsafe { libc::unlinkat(dev.as_raw_fd(), c"ptmx".as_ptr(), 0) };
        links.push(("pts/ptmx", "ptmx"));
    }
    for (to, name) in links {
        let to = CString::new(to).map_err(|_| "bad link")?;
        let name = CString::new(name).map_err(|_| "bad link")?;
        // SAFETY: symlinkat with NUL-terminated strings into a directory fd we own.
        if unsafe { libc::symlinkat(to.as_ptr(), dev.as_raw_fd(), name.as_ptr()) } < 0 {
            let e = nix::Error::last();
            if e != nix::Error::EEXIST {
                return Err(format!("create /dev/{name:?}: {e}"));
            }
        }
    }
    Ok(())
}

fn create_device(root: &OwnedFd, d: &LinuxDevice) -> Result<()> {
    let p = d.path();
    if !p.starts_with("/dev/") {
        return Err(format!("linux.devices: {} is not under /dev", p.display()));
    }
    let parent = p.parent().unwrap_or(Path::new("/dev"));
    let name = p
        .file_name()
        .ok_or_else(|| format!("linux.devices: {} has no file name", p.display()))?;
    ensure_in_root(root, parent, Kind::Dir, false)?;
    let dir = open_dir(root, parent)?;
    let cname = CString::new(name.as_bytes()).map_err(|_| "bad device name")?;
    let kind = dev_type(d.typ())?;
    let perm = d.file_mode().unwrap_or(0o666) & 0o7777;
    let devno = nix::sys::stat::makedev(d.major() as u64, d.minor() as u64);
    // Replace whatever the image has there.
    // SAFETY: unlinkat/mknodat on a directory fd we own with a NUL-terminated name.
    unsafe { libc::unlinkat(dir.as_raw_fd(), cname.as_ptr(), 0) };
    // SAFETY: as above.
    let r = unsafe { libc::mknodat(dir.as_raw_fd(), cname.as_ptr(), kind.bits() | perm, devno) };
    if r < 0 {
        let e = nix::Error::last();
        if e == nix::Error::EPERM {
            return bind_device(root, d);
        }
        return Err(format!("mknod {}: {e}", p.display()));
    }
    let uid = d.uid().map(|u| u as libc::uid_t).unwrap_or(u32::MAX);
    let gid = d.gid().map(|g| g as libc::gid_t).unwrap_or(u32::MAX);
    if uid != u32::MAX || gid != u32::MAX {
        // SAFETY: fchownat on the node we just created; -1 leaves an id unchanged.
        if unsafe {
            libc::fchownat(
                dir.as_raw_fd(),
                cname.as_ptr(),
                uid,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        } < 0
        {
            return Err(format!("chown {}: {}", p.display(), nix::Error::last()));
        }
    }
    Ok(())
}

/// Without CAP_MKNOD (user namespaces), bind the host's node instead.
fn bind_device(root: &OwnedFd, d: &LinuxDevice) -> Result<()> {
    let fd = ensure_in_root(root, d.path(), Kind::File, false)?;
    mnt(Some(d.path()), &fd_path(&fd), None, MsFlags::MS_BIND, None)
        .map_err(|e| format!("bind device {}: {e}", d.path().display()))
}
