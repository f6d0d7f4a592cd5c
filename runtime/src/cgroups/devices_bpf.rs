//! Device access control on cgroup v2: cgroup v2 has no `devices.allow`/`devices.deny`;
//! the kernel asks a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the cgroup instead.
//!
//! The spec's rules (then runc's default devices) are first run through an emulation of
//! the v1 devices controller — the same rules therefore mean the same thing on v1 and v2
//! hosts — and the resulting list (a default plus exceptions) is compiled into a short
//! straight-line program, loaded and attached with the bpf(2) system call directly.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::v1::default_allowed_devices;

/// Errors of loading or attaching a device program; each names the cgroup or the step.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error("open cgroup {path}: {source}")]
    OpenCgroup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "load the cgroup v2 device program (linux.resources.devices): {source}{}",
        verifier_log(.log)
    )]
    Load { source: std::io::Error, log: String },
    #[error("{op} the device program on cgroup {path}: {source}")]
    Attach {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn verifier_log(log: &str) -> String {
    if log.trim().is_empty() {
        String::new()
    } else {
        format!("; verifier: {}", log.trim())
    }
}

/// Access bits as the kernel passes them to the program (`BPF_DEVCG_ACC_*`).
const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Device types as the kernel passes them (`BPF_DEVCG_DEV_*`).
const DEV_BLOCK: u32 = 1;
const DEV_CHAR: u32 = 2;

/// One exception of the emulated v1 list. `None` is the `*` wildcard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exception {
    /// `'b'` or `'c'`.
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

/// The v1 devices controller's state: a default behaviour plus exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceList {
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

impl Default for DeviceList {
    /// A new v1 cgroup inherits its parent's list; runtimes start from "deny all".
    fn default() -> Self {
        Self {
            default_allow: false,
            exceptions: Vec::new(),
        }
    }
}

fn access_bits(s: &str) -> u8 {
    s.chars().fold(0, |acc, c| {
        acc | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    })
}

fn wildcard(v: Option<i64>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok())
}

impl DeviceList {
    /// The list a container gets: deny all, the spec's rules in order, then runc's default
    /// devices — what [`super::v1`] writes to `devices.allow`/`devices.deny`.
    pub(crate) fn for_container(rules: &[LinuxDeviceCgroup]) -> Self {
        let mut list = Self::default();
        for r in rules {
            let typ = match r.typ() {
                Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
                Some(LinuxDeviceType::B) => 'b',
                // The devices controller has no notion of fifos; v1 rejects such rules.
                Some(LinuxDeviceType::P) => continue,
                _ => 'a',
            };
            let access = r.access().as_deref().map(access_bits).unwrap_or(ACC_ALL);
            list.apply(
                r.allow(),
                typ,
                wildcard(r.major()),
                wildcard(r.minor()),
                access,
            );
        }
        for (t, ma, mi, acc) in default_allowed_devices() {
            list.apply(
                true,
                t,
                wildcard(Some(ma)),
                wildcard(Some(mi)),
                access_bits(acc),
            );
        }
        list
    }

    /// One write to `devices.allow` (`allow`) or `devices.deny`, as the kernel's
    /// `devcgroup_update_access` handles it: `a` resets the list; a rule agreeing with the
    /// default removes access from the exact matching exception; any other adds one.
    pub(crate) fn apply(
        &mut self,
        allow: bool,
        typ: char,
        major: Option<u32>,
        minor: Option<u32>,
        access: u8,
    ) {
        if typ == 'a' {
            self.default_allow = allow;
            self.exceptions.clear();
            return;
        }
        let same = |e: &Exception| e.typ == typ && e.major == major && e.minor == minor;
        if allow == self.default_allow {
            self.exceptions.retain_mut(|e| {
                if same(e) {
                    e.access &= !access;
                }
                e.access != 0
            });
        } else if let Some(e) = self.exceptions.iter_mut().find(|e| same(e)) {
            e.access |= access;
        } else if access != 0 {
            self.exceptions.push(Exception {
                typ,
                major,
                minor,
                access,
            });
        }
    }

    /// Whether the v1 controller would permit `access` to device `typ major:minor`: in a
    /// deny-by-default list one exception must grant every requested bit; in an
    /// allow-by-default list an exception sharing any bit refuses. The reference the
    /// compiled program is tested against.
    #[cfg(test)]
    pub(crate) fn permits(&self, typ: char, major: u32, minor: u32, access: u8) -> bool {
        let hits = |e: &&Exception| {
            e.typ == typ && e.major.is_none_or(|m| m == major) && e.minor.is_none_or(|m| m == minor)
        };
        if self.default_allow {
            !self
                .exceptions
                .iter()
                .filter(hits)
                .any(|e| e.access & access != 0)
        } else {
            self.exceptions
                .iter()
                .filter(hits)
                .any(|e| access & !e.access == 0)
        }
    }

