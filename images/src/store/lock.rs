//! flock(2)-based locks on files under `<root>/locks/`.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::error::IoError;

/// A held flock; released on drop.
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] Flock<File>);

impl Lock {
    /// Takes an exclusive lock on `path` (created if missing), waiting for it.
    pub fn exclusive(path: &Path) -> Result<Self, IoError> {
        Self::take(path, FlockArg::LockExclusive)
    }

    /// Takes a shared lock on `path` (created if missing), waiting for it.
    pub fn shared(path: &Path) -> Result<Self, IoError> {
        Self::take(path, FlockArg::LockShared)
    }

    fn take(path: &Path, arg: FlockArg) -> Result<Self, IoError> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|e| IoError::new("open lock file", path, e))?;
        let l = Flock::lock(f, arg).map_err(|(_, e)| IoError::new("lock", path, e.into()))?;
        Ok(Self(l))
    }
}
