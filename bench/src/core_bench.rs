//! The core-only figures, measured on the simulation: CPU per call-second, memory per call and
//! the core's share of bridge-added latency for N concurrent calls; and how fast a 10-minute
//! call simulates.

use std::time::{Duration, Instant};

use barbara_core::sim::driver::Sim;
use barbara_core::{Call, EndReason, Event};

use crate::alloc;
use crate::probe;
use crate::scripts::{Shape, conversation};

/// What N calls of one shape cost the core.
#[derive(Debug)]
pub(crate) struct CoreFigures {
    pub(crate) shape: Shape,
    /// Core time per call-second, ns.
    pub(crate) ns_per_call_second: f64,
    /// Calls into the core per call-second.
    pub(crate) entries_per_call_second: f64,
    /// Bytes the core holds per live call, mid-conversation.
    pub(crate) bytes_per_call: f64,
    /// Core time, caller frame to its bytes leaving toward OpenAI, ns, sorted.
    pub(crate) up: Vec<u64>,
    /// Core time, model audio to the caller frame carrying it, ns, sorted.
    pub(crate) down: Vec<u64>,
    /// Calls that did not run as scripted, with why.
    pub(crate) problems: Vec<String>,
    /// Core time per call-second and mean per entry, by kind of entry (for stderr).
    pub(crate) breakdown: Vec<String>,
    /// Core time per call-second of every run, when the best of several is kept.
    pub(crate) runs: Vec<f64>,
}

/// [`measure`] `repeat` times; the run with the least core time is kept, with every run's
/// figure beside it (this machine's neighbours move single runs by tens of percent).
pub(crate) fn measure_best(
    repeat: u64,
    shape: Shape,
    calls: u64,
    seconds: u64,
    overhead_ns: u64,
) -> CoreFigures {
    let mut best = measure(shape, calls, seconds, overhead_ns);
    let mut runs = vec![best.ns_per_call_second];
    for _ in 1..repeat {
        let figures = measure(shape, calls, seconds, overhead_ns);
        runs.push(figures.ns_per_call_second);
        // A run that broke is kept whatever its time: the table must say so.
        let broke = !figures.problems.is_empty();
        if best.problems.is_empty()
            && (broke || figures.ns_per_call_second < best.ns_per_call_second)
        {
            best = figures;
        }
    }
    best.runs = runs;
    best
}

/// Runs `calls` calls of `shape` for `seconds` each, side by side on their virtual clocks.
pub(crate) fn measure(shape: Shape, calls: u64, seconds: u64, overhead_ns: u64) -> CoreFigures {
    probe::reset(overhead_ns);
    let baseline = alloc::tagged_bytes();
    let mut sims: Vec<Sim> = (0..calls)
        .map(|i| {
            Sim::with_probe(
                Instant::now(),
                conversation(shape, 1_000 + i, seconds),
                probe::probe(),
            )
        })
        .collect();
    let mid = seconds.div_ceil(2).max(1);
    let mut held = 0i64;
    for second in 1..=seconds {
        let t = Duration::from_secs(second);
        for sim in &mut sims {
            sim.run_until(t, |s| s.now() >= t);
        }
        if second == mid {
            held = alloc::tagged_bytes() - baseline;
        }
    }
    for sim in &mut sims {
        sim.run_to_end(Duration::from_secs(seconds + 60));
    }
    let figures = probe::take();
    let problems = sims
        .iter()
        .filter_map(|sim| problem(shape, sim, seconds))
        .collect();
    let call_seconds = (calls * seconds).max(1) as f64;
    let breakdown = probe::KINDS
        .iter()
        .zip(figures.by_kind)
        .filter(|(_, (_, n))| *n > 0)
        .map(|(kind, (ns, n))| {
            format!(
                "{kind}: {:.1} µs per call-second, {n} calls, {:.2} µs each",
                ns as f64 / call_seconds / 1e3,
                ns as f64 / n as f64 / 1e3
            )
        })
        .collect();
    let mut up = figures.up;
    let mut down = figures.down;
    up.sort_unstable();
    down.sort_unstable();
    CoreFigures {
        shape,
        ns_per_call_second: figures.inside_ns as f64 / call_seconds,
        entries_per_call_second: figures.entries as f64 / call_seconds,
        bytes_per_call: held as f64 / calls.max(1) as f64 + std::mem::size_of::<Call>() as f64,
        up,
        down,
        problems,
        breakdown,
        runs: Vec::new(),
    }
}

/// Why a call did not run as its script says, if it did not.
fn problem(shape: Shape, sim: &Sim, seconds: u64) -> Option<String> {
    let ended = sim.first(|e| matches!(e, Event::CallEnded { .. }));
    match ended {
        Some((_, Event::CallEnded { reason })) if *reason == EndReason::CallerStopped => {}
        other => return Some(format!("ended with {other:?}")),
    }
    let expected = match shape {
        Shape::WsPcmu | Shape::WsL16 => "realtime/websocket",
        Shape::WebRtcOpus | Shape::WebRtcOpusPcmu | Shape::WebRtcOpusPcmuNarrow => {
            "realtime/webrtc"
        }
        Shape::Live => "live/websocket",
    };
    let ready: Vec<&'static str> = sim
        .all(|e| matches!(e, Event::ModelReady { .. }))
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::ModelReady { transport } => Some(*transport),
            _ => None,
        })
        .collect();
    if ready != [expected] {
        return Some(format!("ready on {ready:?}, expected {expected}"));
    }
    // The model talks about 40 % of the time; the caller must have heard most of it.
    let heard = sim.caller().heard_speech_ms();
    if u64::from(heard) < seconds * 250 {
        return Some(format!("the caller heard only {heard} ms of speech"));
    }
    None
}

/// A simulated call's wall time.
#[derive(Debug)]
pub(crate) struct SpeedFigures {
    pub(crate) shape: Shape,
    pub(crate) seconds: u64,
    pub(crate) wall: Duration,
    pub(crate) problem: Option<String>,
    /// Every run's wall time, when the best of several is kept.
    pub(crate) runs: Vec<Duration>,
}

/// [`speed`] `repeat` times; the fastest run is kept (a run that broke is kept instead), with
/// every run's wall time beside it.
pub(crate) fn speed_best(repeat: u64, shape: Shape, seconds: u64) -> SpeedFigures {
    let mut best = speed(shape, seconds);
    let mut runs = vec![best.wall];
    for _ in 1..repeat {
        let figures = speed(shape, seconds);
        runs.push(figures.wall);
        if best.problem.is_none() && (figures.problem.is_some() || figures.wall < best.wall) {
            best = figures;
        }
    }
    best.runs = runs;
    best
}

/// Simulates one call of `shape` lasting `seconds` (no probe) and times it.
pub(crate) fn speed(shape: Shape, seconds: u64) -> SpeedFigures {
    let config = conversation(shape, 7, seconds);
    let start = Instant::now();
    let mut sim = Sim::new(Instant::now(), config);
    sim.run_to_end(Duration::from_secs(seconds + 60));
    let wall = start.elapsed();
    SpeedFigures {
        shape,
        seconds,
        wall,
        problem: problem(shape, &sim, seconds),
        runs: Vec::new(),
    }
}

/// The `q` quantile of sorted samples.
pub(crate) fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}
