//! The call configuration as JSON, for the call record: enough to rebuild the exact
//! [`CallConfig`] a call ran with, so that `barbara replay` can run it again. Secrets (the
//! OpenAI key, the SignalWire token) are written as a placeholder; a replay connects nowhere.
//!
//! The shapes mirror the core's types field by field (serde `remote`), so a field added to the
//! core's configuration fails to compile here until the record carries it too.
//!
//! Records outlive the code that wrote them, so reading is lenient where that keeps their
//! meaning: fields this code does not know are ignored (a newer `barbara` of the same record
//! format may have added one; [`unknown_settings`] names them, so a replay that diverges can
//! say why it may), and a field that may be missing takes the value under which the
//! core behaves as it did before the field existed: `None` for an optional setting, empty for a
//! list or map. A field added to the core later gets such a `#[serde(default)]` too, so that
//! older records still load; one without a value that keeps their meaning bumps
//! [`crate::replay::RECORD_FORMAT`] instead.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use barbara_core::audio::ByteOrder;
use barbara_core::{
    Backend, Builtins, CallConfig, Limits, LiveConfig, OpenAiConfig, SignalWireRest, ToolSpec,
    TransportChoice, TurnDetection, WebRtcConfig,
};
use serde::{Deserialize, Serialize};

/// What the record holds instead of a secret.
pub(crate) const PLACEHOLDER: &str = "<not recorded>";

/// `config` as the record writes it.
pub(crate) fn to_json(config: &CallConfig) -> serde_json::Value {
    #[derive(Serialize)]
    struct Wrap<'a>(#[serde(with = "CallConfigDef")] &'a CallConfig);
    serde_json::to_value(Wrap(config)).unwrap_or_default()
}

/// The configuration a record's `config` describes, its secrets replaced by [`PLACEHOLDER`].
pub(crate) fn from_json(value: &serde_json::Value) -> Result<CallConfig, String> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(with = "CallConfigDef")] CallConfig);
    Wrap::deserialize(value)
        .map(|w| w.0)
        .map_err(|e| e.to_string())
}

/// The settings in a record's `config` that this code does not read (a newer `barbara` of the
/// same record format added them), as dotted paths: what reading it into `config` ignored.
pub(crate) fn unknown_settings(value: &serde_json::Value, config: &CallConfig) -> Vec<String> {
    let known = to_json(config);
    let mut unknown = Vec::new();
    missing_paths(value, &known, "", &mut unknown);
    unknown
}

/// Appends the paths of `record` that `known` lacks (objects by key, arrays by position).
fn missing_paths(
    record: &serde_json::Value,
    known: &serde_json::Value,
    path: &str,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (record, known) {
        (Value::Object(record), Value::Object(known)) => {
            for (key, value) in record {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known.get(key) {
                    Some(known) => missing_paths(value, known, &here, out),
                    None => out.push(here),
                }
            }
        }
        (Value::Array(record), Value::Array(known)) => {
            for (i, (value, known)) in record.iter().zip(known).enumerate() {
                missing_paths(value, known, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn secret<S: serde::Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(PLACEHOLDER)
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "CallConfig")]
struct CallConfigDef {
    #[serde(with = "OpenAiDef")]
    openai: OpenAiConfig,
    #[serde(default)]
    #[serde(with = "tools")]
    tools: Vec<ToolSpec>,
    #[serde(with = "BuiltinsDef")]
    builtins: Builtins,
    #[serde(default)]
    #[serde(with = "signalwire")]
    signalwire: Option<SignalWireRest>,
    #[serde(default)]
    public_url: Option<String>,
    #[serde(default)]
    instructions_by_number: BTreeMap<String, String>,
    #[serde(with = "BackendDef")]
    backend: Backend,
    #[serde(default)]
    #[serde(with = "backends")]
    backend_by_number: BTreeMap<String, Backend>,
    #[serde(with = "LiveDef")]
    live: LiveConfig,
    #[serde(with = "TransportDef")]
    transport: TransportChoice,
    #[serde(with = "WebRtcDef")]
    webrtc: WebRtcConfig,
    #[serde(with = "ByteOrderDef")]
    l16_byte_order: ByteOrder,
    #[serde(with = "LimitsDef")]
    limits: Limits,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "OpenAiConfig")]
struct OpenAiDef {
    #[serde(serialize_with = "secret")]
    api_key: String,
    base_url: String,
    model: String,
    voice: String,
    instructions: String,
    #[serde(with = "TurnDetectionDef")]
    turn_detection: TurnDetection,
    #[serde(default)]
    transcription_model: Option<String>,
    greet_first: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "TurnDetection")]
struct TurnDetectionDef {
    threshold: f32,
    prefix_padding_ms: u32,
    silence_duration_ms: u32,
    create_response: bool,
    interrupt_response: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "ToolSpec")]
