//! `session.start` and `session.update`: the strict `SessionConfig` schema, the audio formats,
//! and the `session.started` resource.

use std::time::Instant;

use serde_json::{Map, Value, json};

use super::{Conn, FakeLive, Handled, Refusal, TimerKind, unknown_key};
use crate::audio::g711;

/// Top-level fields of `SessionConfig`; anything else is `unknown_parameter`.
const SESSION_FIELDS: &[&str] = &[
    "model",
    "instructions",
    "input",
    "audio",
    "delegation",
    "store",
    "client",
    "safety_identifier",
    "triggers",
];
/// Extra top-level fields of a WebRTC session's `MediaSessionConfig`.
const MEDIA_FIELDS: &[&str] = &["idle_timeout_s", "wake_policy"];
/// Most messages in `input`.
const MAX_INPUT_MESSAGES: usize = 128;
/// Fields of `delegation.responses`.
const RESPONSES_FIELDS: &[&str] = &[
    "model",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "reasoning",
    "service_tier",
    "text",
];
/// Fields of a function tool.
const FUNCTION_FIELDS: &[&str] = &["type", "name", "description", "parameters", "strict"];

/// The session's one audio format, both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AudioFormat {
    Pcmu,
    Pcma,
    Pcm16k,
    Pcm24k,
}

impl AudioFormat {
    /// Reads `{type, rate}`; `rate` is required for every type.
    fn parse(v: &Value) -> Result<Self, String> {
        let Some(obj) = v.as_object() else {
            return Err("expected an object {type, rate}".into());
        };
        if let Some(k) = obj.keys().find(|k| *k != "type" && *k != "rate") {
            return Err(format!("unknown field '{k}'"));
        }
        let rate = obj.get("rate").and_then(Value::as_u64);
        match (obj.get("type").and_then(Value::as_str), rate) {
            (_, None) => Err("'rate' is required (an integer)".into()),
            (Some("audio/pcmu"), Some(8000)) => Ok(Self::Pcmu),
            (Some("audio/pcma"), Some(8000)) => Ok(Self::Pcma),
            (Some("audio/pcm"), Some(16000)) => Ok(Self::Pcm16k),
            (Some("audio/pcm"), Some(24000)) => Ok(Self::Pcm24k),
            _ => Err(
                "expected audio/pcmu or audio/pcma at 8000, or audio/pcm at 16000 or 24000".into(),
            ),
        }
    }

    pub(super) fn to_json(self) -> Value {
        match self {
            Self::Pcmu => json!({"type": "audio/pcmu", "rate": 8000}),
            Self::Pcma => json!({"type": "audio/pcma", "rate": 8000}),
            Self::Pcm16k => json!({"type": "audio/pcm", "rate": 16000}),
            Self::Pcm24k => json!({"type": "audio/pcm", "rate": 24000}),
        }
    }

    pub(super) fn rate(self) -> u32 {
        match self {
            Self::Pcmu | Self::Pcma => 8000,
            Self::Pcm16k => 16000,
            Self::Pcm24k => 24000,
        }
    }

    /// Bytes per sample.
    pub(super) fn width(self) -> usize {
        match self {
            Self::Pcmu | Self::Pcma => 1,
            Self::Pcm16k | Self::Pcm24k => 2,
        }
    }

    pub(super) fn bytes_per_ms(self) -> f64 {
        f64::from(self.rate()) / 1000.0 * self.width() as f64
    }

    pub(super) fn encode(self, samples: &[i16]) -> Vec<u8> {
        match self {
            Self::Pcmu => samples.iter().map(|&s| g711::ulaw_encode(s)).collect(),
            Self::Pcma => samples.iter().map(|&s| g711::alaw_encode(s)).collect(),
            Self::Pcm16k | Self::Pcm24k => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
        }
    }

    /// Decodes whole samples; the caller checks PCM's even length first.
    pub(super) fn decode(self, bytes: &[u8]) -> Vec<i16> {
        match self {
            Self::Pcmu => bytes.iter().map(|&b| g711::ulaw_decode(b)).collect(),
            Self::Pcma => bytes.iter().map(|&b| g711::alaw_decode(b)).collect(),
            Self::Pcm16k | Self::Pcm24k => bytes
                .chunks_exact(2)
                .map(|p| i16::from_le_bytes([p[0], p[1]]))
                .collect(),
        }
    }
}

