//! The `barbara` binary.
//!
//! `barbara demo` plays a whole call on the core's simulation and prints its timeline. The
//! network server (the SignalWire webhook and media-stream endpoint) comes with the tokio runtime.

mod demo;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") | None => demo::run(),
        Some("help" | "--help" | "-h") => {
            println!(
                "usage: barbara [demo]\n\n  demo   play a whole simulated call and print its timeline"
            );
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("barbara: unknown command {other:?} (try `barbara help`)");
            ExitCode::from(2)
        }
    }
}
