//! The loopback load test: the tokio server (`barbara_tokio::serve`) in this process; N fake
//! SignalWire callers and a fake OpenAI Realtime server in a child process (this binary again,
//! with a hidden subcommand), all on 127.0.0.1. Bounded in calls and time.
//!
//! Latency is read from the audio itself: the fake OpenAI writes its send time into every
//! 20 ms of each audio delta it sends, and the callers into every frame they send; the other
//! side reads the stamp when the bytes arrive (PCMU passes through the bridge unchanged). Both
//! fakes share the child's clock. The stamp is 16 μ-law bytes of near-silence: a marker, then
//! a microsecond count one nibble per byte.
//!
//! Bridge-added latency as issue 8 defines it is measured by the server itself (a message read
//! off one socket → what the core made of it written to the other, `barbara_bridge_latency_
//! seconds`): those rows are judged against the target. The stamps give the end-to-end figure
//! the peers observe, which adds two loopback hops and the peers' own scheduling lag.
//!
//! Parent and child talk over the child's stdin and stdout, one line each way at a time:
//! `openai PORT` (child), `server PORT` (parent), then the child's result as one JSON line.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use barbara_core::Leg;
use barbara_core::sim::fake_caller::{CallerOutput, FakeCaller};
use barbara_core::sim::fake_realtime::{FakeRealtime, FakeServerOutput, RealtimeScript};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use barbara_tokio::metrics::LatencySnapshot;

use crate::core_bench::quantile;
use crate::scripts::{Shape, conversation};
use crate::table::{Status, Table, machine, micros};

/// The hidden subcommand the load test re-executes this binary with.
pub(crate) const PEERS_COMMAND: &str = "__load-peers";

/// Marks a stamp: four near-silent negative μ-law codes that a stamp's digits never use.
const MARKER: [u8; 4] = [0x7f, 0x7e, 0x7f, 0x7d];
/// Marker plus twelve nibbles (48 bits of microseconds).
const STAMP_LEN: usize = 16;
/// One 20 ms PCMU frame.
const FRAME: usize = 160;
/// A frame later than this is late.
const LATE_US: u64 = 20_000;

/// The fakes' WebSocket settings: reads of 8 KiB, as the server's. tungstenite zeroes a whole
/// read's worth of buffer before each read; at its default (128 KiB) that memset is most of
/// a fake's work per message, and its lag would count in the end-to-end figures.
fn peer_websocket() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(8 * 1024)
}

// ---------------------------------------------------------------------------------------------
// The parent: the server.

