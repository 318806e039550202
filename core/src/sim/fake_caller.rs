//! A fake SignalWire: the WebSocket client side of a `<Connect><Stream>` bidirectional media
//! stream, scripted and driven on a virtual clock.
//!
//! It sends the documented inbound messages (`connected`, `start`, a `media` frame every 20 ms,
//! `dtmf`, `stop`), plays back what the bridge sends through a FIFO like SignalWire's playout
//! queue, echoes marks once the audio queued before them has played, and records every departure
//! from the documented outbound shapes as a violation instead of failing. It builds and reads the
//! JSON itself, so a bug in the bridge's parser cannot hide behind the same bug here.
//!
//! Time model: `t = 0` is the `Instant` given to [`FakeCaller::new`] (the socket just opened).
//! Sending and playback share one 20 ms tick, aligned with the media clock. Every input first
//! runs whatever was due up to its `now`, so a driver that skips a `handle_timeout` still gets
//! the same trace.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::audio::{ByteOrder, FRAME_MS, PhoneCodec, g711, l16};
use crate::sim::speech::{rms, speech_like};

/// The cadence of both the media clock and playback.
const FRAME: Duration = Duration::from_millis(FRAME_MS as u64);
/// A played frame louder than this counts as heard speech (on the i16 scale).
const SPEECH_RMS: f32 = 300.0;
/// Playback queue cap, so a runaway bridge cannot exhaust memory in a fuzz run.
const MAX_QUEUED: Duration = Duration::from_secs(300);
/// Cap on marks waiting in the playback queue, for the same reason.
const MAX_PENDING_MARKS: usize = 10_000;
/// Cap on recorded violations; one more entry says that the rest were dropped.
const MAX_VIOLATIONS: usize = 1000;
/// `dtmf.duration` in SignalWire's messages, in ms.
const DTMF_DURATION_MS: u64 = 160;
/// Digits a bridge may send in an outbound `dtmf`.
const DTMF_DIGITS: &str = "0123456789*#ABCD";

/// Which dialect of the media-stream protocol the fake speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WireShape {
    /// SignalWire as documented: no top-level `streamSid` on `start`, `media` or `stop`,
    /// `dtmf.duration`, `version` "0.2.0"; the bridge may send `dtmf`.
    #[default]
    SignalWire,
    /// Twilio Media Streams: top-level `streamSid` on `start`, `media` and `stop`,
    /// `stop.{accountSid, callSid}`, `dtmf.track` without a duration, `version` "1.0.0",
    /// `sequenceNumber` on mark echoes; the bridge may not send `dtmf`.
    Twilio,
}

/// How the caller's side ends the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupStyle {
    /// Send `stop`, then close the socket.
    Stop,
    /// Close the socket without `stop`, which SignalWire is known to do.
    CloseWithoutStop,
}

/// A stretch of caller speech, in times since the stream's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utterance {
    /// When the caller starts speaking.
    pub start: Duration,
    /// How long the caller speaks.
    pub duration: Duration,
}

/// What the fake caller does, and when. All times are since the stream's start.
#[derive(Debug, Clone, PartialEq)]
pub struct CallerScript {
    /// Codec announced in `start.mediaFormat` and used both ways.
    pub codec: PhoneCodec,
    /// Byte order of L16 audio, both ways.
    pub byte_order: ByteOrder,
    /// Dialect of the wire format.
    pub shape: WireShape,
    /// `start.streamSid`; the bridge must send it back on every message.
    pub stream_sid: String,
    /// `start.callSid`.
    pub call_sid: String,
    /// `start.accountSid`.
    pub account_sid: String,
    /// `start.customParameters`, in order (a repeated name keeps its last value).
    pub custom_parameters: Vec<(String, String)>,
    /// When the caller speaks; the rest of the time the caller sends digital silence.
    pub utterances: Vec<Utterance>,
    /// Keypad digits the caller presses.
    pub dtmf: Vec<(Duration, char)>,
    /// When and how the caller hangs up; `None` streams forever.
    pub hangup: Option<(Duration, HangupStyle)>,
    /// Extra frames sent verbatim, for malformed-input tests.
    pub raw_messages: Vec<(Duration, String)>,
    /// Gap between `start` and the first `media`.
    pub media_start_delay: Duration,
    /// Keep every audio byte sent in [`CallerReport::sent_audio`].
    pub record_sent_audio: bool,
}

impl Default for CallerScript {
    /// PCMU, SignalWire shape, fixed UUID-like ids, nothing scripted.
    fn default() -> Self {
        CallerScript {
            codec: PhoneCodec::Pcmu,
            byte_order: ByteOrder::Little,
            shape: WireShape::SignalWire,
            stream_sid: "3f6c1e2a-8d4b-4f0e-9a71-5c2d8e6b1a40".to_owned(),
            call_sid: "a7e2c9d1-0b5f-4c3a-8e16-72f4d9b0c385".to_owned(),
            account_sid: "c1d8f3b6-4a2e-47d9-b05c-e9a6173f2d84".to_owned(),
            custom_parameters: Vec::new(),
            utterances: Vec::new(),
            dtmf: Vec::new(),
            hangup: None,
            raw_messages: Vec::new(),
            media_start_delay: Duration::ZERO,
            record_sent_audio: false,
        }
    }
}

/// Something the fake caller asks the driver to do on the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerOutput {
    /// Send this text frame to the bridge.
    Text(String),
    /// Close the socket; nothing follows.
    Close,
}

/// One stretch of audio the caller heard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeardFrame {
    /// When it finished playing, since the stream's start.
    pub at: Duration,
    /// How long it played, rounded to the nearest ms (at most 20).
    pub ms: u32,
    /// RMS of the decoded samples, on the i16 scale.
    pub rms: f32,
}

/// What the fake caller observed. Times are since the stream's start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallerReport {
    /// Audio played to the caller, in order.
    pub heard: Vec<HeardFrame>,
    /// Mark echoes sent, with when.
    pub marks_echoed: Vec<(Duration, String)>,
    /// When each valid `clear` arrived.
    pub clears: Vec<Duration>,
    /// Valid outbound `dtmf` digits, with when they arrived.
    pub dtmf_received: Vec<(Duration, char)>,
    /// Every departure from the documented outbound protocol, human-readable.
    pub violations: Vec<String>,
    /// `media` frames sent.
    pub frames_sent: u64,
    /// Whether `stop` was sent.
    pub sent_stop: bool,
    /// When the socket closed, by either side.
    pub closed_at: Option<Duration>,
    /// Frames the bridge sent after `stop` or after the close.
    pub received_after_close: u32,
    /// Audio bytes sent, if [`CallerScript::record_sent_audio`].
    pub sent_audio: Vec<u8>,
}

