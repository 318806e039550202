//! Shared helpers for the scenario tests: scripted calls on the core's simulation.

use std::time::Duration;

pub use barbara_core::sim::driver::{ScriptedTool, Sim, SimConfig, ToolBehaviour};
pub use barbara_core::sim::fake_caller::{CallerScript, HangupStyle, Utterance, WireShape};
pub use barbara_core::sim::fake_live::{
    AppendRecord, DelegationRecord, InputGap, LiveChunk, LiveReport, LiveScript, LiveTurn,
    TurnRecord, TurnTrigger,
};
pub use barbara_core::sim::fake_realtime::{RealtimeScript, ScriptedResponse};
pub use barbara_core::sim::fake_webrtc::WebRtcFakeMode;
pub use barbara_core::sim::net::NetParams;
pub use barbara_core::{
    Backend, EndReason, Event, LiveConfig, Role, ToolAction, ToolSpec, TransportChoice,
};

/// The origin of a simulation's virtual clock. The core reads no clock: the test side picks
/// any instant, and every time in the run is an offset from it.
pub use barbara_test_origin::origin;

/// The same call, carried over WebRTC first (the product's default).
pub fn over_webrtc(mut config: SimConfig) -> SimConfig {
    config.call.transport = TransportChoice::Auto;
    config
}

/// The transport the call was ready on, each time it became ready.
pub fn transports(sim: &Sim) -> Vec<&'static str> {
    sim.all(|e| matches!(e, Event::ModelReady { .. }))
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::ModelReady { transport } => Some(*transport),
            _ => None,
        })
        .collect()
}

/// Fallbacks with their reasons.
pub fn fallbacks(sim: &Sim) -> Vec<(std::time::Duration, String)> {
    sim.all(|e| matches!(e, Event::Fallback { .. }))
        .into_iter()
        .filter_map(|(t, e)| match e {
            Event::Fallback { reason, .. } => Some((t, reason.clone())),
            _ => None,
        })
        .collect()
}

/// Milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Seconds.
pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A spoken reply of the fake model.
pub fn say(text: &str, audio_ms: u32) -> ScriptedResponse {
    ScriptedResponse {
        text: text.to_owned(),
        audio_ms,
        tool_calls: Vec::new(),
    }
}

/// A reply that speaks (optionally) and then calls tools.
pub fn say_and_call(
    text: &str,
    audio_ms: u32,
    calls: &[(&str, serde_json::Value)],
) -> ScriptedResponse {
    ScriptedResponse {
        text: text.to_owned(),
        audio_ms,
        tool_calls: calls
            .iter()
            .map(|(name, args)| ((*name).to_owned(), args.clone()))
            .collect(),
    }
}

/// A caller turn starting at `start` lasting `duration`.
pub fn utterance(start: Duration, duration: Duration) -> Utterance {
    Utterance { start, duration }
}

/// A call where the model greets first with `greeting_ms` of audio and then answers with the
/// scripted `replies`; the caller says what `utterances` say and hangs up with `stop` at `end`.
pub fn scenario(
    seed: u64,
    greeting_ms: u32,
    replies: Vec<ScriptedResponse>,
    utterances: Vec<Utterance>,
    end: Duration,
) -> SimConfig {
    let mut config = SimConfig::new(seed);
    let mut responses = vec![say("Hello, this is Barbara. How can I help?", greeting_ms)];
    responses.extend(replies);
    config.openai.responses = responses;
    config.openai.caller_transcripts = vec!["I would like to check my order.".to_owned()];
    config.caller.utterances = utterances;
    config.caller.hangup = Some((end, HangupStyle::Stop));
    config
}

/// A tool the application offers, with its deadline.
pub fn tool_spec(name: &str, timeout: Duration) -> ToolSpec {
    ToolSpec {
        name: name.to_owned(),
        description: format!("The {name} tool."),
        parameters: serde_json::json!({"type": "object", "properties": {}}),
        timeout,
        webhook: None,
        filler: None,
    }
}

/// A heard frame louder than this (RMS) carries speech.
pub const SPEECH_RMS: f32 = 300.0;

/// Milliseconds of speech the caller heard in frames that finished playing in `from..to`.
pub fn heard_speech_between(sim: &Sim, from: Duration, to: Duration) -> u32 {
    sim.caller()
        .heard
        .iter()
        .filter(|f| f.at > from && f.at < to && f.rms > SPEECH_RMS)
        .map(|f| f.ms)
        .sum()
}