/// Runs the load test and prints its table.
pub(crate) fn run_load(calls: u64, seconds: u64, ramp: Option<u64>) -> ExitCode {
    let ramp = ramp.unwrap_or_else(|| (seconds / 3).min(10));
    match load(calls, seconds, ramp) {
        Ok(table) => {
            print!("{}", table.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("barbara-bench load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// CPU ticks and RSS of this process at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    ticks: u64,
    rss_kb: u64,
}

fn sample() -> Sample {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Sample {
        at: Instant::now(),
        ticks: tick(11) + tick(12),
        rss_kb: status_kb("VmRSS:"),
    }
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

/// Clock ticks per second (`getconf CLK_TCK`): 100 on every Linux this runs on.
const CLK_TCK: f64 = 100.0;

fn cpu_percent(from: &Sample, to: &Sample) -> f64 {
    let wall = (to.at - from.at).as_secs_f64().max(1e-9);
    (to.ticks.saturating_sub(from.ticks)) as f64 / CLK_TCK / wall * 100.0
}

fn load(calls: u64, seconds: u64, ramp: u64) -> Result<Table, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg(PEERS_COMMAND)
        .args([
            "--calls",
            &calls.to_string(),
            "--seconds",
            &seconds.to_string(),
        ])
        .args(["--ramp-seconds", &ramp.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the peers: {e}"))?;
    let result = drive(&mut child, calls, seconds, ramp);
    if result.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    result
}

fn drive(
    child: &mut std::process::Child,
    calls: u64,
    seconds: u64,
    ramp: u64,
) -> Result<Table, String> {
    let mut from_child = BufReader::new(child.stdout.take().ok_or("no child stdout")?);
    let mut to_child = child.stdin.take().ok_or("no child stdin")?;
    let mut line = String::new();
    from_child.read_line(&mut line).map_err(|e| e.to_string())?;
    let openai_port = line
        .strip_prefix("openai ")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .ok_or_else(|| format!("the peers said {line:?}"))?;
    let records = std::env::temp_dir().join(format!("barbara-bench-load-{}", std::process::id()));
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let limit = Duration::from_secs(ramp + seconds + 60);
    let outcome = runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let vars = [
            ("OPENAI_API_KEY", "sk-bench".to_owned()),
            (
                "OPENAI_BASE_URL",
                format!("http://127.0.0.1:{openai_port}/v1"),
            ),
            ("PUBLIC_URL", format!("http://127.0.0.1:{port}")),
            ("BARBARA_RECORDS_DIR", records.display().to_string()),
            ("BARBARA_MAX_CALLS", (calls + 16).to_string()),
        ];
        let settings = barbara_tokio::Settings::from_vars(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
        .map_err(|e| e.to_string())?;
        let server = barbara_tokio::serve(settings, listener).map_err(|e| e.to_string())?;
        let idle = sample();
        writeln!(to_child, "server {port}").map_err(|e| e.to_string())?;
        to_child.flush().map_err(|e| e.to_string())?;
        eprintln!(
            "barbara-bench load: {calls} calls × {seconds} s, started over {ramp} s, server on \
             127.0.0.1:{port}, fake OpenAI on 127.0.0.1:{openai_port}"
        );
        let samples = Arc::new(Mutex::new(vec![idle]));
        let sampler = {
            let samples = samples.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    let s = sample();
                    samples.lock().unwrap_or_else(|e| e.into_inner()).push(s);
                }
            })
        };
        let reading = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            from_child.read_line(&mut line).map(|_| line)
        });
        let line = tokio::time::timeout(limit, reading)
            .await
            .map_err(|_| "the peers did not finish in time".to_owned())?
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        sampler.abort();
        let active_at_end = server.active_calls();
        let bridge = ServerLatency {
            to_model: server.bridge_latency(Leg::Model),
            to_phone: server.bridge_latency(Leg::Phone),
        };
        server.shutdown(Duration::from_secs(1)).await;
        let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok::<_, String>((line, samples, active_at_end, bridge))
    });
    let _ = std::fs::remove_dir_all(&records);
    let (line, samples, active_at_end, bridge) = outcome?;
    let result: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("the peers said {line:?}: {e}"))?;
    Ok(load_table(
        calls,
        seconds,
        ramp,
        &result,
        &samples,
        active_at_end,
        &bridge,
    ))
}

/// The server's own bridge latency histograms, read when the peers are done.
struct ServerLatency {
    to_model: LatencySnapshot,
    to_phone: LatencySnapshot,
}

/// The target of issue 8, µs: p99 of bridge-added latency at 200 calls.
const TARGET_P99_US: u64 = 500;