struct ToolSpecDef {
    name: String,
    description: String,
    parameters: serde_json::Value,
    timeout: Duration,
    #[serde(default)]
    webhook: Option<String>,
    #[serde(default)]
    filler: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Builtins")]
struct BuiltinsDef {
    end_call: bool,
    send_dtmf: bool,
    transfer_call: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "SignalWireRest")]
struct SignalWireDef {
    space_url: String,
    project_id: String,
    #[serde(serialize_with = "secret")]
    api_token: String,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Backend", rename_all = "snake_case")]
enum BackendDef {
    Realtime,
    Live,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "LiveConfig")]
struct LiveDef {
    model: String,
    delegation_model: String,
    delegation_instructions: String,
    greeting: String,
    close_timeout: Duration,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "TransportChoice", rename_all = "snake_case")]
enum TransportDef {
    Auto,
    WebRtc,
    WebSocket,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "WebRtcConfig")]
struct WebRtcDef {
    #[serde(default)]
    local_addrs: Vec<SocketAddr>,
    connect_timeout: Duration,
    liveness_timeout: Duration,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "ByteOrder", rename_all = "snake_case")]
enum ByteOrderDef {
    Little,
    Big,
}

#[derive(Serialize, Deserialize)]
#[serde(remote = "Limits")]
struct LimitsDef {
    max_phone_message_bytes: usize,
    max_model_message_bytes: usize,
    held_audio: Duration,
    max_outstanding_marks: usize,
    max_running_tools: usize,
    default_tool_timeout: Duration,
    dtmf_pause: Duration,
    max_dtmf_digits: usize,
    stream_start_timeout: Duration,
    model_connect_timeout: Duration,
    hangup_drain: Duration,
    http_timeout: Duration,
    // Records from before rollover existed ran without it.
    #[serde(default)]
    session_rollover: Option<Duration>,
}

// `with` modules for the containers of remote types.

mod tools {
    use super::{Deserialize, Serialize, ToolSpec, ToolSpecDef};

    #[derive(Serialize)]
    struct Ref<'a>(#[serde(with = "ToolSpecDef")] &'a ToolSpec);
    #[derive(Deserialize)]
    struct Own(#[serde(with = "ToolSpecDef")] ToolSpec);

    pub(super) fn serialize<S: serde::Serializer>(v: &[ToolSpec], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(Ref))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<ToolSpec>, D::Error> {
        Ok(Vec::<Own>::deserialize(d)?
            .into_iter()
            .map(|o| o.0)
            .collect())
    }
}

mod signalwire {
    use super::{Deserialize, Serialize, SignalWireDef, SignalWireRest};

