//! Errno names a profile may use instead of numbers (`errno = "EPERM"`).

const NAMES: &[(&str, i32)] = &[
    ("E2BIG", libc::E2BIG),
    ("EACCES", libc::EACCES),
    ("EADDRINUSE", libc::EADDRINUSE),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL),
    ("EAFNOSUPPORT", libc::EAFNOSUPPORT),
    ("EAGAIN", libc::EAGAIN),
    ("EBADF", libc::EBADF),
    ("EBUSY", libc::EBUSY),
    ("ECONNREFUSED", libc::ECONNREFUSED),
    ("EEXIST", libc::EEXIST),
    ("EFAULT", libc::EFAULT),
    ("EINVAL", libc::EINVAL),
    ("EIO", libc::EIO),
    ("EMFILE", libc::EMFILE),
    ("ENAMETOOLONG", libc::ENAMETOOLONG),
    ("ENETUNREACH", libc::ENETUNREACH),
    ("ENODEV", libc::ENODEV),
    ("ENOENT", libc::ENOENT),
    ("ENOMEM", libc::ENOMEM),
    ("ENOSPC", libc::ENOSPC),
    ("ENOSYS", libc::ENOSYS),
    ("ENOTSUP", libc::ENOTSUP),
    ("ENOTTY", libc::ENOTTY),
    ("ENXIO", libc::ENXIO),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ("EPERM", libc::EPERM),
    ("EPROTONOSUPPORT", libc::EPROTONOSUPPORT),
    ("EROFS", libc::EROFS),
    ("ESRCH", libc::ESRCH),
];

/// The value of errno `name` (e.g. `"EPERM"` → 1).
pub fn errno_by_name(name: &str) -> Option<u16> {
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| u16::try_from(*v).ok())
}

/// Names accepted by [`errno_by_name`], for error messages.
pub fn errno_names() -> impl Iterator<Item = &'static str> {
    NAMES.iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve() {
        assert_eq!(errno_by_name("EPERM"), Some(1));
        assert_eq!(errno_by_name("ENOSYS"), Some(38));
        assert_eq!(errno_by_name("ENAMETOOLONG"), Some(36));
        assert_eq!(errno_by_name("eperm"), None);
        assert!(errno_names().any(|n| n == "EACCES"));
    }
}