fn load_table(
    calls: u64,
    seconds: u64,
    ramp: u64,
    result: &serde_json::Value,
    samples: &[Sample],
    active_at_end: usize,
    bridge: &ServerLatency,
) -> Table {
    let number = |key: &str| result[key].as_u64().unwrap_or(0);
    let mut table = Table::empty();
    table.push(
        "Setup",
        &format!(
            "{calls} calls × {seconds} s (PCMU, Realtime over WebSocket), started over {ramp} s; \
             peers in a child process"
        ),
        machine(),
        "127.0.0.1 only",
        Status::Info,
    );
    let first = samples.first().copied();
    let last = samples.last().copied();
    // All calls are up from the end of the ramp until the first call hangs up.
    let t0 = first.map(|s| s.at);
    let window = |from: u64, to: u64| {
        let t0 = t0?;
        let pick = |secs: u64| {
            samples
                .iter()
                .min_by_key(|s| {
                    let at = (s.at - t0).as_millis() as i128;
                    (at - i128::from(secs) * 1_000).abs()
                })
                .copied()
        };
        Some((pick(from)?, pick(to)?))
    };
    let steady = if seconds > 4 {
        window(ramp + 2, ramp + seconds - 2).filter(|(a, b)| b.at > a.at)
    } else {
        None
    };
    let (cpu_text, cpu_status) = match (steady, first, last) {
        (Some((a, b)), Some(f), Some(l)) => {
            let steady = cpu_percent(&a, &b);
            (
                format!(
                    "{steady:.1} % of a core with all {calls} calls up ({:.3} % per call); \
                     {:.1} % over the whole run",
                    steady / calls.max(1) as f64,
                    cpu_percent(&f, &l)
                ),
                Status::Info,
            )
        }
        (None, Some(f), Some(l)) => (
            format!("{:.1} % of a core over the run", cpu_percent(&f, &l)),
            Status::Info,
        ),
        _ => ("no samples".to_owned(), Status::Broken),
    };
    table.push(
        "Server CPU (/proc/self/stat)",
        "tokio server, all its threads",
        cpu_text,
        "—",
        cpu_status,
    );
    let peers_cpu = result["cpu_percent"].as_f64().unwrap_or(0.0);
    table.push(
        "Peers CPU (child process)",
        "fake callers and fake OpenAI: their lag counts in the latencies below",
        format!("{peers_cpu:.1} % of a core over the run"),
        "—",
        Status::Info,
    );
    let idle_kb = first.map_or(0, |s| s.rss_kb);
    let peak_kb = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    table.push(
        "Server RSS",
        "VmRSS sampled every 250 ms",
        format!(
            "peak {:.1} MB (idle {:.1} MB, {:.0} kB more per call)",
            peak_kb as f64 / 1_000.0,
            idle_kb as f64 / 1_000.0,
            peak_kb.saturating_sub(idle_kb) as f64 / calls.max(1) as f64
        ),
        "—",
        Status::Info,
    );
    let down_frames = number("down_frames");
    let late = number("down_late");
    table.push(
        "Frames late by > 20 ms",
        "caller side: model audio frames, OpenAI send → caller receive",
        format!(
            "{late} of {down_frames} ({:.3} %)",
            late as f64 * 100.0 / down_frames.max(1) as f64
        ),
        "—",
        Status::Info,
    );
    for (figure, snapshot, case) in [
        (
            "Bridge-added latency (server), caller frame → OpenAI",
            &bridge.to_model,
            "server: phone message read → its output written to the OpenAI socket",
        ),
        (
            "Bridge-added latency (server), OpenAI audio → caller frame",
            &bridge.to_phone,
            "server: OpenAI message read → its output written to the phone socket",
        ),
    ] {
        let (text, status) = match (snapshot.quantile(0.5), snapshot.quantile(0.99)) {
            (Some(p50), Some(p99)) => (
                format!(
                    "p50 ≤ {}, p99 ≤ {}, max {} ({} messages; histogram bucket bounds)",
                    micros(p50.as_nanos() as u64),
                    micros(p99.as_nanos() as u64),
                    micros(snapshot.max().as_nanos() as u64),
                    snapshot.count()
                ),
                Status::of_bool(p99 <= Duration::from_micros(TARGET_P99_US)),
            ),
            _ => ("no samples".to_owned(), Status::Broken),
        };
        table.push(figure, case, text, "p99 ≤ 0.5 ms at 200 calls", status);
    }
    for (figure, key, case) in [
        (
            "End-to-end latency (peer-observed), caller frame → OpenAI",
            "up",
            "fake caller send → fake OpenAI receive: bridge + 2 loopback hops + peers' lag",
        ),
        (
            "End-to-end latency (peer-observed), OpenAI audio → caller frame",
            "down",
            "fake OpenAI send → fake caller receive: bridge + 2 loopback hops + peers' lag",
        ),
    ] {
        let q = |name: &str| result[key][name].as_u64().map(|us| micros(us * 1_000));
        let n = result[key]["n"].as_u64().unwrap_or(0);
        let text = match (q("p50"), q("p99"), q("max")) {
            (Some(p50), Some(p99), Some(max)) => {
                format!("p50 {p50}, p99 {p99}, max {max} ({n} frames)")
            }
            _ => "no samples".to_owned(),
        };
        table.push(
            figure,
            case,
            text,
            "— (the server rows are judged)",
            Status::Info,
        );
    }
    let dropped = number("dropped");
    let completed = number("completed");
    table.push(
        "Calls dropped",
        "not completed as scripted (refused, closed early, not connected)",
        format!(
            "{dropped} of {calls} ({completed} completed; {active_at_end} still up at the end)"
        ),
        "0",
        Status::of_bool(dropped == 0 && completed == calls),
    );
    table
}

