//! `warren logs [-f] [--tail N] [-t]`: the log a detached sandbox's monitor writes (see
//! [`crate::monitor`] for the format and the rotation), read back as the output was.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use crate::sandbox;
use crate::state::{self, Roots, StateError};

/// One parsed log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub time: String,
    pub stderr: bool,
    /// A full line (`F`) or a piece the next entry continues (`P`).
    pub full: bool,
    pub text: Vec<u8>,
}

/// Parses one log line (`TIME STREAM F|P TEXT`).
pub fn parse_line(line: &[u8]) -> Option<Entry> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let time = String::from_utf8_lossy(parts.next()?).into_owned();
    let stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or_default().to_vec();
    Some(Entry {
        time,
        stderr: stream == b"stderr",
        full: tag == b"F",
        text,
    })
}

/// Options of `logs`.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub tail: Option<usize>,
    pub timestamps: bool,
}

/// Lines (joined from partial entries) of `data`.
fn lines(data: &[u8]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut pending: Option<Entry> = None;
    for l in data.split(|&b| b == b'\n') {
        let Some(e) = parse_line(l) else { continue };
        let e = match pending.take() {
            Some(mut p) if p.stderr == e.stderr => {
                p.text.extend_from_slice(&e.text);
                p.full = e.full;
                p
            }
            Some(p) => {
                out.push(p);
                e
            }
            None => e,
        };
        if e.full {
            out.push(e);
        } else {
            pending = Some(e);
        }
    }
    out.extend(pending);
    out
}

fn emit(
    e: &Entry,
    timestamps: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    let w: &mut dyn Write = if e.stderr { err } else { out };
    if timestamps {
        w.write_all(e.time.as_bytes())?;
        w.write_all(b" ")?;
    }
    w.write_all(&e.text)?;
    if e.full {
        w.write_all(b"\n")?;
    }
    Ok(())
}

fn read_file(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_default()
}

/// Prints the logs of `query` to `out`/`err`.
pub fn logs(
    roots: &Roots,
    query: &str,
    o: &LogsOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), StateError> {
    let id = state::resolve(roots, query)?;
    let path = roots.log_path(&id);
    let mut data = read_file(&path.with_extension("log.1"));
    let mut cur = std::fs::File::open(&path).ok();
    if let Some(f) = &mut cur {
        let _ = f.read_to_end(&mut data);
    }
    let mut entries = lines(&data);
    if let Some(n) = o.tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    for e in &entries {
        emit(e, o.timestamps, out, err).map_err(state::io("write", Path::new("stdout")))?;
    }
    let _ = out.flush();
    if !o.follow {
        return Ok(());
    }
    // Follow: read what is appended until the sandbox has exited and the log is drained;
    // a rotation shows as a new file at the path.
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let live = sandbox::info(roots, &id)
            .map(|i| i.status.is_live())
            .unwrap_or(false);
        let rotated = match (&cur, std::fs::metadata(&path)) {
            (Some(f), Ok(m)) => {
                f.metadata()
                    .map(|fm| std::os::unix::fs::MetadataExt::ino(&fm))
                    .ok()
                    != Some(std::os::unix::fs::MetadataExt::ino(&m))
            }
            (None, Ok(_)) => true,
            _ => false,
        };
        let mut got = 0;
        if let Some(f) = &mut cur {
            let mut chunk = Vec::new();
            got = f.read_to_end(&mut chunk).unwrap_or(0);
            buf.extend_from_slice(&chunk);
        }
        if rotated {
            cur = std::fs::File::open(&path).ok();
            if let Some(f) = &mut cur {
                let _ = f.seek(SeekFrom::Start(0));
            }
            continue;
        }
        if let Some(end) = buf.iter().rposition(|&b| b == b'\n') {
            let complete: Vec<u8> = buf.drain(..=end).collect();
            for e in lines(&complete) {
                emit(&e, o.timestamps, out, err)
                    .map_err(state::io("write", Path::new("stdout")))?;
            }
            let _ = out.flush();
            let _ = err.flush();
        }
        if got == 0 {
            if !live {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_entries_are_joined() {
        let data = b"t1 stdout P hel\nt2 stderr F oops\nt3 stdout F lo\nt4 stdout F \n";
        let es = lines(data);
        let texts: Vec<(bool, &[u8])> = es.iter().map(|e| (e.stderr, e.text.as_slice())).collect();
        assert_eq!(
            texts,
            vec![
                (false, &b"hel"[..]),
                (true, &b"oops"[..]),
                (false, &b"lo"[..]),
                (false, &b""[..])
            ]
        );
        let data = b"t1 stdout P hel\nt3 stdout F lo\n";
        assert_eq!(lines(data)[0].text, b"hello");
    }
}