/// What an accepted `session.start` (or WebRTC creation) sets.
pub(super) struct Accepted {
    resource: Value,
    format: AudioFormat,
    responses: bool,
}

impl FakeLive {
    pub(super) fn on_start(&mut self, now: Instant, event: &Value) -> Handled {
        if let Some(k) = unknown_key(event, &["type", "event_id", "session"]) {
            let msg = format!("Unknown parameter: '{k}'.");
            return Err(Refusal::new("unknown_parameter", &k, msg));
        }
        let Some(session) = event.get("session") else {
            let msg = "Missing required parameter: 'session'.";
            return Err(Refusal::new("missing_required_parameter", "session", msg));
        };
        if self.report.session_start.is_none() {
            self.report.session_start = Some(session.clone());
        }
        let accepted = self.check_config(session, false)?;
        let id = self.id("live");
        self.accept(accepted, id);
        if self.resume_from_input {
            self.continue_from(session.get("input"));
        }
        let eid = event.get("event_id").cloned().unwrap_or(Value::Null);
        self.begin(now, Some(eid));
        Ok(())
    }

    /// Takes an accepted configuration as the session's, under the id `id`.
    pub(super) fn accept(&mut self, accepted: Accepted, id: String) {
        self.format = accepted.format;
        self.responses_delegation = accepted.responses;
        self.session = accepted.resource;
        self.session["id"] = json!(id);
        self.report.session_id = Some(id);
    }

    /// A session started with earlier turns as `input` (one replacing a lost session, say a
    /// WebRTC one) goes on with the script: turn 0 was the greeting and turn k answered the k-th
    /// caller message.
    fn continue_from(&mut self, input: Option<&Value>) {
        let Some(messages) = input.and_then(Value::as_array).filter(|m| !m.is_empty()) else {
            return;
        };
        let count = |role: &str| messages.iter().filter(|m| m["role"] == role).count();
        let (callers, assistant) = (count("user"), count("assistant"));
        self.caller_turns = callers;
        self.next_turn = callers + usize::from(assistant > 0);
        self.greeted = true;
    }

    /// `session.started` goes out (echoing `client_event_id` when given) and the session runs:
    /// the output audio clock and the usage reports start now.
    pub(super) fn begin(&mut self, now: Instant, client_event_id: Option<Value>) {
        self.conn = Conn::Started;
        self.started_at = Some(now);
        self.report.started_at = Some(self.since(now));
        let session = self.session.clone();
        let fields = match client_event_id {
            Some(eid) => json!({"client_event_id": eid, "session": session}),
            None => json!({ "session": session }),
        };
        self.send("session.started", fields);
        self.last_append_at = Some(now);
        self.schedule(now, std::time::Duration::ZERO, TimerKind::Chunk);
        self.schedule(now, self.script.usage_interval, TimerKind::Usage);
    }