impl CallerReport {
    /// Milliseconds of played audio in frames louder than the speech threshold (RMS 300).
    pub fn heard_speech_ms(&self) -> u32 {
        self.speech().map(|f| f.ms).sum()
    }

    /// When the first frame of heard speech finished playing; `None` if none was heard.
    pub fn first_heard_speech(&self) -> Option<Duration> {
        self.speech().next().map(|f| f.at)
    }

    /// When the last frame of heard speech finished playing; `None` if none was heard.
    pub fn last_heard_speech(&self) -> Option<Duration> {
        self.speech().last().map(|f| f.at)
    }

    fn speech(&self) -> impl DoubleEndedIterator<Item = &HeardFrame> {
        self.heard.iter().filter(|f| f.rms > SPEECH_RMS)
    }
}

/// An entry of the playback FIFO.
#[derive(Debug)]
enum Queued {
    /// Audio bytes, of which `read` have already been taken into frames.
    Audio {
        data: Vec<u8>,
        read: usize,
    },
    Mark(String),
}

/// The frame on the loudspeaker right now.
#[derive(Debug)]
struct Playing {
    started: Duration,
    ends: Duration,
    samples: Vec<i16>,
    /// Marks that sat between this frame's bytes, with when their audio is done.
    marks: VecDeque<(Duration, String)>,
}

impl Playing {
    fn next_due(&self) -> Duration {
        self.marks.front().map_or(self.ends, |(due, _)| *due)
    }
}

/// Scheduled work; the order breaks ties at one instant: playback finishes before a tick
/// starts the next frame, and the hang-up goes last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Playback,
    Tick,
    Dtmf,
    Raw,
    Hangup,
}

/// A valid command from the bridge.
#[derive(Debug)]
enum Command {
    Media(Vec<u8>),
    Mark(String),
    Clear,
    Dtmf(char),
}

/// Sans-IO fake of SignalWire's side of a bidirectional media stream.
///
/// Drive it like the core: after any input drain [`FakeCaller::poll_output`], then read
/// [`FakeCaller::poll_timeout`].
#[derive(Debug)]
pub struct FakeCaller {
    script: CallerScript,
    origin: Instant,
    /// The latest `now` seen, since `origin`; older ones are clamped to it.
    latest: Duration,
    /// The last `sequenceNumber` used.
    seq: u64,
    /// The last `media.chunk` used.
    chunk: u64,
    next_tick: Duration,
    next_dtmf: usize,
    next_raw: usize,
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    queued_marks: usize,
    playing: Option<Playing>,
    out: VecDeque<CallerOutput>,
    closed: bool,
    report: CallerReport,
    /// Scratch samples for outgoing frames.
    frame: Vec<i16>,
}

impl FakeCaller {
    /// Opens the stream at `now` (`t = 0`): `connected` and `start` are ready to poll at once.
    pub fn new(mut script: CallerScript, now: Instant) -> Self {
        // Stable sorts keep the script's order for events at the same instant.
        script.dtmf.sort_by_key(|(at, _)| *at);
        script.raw_messages.sort_by_key(|(at, _)| *at);
        let phase = script.media_start_delay.as_nanos() % FRAME.as_nanos();
        let mut caller = FakeCaller {
            script,
            origin: now,
            latest: Duration::ZERO,
            seq: 0,
            chunk: 0,
            next_tick: Duration::from_nanos(u64::try_from(phase).unwrap_or(0)),
            next_dtmf: 0,
            next_raw: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
            queued_marks: 0,
            playing: None,
            out: VecDeque::new(),
            closed: false,
            report: CallerReport::default(),
            frame: Vec::new(),
        };
        caller.send_connected();
        caller.send_start();
        caller.advance(Duration::ZERO);
        caller
    }

    /// A text frame from the bridge arrived at `now`.
    pub fn handle_text(&mut self, now: Instant, text: &str) {
        let at = self.catch_up(now);
        if self.ended(at, || format!("text frame {}", preview(text))) {
            return;
        }
        match self.parse(text) {
            Ok(command) => self.apply(at, command),
            Err(problem) => self.violation(at, problem),
        }
    }

    /// A binary frame from the bridge arrived at `now`; the protocol allows only text.
    pub fn handle_binary(&mut self, now: Instant, data: &[u8]) {
        let at = self.catch_up(now);
        let describe = || format!("binary frame of {} bytes", data.len());
        if !self.ended(at, describe) {
            self.violation(at, format!("{}: only text frames are allowed", describe()));
        }
    }

    /// The bridge closed the socket at `now`. Audio still queued is never heard and pending
    /// marks are not echoed.
    pub fn handle_closed(&mut self, now: Instant) {
        let at = self.catch_up(now);
        if !self.closed {
            self.cut_playback(at);
            self.drop_queue();
            self.closed = true;
            self.report.closed_at = Some(at);
        }
    }

