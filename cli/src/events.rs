//! `warren events [-f] [--format json] [--filter NAME]`: the lifecycle journal that
//! `run`, the monitors, `stop` and `rm` append to (create, start, oom, die, stop, rm).

use std::io::{BufRead, Seek, SeekFrom, Write};
use std::time::Duration;

use crate::state::{self, Event, Roots, StateError};

/// Options of `events`.
#[derive(Debug, Clone, Default)]
pub struct EventsOptions {
    pub follow: bool,
    pub json: bool,
    /// Only events of this sandbox name or id.
    pub filter: Option<String>,
}

fn show(line: &str, o: &EventsOptions, out: &mut dyn Write) -> std::io::Result<()> {
    let Ok(e) = serde_json::from_str::<Event>(line) else {
        return Ok(());
    };
    if let Some(f) = &o.filter
        && *f != e.name
        && !e.id.starts_with(f.as_str())
    {
        return Ok(());
    }
    if o.json {
        writeln!(out, "{}", line.trim_end())
    } else {
        let code = e
            .exit_code
            .map(|c| format!(" (exit code {c})"))
            .unwrap_or_default();
        writeln!(
            out,
            "{} sandbox {} {} ({}){code}",
            e.time,
            e.kind,
            e.name,
            &e.id[..e.id.len().min(12)]
        )
    }
}

/// Prints the journal; with `follow`, keeps printing what is appended (until killed).
pub fn events(roots: &Roots, o: &EventsOptions, out: &mut dyn Write) -> Result<(), StateError> {
    let path = roots.events_path();
    let wio = state::io("write", std::path::Path::new("stdout"));
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => Some(std::io::BufReader::new(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(state::io("open", &path)(e)),
    };
    let mut line = String::new();
    let mut pos = 0u64;
    loop {
        if f.is_none() {
            f = std::fs::File::open(&path).ok().map(std::io::BufReader::new);
        }
        if let Some(r) = &mut f {
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(n) if line.ends_with('\n') => {
                        pos += n as u64;
                        if let Err(e) = show(&line, o, out) {
                            return Err(wio(e));
                        }
                    }
                    Ok(_) => {
                        // An incomplete last line: read it again once it is whole.
                        let _ = r.seek(SeekFrom::Start(pos));
                        break;
                    }
                }
            }
        }
        let _ = out.flush();
        if !o.follow {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