    /// Validates a `SessionConfig` (`session.start`) or, with `media`, a WebRTC creation's
    /// `MediaSessionConfig` (no `audio.format`; `idle_timeout_s` and `wake_policy` allowed), and
    /// builds the resource `session.started` echoes.
    pub(super) fn check_config(&self, session: &Value, media: bool) -> Result<Accepted, Refusal> {
        let Some(s) = session.as_object() else {
            let msg = "Invalid type for 'session': expected an object.";
            return Err(Refusal::new("invalid_type", "session", msg));
        };
        let known = |k: &str| SESSION_FIELDS.contains(&k) || (media && MEDIA_FIELDS.contains(&k));
        if let Some(k) = s.keys().find(|k| !known(k)) {
            let param = format!("session.{k}");
            let msg = format!("Unknown parameter: '{param}'.");
            return Err(Refusal::new("unknown_parameter", &param, msg));
        }
        let model = match s.get("model").and_then(Value::as_str) {
            Some(m) if m.starts_with("gpt-live") => m.to_owned(),
            Some(m) => {
                let msg = format!("The model '{m}' is not supported by the Live API.");
                return Err(Refusal::new("invalid_model", "session.model", msg));
            }
            None => {
                let msg = "Missing required parameter: 'session.model'.";
                return Err(Refusal::new(
                    "missing_required_parameter",
                    "session.model",
                    msg,
                ));
            }
        };
        let instructions = match s.get("instructions") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(i)) => i.clone(),
            Some(_) => {
                let msg = "Invalid type for 'session.instructions': expected a string.";
                return Err(Refusal::new("invalid_type", "session.instructions", msg));
            }
        };
        let (format, voice) = check_audio(s.get("audio"), media)?;
        let (delegation, responses) = check_delegation(s.get("delegation"))?;
        let input = check_input(s.get("input"))?;
        let store = s.get("store").and_then(Value::as_bool).unwrap_or(false);
        let expires_at = self.script.unix_start + self.script.session_max.as_secs();
        let audio = if media {
            json!({"output": {"voice": voice}})
        } else {
            json!({"format": format.to_json(), "output": {"voice": voice}})
        };
        let mut resource = json!({
            "id": Value::Null,
            "object": "live.session",
            "model": model,
            "status": "active",
            "expires_at": expires_at,
            "instructions": instructions,
            "input": input,
            "audio": audio,
            "delegation": delegation,
            "store": store,
        });
        if media {
            check_media_fields(s)?;
            for k in MEDIA_FIELDS {
                if let Some(v) = s.get(*k) {
                    resource[*k] = v.clone();
                }
            }
        }
        Ok(Accepted {
            resource,
            format,
            responses,
        })
    }

    /// `session.update`: only `delegation` (same type) and `triggers` may change.
    pub(super) fn on_update(&mut self, event: &Value) -> Handled {
        let Some(update) = event.get("session").and_then(Value::as_object) else {
            let msg = "Missing required parameter: 'session' (an object).";
            return Err(Refusal::new("missing_required_parameter", "session", msg));
        };
        if let Some(k) = update
            .keys()
            .find(|k| *k != "delegation" && *k != "triggers")
        {
            let param = format!("session.{k}");
            if SESSION_FIELDS.contains(&k.as_str()) {
                let msg = format!("'{param}' cannot be changed after session.start.");
                return Err(Refusal::new("immutable_field_update", &param, msg));
            }
            let msg = format!("Unknown parameter: '{param}'.");
            return Err(Refusal::new("unknown_parameter", &param, msg));
        }
        if let Some(d) = update.get("delegation") {
            let old = self.session["delegation"]["type"]
                .as_str()
                .unwrap_or("client");
            let new = d.get("type").and_then(Value::as_str).unwrap_or(old);
            if new != old {
                let param = "session.delegation.type";
                let msg = "The delegation type cannot be changed; create a new session.";
                return Err(Refusal::new("immutable_field_update", param, msg));
            }
            let (checked, _) = check_delegation(Some(d))?;
            merge(&mut self.session["delegation"], &checked);
        }
        if let Some(t) = update.get("triggers") {
            self.session["triggers"] = t.clone();
        }
        let eid = event.get("event_id").cloned().unwrap_or(Value::Null);
        let resource = self.session.clone();
        self.send(
            "session.updated",
            json!({"client_event_id": eid, "session": resource}),
        );
        Ok(())
    }
}

/// Merges the fields of `update` into `slot`, one level deep.
fn merge(slot: &mut Value, update: &Value) {
    match (slot.as_object_mut(), update.as_object()) {
        (Some(slot), Some(update)) => {
            for (k, v) in update {
                slot.insert(k.clone(), v.clone());
            }
        }
        _ => *slot = update.clone(),
    }
}