impl Status {
    fn of_bool(met: bool) -> Status {
        if met { Status::Met } else { Status::NotMet }
    }
}

// ---------------------------------------------------------------------------------------------
// The child: fake OpenAI and fake callers.

/// What the peers measured, shared by their tasks.
#[derive(Debug, Default)]
struct Peers {
    /// Caller send → fake OpenAI receive, µs.
    up: Vec<u64>,
    /// Fake OpenAI send → caller receive, µs.
    down: Vec<u64>,
    down_late: u64,
    completed: u64,
    dropped: u64,
    reasons: Vec<String>,
}

type Shared = Arc<Mutex<Peers>>;

fn lock(peers: &Shared) -> std::sync::MutexGuard<'_, Peers> {
    peers.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the fakes for the parent; prints `openai PORT`, waits for `server PORT`, runs the
/// callers and prints the result as one JSON line.
pub(crate) fn run_peers(calls: u64, seconds: u64, ramp: u64) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("barbara-bench peers: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(peers(calls, seconds, ramp)) {
        Ok(result) => {
            println!("{result}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("barbara-bench peers: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn peers(calls: u64, seconds: u64, ramp: u64) -> Result<serde_json::Value, String> {
    let origin = Instant::now();
    let shared: Shared = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let openai_port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let script = conversation(Shape::WsPcmu, 1, seconds).openai;
    let accepting = {
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_openai(stream, script.clone(), shared.clone(), origin));
            }
        })
    };
    println!("openai {openai_port}");
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let port = line
        .strip_prefix("server ")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .ok_or_else(|| format!("the server said {line:?}"))?;
    let limit = Duration::from_secs(ramp + seconds + 30);
    let started = sample();
    let mut tasks = Vec::new();
    for i in 0..calls {
        let delay = Duration::from_millis(ramp * 1_000 * i / calls.max(1));
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let outcome = caller(i, port, seconds, &shared, origin, limit).await;
            let mut peers = lock(&shared);
            match outcome {
                Ok(()) => peers.completed += 1,
                Err(why) => {
                    peers.dropped += 1;
                    peers.reasons.push(format!("call {i}: {why}"));
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    accepting.abort();
    let cpu = cpu_percent(&started, &sample());
    let mut peers = lock(&shared);
    for reason in peers.reasons.iter().take(5) {
        eprintln!("barbara-bench peers: dropped {reason}");
    }
    peers.up.sort_unstable();
    peers.down.sort_unstable();
    let summary = |v: &[u64]| {
        serde_json::json!({
            "n": v.len(),
            "p50": quantile(v, 0.5),
            "p99": quantile(v, 0.99),
            "max": v.last(),
        })
    };
    Ok(serde_json::json!({
        "completed": peers.completed,
        "dropped": peers.dropped,
        "up": summary(&peers.up),
        "down": summary(&peers.down),
        "down_frames": peers.down.len(),
        "down_late": peers.down_late,
        "cpu_percent": cpu,
    }))
}

/// Microseconds since `origin`.
fn stamp_now(origin: Instant) -> u64 {
    origin.elapsed().as_micros() as u64
}

/// Writes `us` as a stamp at the start of every 20 ms frame of μ-law `audio`.
fn stamp(audio: &mut [u8], us: u64) {
    for frame in audio.chunks_mut(FRAME) {
        if frame.len() < STAMP_LEN {
            continue;
        }
        frame[..4].copy_from_slice(&MARKER);
        for (i, byte) in frame[4..STAMP_LEN].iter_mut().enumerate() {
            let nibble = (us >> (4 * (11 - i))) & 0xf;
            *byte = 0xf0 | nibble as u8;
        }
    }
}

/// Every stamp found in `audio`.
fn stamps(audio: &[u8]) -> Vec<u64> {
    let mut found = Vec::new();
    let mut i = 0;
    while i + STAMP_LEN <= audio.len() {
        if audio[i..i + 4] == MARKER {
            let digits = &audio[i + 4..i + STAMP_LEN];
            if digits.iter().all(|b| b & 0xf0 == 0xf0) {
                let us = digits
                    .iter()
                    .fold(0u64, |acc, b| (acc << 4) | u64::from(b & 0xf));
                found.push(us);
                i += STAMP_LEN;
                continue;
            }
        }
        i += 1;
    }
    found
}

/// The base64 string value of `"key":"…"` in `text`: its byte range.
fn b64_range(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    let start = text.find(key)? + key.len();
    let len = text[start..].find('"')?;
    Some(start..start + len)
}

/// Replaces the base64 at `range` of `text` with `audio`, stamped now.
fn restamp(text: &str, range: std::ops::Range<usize>, origin: Instant) -> Option<String> {
    let mut audio = BASE64.decode(&text[range.clone()]).ok()?;
    stamp(&mut audio, stamp_now(origin));
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..range.start]);
    BASE64.encode_string(&audio, &mut out);
    out.push_str(&text[range.end..]);
    Some(out)
}

