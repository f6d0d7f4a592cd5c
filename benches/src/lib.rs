//! placeholder crate, filled by its issue
