//! What the loopback tests share: a server on an ephemeral port with its records in a fresh
//! directory (removed when the test ends), scripts for the fakes, and small HTTP helpers.
#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::time::Duration;

use barbara_core::sim::fake_caller::{CallerScript, HangupStyle, Utterance};
use barbara_core::sim::fake_realtime::{RealtimeScript, ScriptedResponse};
use barbara_tokio::fakes::FakeOpenAi;
use barbara_tokio::{Server, Settings, serve};
use base64::Engine as _;
use tokio::net::TcpListener;

pub(crate) const CALL_SID: &str = "CA0123456789abcdef0123456789abcdef";

pub(crate) struct Harness {
    pub(crate) server: Server,
    pub(crate) port: u16,
    /// The records directory, removed with the harness.
    pub(crate) dir: TempPath,
}

impl Harness {
    /// The server against OpenAI at `base_url`, with `extra` settings on top of the defaults.
    pub(crate) async fn start(name: &str, base_url: &str, extra: &[(&str, &str)]) -> Harness {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = TempPath::new(name);
        let mut vars: Vec<(String, String)> = vec![
            ("OPENAI_API_KEY".into(), "sk-test".into()),
            ("OPENAI_BASE_URL".into(), base_url.into()),
            ("PUBLIC_URL".into(), format!("http://127.0.0.1:{port}")),
            ("BARBARA_RECORDS_DIR".into(), dir.display().to_string()),
        ];
        vars.extend(extra.iter().map(|(k, v)| ((*k).into(), (*v).into())));
        let settings = Settings::from_vars(|name| {
            vars.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
        .unwrap();
        let server = serve(settings, listener).unwrap();
        Harness { server, port, dir }
    }

    /// The server against a fake OpenAI Realtime WebSocket server playing `script`.
    pub(crate) async fn websocket(
        name: &str,
        extra: &[(&str, &str)],
        script: RealtimeScript,
    ) -> (Harness, FakeOpenAi) {
        let openai = FakeOpenAi::start(script).await.unwrap();
        (
            Harness::start(name, &openai.base_url(), extra).await,
            openai,
        )
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn stream_url(&self) -> String {
        format!("ws://127.0.0.1:{}/media-stream", self.port)
    }

    /// POSTs a form, with headers; returns the status and body.
    pub(crate) async fn post(
        &self,
        path: &str,
        form: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        post_form(&self.url(path), form, headers).await
    }

    pub(crate) async fn get(&self, path: &str) -> String {
        let url = self.url(path);
        tokio::task::spawn_blocking(move || {
            ureq::get(&url)
                .call()
                .unwrap()
                .body_mut()
                .read_to_string()
                .unwrap()
        })
        .await
        .unwrap()
    }

    /// Answers the voice webhook for `CALL_SID` and returns the stream token from the cXML.
    pub(crate) async fn token(&self) -> String {
        let form = format!("CallSid={CALL_SID}&From=%2B15551230001&To=%2B15551230002");
        let (status, cxml) = self.post("/incoming-call", &form, &[]).await;
        assert_eq!(status, 200, "{cxml}");
        attribute(&cxml, "authBearerToken").unwrap()
    }

    /// Waits until no call is in progress (their records are then complete).
    pub(crate) async fn wait_idle(&self) {
        tokio::time::timeout(Duration::from_secs(20), self.server.idle())
            .await
            .expect("the call ended");
    }

    pub(crate) fn record_path(&self) -> PathBuf {
        self.dir.join(format!("{CALL_SID}.jsonl"))
    }

    pub(crate) fn record(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.record_path()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The record's events: `event` of each event line, in order.
    pub(crate) fn events(&self) -> Vec<serde_json::Value> {
        let record = self.record();
        record
            .into_iter()
            .filter(|l| l["record"] == "event")
            .collect()
    }

    /// Whether the record has an event named `name`.
    pub(crate) fn has_event(&self, name: &str) -> bool {
        self.events().iter().any(|e| e["event"] == name)
    }
}

/// A fresh path under the temporary directory, per test and process.
pub(crate) fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("barbara-e2e-{name}-{}", std::process::id()))
}

/// A path under the temporary directory ([`temp_path`]); whatever is there (a file or a
/// directory) is removed when the guard is dropped, at the end of the test or as it panics.
pub(crate) struct TempPath(PathBuf);

impl TempPath {
    /// The path for `name`, cleared of anything a previous run left there.
    pub(crate) fn new(name: &str) -> TempPath {
        let path = TempPath(temp_path(name));
        path.remove();
        path
    }

    /// The path as a string, for settings.
    pub(crate) fn as_str(&self) -> &str {
        self.0.to_str().expect("temporary paths are UTF-8")
    }

    fn remove(&self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

impl std::ops::Deref for TempPath {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Writes a configuration file for test `name`; it is removed with the guard returned.
pub(crate) fn config_file(name: &str, toml: &str) -> TempPath {
    let path = TempPath::new(&format!("{name}-config.toml"));
    std::fs::write(&*path, toml).unwrap();
    path
}

/// POSTs a form to `url`, with headers; returns the status and body.
pub(crate) async fn post_form(url: &str, form: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let (url, form) = (url.to_owned(), form.to_owned());
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut request = ureq::post(&url)
            .config()
            .http_status_as_error(false)
            .build()
            .content_type("application/x-www-form-urlencoded");
        for (k, v) in &headers {
            request = request.header(k, v);
        }
        let mut response = request.send(form.as_str()).unwrap();
        let status = response.status().as_u16();
        (status, response.body_mut().read_to_string().unwrap())
    })
    .await
    .unwrap()
}

pub(crate) fn attribute(xml: &str, name: &str) -> Option<String> {
    let rest = xml.split(&format!("{name}=\"")).nth(1)?;
    Some(rest.split('"').next()?.to_owned())
}

/// A reply of the fake model: text, audio length, tool calls.
pub(crate) fn reply(
    text: &str,
    audio_ms: u32,
    tools: &[(&str, serde_json::Value)],
) -> ScriptedResponse {
    ScriptedResponse {
        text: text.to_owned(),
        audio_ms,
        tool_calls: tools
            .iter()
            .map(|(name, arguments)| ((*name).to_owned(), arguments.clone()))
            .collect(),
    }
}

/// The fake model's script: these replies, in order.
pub(crate) fn script_of(responses: Vec<ScriptedResponse>) -> RealtimeScript {
    RealtimeScript {
        responses,
        caller_transcripts: vec!["What time do you open?".to_owned()],
        ..RealtimeScript::default()
    }
}

/// The fake model's script: replies of (text, audio ms) without tools.
pub(crate) fn script(responses: &[(&str, u32)]) -> RealtimeScript {
    script_of(responses.iter().map(|(t, ms)| reply(t, *ms, &[])).collect())
}

/// A caller of `CALL_SID` who speaks at (start ms, duration ms) and hangs up at `hangup_ms`.
pub(crate) fn caller(utterances: &[(u64, u64)], hangup_ms: u64) -> CallerScript {
    CallerScript {
        call_sid: CALL_SID.to_owned(),
        utterances: utterances
            .iter()
            .map(|&(start, duration)| Utterance {
                start: Duration::from_millis(start),
                duration: Duration::from_millis(duration),
            })
            .collect(),
        hangup: Some((Duration::from_millis(hangup_ms), HangupStyle::Stop)),
        // What the cXML's <Parameter>s give a real stream.
        custom_parameters: vec![
            ("From".to_owned(), "+15551230001".to_owned()),
            ("To".to_owned(), "+15551230002".to_owned()),
        ],
        ..CallerScript::default()
    }
}

/// SignalWire's webhook signature of `url` and `fields` under `key`.
pub(crate) fn signature(key: &str, url: &str, fields: &[(&str, &str)]) -> String {
    let mut sorted = fields.to_vec();
    sorted.sort_by_key(|(k, _)| *k);
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, data.as_bytes()))
}
