//! The bench's probe: it reads the clock around every call the simulation makes into a `Call`,
//! sums the time spent inside, tracks the core time from an audio input to the output that
//! carries its bytes on, and tells the allocator when the thread is inside the core.
//!
//! The state is thread-local: the closure handed to `Sim::with_probe` captures nothing.

use std::cell::RefCell;
use std::time::Instant;

use barbara_core::sim::driver::{Probe, ProbeCall, ProbeEvent};
use barbara_core::{Event, Leg, Output};

use crate::alloc;

/// Which audio path an input starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// Caller media frame: ends at the first Send to the model or Transmit.
    Up,
    /// Model audio delta: ends at the first media frame to the caller.
    Down,
    /// An RTP packet from the model: ends at the first media frame to the caller when the
    /// playout sends one at once; else its cost is kept for the tick that sends it on.
    Rtp,
    /// A timer: ends at the first media frame to the caller, if any (a WebRTC playout tick).
    Tick,
}

#[derive(Debug, Default)]
struct State {
    /// Clock overhead per measured interval, subtracted.
    overhead_ns: u64,
    entered: Option<Instant>,
    /// Time inside the core, all entries.
    inside_ns: u64,
    /// Calls into the core.
    entries: u64,
    /// The input being followed and its core time so far.
    tracking: Option<(Path, u64)>,
    /// Core time of the latest RTP input, for the tick that plays it.
    last_rtp_ns: u64,
    up: Vec<u64>,
    down: Vec<u64>,
    /// The entry being timed, and time and count per kind of entry.
    kind: usize,
    by_kind: [(u64, u64); KINDS.len()],
}

/// Kinds of entry, for the breakdown.
pub(crate) const KINDS: [&str; 9] = [
    "new",
    "phone media",
    "phone other",
    "model audio",
    "model other",
    "udp",
    "timeout",
    "other input",
    "poll_output/poll_timeout",
];

fn kind(call: ProbeCall<'_>) -> usize {
    match call {
        ProbeCall::New => 0,
        ProbeCall::PhoneText(text) if text.contains("\"event\":\"media\"") => 1,
        ProbeCall::PhoneText(_) => 2,
        ProbeCall::ModelText(text) if text.contains("output_audio.delta\"") => 3,
        ProbeCall::ModelText(_) => 4,
        ProbeCall::Udp(_) => 5,
        ProbeCall::Timeout => 6,
        ProbeCall::Other => 7,
        ProbeCall::PollOutput | ProbeCall::PollTimeout => 8,
    }
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Measures what one interval between two clock reads costs, so it can be subtracted.
pub(crate) fn calibrate() -> u64 {
    let rounds = 200_000u32;
    let mut best = u64::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let mut sum = 0u64;
        for _ in 0..rounds {
            let a = Instant::now();
            let b = Instant::now();
            sum += (b - a).as_nanos() as u64;
        }
        std::hint::black_box(start);
        best = best.min(sum / u64::from(rounds));
    }
    best
}

/// Clears the figures (not the calibration).
pub(crate) fn reset(overhead_ns: u64) {
    STATE.with(|s| {
        *s.borrow_mut() = State {
            overhead_ns,
            ..State::default()
        }
    });
}

/// What the probe measured since the last reset.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    pub(crate) inside_ns: u64,
    pub(crate) entries: u64,
    /// Core time from a caller frame to its bytes leaving toward OpenAI, ns.
    pub(crate) up: Vec<u64>,
    /// Core time from model audio to the caller frame carrying it, ns.
    pub(crate) down: Vec<u64>,
    /// Core time and calls per kind of entry ([`KINDS`]).
    pub(crate) by_kind: [(u64, u64); KINDS.len()],
}

/// Takes the figures.
pub(crate) fn take() -> Figures {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        Figures {
            inside_ns: s.inside_ns,
            entries: s.entries,
            up: std::mem::take(&mut s.up),
            down: std::mem::take(&mut s.down),
            by_kind: s.by_kind,
        }
    })
}

/// The probe for `Sim::with_probe`.
pub(crate) fn probe() -> Probe {
    Box::new(on_event)
}

fn on_event(event: ProbeEvent<'_>) {
    match event {
        ProbeEvent::Enter(call) => {
            STATE.with(|s| enter(&mut s.borrow_mut(), call));
            alloc::set_inside(true);
            let now = Instant::now();
            STATE.with(|s| s.borrow_mut().entered = Some(now));
        }
        ProbeEvent::Leave(output) => {
            let now = Instant::now();
            alloc::set_inside(false);
            if let Some(output) = output {
                untag_output(output);
            }
            STATE.with(|s| leave(&mut s.borrow_mut(), now, output));
        }
    }
}

