//! Signal names as runc accepts them: `KILL`, `SIGKILL`, `9`, case-insensitive names.

use nix::sys::signal::Signal;

use crate::error::{Result, RuntimeError};

/// Parses a signal given as a number or a name with or without the `SIG` prefix.
pub fn parse(s: &str) -> Result<i32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(RuntimeError::UnknownSignal(s.to_owned()));
    }
    let up = t.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        return rt_signal(libc::SIGRTMIN(), rt, s);
    }
    if let Some(rt) = name.strip_prefix("SIGRTMAX") {
        return rt_signal(libc::SIGRTMAX(), rt, s);
    }
    name.parse::<Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| RuntimeError::UnknownSignal(s.to_owned()))
}

fn rt_signal(base: i32, offset: &str, orig: &str) -> Result<i32> {
    let n = if offset.is_empty() {
        base
    } else {
        let off: i32 = offset
            .parse()
            .map_err(|_| RuntimeError::UnknownSignal(orig.to_owned()))?;
        base + off
    };
    if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
        Ok(n)
    } else {
        Err(RuntimeError::UnknownSignal(orig.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("9").ok(), Some(9));
        assert_eq!(parse("KILL").ok(), Some(9));
        assert_eq!(parse("SIGTERM").ok(), Some(15));
        assert_eq!(parse("term").ok(), Some(15));
        assert_eq!(parse("SIGRTMIN+1").ok(), Some(libc::SIGRTMIN() + 1));
    }

    #[test]
    fn unknown_signals_are_errors() {
        for s in ["", "0", "65", "SIGFOO", "FOO", "-1", "RTMIN+99"] {
            assert!(parse(s).is_err(), "{s}");
        }
    }
}