/// `session.audio`: `format` (not over WebRTC, where the SDP negotiates it) and
/// `output.voice`. Returns the format and voice.
fn check_audio(audio: Option<&Value>, media: bool) -> Result<(AudioFormat, Value), Refusal> {
    let empty = Map::new();
    let audio = match audio {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(a)) => a,
        Some(_) => {
            let msg = "Invalid type for 'session.audio': expected an object.";
            return Err(Refusal::new("invalid_type", "session.audio", msg));
        }
    };
    if let Some(k) = audio.keys().find(|k| *k != "format" && *k != "output") {
        let param = format!("session.audio.{k}");
        let msg = format!("Unknown parameter: '{param}'.");
        return Err(Refusal::new("unknown_parameter", &param, msg));
    }
    if media && audio.contains_key("format") {
        let param = "session.audio.format";
        let msg = "Unknown parameter: 'session.audio.format'. Over WebRTC the audio format is \
                   negotiated in the SDP.";
        return Err(Refusal::new("unknown_parameter", param, msg));
    }
    let format = match audio.get("format") {
        None | Some(Value::Null) => AudioFormat::Pcm24k,
        Some(f) => AudioFormat::parse(f).map_err(|why| {
            let msg = format!("Invalid 'session.audio.format': {why}.");
            Refusal::new("invalid_value", "session.audio.format", msg)
        })?,
    };
    let output = audio.get("output").cloned().unwrap_or(json!({}));
    if let Some(k) = unknown_key(&output, &["voice"]) {
        let param = format!("session.audio.output.{k}");
        let msg = format!("Unknown parameter: '{param}'.");
        return Err(Refusal::new("unknown_parameter", &param, msg));
    }
    let voice = match output.get("voice") {
        None | Some(Value::Null) => json!("marin"),
        Some(v @ Value::String(_)) => v.clone(),
        Some(v) if v.get("id").is_some_and(Value::is_string) => v.clone(),
        Some(_) => {
            let msg = "Invalid 'session.audio.output.voice': a name or {id}.";
            return Err(Refusal::new(
                "invalid_value",
                "session.audio.output.voice",
                msg,
            ));
        }
    };
    Ok((format, voice))
}

/// `session.delegation`; returns the resolved object and whether it is Responses delegation.
fn check_delegation(d: Option<&Value>) -> Result<(Value, bool), Refusal> {
    let d = match d {
        None | Some(Value::Null) => return Ok((json!({"type": "client"}), false)),
        Some(d) => d,
    };
    let bad = |param: &str, msg: String| Err(Refusal::new("invalid_value", param, msg));
    let ty = d.get("type").and_then(Value::as_str).unwrap_or("");
    let allowed: &[&str] = match ty {
        "client" => &["type", "acknowledgement_delay_ms"],
        "responses" => &["type", "acknowledgement_delay_ms", "responses"],
        "decisions" => &["type", "acknowledgement_delay_ms", "decisions"],
        other => {
            let msg = format!("Invalid 'session.delegation.type': '{other}'.");
            return bad("session.delegation.type", msg);
        }
    };
    if let Some(k) = unknown_key(d, allowed) {
        let param = format!("session.delegation.{k}");
        let msg = format!("Unknown parameter: '{param}'.");
        return Err(Refusal::new("unknown_parameter", &param, msg));
    }
    if ty != "responses" {
        return Ok((d.clone(), false));
    }
    let Some(r) = d.get("responses").and_then(Value::as_object) else {
        let msg = "Missing required parameter: 'session.delegation.responses'.";
        return Err(Refusal::new(
            "missing_required_parameter",
            "session.delegation.responses",
            msg,
        ));
    };
    if let Some(k) = r.keys().find(|k| !RESPONSES_FIELDS.contains(&k.as_str())) {
        let param = format!("session.delegation.responses.{k}");
        let msg = format!("Unknown parameter: '{param}'.");
        return Err(Refusal::new("unknown_parameter", &param, msg));
    }
    if !r.get("model").is_some_and(Value::is_string) {
        let param = "session.delegation.responses.model";
        let msg = "Missing required parameter: 'session.delegation.responses.model'.";
        return Err(Refusal::new("missing_required_parameter", param, msg));
    }
    let tools = r.get("tools").cloned().unwrap_or(json!([]));
    let Some(list) = tools.as_array() else {
        let msg = "Invalid 'session.delegation.responses.tools': expected an array.".to_owned();
        return bad("session.delegation.responses.tools", msg);
    };
    for (i, tool) in list.iter().enumerate() {
        let param = format!("session.delegation.responses.tools[{i}]");
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => {
                if let Some(k) = unknown_key(tool, FUNCTION_FIELDS) {
                    let param = format!("{param}.{k}");
                    let msg = format!("Unknown parameter: '{param}'.");
                    return Err(Refusal::new("unknown_parameter", &param, msg));
                }
                let named = tool
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| !n.is_empty());
                if !named {
                    return bad(
                        &param,
                        format!("Invalid '{param}': a function needs a name."),
                    );
                }
                if tool.get("parameters").is_some_and(|p| !p.is_object()) {
                    let msg = format!("Invalid '{param}.parameters': expected a JSON schema.");
                    return bad(&param, msg);
                }
            }
            Some("web_search") => {}
            _ => {
                return bad(
                    &param,
                    format!("Invalid '{param}': expected function or web_search."),
                );
            }
        }
    }
    Ok((d.clone(), true))
}