/// The speech the caller heard over the whole call: its milliseconds (frames louder than
/// [`SPEECH_RMS`]) and their mean level in dB against the fakes' 3,000 RMS.
pub fn heard_speech_level(sim: &Sim) -> (u32, f32) {
    let loud: Vec<_> = sim
        .caller()
        .heard
        .iter()
        .filter(|f| f.rms > SPEECH_RMS)
        .collect();
    let mean = loud.iter().map(|f| f.rms).sum::<f32>() / loud.len().max(1) as f32;
    let ms = loud.iter().map(|f| f.ms).sum();
    (ms, 20.0 * (mean / 3_000.0).log10())
}

/// A call on an L16 phone leg at `rate_hz` that records the audio both ends saw.
pub fn l16_call(seed: u64, rate_hz: u32, utterance_ms: u64) -> SimConfig {
    let mut config = scenario(
        seed,
        2_000,
        vec![say("Got it.", 1_200)],
        vec![utterance(secs(3), ms(utterance_ms))],
        secs(7),
    );
    config.caller.codec = barbara_core::audio::PhoneCodec::L16 { rate_hz };
    config.caller.record_sent_audio = true;
    config.openai.record_input_audio = true;
    config
}

/// Runs the configuration twice and checks that both runs tell the same story; returns one.
pub fn run_deterministic(config: SimConfig, limit: Duration) -> Sim {
    let mut first = Sim::new(origin(), config.clone());
    first.run_to_end(limit);
    let mut second = Sim::new(origin(), config);
    second.run_to_end(limit);
    assert_eq!(
        first.trace_lines(),
        second.trace_lines(),
        "same seed, different trace"
    );
    assert_eq!(
        format!("{:?}", first.caller()),
        format!("{:?}", second.caller()),
        "same seed, the caller heard something else"
    );
    assert_eq!(
        format!("{:?}", first.live()),
        format!("{:?}", second.live()),
        "same seed, the Live server saw something else"
    );
    first
}

/// Whether the event is the end of the call.
pub fn is_end(event: &Event) -> bool {
    matches!(event, Event::CallEnded { .. })
}

/// Time of the first event matching `pred`, or a panic naming `what`.
pub fn time_of(sim: &Sim, what: &str, pred: impl Fn(&Event) -> bool) -> Duration {
    sim.first(pred)
        .unwrap_or_else(|| panic!("no {what} in the trace:\n{}", sim.trace_lines().join("\n")))
        .0
}

/// Client events of one type the bridge sent to OpenAI, with their times.
pub fn sent_of_type(sim: &Sim, event_type: &str) -> Vec<(Duration, serde_json::Value)> {
    sim.model_events_sent()
        .iter()
        .filter_map(|(at, text)| {
            let value: serde_json::Value = serde_json::from_str(text).ok()?;
            (value["type"] == event_type).then_some((*at, value))
        })
        .collect()
}

/// The same call on the Live backend (`/v1/live/sessions`).
pub fn live(mut config: SimConfig) -> SimConfig {
    config.call.backend = Backend::Live;
    config
}

/// A turn of the fake Live model that speaks `text` for `audio_ms`.
pub fn live_turn(text: &str, audio_ms: u32) -> LiveTurn {
    LiveTurn {
        text: text.to_owned(),
        audio_ms,
        tool_calls: Vec::new(),
        ..LiveTurn::default()
    }
}

/// A turn that speaks `text` while its backend calls `calls`, then speaks `follow_up` (the
/// backend's answer) for `follow_up_ms` once the tools are answered.
pub fn live_turn_calling(
    text: &str,
    audio_ms: u32,
    calls: &[(&str, serde_json::Value)],
    follow_up: &str,
    follow_up_ms: u32,
) -> LiveTurn {
    LiveTurn {
        text: text.to_owned(),
        audio_ms,
        tool_calls: calls
            .iter()
            .map(|(name, args)| ((*name).to_owned(), args.clone()))
            .collect(),
        follow_up: follow_up.to_owned(),
        follow_up_ms,
    }
}

/// A Live call: the model greets with `greeting_ms` of speech when told to, then takes the
/// scripted `turns`; the caller says what `utterances` say and hangs up with `stop` at `end`.
pub fn live_scenario(
    seed: u64,
    greeting_ms: u32,
    turns: Vec<LiveTurn>,
    utterances: Vec<Utterance>,
    end: Duration,
) -> SimConfig {
    let mut config = live(SimConfig::new(seed));
    let mut all = vec![live_turn(
        "Hello, this is Barbara. How can I help?",
        greeting_ms,
    )];
    all.extend(turns);
    config.live.turns = all;
    config.live.caller_transcripts = vec!["I would like to check my order.".to_owned()];
    config.caller.utterances = utterances;
    config.caller.hangup = Some((end, HangupStyle::Stop));
    config
}

