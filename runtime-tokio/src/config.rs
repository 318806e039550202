//! Settings: the environment first (compatible with the seed's variables), then the optional
//! TOML file named by `BARBARA_CONFIG`, mapped into the core's [`CallConfig`].
//!
//! The TOML part is read again on `SIGHUP` ([`Settings::load_call_config`]); the rest is fixed at
//! start-up. Secrets (the API key, the SignalWire token and signing key) are never formatted:
//! neither [`Settings`] nor [`Live`] implements `Debug`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use barbara_core::{
    Backend, Call, CallConfig, ConfigError, DEFAULT_BASE_URL, SignalWireRest, ToolSpec,
    TransportChoice,
};

/// A setting that stops start-up (or a reload): its name and what is wrong, on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The variable (or `BARBARA_CONFIG` for the file).
    pub name: String,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.problem)
    }
}

impl std::error::Error for SettingError {}

fn bad(name: &str, problem: impl Into<String>) -> SettingError {
    // One line, whatever the source of the message.
    let problem: String = problem.into();
    let problem = problem.split_whitespace().collect::<Vec<_>>().join(" ");
    SettingError {
        name: name.to_owned(),
        problem,
    }
}

/// What new calls get: the per-call configuration and the `<Stream codec>` to ask for.
#[derive(Clone)]
pub struct Live {
    /// The core's configuration, with the instruction template still unrendered.
    pub call: CallConfig,
    /// `PCMU@8000h`, `L16@16000h` or `L16@24000h`; `None` leaves SignalWire's default.
    pub codec: Option<String>,
}

/// Every setting of the server.
#[derive(Clone)]
pub struct Settings {
    /// `PORT`.
    pub port: u16,
    /// `PUBLIC_URL`, without a trailing slash.
    pub public_url: Option<String>,
    /// `SIGNALWIRE_SIGNING_KEY`: verifies webhooks and signs stream tokens.
    pub signing_key: Option<String>,
    /// `BARBARA_RECORDS_DIR`.
    pub records_dir: PathBuf,
    /// `BARBARA_RECORD_AUDIO` (default `true`): `false` leaves the audio out of the records'
    /// input logs, and such a record cannot be replayed.
    pub record_audio: bool,
    /// `BARBARA_WEBRTC_IP`.
    pub webrtc_ip: IpAddr,
    /// `BARBARA_MAX_CALLS`.
    pub max_calls: usize,
    /// `BARBARA_SHUTDOWN_GRACE_SECS`.
    pub shutdown_grace: Duration,
    /// `ENABLE_DEBUG_LOGGING`.
    pub debug_logging: bool,
    /// `BARBARA_CONFIG`.
    pub config_file: Option<PathBuf>,
    /// The configuration new calls get, as loaded at start-up.
    pub live: Live,
    /// The environment's part of the call configuration, before the file.
    base: CallConfig,
    env_model: Option<String>,
    env_voice: Option<String>,
    env_backend: Option<Backend>,
}

