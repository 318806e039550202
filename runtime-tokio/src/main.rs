//! The `barbara` binary.
//!
//! - `barbara` (or `barbara serve`): the server, configured from the environment (see
//!   `barbara_tokio::config`). SIGHUP reloads `BARBARA_CONFIG`; SIGTERM or Ctrl-C drains.
//! - `barbara demo [--backend realtime|live]`: a whole call over loopback sockets against fakes
//!   (of the Realtime API, the default, or of the Live API), printed as a timeline.
//! - `barbara replay FILE`: runs a call record's input log through the core again and reports
//!   the first event that differs (exit 1), or a one-line summary when all match.
//! - `barbara show FILE`: the timeline and transcript of a call record.

mod demo;
mod timeline;

use std::process::ExitCode;

use barbara_core::Backend;
use barbara_tokio::Settings;
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str =
    "usage: barbara [serve | demo [--backend realtime|live] | replay FILE | show FILE]

  serve         run the server (the default); settings come from the environment
  demo          play a whole call over loopback sockets and print its timeline; --backend live
                plays it against a fake of the Live API instead of the Realtime API
  replay FILE   run a call record's inputs (.jsonl) through the core again and report the
                first event that differs from the record (exit 1), or that all match
  show FILE     print the timeline and transcript of a call record";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => serve(),
        ["demo"] => demo::run(Backend::Realtime),
        ["demo", "--backend", name] => demo_on(name),
        ["demo", flag] if flag.starts_with("--backend=") => demo_on(&flag["--backend=".len()..]),
        ["replay", file] => match barbara_tokio::replay::replay_file(std::path::Path::new(file)) {
            Ok(replay) if replay.divergence.is_none() => {
                println!("{replay}");
                ExitCode::SUCCESS
            }
            Ok(replay) => {
                println!("{replay}");
                ExitCode::FAILURE
            }
            Err(e) => {
                eprintln!("barbara replay: {e}");
                ExitCode::from(2)
            }
        },
        ["show", file] => match timeline::print_file(std::path::Path::new(file)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("barbara: {e}");
                ExitCode::FAILURE
            }
        },
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("barbara: unknown command {args:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn demo_on(name: &str) -> ExitCode {
    match Backend::parse(name) {
        Some(backend) => demo::run(backend),
        None => {
            eprintln!("barbara demo: --backend: expected realtime or live, got {name:?}");
            ExitCode::from(2)
        }
    }
}

fn serve() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("barbara: {e}");
            return ExitCode::from(2);
        }
    };
    let level = if settings.debug_logging {
        tracing::Level::DEBUG
    } else {
        tracing::Level::INFO
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(ansi)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("barbara: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run_server(settings))
}

async fn run_server(settings: Settings) -> ExitCode {
    let grace = settings.shutdown_grace;
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", settings.port)).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!(
                "barbara: PORT: cannot listen on port {}: {e}",
                settings.port
            );
            return ExitCode::from(2);
        }
    };
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        eprintln!("barbara: cannot install signal handlers");
        return ExitCode::FAILURE;
    };
    let server = match barbara_tokio::serve(settings, listener) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("barbara: cannot start the server: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(addr = %server.local_addr(), "listening");
    loop {
        tokio::select! {
            _ = hup.recv() => match server.reload() {
                Ok(()) => tracing::info!("configuration reloaded; new calls get it"),
                Err(e) => tracing::error!("configuration not reloaded: {e}"),
            },
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!(calls = server.active_calls(), ?grace, "shutting down");
    server.shutdown(grace).await;
    ExitCode::SUCCESS
}