    /// The program: load the context into r2 (type), r3 (access), r4 (major) and r5
    /// (minor); one block per exception that returns the opposite of the default when it
    /// matches and falls through to the next block otherwise; the default last.
    pub(crate) fn program(&self) -> Vec<Insn> {
        let mut p = vec![
            Insn::ldx_w(2, 1, 0),
            Insn::and32_imm(2, 0xffff),
            Insn::ldx_w(3, 1, 0),
            Insn::rsh32_imm(3, 16),
            Insn::ldx_w(4, 1, 4),
            Insn::ldx_w(5, 1, 8),
        ];
        let verdict = i32::from(!self.default_allow);
        for e in &self.exceptions {
            // Conditions, each "jump to the next block if this one fails", as (insns,
            // index of the jump within them).
            let mut conds: Vec<Vec<Insn>> = Vec::new();
            conds.push(vec![Insn::jne_imm(
                2,
                if e.typ == 'b' { DEV_BLOCK } else { DEV_CHAR } as i32,
            )]);
            if e.access & ACC_ALL != ACC_ALL {
                if self.default_allow {
                    // Refuse when the request shares any bit with the exception.
                    conds.push(vec![
                        Insn::mov32_reg(1, 3),
                        Insn::and32_imm(1, i32::from(e.access)),
                        Insn::jeq_imm(1, 0),
                    ]);
                } else {
                    // Grant when every requested bit is in the exception.
                    conds.push(vec![
                        Insn::mov32_reg(1, 3),
                        Insn::and32_imm(1, i32::from(e.access)),
                        Insn::jne_reg(1, 3),
                    ]);
                }
            }
            if let Some(m) = e.major {
                conds.push(vec![Insn::jne_imm(4, m as i32)]);
            }
            if let Some(m) = e.minor {
                conds.push(vec![Insn::jne_imm(5, m as i32)]);
            }
            let len: usize = conds.iter().map(Vec::len).sum::<usize>() + 2;
            let start = p.len();
            for c in conds {
                for mut i in c {
                    if i.is_cond_jump() {
                        // Target: just past this block's exit.
                        let pc = p.len();
                        i.off = (start + len - (pc + 1)) as i16;
                    }
                    p.push(i);
                }
            }
            p.push(Insn::mov64_imm(0, verdict));
            p.push(Insn::exit());
        }
        p.push(Insn::mov64_imm(0, i32::from(self.default_allow)));
        p.push(Insn::exit());
        p
    }
}

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const BPF_LDX_MEM_W: u8 = 0x61;
const BPF_ALU32_AND_K: u8 = 0x54;
const BPF_ALU32_RSH_K: u8 = 0x74;
const BPF_ALU32_MOV_X: u8 = 0xbc;
const BPF_ALU64_MOV_K: u8 = 0xb7;
const BPF_JMP_JEQ_K: u8 = 0x15;
const BPF_JMP_JNE_K: u8 = 0x55;
const BPF_JMP_JNE_X: u8 = 0x5d;
const BPF_JMP_EXIT: u8 = 0x95;

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Self {
            code,
            regs: (src << 4) | (dst & 0xf),
            off,
            imm,
        }
    }
    const fn ldx_w(dst: u8, src: u8, off: i16) -> Self {
        Self::new(BPF_LDX_MEM_W, dst, src, off, 0)
    }
    const fn and32_imm(dst: u8, imm: i32) -> Self {
        Self::new(BPF_ALU32_AND_K, dst, 0, 0, imm)
    }
    const fn rsh32_imm(dst: u8, imm: i32) -> Self {
        Self::new(BPF_ALU32_RSH_K, dst, 0, 0, imm)
    }
    const fn mov32_reg(dst: u8, src: u8) -> Self {
        Self::new(BPF_ALU32_MOV_X, dst, src, 0, 0)
    }
    const fn mov64_imm(dst: u8, imm: i32) -> Self {
        Self::new(BPF_ALU64_MOV_K, dst, 0, 0, imm)
    }
    const fn jeq_imm(dst: u8, imm: i32) -> Self {
        Self::new(BPF_JMP_JEQ_K, dst, 0, 0, imm)
    }
    const fn jne_imm(dst: u8, imm: i32) -> Self {
        Self::new(BPF_JMP_JNE_K, dst, 0, 0, imm)
    }
    const fn jne_reg(dst: u8, src: u8) -> Self {
        Self::new(BPF_JMP_JNE_X, dst, src, 0, 0)
    }
    const fn exit() -> Self {
        Self::new(BPF_JMP_EXIT, 0, 0, 0, 0)
    }
    fn is_cond_jump(&self) -> bool {
        matches!(self.code, BPF_JMP_JEQ_K | BPF_JMP_JNE_K | BPF_JMP_JNE_X)
    }
}

