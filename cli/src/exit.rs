//! warren's exit codes: a contract scripts and engines branch on (as podman's).
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (or the command's own 0) |
//! | 125 | warren itself failed: bad flags, unknown image or sandbox, name conflict, … |
//! | 126 | the command was found but could not be executed |
//! | 127 | the command was not found |
//! | other | the command's own exit status; 128+N when it was killed by signal N |

/// warren itself failed.
pub const WARREN_ERROR: i32 = 125;
/// The command could not be executed.
pub const CANNOT_EXEC: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;
