//! Landlock access rights as the kernel numbers them (`<linux/landlock.h>`), with the names
//! profiles use and the ABI level that introduced each.
//!
//! These numbers are also the wire format of the `run.warren.landlock` annotation.

/// `LANDLOCK_ACCESS_FS_EXECUTE` (ABI 1).
pub const FS_EXECUTE: u64 = 1 << 0;
/// `LANDLOCK_ACCESS_FS_WRITE_FILE` (ABI 1).
pub const FS_WRITE_FILE: u64 = 1 << 1;
/// `LANDLOCK_ACCESS_FS_READ_FILE` (ABI 1).
pub const FS_READ_FILE: u64 = 1 << 2;
/// `LANDLOCK_ACCESS_FS_READ_DIR` (ABI 1).
pub const FS_READ_DIR: u64 = 1 << 3;
/// `LANDLOCK_ACCESS_FS_REMOVE_DIR` (ABI 1).
pub const FS_REMOVE_DIR: u64 = 1 << 4;
/// `LANDLOCK_ACCESS_FS_REMOVE_FILE` (ABI 1).
pub const FS_REMOVE_FILE: u64 = 1 << 5;
/// `LANDLOCK_ACCESS_FS_MAKE_CHAR` (ABI 1).
pub const FS_MAKE_CHAR: u64 = 1 << 6;
/// `LANDLOCK_ACCESS_FS_MAKE_DIR` (ABI 1).
pub const FS_MAKE_DIR: u64 = 1 << 7;
/// `LANDLOCK_ACCESS_FS_MAKE_REG` (ABI 1).
pub const FS_MAKE_REG: u64 = 1 << 8;
/// `LANDLOCK_ACCESS_FS_MAKE_SOCK` (ABI 1).
pub const FS_MAKE_SOCK: u64 = 1 << 9;
/// `LANDLOCK_ACCESS_FS_MAKE_FIFO` (ABI 1).
pub const FS_MAKE_FIFO: u64 = 1 << 10;
/// `LANDLOCK_ACCESS_FS_MAKE_BLOCK` (ABI 1).
pub const FS_MAKE_BLOCK: u64 = 1 << 11;
/// `LANDLOCK_ACCESS_FS_MAKE_SYM` (ABI 1).
pub const FS_MAKE_SYM: u64 = 1 << 12;
/// `LANDLOCK_ACCESS_FS_REFER` (ABI 2).
pub const FS_REFER: u64 = 1 << 13;
/// `LANDLOCK_ACCESS_FS_TRUNCATE` (ABI 3).
pub const FS_TRUNCATE: u64 = 1 << 14;
/// `LANDLOCK_ACCESS_FS_IOCTL_DEV` (ABI 5).
pub const FS_IOCTL_DEV: u64 = 1 << 15;

/// `LANDLOCK_ACCESS_NET_BIND_TCP` (ABI 4).
pub const NET_BIND_TCP: u64 = 1 << 0;
/// `LANDLOCK_ACCESS_NET_CONNECT_TCP` (ABI 4).
pub const NET_CONNECT_TCP: u64 = 1 << 1;

/// `LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET` (ABI 6).
pub const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
/// `LANDLOCK_SCOPE_SIGNAL` (ABI 6).
pub const SCOPE_SIGNAL: u64 = 1 << 1;

/// The highest Landlock ABI warren's rules are written and tested for.
pub const MAX_ABI: u32 = 7;

/// Filesystem rights that only make sense on directories (dropped from rules on files).
pub const FS_DIR_ONLY: u64 = FS_READ_DIR
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_CHAR
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SOCK
    | FS_MAKE_FIFO
    | FS_MAKE_BLOCK
    | FS_MAKE_SYM
    | FS_REFER;

/// `read`: list directories and read files.
pub const FS_GROUP_READ: u64 = FS_READ_FILE | FS_READ_DIR;
/// `write`: create, change, rename and remove files, directories, sockets, fifos and
/// symlinks (not device nodes: see `make_char`/`make_block`).
pub const FS_GROUP_WRITE: u64 = FS_WRITE_FILE
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SOCK
    | FS_MAKE_FIFO
    | FS_MAKE_SYM
    | FS_REFER
    | FS_TRUNCATE;

/// Names of filesystem rights and groups, as a profile spells them.
pub const FS_NAMES: &[(&str, u64)] = &[
    ("read", FS_GROUP_READ),
    ("write", FS_GROUP_WRITE),
    ("execute", FS_EXECUTE),
    ("write_file", FS_WRITE_FILE),
    ("read_file", FS_READ_FILE),
    ("read_dir", FS_READ_DIR),
    ("remove_dir", FS_REMOVE_DIR),
    ("remove_file", FS_REMOVE_FILE),
    ("make_char", FS_MAKE_CHAR),
    ("make_dir", FS_MAKE_DIR),
    ("make_reg", FS_MAKE_REG),
    ("make_sock", FS_MAKE_SOCK),
    ("make_fifo", FS_MAKE_FIFO),
    ("make_block", FS_MAKE_BLOCK),
    ("make_sym", FS_MAKE_SYM),
    ("refer", FS_REFER),
    ("truncate", FS_TRUNCATE),
    ("ioctl_dev", FS_IOCTL_DEV),
];

/// Names of network rights.
pub const NET_NAMES: &[(&str, u64)] = &[("bind", NET_BIND_TCP), ("connect", NET_CONNECT_TCP)];

/// Names of scopes.
pub const SCOPE_NAMES: &[(&str, u64)] = &[
    ("abstract_unix_socket", SCOPE_ABSTRACT_UNIX_SOCKET),
    ("signal", SCOPE_SIGNAL),
];

/// All filesystem rights of ABI `abi`.
pub fn fs_rights(abi: u32) -> u64 {
    match abi {
        0 => 0,
        1 => (1 << 13) - 1,
        2 => (1 << 14) - 1,
        3 | 4 => (1 << 15) - 1,
        _ => (1 << 16) - 1,
    }
}

/// All network rights of ABI `abi`.
pub fn net_rights(abi: u32) -> u64 {
    if abi >= 4 {
        NET_BIND_TCP | NET_CONNECT_TCP
    } else {
        0
    }
}

/// All scopes of ABI `abi`.
pub fn scopes(abi: u32) -> u64 {
    if abi >= 6 {
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    } else {
        0
    }
}

/// The lowest ABI providing every filesystem right in `bits`.
pub fn fs_min_abi(bits: u64) -> u32 {
    (1..=MAX_ABI)
        .find(|&abi| bits & !fs_rights(abi) == 0)
        .unwrap_or(u32::MAX)
}

/// The names in `bits`, for messages and reports (groups are not folded back).
pub fn names(table: &[(&'static str, u64)], bits: u64) -> Vec<&'static str> {
    table
        .iter()
        .filter(|(_, b)| b.count_ones() == 1 && bits & b != 0)
        .map(|(n, _)| *n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abi_levels() {
        assert_eq!(fs_rights(1), 0x1fff);
        assert_eq!(fs_rights(3), 0x7fff);
        assert_eq!(fs_rights(7), 0xffff);
        assert_eq!(fs_min_abi(FS_REFER), 2);
        assert_eq!(fs_min_abi(FS_TRUNCATE | FS_READ_FILE), 3);
        assert_eq!(fs_min_abi(FS_IOCTL_DEV), 5);
        assert_eq!(net_rights(3), 0);
        assert_eq!(scopes(6), 3);
        assert_eq!(
            names(FS_NAMES, FS_GROUP_READ),
            vec!["read_file", "read_dir"]
        );
    }
}