/// Reads the stamps in the base64 at `range` of `text`: latencies in µs.
fn latencies(text: &str, range: std::ops::Range<usize>, origin: Instant) -> Vec<u64> {
    let now = stamp_now(origin);
    BASE64
        .decode(&text[range])
        .map(|audio| {
            stamps(&audio)
                .into_iter()
                .map(|at| now.saturating_sub(at))
                .collect()
        })
        .unwrap_or_default()
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// One fake OpenAI Realtime session (`FakeRealtime` on a real socket), stamping its audio.
async fn serve_openai(stream: TcpStream, script: RealtimeScript, shared: Shared, origin: Instant) {
    let mut fake = FakeRealtime::new(script);
    let mut refused = false;
    // tungstenite's callback shape.
    #[allow(clippy::result_large_err)]
    let handshake = |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                     response| {
        let host = request.headers().get("host").and_then(|h| h.to_str().ok());
        let url = format!("ws://{}{}", host.unwrap_or("localhost"), request.uri());
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
            .collect();
        refused = fake.handle_connect(Instant::now(), &url, &headers).is_err();
        Ok(response)
    };
    let accepted =
        tokio_tungstenite::accept_hdr_async_with_config(stream, handshake, Some(peer_websocket()));
    let Ok(mut socket) = accepted.await else {
        return;
    };
    if refused {
        let _ = socket.close(None).await;
        return;
    }
    'session: loop {
        while let Some(output) = fake.poll_output() {
            match output {
                FakeServerOutput::Text(text) => {
                    let text = match b64_range(&text, "\"delta\":\"") {
                        Some(range) if text.contains("\"response.output_audio.delta\"") => {
                            restamp(&text, range, origin).unwrap_or(text)
                        }
                        Some(_) | None => text,
                    };
                    if socket.send(Message::text(text)).await.is_err() {
                        break 'session;
                    }
                }
                FakeServerOutput::Close { .. } => {
                    let _ = socket.close(None).await;
                    break 'session;
                }
            }
        }
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if text.contains("\"input_audio_buffer.append\"")
                        && let Some(range) = b64_range(&text, "\"audio\":\"")
                    {
                        let found = latencies(&text, range, origin);
                        lock(&shared).up.extend(found);
                    }
                    fake.handle_text(Instant::now(), &text);
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    fake.handle_closed(Instant::now());
                    break 'session;
                }
                Some(Ok(_)) => {}
            },
            () = sleep_until(fake.poll_timeout()) => fake.handle_timeout(Instant::now()),
        }
    }
}