    #[derive(Serialize)]
    struct Ref<'a>(#[serde(with = "SignalWireDef")] &'a SignalWireRest);
    #[derive(Deserialize)]
    struct Own(#[serde(with = "SignalWireDef")] SignalWireRest);

    pub(super) fn serialize<S: serde::Serializer>(
        v: &Option<SignalWireRest>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        v.as_ref().map(Ref).serialize(s)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SignalWireRest>, D::Error> {
        Ok(Option::<Own>::deserialize(d)?.map(|o| o.0))
    }
}

mod backends {
    use super::{BTreeMap, Backend, BackendDef, Deserialize, Serialize};

    #[derive(Serialize)]
    struct Ref<'a>(#[serde(with = "BackendDef")] &'a Backend);
    #[derive(Deserialize)]
    struct Own(#[serde(with = "BackendDef")] Backend);

    pub(super) fn serialize<S: serde::Serializer>(
        v: &BTreeMap<String, Backend>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_map(v.iter().map(|(k, v)| (k, Ref(v))))
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Backend>, D::Error> {
        let map = BTreeMap::<String, Own>::deserialize(d)?;
        Ok(map.into_iter().map(|(k, o)| (k, o.0)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_survives_the_record_but_its_secrets_do_not() {
        let mut config = CallConfig::new("sk-very-secret");
        config.signalwire = Some(SignalWireRest {
            space_url: "https://example.signalwire.com".into(),
            project_id: "project".into(),
            api_token: "PT-also-secret".into(),
        });
        config.tools.push(ToolSpec {
            name: "lookup".into(),
            description: "Look it up.".into(),
            parameters: serde_json::json!({"type": "object"}),
            timeout: Duration::from_millis(1_500),
            webhook: Some("http://127.0.0.1:1/x".into()),
            filler: None,
        });
        config
            .backend_by_number
            .insert("+1555".into(), Backend::Live);
        config.openai.turn_detection.threshold = 0.37;
        config
            .webrtc
            .local_addrs
            .push("127.0.0.1:4000".parse().unwrap());
        let json = to_json(&config);
        let text = json.to_string();
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(json["openai"]["api_key"], PLACEHOLDER);
        let back = from_json(&json).unwrap();
        assert_eq!(back.openai.api_key, PLACEHOLDER);
        assert_eq!(back.signalwire.as_ref().unwrap().api_token, PLACEHOLDER);
        // Everything else is as it was.
        assert_eq!(to_json(&back), json);
        assert_eq!(back.tools, config.tools);
        assert_eq!(back.openai.turn_detection, config.openai.turn_detection);
        assert_eq!(back.backend_by_number, config.backend_by_number);
    }

    /// The configuration's JSON with the fields at `paths` (`/`-separated) removed.
    fn without(paths: &[&str]) -> serde_json::Value {
        let mut json = to_json(&CallConfig::new("sk-test"));
        for path in paths {
            let (parent, field) = path.rsplit_once('/').unwrap_or(("", path));
            let parent = if parent.is_empty() {
                Some(&mut json)
            } else {
                json.pointer_mut(&format!("/{parent}"))
            };
            let removed = parent.and_then(|p| p.as_object_mut()?.remove(field));
            assert!(removed.is_some(), "{path} is not in the snapshot");
        }
        json
    }

    #[test]
    fn a_record_from_before_session_rollover_loads_with_rollover_off() {
        let config = from_json(&without(&["limits/session_rollover"])).unwrap();
        assert_eq!(config.limits.session_rollover, None);
        assert_eq!(
            config.limits.http_timeout,
            CallConfig::new("").limits.http_timeout
        );
    }

    #[test]
    fn missing_optional_settings_lists_and_maps_load_as_absent_or_empty() {
        let json = without(&[
            "tools",
            "signalwire",
            "public_url",
            "instructions_by_number",
            "backend_by_number",
            "openai/transcription_model",
            "webrtc/local_addrs",
        ]);
        let config = from_json(&json).unwrap();
        assert!(config.tools.is_empty());
        assert!(config.signalwire.is_none());
        assert_eq!(config.openai.transcription_model, None);
        assert!(config.backend_by_number.is_empty());
        assert!(config.webrtc.local_addrs.is_empty());
    }

    #[test]
    fn fields_a_newer_barbara_added_are_ignored() {
        let mut json = to_json(&CallConfig::new("sk-test"));
        json["future_setting"] = serde_json::json!({"on": true});
        json["limits"]["future_limit_ms"] = 250.into();
        let config = from_json(&json).unwrap();
        assert_eq!(to_json(&config), to_json(&CallConfig::new("sk-test")));
    }

    #[test]
    fn a_missing_setting_without_a_safe_default_is_named() {
        let e = from_json(&without(&["openai/greet_first"])).err().unwrap();
        assert!(e.contains("greet_first"), "{e}");
        let e = from_json(&serde_json::json!("not a configuration"))
            .err()
            .unwrap();
        assert!(!e.is_empty());
    }
}
