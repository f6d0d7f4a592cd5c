//! `warren`: the user CLI.

fn main() {
    println!("warren {}", env!("CARGO_PKG_VERSION"));
}
