//! Syscall names and numbers for the architectures warren compiles seccomp filters for.
//!
//! Filters are compiled for one architecture at a time; a profile or an OCI `linux.seccomp`
//! object names syscalls, and the compiler resolves each name here. A name that exists on
//! another architecture but not on the target is skipped with a warning (libseccomp does the
//! same); a name unknown on every architecture is a typo, and profiles reject it.

mod tables;

use std::fmt;

/// Audit architecture value of x86_64 (`AUDIT_ARCH_X86_64`), as the kernel puts it in
/// `seccomp_data.arch`.
pub const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// Audit architecture value of aarch64 (`AUDIT_ARCH_AARCH64`).
pub const AUDIT_ARCH_AARCH64: u32 = 183 | 0x8000_0000 | 0x4000_0000;
/// Audit architecture value of i386 (`AUDIT_ARCH_I386`): the 32-bit ABI of an x86_64 kernel.
pub const AUDIT_ARCH_I386: u32 = 3 | 0x4000_0000;
/// Audit architecture value of 32-bit ARM (`AUDIT_ARCH_ARM`): the compat ABI of aarch64.
pub const AUDIT_ARCH_ARM: u32 = 40 | 0x4000_0000;
/// Bit set in `seccomp_data.nr` by syscalls of the x32 ABI (`__X32_SYSCALL_BIT`); they arrive
/// with `AUDIT_ARCH_X86_64`, so a filter must check the number as well as the arch.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// A CPU architecture (and its native syscall ABI) a filter can be compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// x86_64, the 64-bit ABI only: i386 and x32 syscalls are foreign to it.
    X86_64,
    /// aarch64, the 64-bit ABI only: AArch32 compat syscalls are foreign to it.
    Aarch64,
}

impl Arch {
    /// Every architecture warren has a syscall table for.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The architecture this library was built for, if warren supports it.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    /// The architecture named like Rust's `target_arch` (`x86_64`, `aarch64`).
    pub fn from_target_arch(name: &str) -> Option<Arch> {
        match name {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The value the kernel reports in `seccomp_data.arch` for this ABI.
    pub fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// Lowercase name, as Rust's `target_arch` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => tables::X86_64,
            Arch::Aarch64 => tables::AARCH64,
        }
    }

    /// The syscall number of `name` on this architecture.
    pub fn syscall_nr(self, name: &str) -> Option<u32> {
        let table = self.table();
        table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| table[i].1)
    }

    /// The name of syscall number `nr` on this architecture (a linear scan: for messages).
    pub fn syscall_name(self, nr: u32) -> Option<&'static str> {
        self.table()
            .iter()
            .find(|(_, n)| *n == nr)
            .map(|(name, _)| *name)
    }

    /// The highest syscall number in this architecture's table.
    pub fn newest_syscall_nr(self) -> u32 {
        self.table().iter().map(|(_, nr)| *nr).max().unwrap_or(0)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a syscall name resolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The name has this number on the target architecture.
    Nr(u32),
    /// The name exists, but only on other architectures (e.g. `ioperm` on aarch64).
    OtherArch,
    /// No architecture warren knows has this name.
    Unknown,
}

/// Resolves `name` for `arch`.
pub fn resolve(arch: Arch, name: &str) -> Resolution {
    if let Some(nr) = arch.syscall_nr(name) {
        Resolution::Nr(nr)
    } else if is_known(name) {
        Resolution::OtherArch
    } else {
        Resolution::Unknown
    }
}

/// Whether any architecture warren knows has a syscall called `name`.
pub fn is_known(name: &str) -> bool {
    Arch::ALL.iter().any(|a| a.syscall_nr(name).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        for arch in Arch::ALL {
            let t = arch.table();
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{arch} not sorted");
            let mut nrs: Vec<u32> = t.iter().map(|(_, n)| *n).collect();
            nrs.sort_unstable();
            let len = nrs.len();
            nrs.dedup();
            assert_eq!(len, nrs.len(), "{arch} has duplicate numbers");
        }
    }

    #[test]
    fn well_known_numbers() {
        assert_eq!(Arch::X86_64.syscall_nr("read"), Some(0));
        assert_eq!(Arch::X86_64.syscall_nr("mkdir"), Some(83));
        assert_eq!(Arch::X86_64.syscall_nr("mount"), Some(165));
        assert_eq!(Arch::X86_64.syscall_nr("clone3"), Some(435));
        assert_eq!(Arch::X86_64.syscall_nr("file_setattr"), Some(469));
        assert_eq!(Arch::Aarch64.syscall_nr("close"), Some(57));
        assert_eq!(Arch::Aarch64.syscall_nr("mkdirat"), Some(34));
        assert_eq!(Arch::X86_64.syscall_name(165), Some("mount"));
        assert_eq!(Arch::X86_64.newest_syscall_nr(), 469);
    }

    #[test]
    fn resolution_distinguishes_other_arch_from_typos() {
        assert_eq!(resolve(Arch::Aarch64, "mkdir"), Resolution::OtherArch);
        assert_eq!(resolve(Arch::X86_64, "mkdir"), Resolution::Nr(83));
        assert_eq!(resolve(Arch::X86_64, "mkdri"), Resolution::Unknown);
        assert_eq!(resolve(Arch::X86_64, "_llseek"), Resolution::Unknown);
    }

    #[test]
    fn native_arch_is_supported_here() {
        if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
            assert!(Arch::native().is_some());
        }
    }
}