impl Settings {
    /// Reads the process environment (and the file it names).
    ///
    /// # Errors
    /// The first missing or malformed setting.
    pub fn from_env() -> Result<Settings, SettingError> {
        Settings::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads settings through `var` (empty values count as unset), for tests and the demo.
    ///
    /// # Errors
    /// The first missing or malformed setting.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let api_key = var("OPENAI_API_KEY").ok_or_else(|| bad("OPENAI_API_KEY", "is not set"))?;
        let mut base = CallConfig::new(api_key.trim());
        base.openai.base_url = var("OPENAI_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.into());
        base.transport =
            TransportChoice::from_use_webrtc(parse_bool(&var, "USE_WEBRTC")?.unwrap_or(false));
        base.public_url = var("PUBLIC_URL").map(|u| u.trim_end_matches('/').to_owned());
        if let Some(url) = &base.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(bad("PUBLIC_URL", format!("{url:?} is not an http(s) URL")));
        }
        base.signalwire = signalwire(&var)?;
        if let Some(model) = var("OPENAI_LIVE_MODEL") {
            base.live.model = model.trim().to_owned();
        }
        if let Some(model) = var("OPENAI_LIVE_DELEGATION_MODEL") {
            base.live.delegation_model = model.trim().to_owned();
        }
        let env_backend = match var("BARBARA_BACKEND") {
            Some(name) => Some(backend("BARBARA_BACKEND", "", &name)?),
            None => None,
        };
        let parse = |name: &str, default: u64| -> Result<u64, SettingError> {
            var(name).map_or(Ok(default), |v| {
                v.trim()
                    .parse()
                    .map_err(|_| bad(name, format!("expected a whole number, got {v:?}")))
            })
        };
        let port = u16::try_from(parse("PORT", 8080)?).map_err(|_| bad("PORT", "is too large"))?;
        let max_calls = usize::try_from(parse("BARBARA_MAX_CALLS", 100)?).unwrap_or(usize::MAX);
        if max_calls == 0 || max_calls > 100_000 {
            return Err(bad("BARBARA_MAX_CALLS", "must be between 1 and 100000"));
        }
        let webrtc_ip = match var("BARBARA_WEBRTC_IP") {
            Some(ip) => ip
                .trim()
                .parse()
                .map_err(|_| bad("BARBARA_WEBRTC_IP", format!("{ip:?} is not an IP address")))?,
            None => IpAddr::from([127, 0, 0, 1]),
        };
        let mut settings = Settings {
            port,
            public_url: base.public_url.clone(),
            signing_key: var("SIGNALWIRE_SIGNING_KEY"),
            records_dir: var("BARBARA_RECORDS_DIR").map_or_else(|| "calls".into(), PathBuf::from),
            record_audio: parse_bool(&var, "BARBARA_RECORD_AUDIO")?.unwrap_or(true),
            webrtc_ip,
            max_calls,
            shutdown_grace: Duration::from_secs(parse("BARBARA_SHUTDOWN_GRACE_SECS", 30)?),
            debug_logging: parse_bool(&var, "ENABLE_DEBUG_LOGGING")?.unwrap_or(false),
            config_file: var("BARBARA_CONFIG").map(PathBuf::from),
            live: Live {
                call: base.clone(),
                codec: None,
            },
            base,
            env_model: var("OPENAI_MODEL"),
            env_voice: var("OPENAI_VOICE"),
            env_backend,
        };
        settings.live = settings.load_call_config()?;
        Ok(settings)
    }

    /// Builds the configuration for new calls: the environment, then the file (read again now).
    ///
    /// # Errors
    /// An unreadable or invalid file, or a configuration the core refuses.
    pub fn load_call_config(&self) -> Result<Live, SettingError> {
        let file = match &self.config_file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    bad(
                        "BARBARA_CONFIG",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| {
                    bad(
                        "BARBARA_CONFIG",
                        format!("{}: {}", path.display(), e.message()),
                    )
                })?
            }
            None => FileConfig::default(),
        };
        let mut call = self.base.clone();
        let openai = &mut call.openai;
        if let Some(model) = self.env_model.clone().or(file.model) {
            openai.model = model;
        }
        if let Some(voice) = self.env_voice.clone().or(file.voice) {
            openai.voice = voice;
        }
        if let Some(instructions) = file.instructions {
            openai.instructions = instructions;
        }
        if let Some(greet_first) = file.greet_first {
            openai.greet_first = greet_first;
        }
        if let Some(name) = &file.backend {
            call.backend = backend("BARBARA_CONFIG", "backend", name)?;
        }
        if let Some(backend) = self.env_backend {
            call.backend = backend;
        }
        for (number, entry) in file.numbers {
            if let Some(name) = &entry.backend {
                let key = format!("numbers.{number:?}.backend");
                let backend = backend("BARBARA_CONFIG", &key, name)?;
                call.backend_by_number.insert(number.clone(), backend);
            }
            if let Some(instructions) = entry.instructions {
                call.instructions_by_number.insert(number, instructions);
            }
        }
        for tool in file.tools {
            if let Some(url) = &tool.webhook
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                let problem = format!("tool {:?}: webhook {url:?} is not http(s)", tool.name);
                return Err(bad("BARBARA_CONFIG", problem));
            }
            call.tools.push(ToolSpec {
                name: tool.name,
                description: tool.description,
                parameters: tool.parameters,
                timeout: Duration::from_millis(tool.timeout_ms.unwrap_or(0)),
                webhook: tool.webhook,
                filler: tool.filler,
            });
        }
        if let Some(codec) = &file.codec
            && !["PCMU@8000h", "L16@16000h", "L16@24000h"].contains(&codec.as_str())
        {
            let problem = format!("codec {codec:?} is not PCMU@8000h, L16@16000h or L16@24000h");
            return Err(bad("BARBARA_CONFIG", problem));
        }
        // The core validates its own configuration; a throwaway call asks it.
        if let Err(e) = Call::new(call.clone(), [0; 32], Instant::now(), Duration::ZERO) {
            let name = match e {
                ConfigError::MissingApiKey => "OPENAI_API_KEY",
                ConfigError::BadBaseUrl(_) => "OPENAI_BASE_URL",
                ConfigError::EmptyModel if self.env_model.is_some() => "OPENAI_MODEL",
                _ => "BARBARA_CONFIG",
            };
            return Err(bad(name, e.to_string()));
        }
        Ok(Live {
            call,
            codec: file.codec,
        })
    }
}