    /// Runs everything due at or before `now`; a no-op before [`FakeCaller::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.catch_up(now);
    }

    /// When the next frame is sent or played, or a scripted event fires; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_due()
            .and_then(|(at, _)| self.origin.checked_add(at))
    }

    /// The next frame to send or the close, in order; `None` when drained.
    pub fn poll_output(&mut self) -> Option<CallerOutput> {
        self.out.pop_front()
    }

    /// Everything observed so far.
    pub fn report(&self) -> &CallerReport {
        &self.report
    }

    /// Whether the socket is closed, by either side.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Clamps `now`, runs everything due up to it, and returns it as time since the start.
    fn catch_up(&mut self, now: Instant) -> Duration {
        let at = now.saturating_duration_since(self.origin).max(self.latest);
        self.latest = at;
        self.advance(at);
        at
    }

    /// After `stop` or the close every frame is a violation; returns whether that was the case.
    fn ended(&mut self, at: Duration, describe: impl FnOnce() -> String) -> bool {
        if !self.closed && !self.report.sent_stop {
            return false;
        }
        self.report.received_after_close = self.report.received_after_close.saturating_add(1);
        let when = if self.closed { "the close" } else { "stop" };
        self.violation(at, format!("{} received after {when}", describe()));
        true
    }

    fn advance(&mut self, to: Duration) {
        while let Some((at, due)) = self.next_due() {
            if at > to {
                break;
            }
            match due {
                Due::Playback => self.finish_playback(at),
                Due::Tick => self.tick(at),
                Due::Dtmf => self.send_scripted_dtmf(),
                Due::Raw => self.send_raw(),
                Due::Hangup => self.hang_up(at),
            }
        }
    }

    fn next_due(&self) -> Option<(Duration, Due)> {
        if self.closed {
            return None;
        }
        let playback = self.playing.as_ref().map(|p| (p.next_due(), Due::Playback));
        let dtmf = self
            .script
            .dtmf
            .get(self.next_dtmf)
            .map(|(at, _)| (*at, Due::Dtmf));
        let raw = self
            .script
            .raw_messages
            .get(self.next_raw)
            .map(|(at, _)| (*at, Due::Raw));
        let hangup = self.script.hangup.map(|(at, _)| (at, Due::Hangup));
        [
            playback,
            Some((self.next_tick, Due::Tick)),
            dtmf,
            raw,
            hangup,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn next_seq(&mut self) -> String {
        self.seq += 1;
        self.seq.to_string()
    }

    fn send(&mut self, message: Value) {
        self.out.push_back(CallerOutput::Text(message.to_string()));
    }

    fn twilio(&self) -> bool {
        self.script.shape == WireShape::Twilio
    }

    fn send_connected(&mut self) {
        let version = if self.twilio() { "1.0.0" } else { "0.2.0" };
        self.send(json!({"event": "connected", "protocol": "Call", "version": version}));
    }

    fn send_start(&mut self) {
        let seq = self.next_seq();
        let script = &self.script;
        let parameters: Map<String, Value> = script
            .custom_parameters
            .iter()
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect();
        let encoding = match script.codec {
            PhoneCodec::Pcmu => "audio/x-mulaw",
            PhoneCodec::Pcma => "audio/x-alaw",
            PhoneCodec::L16 { .. } => "audio/x-L16",
        };
        let mut message = json!({
            "event": "start",
            "sequenceNumber": seq,
            "start": {
                "streamSid": script.stream_sid,
                "accountSid": script.account_sid,
                "callSid": script.call_sid,
                "tracks": ["inbound"],
                "customParameters": parameters,
                "mediaFormat": {
                    "encoding": encoding,
                    "sampleRate": script.codec.sample_rate(),
                    "channels": 1,
                },
            },
        });
        self.add_top_level_sid(&mut message);
        self.send(message);
    }

    /// Twilio repeats the stream id at the top level of `start`, `media` and `stop`.
    fn add_top_level_sid(&self, message: &mut Value) {
        if self.twilio() {
            message["streamSid"] = Value::String(self.script.stream_sid.clone());
        }
    }

    fn tick(&mut self, at: Duration) {
        if self.playing.is_none() {
            self.start_frame(at);
        }
        if at >= self.script.media_start_delay {
            self.send_media(at);
        }
        self.next_tick = at + FRAME;
    }

    fn send_media(&mut self, at: Duration) {
        let audio = self.caller_audio(at);
        if self.script.record_sent_audio {
            self.report.sent_audio.extend_from_slice(&audio);
        }
        let payload = BASE64.encode(audio);
        self.chunk += 1;
        let sequence_number = self.next_seq();
        let message = MediaMessage {
            event: "media",
            media: MediaBody {
                chunk: self.chunk.to_string(),
                payload: &payload,
                timestamp: at.as_millis().to_string(),
                track: "inbound",
            },
            sequence_number,
            stream_sid: self.twilio().then_some(self.script.stream_sid.as_str()),
        };
        // Typed, not a `Value`: fifty of these a second are most of a simulated call's JSON.
        if let Ok(text) = serde_json::to_string(&message) {
            self.out.push_back(CallerOutput::Text(text));
        }
        self.report.frames_sent += 1;
    }

    /// The caller's 20 ms starting at `at`: speech during utterances, digital silence otherwise.
    fn caller_audio(&mut self, at: Duration) -> Vec<u8> {
        let codec = self.script.codec;
        let rate = codec.sample_rate().max(1);
        let len = frame_samples(codec);
        let first = sample_at(at, rate);
        let last = first + len as u64;
        self.frame.clear();
        self.frame.resize(len, 0);
        for utterance in &self.script.utterances {
            let end = utterance.start.saturating_add(utterance.duration);
            let from = sample_at(utterance.start, rate).max(first);
            let to = sample_at(end, rate).min(last);
            if from < to {
                let range = (from - first) as usize..(to - first) as usize;
                speech_like(rate, 0, from, &mut self.frame[range]);
            }
        }
        let mut bytes = Vec::with_capacity(codec.frame_bytes());
        match codec {
            PhoneCodec::Pcmu => bytes.extend(self.frame.iter().map(|&s| g711::ulaw_encode(s))),
            PhoneCodec::Pcma => bytes.extend(self.frame.iter().map(|&s| g711::alaw_encode(s))),
            PhoneCodec::L16 { .. } => l16::encode(&self.frame, self.script.byte_order, &mut bytes),
        }
        bytes
    }

    fn send_scripted_dtmf(&mut self) {
        let Some(&(_, digit)) = self.script.dtmf.get(self.next_dtmf) else {
            return;
        };
        self.next_dtmf += 1;
        let dtmf = if self.twilio() {
            json!({"track": "inbound_track", "digit": digit.to_string()})
        } else {
            json!({"digit": digit.to_string(), "duration": DTMF_DURATION_MS})
        };
        let message = json!({
            "event": "dtmf",
            "sequenceNumber": self.next_seq(),
            "streamSid": self.script.stream_sid,
            "dtmf": dtmf,
        });
        self.send(message);
    }

    fn send_raw(&mut self) {
        if let Some((_, text)) = self.script.raw_messages.get(self.next_raw) {
            self.out.push_back(CallerOutput::Text(text.clone()));
        }
        self.next_raw += 1;
    }

    fn hang_up(&mut self, at: Duration) {
        let Some((_, style)) = self.script.hangup else {
            return;
        };
        self.cut_playback(at);
        self.drop_queue();
        if style == HangupStyle::Stop {
            let mut message = json!({"event": "stop", "sequenceNumber": self.next_seq()});
            if self.twilio() {
                message["stop"] = json!({
                    "accountSid": self.script.account_sid,
                    "callSid": self.script.call_sid,
                });
            }
            self.add_top_level_sid(&mut message);
            self.send(message);
            self.report.sent_stop = true;
        }
        self.out.push_back(CallerOutput::Close);
        self.closed = true;
        self.report.closed_at = Some(at);
    }

    fn echo_mark(&mut self, at: Duration, name: String) {
        let mut message = json!({
            "event": "mark",
            "streamSid": self.script.stream_sid,
            "mark": {"name": name},
        });
        if self.twilio() {
            message["sequenceNumber"] = Value::String(self.next_seq());
        }
        self.send(message);
        self.report.marks_echoed.push((at, name));
    }

    /// Echoes the marks at the head of the queue: no audio is ahead of them any more.
    fn echo_head_marks(&mut self, at: Duration) {
        while let Some(Queued::Mark(_)) = self.queue.front() {
            if let Some(Queued::Mark(name)) = self.queue.pop_front() {
                self.queued_marks -= 1;
                self.echo_mark(at, name);
            }
        }
    }

    /// Takes up to 20 ms of queued audio, with the marks between its bytes, onto the speaker.
    fn start_frame(&mut self, at: Duration) {
        let codec = self.script.codec;
        let want = codec.frame_bytes();
        let mut bytes = Vec::with_capacity(want);
        let mut marks = Vec::new();
        while bytes.len() < want {
            let Some(item) = self.queue.pop_front() else {
                break;
            };
            match item {
                Queued::Mark(name) => {
                    self.queued_marks -= 1;
                    marks.push((bytes.len(), name));
                }
                Queued::Audio { data, read } => {
                    let take = (want - bytes.len()).min(data.len() - read);
                    bytes.extend_from_slice(&data[read..read + take]);
                    if read + take < data.len() {
                        let read = read + take;
                        self.queue.push_front(Queued::Audio { data, read });
                    }
                }
            }
        }
        self.queued_bytes -= bytes.len();
        let rate = codec.sample_rate().max(1);
        let per_sample = bytes_per_sample(codec);
        let marks = marks
            .into_iter()
            .map(|(offset, name)| (at + span(offset / per_sample, rate), name))
            .collect();
        let mut samples = Vec::with_capacity(bytes.len() / per_sample);
        match codec {
            PhoneCodec::Pcmu => samples.extend(bytes.iter().map(|&b| g711::ulaw_decode(b))),
            PhoneCodec::Pcma => samples.extend(bytes.iter().map(|&b| g711::alaw_decode(b))),
            PhoneCodec::L16 { .. } => {
                // Cannot fail: queued payloads and frames are whole samples.
                let _ = l16::decode(&bytes, self.script.byte_order, &mut samples);
            }
        }
        let ends = at + span(samples.len(), rate);
        self.playing = Some(Playing {
            started: at,
            ends,
            samples,
            marks,
        });
        // An empty frame (only marks were queued) finishes at once.
        self.finish_playback(at);
    }

    /// Echoes the marks whose audio has played by `at`, and retires the frame if it is done.
    fn finish_playback(&mut self, at: Duration) {
        let Some(mut playing) = self.playing.take() else {
            return;
        };
        while playing.marks.front().is_some_and(|(due, _)| *due <= at) {
            if let Some((due, name)) = playing.marks.pop_front() {
                self.echo_mark(due, name);
            }
        }
        if playing.ends > at {
            self.playing = Some(playing);
            return;
        }
        self.record_heard(playing.ends, &playing.samples);
        self.echo_head_marks(playing.ends);
    }

    /// Stops the speaker at `at` (clear or close): records what played so far and returns the
    /// marks of the frame that had not played yet.
    fn cut_playback(&mut self, at: Duration) -> VecDeque<(Duration, String)> {
        let Some(playing) = self.playing.take() else {
            return VecDeque::new();
        };
        let rate = self.script.codec.sample_rate().max(1);
        let played = sample_at(at.saturating_sub(playing.started), rate);
        let played = usize::try_from(played)
            .unwrap_or(usize::MAX)
            .min(playing.samples.len());
        if let Some(samples) = playing.samples.get(..played) {
            self.record_heard(at, samples);
        }
        playing.marks
    }

    fn record_heard(&mut self, at: Duration, samples: &[i16]) {
        if samples.is_empty() {
            return;
        }
        let rate = u64::from(self.script.codec.sample_rate().max(1));
        let ms = (samples.len() as u64 * 1000 + rate / 2) / rate;
        self.report.heard.push(HeardFrame {
            at,
            ms: u32::try_from(ms).unwrap_or(u32::MAX),
            rms: rms(samples),
        });
    }

    fn drop_queue(&mut self) {
        self.queue.clear();
        self.queued_bytes = 0;
        self.queued_marks = 0;
    }

    fn apply(&mut self, at: Duration, command: Command) {
        match command {
            Command::Media(data) => {
                let cap = self.script.codec.bytes_per_ms() * MAX_QUEUED.as_millis() as usize;
                if self.queued_bytes + data.len() > cap {
                    let secs = MAX_QUEUED.as_secs();
                    self.violation(at, format!("media: playback queue over {secs} s, dropped"));
                } else if !data.is_empty() {
                    // Played from the next tick on, even if the speaker is idle now.
                    self.queued_bytes += data.len();
                    self.queue.push_back(Queued::Audio { data, read: 0 });
                }
            }
            Command::Mark(name) => {
                if self.playing.is_none() && self.queue.is_empty() {
                    // SignalWire echoes at once "if no audio is queued".
                    self.echo_mark(at, name);
                } else if self.queued_marks >= MAX_PENDING_MARKS {
                    let cap = MAX_PENDING_MARKS;
                    self.violation(at, format!("mark: over {cap} marks pending, dropped"));
                } else {
                    self.queued_marks += 1;
                    self.queue.push_back(Queued::Mark(name));
                }
            }
            Command::Clear => {
                for (_, name) in self.cut_playback(at) {
                    self.echo_mark(at, name);
                }
                let queue = std::mem::take(&mut self.queue);
                self.drop_queue();
                for item in queue {
                    if let Queued::Mark(name) = item {
                        self.echo_mark(at, name);
                    }
                }
                self.report.clears.push(at);
            }
            Command::Dtmf(digit) => self.report.dtmf_received.push((at, digit)),
        }
    }

    /// Checks one frame against the documented outbound shapes (SignalWire's `<Stream>` docs,
    /// "Sending WebSocket messages"). A frame with any problem is reported and otherwise
    /// ignored, as Twilio does with error 31951.
    fn parse(&self, text: &str) -> Result<Command, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {}", preview(text)))?;
        let Value::Object(message) = value else {
            return Err(format!("not a JSON object: {}", preview(text)));
        };
        let event = match message.get("event") {
            Some(Value::String(event)) => event.as_str(),
            Some(_) => return Err(format!("`event` is not a string: {}", preview(text))),
            None => return Err(format!("no `event`: {}", preview(text))),
        };
        // Each event but `clear` has one body object holding exactly one string field.
        let body = match event {
            "media" => Some(("media", "payload")),
            "mark" => Some(("mark", "name")),
            "dtmf" => Some(("dtmf", "digit")),
            "clear" => None,
            other => return Err(format!("unsupported event `{other}`")),
        };
        let mut problems = Vec::new();
        match message.get("streamSid") {
            Some(Value::String(sid)) if *sid == self.script.stream_sid => {}
            Some(Value::String(sid)) => problems.push(format!(
                "streamSid `{sid}` is not `{}`",
                self.script.stream_sid
            )),
            Some(_) => problems.push("streamSid is not a string".to_owned()),
            None => problems.push("no streamSid".to_owned()),
        }
        for key in message.keys() {
            let known = key == "event" || key == "streamSid" || body.is_some_and(|(b, _)| b == key);
            if !known {
                problems.push(format!("unexpected field `{key}`"));
            }
        }
        let command = match body {
            None => Some(Command::Clear),
            Some((name, field)) => match self.parse_body(&message, name, field, &mut problems) {
                Ok(command) => Some(command),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            },
        };
        match command {
            Some(command) if problems.is_empty() => Ok(command),
            Some(_) | None => Err(format!("{event}: {}", problems.join("; "))),
        }
    }

    /// Reads `message.<name>.<field>`, the one string in the body, and checks its value.
    fn parse_body(
        &self,
        message: &Map<String, Value>,
        name: &str,
        field: &str,
        problems: &mut Vec<String>,
    ) -> Result<Command, String> {
        let body = match message.get(name) {
            Some(Value::Object(body)) => body,
            Some(_) => return Err(format!("`{name}` is not an object")),
            None => return Err(format!("no `{name}`")),
        };
        for key in body.keys() {
            if key != field {
                problems.push(format!("unexpected field `{name}.{key}`"));
            }
        }
        let value = match body.get(field) {
            Some(Value::String(value)) => value,
            Some(_) => return Err(format!("`{name}.{field}` is not a string")),
            None => return Err(format!("no `{name}.{field}`")),
        };
        match name {
            "media" => {
                let data = BASE64
                    .decode(value)
                    .map_err(|e| format!("payload is not base64 ({e})"))?;
                if data.len() % bytes_per_sample(self.script.codec) != 0 {
                    let len = data.len();
                    return Err(format!("payload of {len} bytes is not whole L16 samples"));
                }
                Ok(Command::Media(data))
            }
            "mark" => Ok(Command::Mark(value.clone())),
            _ => {
                if self.twilio() {
                    return Err("dtmf is SignalWire-only; Twilio rejects it".to_owned());
                }
                let mut chars = value.chars();
                match (chars.next(), chars.next()) {
                    (Some(digit), None) if DTMF_DIGITS.contains(digit) => Ok(Command::Dtmf(digit)),
                    _ => Err(format!("digit `{value}` is not one of 0-9 * # A-D")),
                }
            }
        }
    }

    fn violation(&mut self, at: Duration, problem: String) {
        let violations = &mut self.report.violations;
        if violations.len() < MAX_VIOLATIONS {
            violations.push(format!("at {:.3} s: {problem}", at.as_secs_f64()));
        } else if violations.len() == MAX_VIOLATIONS {
            violations.push(format!(
                "more than {MAX_VIOLATIONS} violations; the rest dropped"
            ));
        }
    }
}