// bpf(2) commands, program and attach types, flags.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The `BPF_PROG_LOAD` part of `union bpf_attr`, up to `expected_attach_type`; the
/// kernel treats the missing tail as zero.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `BPF_PROG_ATTACH` / `BPF_PROG_DETACH`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// `BPF_PROG_QUERY`.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// `BPF_PROG_GET_FD_BY_ID`.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] prefix of `union bpf_attr`
    // for `cmd`, and its size is passed alongside; the kernel reads (and for QUERY
    // writes) at most that many bytes. Pointers inside it are set by the callers to
    // buffers that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned `fd` as a new descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

fn load(insns: &[Insn]) -> Result<OwnedFd, BpfError> {
    let license = c"Apache";
    let mut name = [0u8; 16];
    name[..10].copy_from_slice(b"warren_dev");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(source) => {
            // Load again with the verifier's log, to say why.
            let mut buf = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = buf.len() as u32;
            attr.log_buf = buf.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            let log = String::from_utf8_lossy(&buf[..end]).into_owned();
            Err(BpfError::Load { source, log })
        }
    }
}

/// Ids of the device programs attached to `cg` itself.
fn attached(cg: RawFd) -> std::io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: cg as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// Compiles `list`, attaches it to the cgroup2 directory `dir`, then detaches whatever
/// device programs were attached there before (an `update`, or a reused cgroup), so the
/// cgroup is never without a filter. The program stays loaded while attached.
pub(crate) fn install(dir: &Path, list: &DeviceList) -> Result<(), BpfError> {
    let prog = load(&list.program())?;
    let c = CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| BpfError::OpenCgroup {
        path: dir.to_owned(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    // SAFETY: `c` is a valid NUL-terminated path; the result is checked below.
    let cgfd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if cgfd < 0 {
        return Err(BpfError::OpenCgroup {
            path: dir.to_owned(),
            source: std::io::Error::last_os_error(),
        });
    }
    let cg = owned(cgfd as libc::c_long);
    let attach_err = |op, source| BpfError::Attach {
        op,
        path: dir.to_owned(),
        source,
    };
    let old = attached(cg.as_raw_fd()).map_err(|e| attach_err("query", e))?;
    let mut attr = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|e| attach_err("attach", e))?;
    for id in old {
        let mut get = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut get) else {
            continue; // detached meanwhile
        };
        let fd = owned(fd);
        let mut det = AttachAttr {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        match bpf(BPF_PROG_DETACH, &mut det) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(attach_err("detach the previous", e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `prog` the way the kernel would for one request: a tiny interpreter of the
    /// instructions [`DeviceList::program`] emits.
    fn run(prog: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            let jump = |cond: bool, pc: &mut usize| {
                if cond {
                    *pc = (*pc as isize + i.off as isize) as usize;
                }
            };
            match i.code {
                BPF_LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[i.off as usize / 4]);
                }
                BPF_ALU32_AND_K => r[dst] = u64::from((r[dst] as u32) & i.imm as u32),
                BPF_ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                BPF_ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
                BPF_ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
                BPF_JMP_JEQ_K => jump(r[dst] == i.imm as i64 as u64, &mut pc),
                BPF_JMP_JNE_K => jump(r[dst] != i.imm as i64 as u64, &mut pc),
                BPF_JMP_JNE_X => jump(r[dst] != r[src], &mut pc),
                BPF_JMP_EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn rule(
        allow: bool,
        typ: LinuxDeviceType,
        major: i64,
        minor: i64,
        acc: &str,
    ) -> LinuxDeviceCgroup {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow)
            .set_typ(Some(typ))
            .set_major((major >= 0).then_some(major))
            .set_minor((minor >= 0).then_some(minor))
            .set_access(Some(acc.to_owned()));
        r
    }

    /// Every request over a grid of devices and access sets gets the same answer from the
    /// compiled program as from the emulated v1 list.
    fn agrees(list: &DeviceList) {
        let prog = list.program();
        for (typ, tc) in [(DEV_CHAR, 'c'), (DEV_BLOCK, 'b')] {
            for major in [0, 1, 5, 8, 10, 136, 195, 4095] {
                for minor in [0, 1, 2, 3, 5, 7, 8, 9, 200, 255] {
                    for access in 1..=7u8 {
                        let want = list.permits(tc, major, minor, access);
                        let got = run(&prog, typ, u32::from(access), major, minor) == 1;
                        assert_eq!(
                            got, want,
                            "{tc} {major}:{minor} access {access} in {list:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn container_defaults() {
        let list = DeviceList::for_container(&[]);
        assert!(!list.default_allow);
        assert!(list.permits('c', 1, 3, ACC_READ | ACC_WRITE), "/dev/null");
        assert!(list.permits('c', 136, 4, ACC_READ), "a pty");
        assert!(list.permits('b', 8, 0, ACC_MKNOD), "mknod of anything");
        assert!(!list.permits('b', 8, 0, ACC_READ), "reading a disk");
        assert!(!list.permits('c', 1, 1, ACC_READ), "/dev/mem");
        assert!(
            !list.permits('c', 1, 3, ACC_READ | ACC_MKNOD | 8),
            "unknown bits"
        );
        agrees(&list);
    }

    #[test]
    fn spec_rules_in_order() {
        // The usual engine spec: deny all, then a GPU.
        let list = DeviceList::for_container(&[
            rule(false, LinuxDeviceType::A, -1, -1, "rwm"),
            rule(true, LinuxDeviceType::C, 195, -1, "rw"),
        ]);
        assert!(list.permits('c', 195, 0, ACC_READ | ACC_WRITE));
        assert!(
            !list.permits('c', 195, 0, ACC_MKNOD | ACC_READ)
                || list.permits('c', 195, 0, ACC_MKNOD)
        );
        agrees(&list);

        // Allow all, then deny one disk's writes: an allow-by-default list.
        let list = DeviceList::for_container(&[
            rule(true, LinuxDeviceType::A, -1, -1, "rwm"),
            rule(false, LinuxDeviceType::B, 8, 0, "w"),
        ]);
        assert!(list.default_allow);
        assert!(list.permits('b', 8, 0, ACC_READ));
        assert!(!list.permits('b', 8, 0, ACC_WRITE));
        assert!(!list.permits('b', 8, 0, ACC_READ | ACC_WRITE));
        agrees(&list);

        // A later deny takes access away from an earlier allow of the same device only.
        let list = DeviceList::for_container(&[
            rule(true, LinuxDeviceType::C, 10, 200, "rwm"),
            rule(false, LinuxDeviceType::C, 10, 200, "w"),
            rule(true, LinuxDeviceType::B, 8, -1, "r"),
            rule(false, LinuxDeviceType::B, 8, 1, "r"),
        ]);
        assert!(
            list.permits('c', 10, 200, ACC_READ),
            "the default list re-allows tun"
        );
        assert!(
            list.permits('b', 8, 1, ACC_READ),
            "v1 does not punch holes in wildcards"
        );
        agrees(&list);
    }

    #[test]
    fn fifo_rules_are_ignored() {
        let with = DeviceList::for_container(&[rule(true, LinuxDeviceType::P, 1, 1, "rwm")]);
        assert_eq!(with, DeviceList::for_container(&[]));
    }

    /// The kernel verifier accepts the programs and enforces them: a process in a cgroup2
    /// directory opens device nodes (made in a temporary directory with the numbers of
    /// `/dev/null` and `/dev/zero`) as each installed list says.
    #[test]
    fn kernel_enforces() {
        let Some(root) = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists())
        else {
            eprintln!("skipped: no cgroup2 hierarchy");
            return;
        };
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: not root");
            return;
        }
        let cg = root.join(format!("warren-devbpf-test-{}", std::process::id()));
        std::fs::create_dir(&cg).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let null = tmp.path().join("null");
        let zero = tmp.path().join("zero");
        for (p, minor) in [(&null, 3), (&zero, 5)] {
            nix::sys::stat::mknod(
                p.as_path(),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                nix::sys::stat::makedev(1, minor),
            )
            .unwrap();
        }
        let opens = |node: &Path| {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!(
                    "echo $$ > {}/cgroup.procs && exec head -c 1 {} >/dev/null",
                    cg.display(),
                    node.display()
                ))
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(
                out.status.success() || err.contains("Operation not permitted"),
                "{err}"
            );
            out.status.success()
        };
        let only_null = DeviceList {
            default_allow: false,
            exceptions: vec![Exception {
                typ: 'c',
                major: Some(1),
                minor: Some(3),
                access: ACC_ALL,
            }],
        };
        let mut all_but_zero = DeviceList::default();
        all_but_zero.apply(true, 'a', None, None, ACC_ALL);
        all_but_zero.apply(false, 'c', Some(1), Some(5), ACC_READ);
        let mut results = Vec::new();
        for list in [DeviceList::for_container(&[]), only_null, all_but_zero] {
            install(&cg, &list).unwrap();
            results.push((opens(&null), opens(&zero)));
        }
        // Each install replaced the previous program rather than stacking on it.
        let fd = std::fs::File::open(&cg).unwrap();
        let n = attached(fd.as_raw_fd()).unwrap().len();
        drop(fd);
        let _ = std::fs::remove_dir(&cg);
        assert_eq!(n, 1);
        assert_eq!(results, [(true, true), (true, false), (true, false)]);
    }
}