fn enter(s: &mut State, call: ProbeCall<'_>) {
    s.kind = kind(call);
    let path = match call {
        ProbeCall::PollOutput | ProbeCall::PollTimeout => return,
        ProbeCall::PhoneText(text) if text.contains("\"event\":\"media\"") => Some(Path::Up),
        ProbeCall::ModelText(text)
            if text.contains("\"response.output_audio.delta\"")
                || text.contains("\"session.output_audio.delta\"") =>
        {
            Some(Path::Down)
        }
        ProbeCall::Udp(datagram) if is_rtp(datagram) => Some(Path::Rtp),
        ProbeCall::Timeout => Some(Path::Tick),
        ProbeCall::New
        | ProbeCall::PhoneText(_)
        | ProbeCall::ModelText(_)
        | ProbeCall::Udp(_)
        | ProbeCall::Other => None,
    };
    s.tracking = path.map(|p| (p, 0));
}

fn leave(s: &mut State, now: Instant, output: Option<&Output>) {
    let Some(entered) = s.entered.take() else {
        return;
    };
    let ns = ((now - entered).as_nanos() as u64).saturating_sub(s.overhead_ns);
    s.inside_ns += ns;
    s.entries += 1;
    s.by_kind[s.kind].0 += ns;
    s.by_kind[s.kind].1 += 1;
    let Some((path, so_far)) = s.tracking.as_mut() else {
        return;
    };
    *so_far += ns;
    let (path, so_far) = (*path, *so_far);
    match (path, output) {
        (Path::Rtp, None) => s.last_rtp_ns = so_far,
        (
            Path::Rtp,
            Some(Output::Send {
                leg: Leg::Phone,
                text,
            }),
        ) if is_media(text) => {
            s.down.push(so_far);
            s.last_rtp_ns = 0;
            s.tracking = None;
        }
        (
            Path::Up,
            Some(
                Output::Send {
                    leg: Leg::Model, ..
                }
                | Output::Transmit(_),
            ),
        ) => {
            s.up.push(so_far);
            s.tracking = None;
        }
        (
            Path::Down,
            Some(Output::Send {
                leg: Leg::Phone,
                text,
            }),
        ) if is_media(text) => {
            s.down.push(so_far);
            s.tracking = None;
        }
        (
            Path::Tick,
            Some(Output::Send {
                leg: Leg::Phone,
                text,
            }),
        ) if is_media(text) => {
            s.down.push(so_far + s.last_rtp_ns);
            s.tracking = None;
        }
        _ => {}
    }
}

fn is_media(text: &str) -> bool {
    text.starts_with("{\"event\":\"media\"")
}

/// RTP (not RTCP, STUN or DTLS): version 2 and a payload type outside RTCP's 200–207.
fn is_rtp(datagram: &[u8]) -> bool {
    datagram.len() >= 12 && datagram[0] >> 6 == 2 && !(200..=207).contains(&datagram[1])
}

/// The buffers of an output leave the core: stop counting them as the call's.
fn untag_output(output: &Output) {
    let mut bufs = Bufs::default();
    match output {
        Output::Send { text, .. } => bufs.owned(text),
        Output::Transmit(t) => bufs.vec(&t.contents),
        Output::Connect(request) => bufs.headers(&request.url, &request.headers),
        Output::Http { request, .. } => {
            bufs.headers(&request.url, &request.headers);
            bufs.vec(&request.body);
        }
        Output::Event(event) => bufs.event(event),
        // Tool calls keep their few small strings counted (none in the benchmark's calls).
        Output::Close { .. } | Output::ToolCall(_) => {}
    }
    for (ptr, capacity) in bufs.0 {
        if capacity > 0 {
            // SAFETY: a live String's or Vec's heap buffer (capacity > 0) is the start of a
            // block from the global allocator, which is `alloc::Counting`.
            unsafe { alloc::untag(ptr) };
        }
    }
}

/// Heap buffers of one output: (start, capacity).
#[derive(Default)]
struct Bufs(Vec<(*const u8, usize)>);

impl Bufs {
    fn owned(&mut self, s: &String) {
        self.0.push((s.as_ptr(), s.capacity()));
    }

    fn vec<T>(&mut self, v: &Vec<T>) {
        self.0
            .push((v.as_ptr().cast(), v.capacity() * std::mem::size_of::<T>()));
    }

    fn headers(&mut self, url: &String, headers: &Vec<(String, String)>) {
        self.owned(url);
        for (k, v) in headers {
            self.owned(k);
            self.owned(v);
        }
        self.vec(headers);
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::StreamStarted {
                stream_sid,
                call_sid,
                ..
            } => {
                self.owned(stream_sid);
                if let Some(sid) = call_sid {
                    self.owned(sid);
                }
            }
            Event::Fallback { reason, .. } | Event::ModelSessionClosed { reason, .. } => {
                self.owned(reason)
            }
            Event::BargeIn {
                item_id: Some(id), ..
            } => self.owned(id),
            Event::Transcript { text, .. } => self.owned(text),
            Event::ToolResultIgnored { id } => self.owned(id),
            Event::DtmfSent { digits } => self.owned(digits),
            Event::ModelError { code, message, .. } => {
                self.owned(message);
                if let Some(code) = code {
                    self.owned(code);
                }
            }
            _ => {}
        }
    }
}