fn bytes_per_sample(codec: PhoneCodec) -> usize {
    match codec {
        PhoneCodec::Pcmu | PhoneCodec::Pcma => 1,
        PhoneCodec::L16 { .. } => 2,
    }
}

fn frame_samples(codec: PhoneCodec) -> usize {
    codec.frame_bytes() / bytes_per_sample(codec)
}

/// Index of the sample playing at `at`.
fn sample_at(at: Duration, rate: u32) -> u64 {
    u64::try_from(at.as_nanos() * u128::from(rate) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// How long `samples` samples play.
fn span(samples: usize, rate: u32) -> Duration {
    let nanos = samples as u128 * 1_000_000_000 / u128::from(rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// The start of a frame, for violation messages.
fn preview(text: &str) -> String {
    const MAX: usize = 120;
    if text.chars().count() <= MAX {
        format!("`{text}`")
    } else {
        format!("`{}…`", text.chars().take(MAX).collect::<String>())
    }
}

/// An inbound `media` message as SignalWire writes it (keys in the order `json!` gives them).
#[derive(serde::Serialize)]
struct MediaMessage<'a> {
    event: &'static str,
    media: MediaBody<'a>,
    #[serde(rename = "sequenceNumber")]
    sequence_number: String,
    #[serde(rename = "streamSid", skip_serializing_if = "Option::is_none")]
    stream_sid: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct MediaBody<'a> {
    chunk: String,
    payload: &'a str,
    timestamp: String,
    track: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "3f6c1e2a-8d4b-4f0e-9a71-5c2d8e6b1a40";

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drives one fake on a virtual clock and keeps every output with when it was polled.
    struct Run {
        fake: FakeCaller,
        base: Instant,
        sent: Vec<(Duration, CallerOutput)>,
    }

    impl Run {
        fn new(script: CallerScript) -> Self {
            let base = crate::tests::origin();
            let mut run = Run {
                fake: FakeCaller::new(script, base),
                base,
                sent: Vec::new(),
            };
            run.drain(Duration::ZERO);
            run
        }

        fn drain(&mut self, at: Duration) {
            while let Some(output) = self.fake.poll_output() {
                self.sent.push((at, output));
            }
        }

        fn run_until(&mut self, end: Duration) {
            while let Some(deadline) = self.fake.poll_timeout() {
                if deadline > self.base + end {
                    break;
                }
                self.fake.handle_timeout(deadline);
                self.drain(deadline - self.base);
            }
        }

        fn text(&mut self, at: Duration, text: &str) {
            self.run_until(at);
            self.fake.handle_text(self.base + at, text);
            self.drain(at);
        }

        fn json(&self) -> Vec<(Duration, Value)> {
            self.sent
                .iter()
                .filter_map(|(at, output)| match output {
                    CallerOutput::Text(text) => Some((*at, serde_json::from_str(text).unwrap())),
                    CallerOutput::Close => None,
                })
                .collect()
        }

        fn events(&self, event: &str) -> Vec<(Duration, Value)> {
            let mut found = self.json();
            found.retain(|(_, v)| v["event"] == event);
            found
        }

        fn report(&self) -> &CallerReport {
            self.fake.report()
        }
    }

    fn media(payload: &[u8]) -> String {
        json!({"event": "media", "streamSid": SID, "media": {"payload": BASE64.encode(payload)}})
            .to_string()
    }

    fn mark(name: &str) -> String {
        json!({"event": "mark", "streamSid": SID, "mark": {"name": name}}).to_string()
    }

    fn clear() -> String {
        json!({"event": "clear", "streamSid": SID}).to_string()
    }

    fn speech_ulaw(samples: usize) -> Vec<u8> {
        let mut pcm = vec![0i16; samples];
        speech_like(8000, 1, 0, &mut pcm);
        pcm.into_iter().map(g711::ulaw_encode).collect()
    }

    fn keys(value: &Value) -> Vec<&str> {
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }

    #[test]
    fn sends_connected_start_then_media_every_20ms_for_every_codec() {
        let cases = [
            (PhoneCodec::Pcmu, "audio/x-mulaw", 8000, 160),
            (PhoneCodec::Pcma, "audio/x-alaw", 8000, 160),
            (
                PhoneCodec::L16 { rate_hz: 16000 },
                "audio/x-L16",
                16000,
                640,
            ),
            (
                PhoneCodec::L16 { rate_hz: 24000 },
                "audio/x-L16",
                24000,
                960,
            ),
        ];
        for (codec, encoding, rate, bytes) in cases {
            let script = CallerScript {
                codec,
                custom_parameters: vec![("session".into(), "s1".into())],
                ..CallerScript::default()
            };
            let mut run = Run::new(script);
            run.run_until(ms(60));
            let sent = run.json();
            assert_eq!(sent.len(), 6, "{codec:?}");
            let (at, connected) = &sent[0];
            assert_eq!(*at, Duration::ZERO);
            assert_eq!(
                *connected,
                json!({"event": "connected", "protocol": "Call", "version": "0.2.0"})
            );
            let start = &sent[1].1;
            assert_eq!(keys(start), ["event", "sequenceNumber", "start"]);
            assert_eq!(start["sequenceNumber"], "1");
            assert_eq!(start["start"]["streamSid"], SID);
            assert_eq!(start["start"]["tracks"], json!(["inbound"]));
            assert_eq!(start["start"]["customParameters"], json!({"session": "s1"}));
            assert_eq!(
                start["start"]["mediaFormat"],
                json!({"encoding": encoding, "sampleRate": rate, "channels": 1})
            );
            for (i, (at, m)) in sent[2..].iter().enumerate() {
                assert_eq!(*at, ms(20 * i as u64));
                assert_eq!(keys(m), ["event", "media", "sequenceNumber"]);
                assert_eq!(m["sequenceNumber"], (i + 2).to_string());
                assert_eq!(
                    keys(&m["media"]),
                    ["chunk", "payload", "timestamp", "track"]
                );
                assert_eq!(m["media"]["track"], "inbound");
                assert_eq!(m["media"]["chunk"], (i + 1).to_string());
                assert_eq!(m["media"]["timestamp"], (20 * i).to_string());
                let payload = BASE64
                    .decode(m["media"]["payload"].as_str().unwrap())
                    .unwrap();
                assert_eq!(payload.len(), bytes, "{codec:?}");
                // Nothing scripted: digital silence.
                assert!(
                    payload.iter().all(|&b| b == codec.silence_byte()),
                    "{codec:?}"
                );
            }
            assert_eq!(run.report().frames_sent, 4);
        }
    }

    #[test]
    fn twilio_shape_adds_top_level_stream_sid_and_version() {
        let script = CallerScript {
            shape: WireShape::Twilio,
            dtmf: vec![(ms(30), '7')],
            hangup: Some((ms(40), HangupStyle::Stop)),
            ..CallerScript::default()
        };
        let mut run = Run::new(script.clone());
        run.run_until(ms(100));
        let sent = run.json();
        assert_eq!(sent[0].1["version"], "1.0.0");
        let events: Vec<&str> = sent
            .iter()
            .map(|(_, v)| v["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            events,
            [
                "connected",
                "start",
                "media",
                "media",
                "dtmf",
                "media",
                "stop"
            ]
        );
        for (_, v) in &sent[1..] {
            assert_eq!(v["streamSid"], SID, "{v}");
        }
        assert_eq!(
            sent[4].1,
            json!({"event": "dtmf", "sequenceNumber": "4", "streamSid": SID,
                   "dtmf": {"track": "inbound_track", "digit": "7"}})
        );
        assert_eq!(
            sent[6].1,
            json!({"event": "stop", "sequenceNumber": "6", "streamSid": SID,
                   "stop": {"accountSid": script.account_sid, "callSid": script.call_sid}})
        );
        // Twilio's mark echoes carry a sequence number too.
        let mut run = Run::new(CallerScript {
            shape: WireShape::Twilio,
            ..CallerScript::default()
        });
        run.text(ms(5), &mark("m"));
        let echo = &run.events("mark")[0].1;
        assert_eq!(keys(echo), ["event", "mark", "sequenceNumber", "streamSid"]);
    }

    #[test]
    fn signalwire_dtmf_and_stop_shapes_then_close_at_hangup_time() {
        let script = CallerScript {
            dtmf: vec![(ms(25), '#')],
            hangup: Some((ms(1000), HangupStyle::Stop)),
            ..CallerScript::default()
        };
        let mut run = Run::new(script);
        run.run_until(ms(5000));
        let dtmf = run.events("dtmf");
        assert_eq!(dtmf[0].0, ms(25));
        assert_eq!(
            dtmf[0].1,
            json!({"event": "dtmf", "sequenceNumber": "4", "streamSid": SID,
                   "dtmf": {"digit": "#", "duration": 160}})
        );
        let n = run.sent.len();
        assert_eq!(run.sent[n - 1], (ms(1000), CallerOutput::Close));
        let (at, CallerOutput::Text(stop)) = &run.sent[n - 2] else {
            panic!("no stop before the close");
        };
        assert_eq!(*at, ms(1000));
        let stop: Value = serde_json::from_str(stop).unwrap();
        assert_eq!(keys(&stop), ["event", "sequenceNumber"]);
        // Media at 0, 20, …, 1000 ms, the dtmf and the stop, all numbered.
        assert_eq!(run.report().frames_sent, 51);
        assert_eq!(stop["sequenceNumber"], "54");
        assert!(run.fake.is_closed());
        assert!(run.report().sent_stop);
        assert_eq!(run.report().closed_at, Some(ms(1000)));
        assert_eq!(run.fake.poll_timeout(), None);
        // Anything the bridge sends now is late.
        run.text(ms(1010), &mark("late"));
        run.fake.handle_binary(run.base + ms(1011), &[1, 2]);
        assert!(run.fake.poll_output().is_none());
        assert_eq!(run.report().received_after_close, 2);
        assert_eq!(run.report().violations.len(), 2);
        assert!(run.report().marks_echoed.is_empty());
    }

    #[test]
    fn close_without_stop_sends_only_the_close() {
        let script = CallerScript {
            hangup: Some((ms(30), HangupStyle::CloseWithoutStop)),
            ..CallerScript::default()
        };
        let mut run = Run::new(script);
        run.run_until(ms(1000));
        assert!(run.events("stop").is_empty());
        assert_eq!(run.sent.last(), Some(&(ms(30), CallerOutput::Close)));
        assert!(!run.report().sent_stop);
        assert_eq!(run.report().closed_at, Some(ms(30)));
    }

    #[test]
    fn media_carries_speech_during_utterances_and_silence_otherwise() {
        let script = CallerScript {
            codec: PhoneCodec::L16 { rate_hz: 16000 },
            byte_order: ByteOrder::Big,
            utterances: vec![Utterance {
                start: ms(40),
                duration: ms(30),
            }],
            media_start_delay: ms(10),
            ..CallerScript::default()
        };
        let mut run = Run::new(script);
        run.run_until(ms(100));
        let frames = run.events("media");
        let times: Vec<Duration> = frames.iter().map(|(at, _)| *at).collect();
        assert_eq!(times, [ms(10), ms(30), ms(50), ms(70), ms(90)]);
        assert_eq!(frames[0].1["media"]["timestamp"], "10");
        let decoded: Vec<Vec<i16>> = frames
            .iter()
            .map(|(_, m)| {
                let bytes = BASE64
                    .decode(m["media"]["payload"].as_str().unwrap())
                    .unwrap();
                let mut samples = Vec::new();
                l16::decode(&bytes, ByteOrder::Big, &mut samples).unwrap();
                samples
            })
            .collect();
        // 30..50 ms: silence for 10 ms, then speech from sample 640 of the signal.
        let mut expected = vec![0i16; 320];
        speech_like(16000, 0, 640, &mut expected[160..]);
        assert_eq!(decoded[1], expected);
        // 50..70 ms is all speech; 70..90 ms is silence again.
        assert!(rms(&decoded[2]) > 1000.0);
        assert!(decoded[0].iter().chain(&decoded[3]).all(|&s| s == 0));
    }

    #[test]
    fn marks_echo_when_the_audio_before_them_has_played() {
        let mut run = Run::new(CallerScript::default());
        // Nothing queued: echoed at once, as SignalWire documents.
        run.text(ms(3), &mark("idle"));
        assert_eq!(run.report().marks_echoed, [(ms(3), "idle".to_owned())]);
        // 50 ms, mark a, 10 ms, mark b, all at 5 ms: playback starts on the 20 ms tick.
        run.text(ms(5), &media(&[0xFF; 400]));
        run.text(ms(5), &mark("a"));
        run.text(ms(5), &media(&[0xFF; 80]));
        run.text(ms(5), &mark("b"));
        run.run_until(ms(200));
        let echoed = &run.report().marks_echoed;
        assert_eq!(echoed[1], (ms(70), "a".to_owned()));
        assert_eq!(echoed[2], (ms(80), "b".to_owned()));
        let marks = run.events("mark");
        assert_eq!(marks[1].0, ms(70));
        assert_eq!(
            marks[1].1,
            json!({"event": "mark", "streamSid": SID, "mark": {"name": "a"}})
        );
        let heard: Vec<(Duration, u32)> = run.report().heard.iter().map(|f| (f.at, f.ms)).collect();
        assert_eq!(heard, [(ms(40), 20), (ms(60), 20), (ms(80), 20)]);
        // A mark sent while audio plays waits for it.
        run.text(ms(205), &media(&[0xFF; 80]));
        run.text(ms(207), &mark("c"));
        run.run_until(ms(300));
        assert_eq!(run.report().marks_echoed[3], (ms(230), "c".to_owned()));
        assert!(run.report().violations.is_empty());
    }

    #[test]
    fn clear_echoes_pending_marks_at_once_and_drops_the_audio() {
        let mut run = Run::new(CallerScript::default());
        run.text(ms(5), &media(&[0xFF; 1600]));
        run.text(ms(5), &mark("m1"));
        run.text(ms(5), &media(&[0xFF; 6400]));
        run.text(ms(5), &mark("m2"));
        run.text(ms(105), &clear());
        let echoed = run.report().marks_echoed.clone();
        assert_eq!(
            echoed,
            [(ms(105), "m1".to_owned()), (ms(105), "m2".to_owned())]
        );
        assert_eq!(run.sent.last().unwrap().0, ms(105));
        assert_eq!(run.report().clears, [ms(105)]);
        run.run_until(ms(2000));
        // Four whole frames and the 5 ms cut short by the clear; nothing after.
        let heard: Vec<(Duration, u32)> = run.report().heard.iter().map(|f| (f.at, f.ms)).collect();
        assert_eq!(
            heard,
            [
                (ms(40), 20),
                (ms(60), 20),
                (ms(80), 20),
                (ms(100), 20),
                (ms(105), 5)
            ]
        );
        run.text(ms(2001), &mark("after"));
        assert_eq!(run.report().marks_echoed[2], (ms(2001), "after".to_owned()));
    }

    #[test]
    fn heard_speech_ms_counts_speech_played_back() {
        let mut run = Run::new(CallerScript::default());
        // One second of speech in 100 ms messages, then half a second of silence.
        let speech = speech_ulaw(8000);
        for chunk in speech.chunks(800) {
            run.text(ms(10), &media(chunk));
        }
        run.text(ms(10), &media(&[0xFF; 4000]));
        run.run_until(ms(3000));
        let report = run.report();
        assert_eq!(report.heard.len(), 75);
        assert_eq!(report.heard_speech_ms(), 1000);
        assert_eq!(report.first_heard_speech(), Some(ms(40)));
        assert_eq!(report.last_heard_speech(), Some(ms(1020)));
        assert_eq!(CallerReport::default().first_heard_speech(), None);
    }

    #[test]
    fn violations_are_recorded_and_the_frame_ignored() {
        let cases: [(&str, CallerScript, String); 10] = [
            (
                "streamSid `wrong`",
                CallerScript::default(),
                json!({"event": "media", "streamSid": "wrong", "media": {"payload": "//8="}})
                    .to_string(),
            ),
            (
                "unexpected field `media.track`",
                CallerScript::default(),
                json!({"event": "media", "streamSid": SID,
                       "media": {"track": "outbound", "payload": "//8="}})
                .to_string(),
            ),
            (
                "not whole L16 samples",
                CallerScript {
                    codec: PhoneCodec::L16 { rate_hz: 24000 },
                    ..CallerScript::default()
                },
                media(&[0, 0, 0]),
            ),
            (
                "not base64",
                CallerScript::default(),
                json!({"event": "media",
                "streamSid": SID, "media": {"payload": "!!"}})
                .to_string(),
            ),
            (
                "not JSON",
                CallerScript::default(),
                "{\"event\":".to_owned(),
            ),
            (
                "unsupported event `stop`",
                CallerScript::default(),
                json!({"event": "stop", "streamSid": SID}).to_string(),
            ),
            (
                "unexpected field `sequenceNumber`",
                CallerScript::default(),
                json!({"event": "clear", "streamSid": SID, "sequenceNumber": "3"}).to_string(),
            ),
            (
                "no `mark.name`",
                CallerScript::default(),
                json!({"event": "mark", "streamSid": SID, "mark": {}}).to_string(),
            ),
            (
                "digit `55`",
                CallerScript::default(),
                json!({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "55"}}).to_string(),
            ),
            (
                "SignalWire-only",
                CallerScript {
                    shape: WireShape::Twilio,
                    ..CallerScript::default()
                },
                json!({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "5"}}).to_string(),
            ),
        ];
        for (expected, script, text) in cases {
            let mut run = Run::new(script);
            run.text(ms(5), &text);
            run.run_until(ms(100));
            let report = run.report();
            assert_eq!(
                report.violations.len(),
                1,
                "{text}: {:?}",
                report.violations
            );
            assert!(
                report.violations[0].contains(expected),
                "{expected}: {:?}",
                report.violations
            );
            assert!(report.heard.is_empty() && report.dtmf_received.is_empty());
            assert_eq!(report.received_after_close, 0);
        }
        // A valid dtmf is recorded; a binary frame is always a violation.
        let mut run = Run::new(CallerScript::default());
        run.text(
            ms(5),
            &json!({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "B"}}).to_string(),
        );
        run.fake.handle_binary(run.base + ms(6), b"{}");
        let report = run.report();
        assert_eq!(report.dtmf_received, [(ms(5), 'B')]);
        assert_eq!(report.violations.len(), 1);
        assert!(report.violations[0].contains("binary frame of 2 bytes"));
    }

    #[test]
    fn bridge_close_ends_everything() {
        let mut run = Run::new(CallerScript::default());
        run.text(ms(5), &media(&[0xFF; 800]));
        run.text(ms(5), &mark("never"));
        run.run_until(ms(45));
        run.fake.handle_closed(run.base + ms(50));
        run.drain(ms(50));
        assert!(run.fake.is_closed());
        assert_eq!(run.fake.poll_timeout(), None);
        assert_eq!(run.report().closed_at, Some(ms(50)));
        assert!(run.report().marks_echoed.is_empty());
        assert!(run.report().violations.is_empty());
        let heard: Vec<u32> = run.report().heard.iter().map(|f| f.ms).collect();
        assert_eq!(heard, [20, 10]);
        assert_eq!(run.sent.last().unwrap().0, ms(40));
    }

    #[test]
    fn raw_messages_go_out_verbatim_and_early_timeouts_do_nothing() {
        let script = CallerScript {
            raw_messages: vec![(ms(15), "not json".to_owned()), (ms(5), "{}".to_owned())],
            ..CallerScript::default()
        };
        let mut run = Run::new(script);
        assert_eq!(run.fake.poll_timeout(), Some(run.base + ms(5)));
        run.fake.handle_timeout(run.base + ms(4));
        assert!(run.fake.poll_output().is_none());
        run.run_until(ms(15));
        let texts: Vec<&CallerOutput> = run.sent.iter().map(|(_, o)| o).collect();
        assert_eq!(texts[3], &CallerOutput::Text("{}".to_owned()));
        assert_eq!(texts[4], &CallerOutput::Text("not json".to_owned()));
        assert_eq!(run.sent[4].0, ms(15));
        assert_eq!(run.fake.poll_timeout(), Some(run.base + ms(20)));
    }

    #[test]
    fn same_script_and_inputs_give_the_same_trace() {
        let trace = || {
            let script = CallerScript {
                utterances: vec![Utterance {
                    start: ms(100),
                    duration: ms(700),
                }],
                dtmf: vec![(ms(300), '1')],
                hangup: Some((ms(1500), HangupStyle::Stop)),
                media_start_delay: ms(7),
                ..CallerScript::default()
            };
            let mut run = Run::new(script);
            run.text(ms(50), &media(&speech_ulaw(4000)));
            run.text(ms(51), &mark("x"));
            run.text(ms(333), &clear());
            run.text(ms(400), &media(&speech_ulaw(1234)));
            run.text(ms(401), "garbage");
            run.run_until(ms(2000));
            format!("{:?}\n{:?}", run.sent, run.report())
        };
        assert_eq!(trace(), trace());
    }
}