/// Milliseconds of audio the caller heard (speech or not).
pub fn heard_ms(sim: &Sim) -> f64 {
    sim.caller().heard.iter().map(|f| f64::from(f.ms)).sum()
}

/// Audio sent to the caller that has not played yet (in flight or queued at SignalWire), in ms.
pub fn caller_backlog_ms(sim: &Sim) -> f64 {
    sim.phone_audio_sent_ms() - heard_ms(sim)
}

/// Runs a call to its end, sampling after every step the caller's backlog and the call's
/// pending marks; returns the sim and the largest of each.
pub fn run_sampling_backlog(config: SimConfig, limit: Duration) -> (Sim, f64, usize) {
    let mut sim = Sim::new(origin(), config);
    let (mut backlog, mut marks) = (0.0f64, 0usize);
    sim.run_until(limit, |s| {
        backlog = backlog.max(caller_backlog_ms(s));
        marks = marks.max(s.call().queue_lengths().1);
        s.ended_at().is_some()
    });
    sim.run_to_end(limit);
    (sim, backlog, marks)
}

/// Every `Event::ModelSessionClosed` with its time: `(at, reason, billed seconds)`.
pub fn session_closed_events(sim: &Sim) -> Vec<(Duration, String, Option<f64>)> {
    sim.all(|e| matches!(e, Event::ModelSessionClosed { .. }))
        .into_iter()
        .filter_map(|(t, e)| match e {
            Event::ModelSessionClosed {
                reason,
                billed_seconds,
            } => Some((t, reason.clone(), *billed_seconds)),
            _ => None,
        })
        .collect()
}

/// Checks what every Live test expects: no protocol violations on either fake, no `error`
/// from the Live server.
pub fn assert_clean_live(sim: &Sim) {
    let live = sim.live();
    assert!(
        live.violations.is_empty(),
        "Live violations: {:#?}",
        live.violations
    );
    assert!(
        live.errors_sent.is_empty(),
        "Live errors: {:?}",
        live.errors_sent
    );
    assert!(
        sim.caller().violations.is_empty(),
        "caller violations: {:?}",
        sim.caller().violations
    );
}

/// The transcript lines of the call, in order.
pub fn transcripts(sim: &Sim) -> Vec<(Role, String)> {
    sim.all(|e| matches!(e, Event::Transcript { .. }))
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::Transcript { role, text } => Some((*role, text.clone())),
            _ => None,
        })
        .collect()
}

/// The same Live call carried over WebRTC first (`auto`, falling back to the WebSocket): the
/// fake WebRTC endpoint's Live sessions follow `config.live` as it is now, so call this once
/// the script is complete.
pub fn live_over_webrtc(mut config: SimConfig) -> SimConfig {
    config.call.transport = TransportChoice::Auto;
    config.webrtc.live_script = Some(config.live.clone());
    config
}

/// What the Live brain of each WebRTC session saw and did, in creation order.
pub fn live_webrtc_sessions(sim: &Sim) -> Vec<LiveReport> {
    sim.openai_webrtc()
        .calls
        .into_iter()
        .filter_map(|c| c.live)
        .collect()
}

/// [`run_deterministic`], also checking that the fake WebRTC endpoint's Live sessions saw the
/// same thing both times.
pub fn run_deterministic_webrtc(config: SimConfig, limit: Duration) -> Sim {
    let mut second = Sim::new(origin(), config.clone());
    second.run_to_end(limit);
    let first = run_deterministic(config, limit);
    assert_eq!(
        format!("{:?}", live_webrtc_sessions(&first)),
        format!("{:?}", live_webrtc_sessions(&second)),
        "same seed, the Live WebRTC sessions saw something else"
    );
    first
}

/// [`assert_clean_live`] for calls that may have used the fake WebRTC endpoint too: nothing
/// the endpoint or its Live brains would refuse, and no `error` from them.
pub fn assert_clean_live_webrtc(sim: &Sim) {
    assert_clean_live(sim);
    let webrtc = sim.openai_webrtc();
    assert!(
        webrtc.all_violations().is_empty(),
        "WebRTC violations: {:#?}",
        webrtc.all_violations()
    );
    for session in live_webrtc_sessions(sim) {
        assert!(
            session.errors_sent.is_empty(),
            "Live WebRTC errors: {:?}",
            session.errors_sent
        );
    }
}

/// Every `Event::Fallback` with its time: `(at, from, to, reason)`.
pub fn fallback_events(sim: &Sim) -> Vec<(Duration, &'static str, &'static str, String)> {
    sim.all(|e| matches!(e, Event::Fallback { .. }))
        .into_iter()
        .filter_map(|(t, e)| match e {
            Event::Fallback { from, to, reason } => Some((t, *from, *to, reason.clone())),
            _ => None,
        })
        .collect()
}