/// Reads a backend name given in setting `name` (as its `key`, for the file).
fn backend(name: &str, key: &str, value: &str) -> Result<Backend, SettingError> {
    Backend::parse(value).ok_or_else(|| {
        let key = if key.is_empty() {
            String::new()
        } else {
            format!("{key}: ")
        };
        bad(
            name,
            format!("{key}expected realtime or live, got {value:?}"),
        )
    })
}

fn parse_bool(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<bool>, SettingError> {
    let Some(value) = var(name) else {
        return Ok(None);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(Some(true)),
        "false" | "0" | "no" | "off" => Ok(Some(false)),
        _ => Err(bad(name, format!("expected true or false, got {value:?}"))),
    }
}

fn signalwire(
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Option<SignalWireRest>, SettingError> {
    const NAMES: [&str; 3] = [
        "SIGNALWIRE_SPACE_URL",
        "SIGNALWIRE_PROJECT_ID",
        "SIGNALWIRE_API_TOKEN",
    ];
    match NAMES.map(var) {
        [None, None, None] => Ok(None),
        [Some(space), Some(project_id), Some(api_token)] => {
            let space = space.trim().trim_end_matches('/');
            Ok(Some(SignalWireRest {
                space_url: if space.contains("://") {
                    space.to_owned()
                } else {
                    format!("https://{space}")
                },
                project_id: project_id.trim().to_owned(),
                api_token: api_token.trim().to_owned(),
            }))
        }
        values => {
            let missing = NAMES
                .iter()
                .zip(&values)
                .find(|(_, v)| v.is_none())
                .map_or(NAMES[0], |(name, _)| name);
            Err(bad(
                missing,
                "is not set (the SignalWire REST settings go together)",
            ))
        }
    }
}

/// The TOML file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    instructions: Option<String>,
    voice: Option<String>,
    model: Option<String>,
    codec: Option<String>,
    greet_first: Option<bool>,
    backend: Option<String>,
    #[serde(default)]
    numbers: BTreeMap<String, NumberEntry>,
    #[serde(default)]
    tools: Vec<ToolEntry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberEntry {
    instructions: Option<String>,
    backend: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolEntry {
    name: String,
    description: String,
    #[serde(default = "empty_schema")]
    parameters: serde_json::Value,
    webhook: Option<String>,
    timeout_ms: Option<u64>,
    filler: Option<String>,
}

fn empty_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_seed() {
        let s = settings(&[("OPENAI_API_KEY", "sk-test")]).unwrap();
        assert_eq!(s.port, 8080);
        assert_eq!(s.max_calls, 100);
        assert_eq!(s.records_dir, PathBuf::from("calls"));
        assert!(s.record_audio);
        assert_eq!(s.webrtc_ip, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(s.live.call.openai.base_url, DEFAULT_BASE_URL);
        assert_eq!(s.live.call.transport, TransportChoice::WebSocket);
        assert!(s.live.call.signalwire.is_none());
    }

    #[test]
    fn each_bad_setting_is_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "OPENAI_API_KEY"),
            (&[("PORT", "eighty")], "PORT"),
            (&[("USE_WEBRTC", "maybe")], "USE_WEBRTC"),
            (&[("OPENAI_BASE_URL", "ftp://x")], "OPENAI_BASE_URL"),
            (&[("BARBARA_WEBRTC_IP", "here")], "BARBARA_WEBRTC_IP"),
            (&[("BARBARA_MAX_CALLS", "0")], "BARBARA_MAX_CALLS"),
            (&[("SIGNALWIRE_SPACE_URL", "x")], "SIGNALWIRE_PROJECT_ID"),
            (&[("BARBARA_CONFIG", "/nonexistent.toml")], "BARBARA_CONFIG"),
            (&[("PUBLIC_URL", "bridge.example.com")], "PUBLIC_URL"),
            (&[("BARBARA_BACKEND", "turbo")], "BARBARA_BACKEND"),
            (
                &[("BARBARA_RECORD_AUDIO", "sometimes")],
                "BARBARA_RECORD_AUDIO",
            ),
        ];
        for (vars, name) in cases {
            let mut all = vars.to_vec();
            if *name != "OPENAI_API_KEY" {
                all.push(("OPENAI_API_KEY", "sk-test"));
            }
            let err = settings(&all).err().unwrap();
            assert_eq!(err.name, *name, "{err}");
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn the_example_file_loads_and_env_wins() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/barbara.toml");
        let s = settings(&[
            ("OPENAI_API_KEY", "sk-test"),
            ("BARBARA_CONFIG", path),
            ("OPENAI_VOICE", "cedar"),
            ("USE_WEBRTC", "true"),
        ])
        .unwrap();
        let call = &s.live.call;
        assert_eq!(call.openai.voice, "cedar");
        assert_eq!(call.transport, TransportChoice::Auto);
        assert!(call.tools.len() >= 2);
        assert!(call.tools.iter().any(|t| t.webhook.is_some()));
        assert!(call.tools.iter().all(|t| t.parameters.is_object()));
        assert!(!call.instructions_by_number.is_empty());
        assert_eq!(call.backend, Backend::Realtime);
        assert!(call.backend_by_number.values().any(|b| *b == Backend::Live));
    }

    #[test]
    fn backend_comes_from_the_environment_over_the_file_and_per_number() {
        let s = settings(&[("OPENAI_API_KEY", "sk-test")]).unwrap();
        let call = &s.live.call;
        assert_eq!(call.backend, Backend::Realtime);
        assert_eq!(call.live.model, barbara_core::DEFAULT_LIVE_MODEL);
        assert_eq!(
            call.live.delegation_model,
            barbara_core::DEFAULT_LIVE_DELEGATION_MODEL
        );

        let dir = std::env::temp_dir().join(format!("barbara-backend-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("backend.toml");
        let file = "backend = \"live\"\n\
                    [numbers.\"+15550001\"]\nbackend = \"realtime\"\n\
                    [numbers.\"+15550002\"]\ninstructions = \"Returns desk.\"\n";
        std::fs::write(&path, file).unwrap();
        let path = path.to_str().unwrap();
        let s = settings(&[("OPENAI_API_KEY", "sk-test"), ("BARBARA_CONFIG", path)]).unwrap();
        let call = &s.live.call;
        assert_eq!(call.backend, Backend::Live);
        let by_number: Vec<_> = call.backend_by_number.iter().collect();
        assert_eq!(by_number, [(&"+15550001".to_owned(), &Backend::Realtime)]);
        assert_eq!(call.instructions_by_number.len(), 1);

        let s = settings(&[
            ("OPENAI_API_KEY", "sk-test"),
            ("BARBARA_CONFIG", path),
            ("BARBARA_BACKEND", "Realtime"),
            ("OPENAI_LIVE_MODEL", "gpt-live-2"),
            ("OPENAI_LIVE_DELEGATION_MODEL", "gpt-6"),
        ])
        .unwrap();
        let call = &s.live.call;
        assert_eq!(call.backend, Backend::Realtime, "the environment wins");
        assert_eq!(call.backend_by_number.len(), 1);
        assert_eq!(
            (
                call.live.model.as_str(),
                call.live.delegation_model.as_str()
            ),
            ("gpt-live-2", "gpt-6")
        );

        for (file, key) in [
            ("backend = \"turbo\"\n", "backend: "),
            (
                "[numbers.\"+15550001\"]\nbackend = \"fast\"\n",
                "numbers.\"+15550001\".backend: ",
            ),
        ] {
            std::fs::write(dir.join("bad.toml"), file).unwrap();
            let bad = dir.join("bad.toml");
            let err = settings(&[
                ("OPENAI_API_KEY", "sk-test"),
                ("BARBARA_CONFIG", bad.to_str().unwrap()),
            ])
            .err()
            .unwrap();
            assert_eq!(err.name, "BARBARA_CONFIG");
            assert!(err.problem.starts_with(key), "{err}");
            assert!(err.problem.contains("realtime or live"), "{err}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_toml_is_one_line_naming_the_file() {
        let dir = std::env::temp_dir().join(format!("barbara-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "[[tools]]\nname = \"x\"\nsurprise = 1\n").unwrap();
        let err = settings(&[
            ("OPENAI_API_KEY", "sk-test"),
            ("BARBARA_CONFIG", path.to_str().unwrap()),
        ])
        .err()
        .unwrap();
        assert_eq!(err.name, "BARBARA_CONFIG");
        assert!(!err.to_string().contains('\n'));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
