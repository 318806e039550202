//! The Markdown table: one row per figure, beside its target from issue 8.

use std::time::Duration;

use crate::core_bench::{CoreFigures, SpeedFigures, quantile};
use crate::scripts::Shape;

/// Whether a figure meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Met,
    NotMet,
    /// No target for this figure.
    Info,
    /// The calls measured did not run as scripted: the figure means nothing.
    Broken,
}

impl Status {
    fn of(met: bool) -> Status {
        if met { Status::Met } else { Status::NotMet }
    }

    fn text(self) -> &'static str {
        match self {
            Status::Met => "met",
            Status::NotMet => "**not met**",
            Status::Info => "(no target)",
            Status::Broken => "**broken run**",
        }
    }
}

struct Row {
    figure: String,
    case: String,
    measured: String,
    target: String,
    status: Status,
}

/// The rows so far.
pub(crate) struct Table {
    rows: Vec<Row>,
}

/// The machine, for the setup row: CPU model and cores.
pub(crate) fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{model}, {cores} cores")
}

/// Microseconds with a sensible precision.
pub(crate) fn micros(ns: u64) -> String {
    let us = ns as f64 / 1_000.0;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 1_000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.2} ms", us / 1_000.0)
    }
}

fn kb(bytes: f64) -> String {
    format!("{:.1} kB", bytes / 1_000.0)
}

/// "; best of N, runs A–B" when several runs were made, else nothing.
fn spread(runs: &[f64], show: impl Fn(f64) -> String) -> String {
    if runs.len() < 2 {
        return String::new();
    }
    let low = runs.iter().copied().fold(f64::INFINITY, f64::min);
    let high = runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "; best of {}, runs {}–{}",
        runs.len(),
        show(low),
        show(high)
    )
}

/// Latency percentiles of sorted ns samples, and whether p99 is within `limit_ns`.
fn percentiles(sorted: &[u64], limit_ns: u64) -> (String, Option<bool>) {
    match (quantile(sorted, 0.5), quantile(sorted, 0.99)) {
        (Some(p50), Some(p99)) => (
            format!(
                "p50 {}, p99 {} ({} samples)",
                micros(p50),
                micros(p99),
                sorted.len()
            ),
            Some(p99 <= limit_ns),
        ),
        _ => ("no samples".to_owned(), None),
    }
}

impl Table {
    pub(crate) fn new(calls: u64, seconds: u64, overhead_ns: u64) -> Table {
        let mut table = Table { rows: Vec::new() };
        table.rows.push(Row {
            figure: "Setup".to_owned(),
            case: format!("{calls} calls × {seconds} s per shape, side by side, one thread"),
            measured: machine(),
            target: format!("clock pair {overhead_ns} ns, subtracted"),
            status: Status::Info,
        });
        table
    }

    /// A load-test table starts empty.
    pub(crate) fn empty() -> Table {
        Table { rows: Vec::new() }
    }

    /// Adds a row.
    pub(crate) fn push(
        &mut self,
        figure: &str,
        case: &str,
        measured: String,
        target: &str,
        status: Status,
    ) {
        self.rows.push(Row {
            figure: figure.to_owned(),
            case: case.to_owned(),
            measured,
            target: target.to_owned(),
            status,
        });
    }

    pub(crate) fn core(&mut self, f: &CoreFigures) {
        let broken = !f.problems.is_empty();
        let case = f.shape.label();
        let gate = |status: Status| if broken { Status::Broken } else { status };
        let percent = f.ns_per_call_second / 1e9 * 100.0;
        let (cpu_target, mem_target) = match f.shape {
            Shape::WsPcmu => (Some(0.03), Some(256_000.0)),
            Shape::WebRtcOpus | Shape::WebRtcOpusPcmu | Shape::WebRtcOpusPcmuNarrow => {
                (Some(0.25), Some(1_000_000.0))
            }
            Shape::WsL16 | Shape::Live => (None, None),
        };
        self.push(
            "Core CPU per call-second",
            case,
            format!(
                "{percent:.4} % of a core ({} per call-second, {:.0} calls into the core{})",
                micros(f.ns_per_call_second as u64),
                f.entries_per_call_second,
                spread(&f.runs, |ns| format!("{:.4} %", ns / 1e9 * 100.0)),
            ),
            &cpu_target.map_or("—".to_owned(), |t| format!("≤ {t} %")),
            gate(cpu_target.map_or(Status::Info, |t| Status::of(percent <= t))),
        );
        self.push(
            "Core memory per call (mid-call)",
            case,
            kb(f.bytes_per_call),
            &mem_target.map_or("—".to_owned(), |t| format!("≤ {}", kb(t))),
            gate(mem_target.map_or(Status::Info, |t| Status::of(f.bytes_per_call <= t))),
        );
        for (figure, samples) in [
            ("Core latency, caller frame → OpenAI", &f.up),
            ("Core latency, OpenAI audio → caller frame", &f.down),
        ] {
            let (text, met) = percentiles(samples, 500_000);
            self.push(
                figure,
                case,
                text,
                "p99 ≤ 0.5 ms (core share)",
                gate(met.map_or(Status::Broken, Status::of)),
            );
        }
    }

    pub(crate) fn speed(&mut self, f: &SpeedFigures) {
        let ratio = f.seconds as f64 / f.wall.as_secs_f64().max(1e-9);
        let scaled = if f.seconds == 600 {
            String::new()
        } else {
            format!(", {} s call", f.seconds)
        };
        let (target, status) = match f.shape {
            // 600 s in 0.5 s is 1200× real time.
            Shape::WsPcmu => ("≤ 0.5 s (1200×)", Status::of(ratio >= 1_200.0)),
            Shape::WebRtcOpus | Shape::WebRtcOpusPcmu | Shape::WebRtcOpusPcmuNarrow => {
                ("≥ 200× real time", Status::of(ratio >= 200.0))
            }
            Shape::WsL16 | Shape::Live => ("—", Status::Info),
        };
        self.push(
            "Simulated 10-minute call, wall time",
            f.shape.label(),
            format!(
                "{:.3} s, {ratio:.0}× real time{scaled}{}",
                f.wall.as_secs_f64(),
                spread(
                    &f.runs.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
                    |s| format!("{s:.3} s")
                ),
            ),
            target,
            if f.problem.is_some() {
                Status::Broken
            } else {
                status
            },
        );
    }

    pub(crate) fn any(&self, status: Status) -> bool {
        self.rows.iter().any(|r| r.status == status)
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::from("| Figure | Case | Measured | Target | Status |\n");
        out.push_str("|---|---|---|---|---|\n");
        for r in &self.rows {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                r.figure,
                r.case,
                r.measured,
                r.target,
                r.status.text()
            ));
        }
        out
    }
}
