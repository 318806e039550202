//! `barbara-bench`: Barbara's benchmark figures, printed as one Markdown table on stdout
//! (progress goes to stderr).
//!
//! - `barbara-bench [--calls N] [--seconds T] [--quick] [--sim-seconds S]`: the core-only figures
//!   (CPU per call-second, memory per call, the core's share of bridge-added latency) for N
//!   calls × T seconds per call shape, and the wall time of a simulated S-second (10-minute)
//!   call per transport, each beside its target.
//! - `barbara-bench load [--calls N] [--seconds T]`: the tokio server in this process against
//!   N fake SignalWire callers and a fake OpenAI in a child process, over 127.0.0.1 only.
//!
//! Figures are wall-clock measurements of this machine: they vary with its load.

mod alloc;
mod core_bench;
mod load;
mod probe;
mod scripts;
mod table;

use std::process::ExitCode;

use scripts::Shape;
use table::{Status, Table};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

const USAGE: &str = "usage: barbara-bench [--calls N] [--seconds T] [--sim-seconds S] [--quick]
                     [--repeat R] (best of R runs, with their spread)
                     [--only KEY] (one row, for profiling)
       KEY: ws-pcmu ws-l16 webrtc webrtc-pcmu webrtc-pcmu-narrow sim-ws sim-webrtc
            sim-webrtc-pcmu sim-webrtc-pcmu-narrow sim-live
       barbara-bench load [--calls N] [--seconds T] [--ramp-seconds R]";

/// Parsed `--name value` flags.
struct Flags {
    calls: Option<u64>,
    seconds: Option<u64>,
    sim_seconds: Option<u64>,
    ramp_seconds: Option<u64>,
    only: Option<String>,
    repeat: u64,
    quick: bool,
    rest: Vec<String>,
}

fn parse(args: &[String]) -> Result<Flags, String> {
    let mut flags = Flags {
        calls: None,
        seconds: None,
        sim_seconds: None,
        ramp_seconds: None,
        only: None,
        repeat: 1,
        quick: false,
        rest: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<Option<u64>, String> {
            let value = args.next().ok_or(format!("{name} needs a value"))?;
            let n = value
                .parse::<u64>()
                .map_err(|_| format!("{name}: {value:?} is not a number"))?;
            Ok(Some(n))
        };
        match arg.as_str() {
            "--calls" => flags.calls = number("--calls")?.filter(|n| *n > 0),
            "--seconds" => flags.seconds = number("--seconds")?.filter(|n| *n > 0),
            "--sim-seconds" => flags.sim_seconds = number("--sim-seconds")?.filter(|n| *n > 0),
            "--ramp-seconds" => flags.ramp_seconds = number("--ramp-seconds")?,
            "--repeat" => flags.repeat = number("--repeat")?.unwrap_or(1).clamp(1, 20),
            "--quick" => flags.quick = true,
            "--only" => flags.only = args.next().cloned(),
            other => flags.rest.push(other.to_owned()),
        }
    }
    Ok(flags)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, args) = match args.first().map(String::as_str) {
        Some(c @ ("load" | load::PEERS_COMMAND)) => (c.to_owned(), &args[1..]),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => (String::new(), &args[..]),
    };
    let flags = match parse(args) {
        Ok(flags) if flags.rest.is_empty() => flags,
        Ok(flags) => {
            eprintln!("barbara-bench: unknown arguments {:?}\n{USAGE}", flags.rest);
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("barbara-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match command.as_str() {
        "load" => load::run_load(
            flags.calls.unwrap_or(200),
            flags.seconds.unwrap_or(30),
            flags.ramp_seconds,
        ),
        load::PEERS_COMMAND => load::run_peers(
            flags.calls.unwrap_or(1),
            flags.seconds.unwrap_or(10),
            flags.ramp_seconds.unwrap_or(0),
        ),
        _ => core_table(&flags),
    }
}

/// The core-only figures and the simulation speeds, as one table.
fn core_table(flags: &Flags) -> ExitCode {
    let (calls, seconds) = if flags.quick {
        (flags.calls.unwrap_or(10), flags.seconds.unwrap_or(20))
    } else {
        (flags.calls.unwrap_or(100), flags.seconds.unwrap_or(60))
    };
    let sim_seconds = flags.sim_seconds.unwrap_or(600);
    let core_shapes = [
        Shape::WsPcmu,
        Shape::WsL16,
        Shape::WebRtcOpus,
        Shape::WebRtcOpusPcmu,
        Shape::WebRtcOpusPcmuNarrow,
    ];
    let speed_shapes = [
        Shape::WsPcmu,
        Shape::WebRtcOpus,
        Shape::WebRtcOpusPcmu,
        Shape::WebRtcOpusPcmuNarrow,
        Shape::Live,
    ];
    if let Some(only) = &flags.only {
        let known = core_shapes.iter().map(|s| s.key());
        let known: Vec<&str> = known
            .chain(speed_shapes.iter().map(|s| s.sim_key()))
            .collect();
        if !known.contains(&only.as_str()) {
            eprintln!(
                "barbara-bench: no figure is called {only:?}; --only takes one of: {}",
                known.join(" ")
            );
            return ExitCode::from(2);
        }
    }
    let overhead = probe::calibrate();
    eprintln!("barbara-bench: clock read pair costs {overhead} ns (subtracted per interval)");
    let mut table = Table::new(calls, seconds, overhead);
    let wanted = |key: &str| flags.only.as_deref().is_none_or(|only| only == key);
    for shape in core_shapes {
        if !wanted(shape.key()) {
            continue;
        }
        eprintln!(
            "barbara-bench: {calls} calls × {seconds} s: {}",
            shape.label()
        );
        let figures = core_bench::measure_best(flags.repeat, shape, calls, seconds, overhead);
        for line in &figures.breakdown {
            eprintln!("barbara-bench:   {line}");
        }
        for problem in figures.problems.iter().take(3) {
            eprintln!("barbara-bench:   a call did not run as scripted: {problem}");
        }
        table.core(&figures);
    }
    for shape in speed_shapes {
        if !wanted(shape.sim_key()) {
            continue;
        }
        eprintln!(
            "barbara-bench: simulating a {sim_seconds} s call: {}",
            shape.label()
        );
        let figures = core_bench::speed_best(flags.repeat, shape, sim_seconds);
        if let Some(problem) = &figures.problem {
            eprintln!("barbara-bench:   the call did not run as scripted: {problem}");
        }
        table.speed(&figures);
    }
    print!("{}", table.render());
    if table.any(Status::Broken) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