/// `session.input`: at most 128 text messages, each one text part (`input_text` from the
/// developer or the user, `text` or `output_text` from the assistant). Returns it as given.
fn check_input(input: Option<&Value>) -> Result<Value, Refusal> {
    let messages = match input {
        None | Some(Value::Null) => return Ok(json!([])),
        Some(Value::Array(m)) => m,
        Some(_) => {
            let msg = "Invalid type for 'session.input': expected an array.";
            return Err(Refusal::new("invalid_type", "session.input", msg));
        }
    };
    if messages.len() > MAX_INPUT_MESSAGES {
        let msg = format!("'session.input' holds more than {MAX_INPUT_MESSAGES} messages.");
        return Err(Refusal::new("array_above_max_length", "session.input", msg));
    }
    for (i, m) in messages.iter().enumerate() {
        let param = format!("session.input[{i}]");
        let bad = |msg: String| Err(Refusal::new("invalid_value", &param, msg));
        if let Some(k) = unknown_key(m, &["type", "role", "content", "id", "status"]) {
            let param = format!("{param}.{k}");
            let msg = format!("Unknown parameter: '{param}'.");
            return Err(Refusal::new("unknown_parameter", &param, msg));
        }
        if m.get("type").is_some_and(|t| t != "message") {
            return bad(format!("Invalid '{param}.type': expected 'message'."));
        }
        let parts: &[&str] = match m.get("role").and_then(Value::as_str) {
            Some("developer" | "user") => &["input_text"],
            Some("assistant") => &["text", "output_text"],
            _ => {
                return bad(format!(
                    "Invalid '{param}.role': developer, user or assistant."
                ));
            }
        };
        let content = m.get("content").and_then(Value::as_array);
        let Some([part]) = content.map(Vec::as_slice) else {
            return bad(format!("Invalid '{param}.content': exactly one text part."));
        };
        let typed = part
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| parts.contains(&t));
        if !typed || !part.get("text").is_some_and(Value::is_string) {
            let msg = format!(
                "Invalid '{param}.content[0]': a {} part with 'text'.",
                parts[0]
            );
            return bad(msg);
        }
        if let Some(k) = unknown_key(part, &["type", "text"]) {
            let param = format!("{param}.content[0].{k}");
            let msg = format!("Unknown parameter: '{param}'.");
            return Err(Refusal::new("unknown_parameter", &param, msg));
        }
    }
    Ok(Value::Array(messages.clone()))
}

/// The WebRTC-only fields: `idle_timeout_s` (seconds, a whole number) and `wake_policy`
/// (`{type: "speech", vad_threshold?: 0..=1}`).
fn check_media_fields(s: &Map<String, Value>) -> Result<(), Refusal> {
    if let Some(t) = s.get("idle_timeout_s")
        && !t.is_null()
        && t.as_u64().is_none()
    {
        let msg = "Invalid 'session.idle_timeout_s': expected a whole number of seconds.";
        return Err(Refusal::new("invalid_value", "session.idle_timeout_s", msg));
    }
    let Some(wake) = s.get("wake_policy").filter(|w| !w.is_null()) else {
        return Ok(());
    };
    if let Some(k) = unknown_key(wake, &["type", "vad_threshold"]) {
        let param = format!("session.wake_policy.{k}");
        let msg = format!("Unknown parameter: '{param}'.");
        return Err(Refusal::new("unknown_parameter", &param, msg));
    }
    let threshold_ok = wake
        .get("vad_threshold")
        .is_none_or(|v| v.as_f64().is_some_and(|t| (0.0..=1.0).contains(&t)));
    if wake.get("type") != Some(&json!("speech")) || !threshold_ok {
        let msg = "Invalid 'session.wake_policy': {type: 'speech', vad_threshold: 0 to 1}.";
        return Err(Refusal::new("invalid_value", "session.wake_policy", msg));
    }
    Ok(())
}