/// One fake SignalWire call: the cXML webhook for a stream token, then the media stream,
/// stamping what it sends and reading the stamps of what it hears.
async fn caller(
    i: u64,
    port: u16,
    seconds: u64,
    shared: &Shared,
    origin: Instant,
    limit: Duration,
) -> Result<(), String> {
    let call_sid = format!("CAbench{i:026}");
    let url = format!("http://127.0.0.1:{port}/incoming-call");
    let form = format!("CallSid={call_sid}&From=%2B1555000{i:04}&To=%2B15559990000");
    let cxml = barbara_tokio::fakes::post_form(&url, &form).await?;
    let mut script = conversation(Shape::WsPcmu, i, seconds).caller;
    script.call_sid = call_sid;
    script.stream_sid = format!("MZbench{i:026}");
    for parameter in cxml.split("<Parameter name=\"").skip(1) {
        let mut parts = parameter.split('"');
        if let (Some(name), Some(value)) = (parts.next(), parts.nth(1)) {
            script
                .custom_parameters
                .push((name.to_owned(), value.to_owned()));
        }
    }
    let url = format!("ws://127.0.0.1:{port}/media-stream");
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(url.as_str(), Some(peer_websocket()), true)
            .await
            .map_err(|e| format!("cannot open the media stream: {e}"))?;
    let mut fake = FakeCaller::new(script, Instant::now());
    let end = tokio::time::Instant::now() + limit;
    let mut late = 0u64;
    let mut heard = Vec::new();
    let result = loop {
        while let Some(output) = fake.poll_output() {
            let sent = match output {
                CallerOutput::Text(text) => {
                    let text = match b64_range(&text, "\"payload\":\"") {
                        Some(range) if text.starts_with("{\"event\":\"media\"") => {
                            restamp(&text, range, origin).unwrap_or(text)
                        }
                        Some(_) | None => text,
                    };
                    socket.send(Message::text(text)).await
                }
                CallerOutput::Close => socket.close(None).await,
            };
            if sent.is_err() {
                fake.handle_closed(Instant::now());
            }
        }
        if fake.is_closed() {
            break Ok(());
        }
        tokio::select! {
            message = socket.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if text.starts_with("{\"event\":\"media\"")
                        && let Some(range) = b64_range(&text, "\"payload\":\"")
                    {
                        for us in latencies(&text, range, origin) {
                            late += u64::from(us > LATE_US);
                            heard.push(us);
                        }
                    }
                    fake.handle_text(Instant::now(), &text);
                }
                Some(Ok(Message::Binary(data))) => fake.handle_binary(Instant::now(), &data),
                Some(Ok(Message::Close(_)) | Err(_)) | None => fake.handle_closed(Instant::now()),
                Some(Ok(_)) => {}
            },
            () = sleep_until(fake.poll_timeout()) => fake.handle_timeout(Instant::now()),
            () = tokio::time::sleep_until(end) => break Err("still running at the time limit".to_owned()),
        }
    };
    {
        let mut peers = lock(shared);
        peers.down.extend(heard);
        peers.down_late += late;
    }
    result?;
    let report = fake.report();
    if !report.sent_stop {
        return Err(format!(
            "the bridge closed the stream at {:?}",
            report.closed_at
        ));
    }
    if report.heard_speech_ms() == 0 {
        return Err("the caller heard no speech".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_back_from_frames() {
        let mut audio = vec![0xffu8; FRAME * 3 + 10];
        stamp(&mut audio, 0x1234_5678_9abc);
        assert_eq!(stamps(&audio), vec![0x1234_5678_9abc; 3]);
        // A frame shorter than a stamp is left alone, and silence has none.
        assert!(stamps(&[0xffu8; FRAME]).is_empty());
    }
}
