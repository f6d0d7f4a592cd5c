//! `warren-monitor`: the small per-sandbox monitor `warren run -d` execs into once the
//! sandbox has started (see `warren_cli::monitor`). Not meant to be run by hand.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match warren_cli::monitor::Config::parse(&args) {
        Ok(c) => {
            let e = warren_cli::monitor::run(&c);
            eprintln!("warren-monitor: exec cleanup: {e}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("warren-monitor: {e}");
            std::process::exit(2);
        }
    }
}
