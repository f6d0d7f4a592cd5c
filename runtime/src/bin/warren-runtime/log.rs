//! runc-compatible logging: `--log FILE --log-format text|json`. containerd's shim and
//! conmon read the last `{"level":"error","msg":…}` line of the log file on failure.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Where and how log lines go.
pub struct RuncLog {
    sink: Mutex<Box<dyn Write + Send>>,
    json: bool,
    max: Level,
    libcontainer_debug: bool,
}

impl RuncLog {
    pub fn new(file: Option<File>, json: bool, debug: bool, libcontainer_debug: bool) -> Self {
        let sink: Box<dyn Write + Send> = match file {
            Some(f) => Box::new(f),
            None => Box::new(std::io::stderr()),
        };
        Self {
            sink: Mutex::new(sink),
            json,
            max: if debug { Level::DEBUG } else { Level::WARN },
            libcontainer_debug,
        }
    }
}

#[derive(Default)]
struct Fields {
    msg: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.msg, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={:?}", field.name(), value);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.msg.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={:?}", field.name(), value);
        }
    }
}

impl<S: Subscriber> Layer<S> for RuncLog {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        // libcontainer logs its own view of every failure (and harmless warnings such as
        // unraisable ambient capabilities); we report failures ourselves with context,
        // so its messages are shown only with --debug.
        let ours = !meta.target().starts_with("libc");
        *meta.level() <= self.max && (ours || self.libcontainer_debug)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let msg = format!("{}{}", f.msg, f.rest);
        let line = if self.json {
            let v = serde_json::json!({"level": level, "msg": msg, "time": time});
            format!("{v}\n")
        } else {
            format!("time={time:?} level={level} msg={msg:?}\n")
        };
        if let Ok(mut s) = self.sink.lock() {
            let _ = s.write_all(line.as_bytes());
        }
    }
}
