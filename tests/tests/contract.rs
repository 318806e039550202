//! The adapter contract: the same loopback call (a greeting the caller talks over, a tool
//! answered by a webhook, a reply, the caller hanging up), over the WebSocket transport and
//! over WebRTC, run through each runtime adapter — the tokio server, the async-std server on
//! async-std, and the same async-std server on smol — must make the core report the same
//! events in the same order (times may differ).
//!
//! The fakes (OpenAI over real sockets, the tool webhook, the SignalWire caller) run on a tokio
//! runtime of their own; each adapter runs on its own executor in its own thread. The tool
//! webhook answers after a delay, so that the tool's output reaches the core after the
//! model's `response.done` on every transport (otherwise their order is a real race).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use barbara_async_std::Spawn;
use barbara_core::auth::StreamTokens;
use barbara_core::sim::fake_caller::{CallerReport, CallerScript, HangupStyle, Utterance};
use barbara_core::sim::fake_realtime::{RealtimeScript, ScriptedResponse};
use barbara_core::sim::fake_webrtc::WebRtcFakeMode;
use barbara_core::{CallConfig, Event};
use barbara_tokio::Settings;
use barbara_tokio::fakes::{self, FakeOpenAi, FakeOpenAiWebRtc};
use serde_json::json;

const SECRET: &str = "PSK-contract-test-secret";
const CALL_SID: &str = "CA0123456789abcdef0123456789abcdef";
/// Longest a call may take before its adapter gives up on it.
const LIMIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Transport {
    WebSocket,
    WebRtc,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Adapter {
    Tokio,
    AsyncStd,
    Smol,
}

/// The fake OpenAI's script: a long greeting the caller talks over, a reply that calls the
/// tool, and the answer given with its output.
fn script() -> RealtimeScript {
    let say = |text: &str, audio_ms, tool_calls| ScriptedResponse {
        text: text.to_owned(),
        audio_ms,
        tool_calls,
    };
    let lookup = vec![("lookup_order".to_owned(), json!({"order_id": "A1234"}))];
    RealtimeScript {
        responses: vec![
            say(
                "Hello, this is Barbara. How can I help you today?",
                4_000,
                vec![],
            ),
            say("Let me look that up.", 600, lookup),
            say("Your order arrives on Friday.", 1_000, vec![]),
        ],
        caller_transcripts: vec!["Where is my order?".to_owned()],
        ..RealtimeScript::default()
    }
}

/// The caller talks over the greeting, then listens, then hangs up.
fn caller(transport: Transport, token: &str) -> CallerScript {
    let mut script = CallerScript {
        call_sid: CALL_SID.to_owned(),
        utterances: vec![Utterance {
            start: Duration::from_millis(1_800),
            duration: Duration::from_millis(900),
        }],
        hangup: Some((Duration::from_millis(8_000), HangupStyle::Stop)),
        ..CallerScript::default()
    };
    // One transport shows the token in `start`, the other at the upgrade.
    if transport == Transport::WebRtc {
        let param = ("token".to_owned(), token.to_owned());
        script.custom_parameters.push(param);
    }
    script
}

/// A fresh stream token for `CALL_SID`, as the cXML webhook would mint it.
fn token(nonce: u8) -> String {
    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    StreamTokens::new(SECRET.as_bytes()).mint(unix, CALL_SID, [nonce; 9])
}

/// How long the tool webhook takes to answer: long enough that the model's `response.done`
/// (a few datagrams behind the function call over WebRTC) always comes first.
const WEBHOOK_DELAY: Duration = Duration::from_millis(300);

/// The tool webhook: answers every request after [`WEBHOOK_DELAY`], and counts them.
struct Webhook {
    url: String,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Webhook {
    async fn start() -> Webhook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        let answer = move || {
            seen.fetch_add(1, Ordering::SeqCst);
            async {
                tokio::time::sleep(WEBHOOK_DELAY).await;
                let json = [("content-type", "application/json")];
                (
                    json,
                    r#"{"output":{"status":"shipped","eta":"Friday"},"action":null}"#,
                )
            }
        };
        let router = axum::Router::new().fallback(answer);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Webhook {
            url,
            requests,
            task,
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fakes one call talks to, on the fakes' runtime.
struct Fakes {
    runtime: tokio::runtime::Runtime,
    webhook: Webhook,
    config: PathBuf,
}

impl Fakes {
    fn start(name: &str) -> Fakes {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let webhook = runtime.block_on(Webhook::start());
        let config = std::env::temp_dir().join(format!(
            "barbara-contract-{name}-{}.toml",
            std::process::id()
        ));
        let toml = format!(
            "[[tools]]\nname = \"lookup_order\"\ndescription = \"Look up an order.\"\n\
             webhook = \"{}/tools/lookup_order\"\ntimeout_ms = 3000\n",
            webhook.url
        );
        std::fs::write(&config, toml).unwrap();
        Fakes {
            runtime,
            webhook,
            config,
        }
    }

    /// A fake OpenAI for one call: its base URL, and what keeps it running.
    fn openai(&self, transport: Transport) -> (String, Box<dyn Send>) {
        match transport {
            Transport::WebSocket => {
                let fake = self.runtime.block_on(FakeOpenAi::start(script())).unwrap();
                (fake.base_url(), Box::new(fake))
            }
            Transport::WebRtc => {
                let start = FakeOpenAiWebRtc::start(script(), WebRtcFakeMode::default());
                let fake = self.runtime.block_on(start).unwrap();
                (fake.base_url(), Box::new(fake))
            }
        }
    }

    /// The server's settings for a call against OpenAI at `base_url`, as the tokio server
    /// reads them; the async-std server gets the same call configuration.
    fn settings(&self, transport: Transport, base_url: &str, records: &Path) -> Settings {
        let use_webrtc = if transport == Transport::WebRtc {
            "true"
        } else {
            "false"
        };
        let vars = [
            ("OPENAI_API_KEY", "sk-test".to_owned()),
            ("OPENAI_BASE_URL", base_url.to_owned()),
            ("USE_WEBRTC", use_webrtc.to_owned()),
            ("SIGNALWIRE_SIGNING_KEY", SECRET.to_owned()),
            ("BARBARA_CONFIG", self.config.display().to_string()),
            ("BARBARA_RECORDS_DIR", records.display().to_string()),
        ];
        Settings::from_vars(|name| {
            let found = vars.iter().find(|(k, _)| *k == name);
            found.map(|(_, v)| v.clone())
        })
        .unwrap()
    }

    /// Plays the caller against `url` on the fakes' runtime.
    fn call(&self, url: String, bearer: Option<String>, script: CallerScript) -> CallSpawned {
        self.runtime.spawn(async move {
            fakes::call(&url, bearer.as_deref(), script, LIMIT)
                .await
                .expect("the media stream opened")
        })
    }
}

impl Drop for Fakes {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

type CallSpawned = tokio::task::JoinHandle<CallerReport>;

/// What one adapter's call showed: the core's event kinds in order, and the caller's report.
struct Outcome {
    adapter: Adapter,
    events: Vec<String>,
    model_ready: Vec<String>,
    /// Why the call ended.
    ended: serde_json::Value,
    caller: CallerReport,
}

fn kind(event: &serde_json::Value) -> String {
    event["event"].as_str().unwrap_or("?").to_owned()
}

/// Runs the call through the tokio server, on a runtime of its own.
fn on_tokio(fakes: &Fakes, transport: Transport, base_url: &str, name: &str) -> Outcome {
    let records = std::env::temp_dir().join(format!(
        "barbara-contract-{name}-records-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&records);
    let settings = fakes.settings(transport, base_url, &records);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (addr, caller) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = barbara_tokio::serve(settings, listener).unwrap();
        let addr = server.local_addr();
        let url = format!("ws://{addr}/media-stream");
        let caller = fakes.call(url, bearer(transport, 1), caller(transport, &token(1)));
        let caller = caller.await.unwrap();
        tokio::time::timeout(LIMIT, server.idle())
            .await
            .expect("the call ended");
        server.shutdown(Duration::from_secs(1)).await;
        (addr, caller)
    });
    drop(runtime);
    let after = std::net::TcpStream::connect(addr);
    assert!(after.is_err(), "tokio: the listener is closed");
    let record = std::fs::read_to_string(records.join(format!("{CALL_SID}.jsonl"))).unwrap();
    let _ = std::fs::remove_dir_all(&records);
    let lines: Vec<serde_json::Value> = record
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &serde_json::Value| l["record"] == "event")
        .collect();
    outcome(Adapter::Tokio, &lines, caller)
}

/// The bearer token for the upgrade, over the transport that shows it there.
fn bearer(transport: Transport, nonce: u8) -> Option<String> {
    (transport == Transport::WebSocket).then(|| token(nonce))
}

/// The async-std server's settings for a call against OpenAI at `base_url`: the tokio
/// server's call configuration; every event goes to `events`.
fn async_std_settings(
    fakes: &Fakes,
    transport: Transport,
    base_url: &str,
    events: Arc<Mutex<Vec<Event>>>,
) -> barbara_async_std::Settings {
    let records = std::env::temp_dir().join("unused");
    let call: CallConfig = fakes.settings(transport, base_url, &records).live.call;
    barbara_async_std::Settings {
        call,
        stream_secret: SECRET.as_bytes().to_vec(),
        webrtc_ip: IpAddr::from([127, 0, 0, 1]),
        on_event: Some(Arc::new(move |call_sid: &str, event: &Event| {
            assert_eq!(call_sid, CALL_SID);
            events.lock().unwrap().push(event.clone());
        })),
    }
}

/// Runs the async-std server on async-std or on smol, in a thread of its own, while `play`
/// plays callers against its address; then shuts it down, waiting for its calls to end.
fn with_async_std_server<T>(
    settings: barbara_async_std::Settings,
    adapter: Adapter,
    play: impl FnOnce(SocketAddr) -> T,
) -> T {
    let (listening, address) = std::sync::mpsc::channel();
    let (done, played) = tokio::sync::oneshot::channel::<()>();
    let serving = std::thread::spawn(move || {
        let spawn: Spawn = match adapter {
            Adapter::Smol => Arc::new(|task| smol::spawn(task).detach()),
            _ => Arc::new(|task| drop(async_std::task::spawn(task))),
        };
        let run = async move {
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let server = barbara_async_std::serve(settings, listener, spawn).unwrap();
            listening.send(server.local_addr()).unwrap();
            let _ = played.await;
            // Waits for the calls to end and closes the listener.
            server.shutdown(LIMIT).await;
        };
        match adapter {
            Adapter::Smol => smol::block_on(run),
            _ => async_std::task::block_on(run),
        }
    });
    let addr = address.recv().unwrap();
    let played = play(addr);
    let _ = done.send(());
    serving.join().unwrap();
    let after = std::net::TcpStream::connect(addr);
    assert!(after.is_err(), "{adapter:?}: the listener is closed");
    played
}

/// Runs the call through the async-std server, on async-std or on smol.
fn on_async_std(fakes: &Fakes, transport: Transport, base_url: &str, adapter: Adapter) -> Outcome {
    let events = Arc::new(Mutex::new(Vec::new()));
    let settings = async_std_settings(fakes, transport, base_url, events.clone());
    let nonce = if adapter == Adapter::Smol { 3 } else { 2 };
    let (token, bearer) = (token(nonce), bearer(transport, nonce));
    let caller = with_async_std_server(settings, adapter, |addr| {
        let url = format!("ws://{addr}/media-stream");
        let caller = fakes.call(url, bearer, caller(transport, &token));
        fakes.runtime.block_on(caller)
    })
    .unwrap();
    let events = std::mem::take(&mut *events.lock().unwrap());
    let lines: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    outcome(adapter, &lines, caller)
}

fn outcome(adapter: Adapter, lines: &[serde_json::Value], caller: CallerReport) -> Outcome {
    Outcome {
        adapter,
        events: lines.iter().map(kind).collect(),
        model_ready: lines
            .iter()
            .filter(|l| l["event"] == "model_ready")
            .map(|l| l["transport"].as_str().unwrap_or("?").to_owned())
            .collect(),
        ended: lines
            .iter()
            .find(|l| l["event"] == "call_ended")
            .map_or(serde_json::Value::Null, |l| l["reason"].clone()),
        caller,
    }
}

/// Runs the call through every adapter at once and compares what the core reported.
fn contract(transport: Transport, name: &str) {
    let fakes = Fakes::start(name);
    let (urls, openai): (Vec<String>, Vec<Box<dyn Send>>) =
        (0..3).map(|_| fakes.openai(transport)).unzip();
    let (fakes_ref, urls) = (&fakes, &urls);
    let outcomes = std::thread::scope(|s| {
        let tokio = s.spawn(move || on_tokio(fakes_ref, transport, &urls[0], name));
        let async_std =
            s.spawn(move || on_async_std(fakes_ref, transport, &urls[1], Adapter::AsyncStd));
        let smol = s.spawn(move || on_async_std(fakes_ref, transport, &urls[2], Adapter::Smol));
        [tokio, async_std, smol].map(|t| t.join().unwrap())
    });
    let expected_transport = match transport {
        Transport::WebSocket => "realtime/websocket",
        Transport::WebRtc => "realtime/webrtc",
    };
    for outcome in &outcomes {
        let what = format!(
            "{:?} over {transport:?}: {:?}",
            outcome.adapter, outcome.events
        );
        assert_eq!(outcome.model_ready, [expected_transport], "{what}");
        for needed in [
            "stream_started",
            "first_audio_to_caller",
            "barge_in",
            "tool_call_started",
            "tool_call_completed",
            "call_ended",
        ] {
            assert!(
                outcome.events.iter().any(|e| e == needed),
                "no {needed}: {what}"
            );
        }
        assert_eq!(
            outcome.events.last().map(String::as_str),
            Some("call_ended"),
            "{what}"
        );
        let ended = &outcome.ended;
        assert_eq!(ended["reason"], "caller_stopped", "{what}: {ended}");
        let caller = &outcome.caller;
        assert!(
            caller.violations.is_empty(),
            "{what}: {:?}",
            caller.violations
        );
        assert_eq!(
            caller.clears.len(),
            1,
            "the barge-in cleared playback once: {what}"
        );
        assert!(
            caller.heard_speech_ms() >= 1_500,
            "{what}: {}",
            caller.heard_speech_ms()
        );
    }
    let [tokio, async_std, smol] = &outcomes;
    eprintln!("{transport:?}: {:?}", tokio.events);
    assert_eq!(
        async_std.events, tokio.events,
        "async-std and tokio differ over {transport:?}"
    );
    assert_eq!(
        smol.events, tokio.events,
        "smol and tokio differ over {transport:?}"
    );
    let webhook_calls = fakes.webhook.requests.load(Ordering::SeqCst);
    assert_eq!(webhook_calls, 3, "one tool webhook request per adapter");
    drop(openai);
}

#[test]
fn the_same_websocket_call_on_every_adapter() {
    contract(Transport::WebSocket, "websocket");
}

#[test]
fn the_same_webrtc_call_on_every_adapter() {
    contract(Transport::WebRtc, "webrtc");
}

#[test]
fn a_stream_without_a_valid_token_never_reaches_openai_on_either_executor() {
    let fakes = Fakes::start("refused");
    let openai = fakes.runtime.block_on(FakeOpenAi::start(script())).unwrap();
    for adapter in [Adapter::AsyncStd, Adapter::Smol] {
        let events = Arc::new(Mutex::new(Vec::new()));
        let settings = async_std_settings(
            &fakes,
            Transport::WebSocket,
            &openai.base_url(),
            events.clone(),
        );
        with_async_std_server(settings, adapter, |addr| {
            let url = format!("ws://{addr}/media-stream");
            let play = |bearer: Option<&str>, script| {
                let limit = Duration::from_secs(5);
                fakes
                    .runtime
                    .block_on(fakes::call(&url, bearer, script, limit))
            };
            // No token at all: closed at `start`.
            let report = play(None, caller(Transport::WebSocket, "")).unwrap();
            let closed = report.closed_at.expect("closed by the server");
            assert!(closed < Duration::from_secs(1), "{adapter:?}: {closed:?}");
            // A genuine token, but for another call.
            let mut other = caller(Transport::WebRtc, &token(7));
            other.call_sid = "CAsomeoneelse".to_owned();
            assert!(
                play(None, other).unwrap().closed_at.is_some(),
                "{adapter:?}"
            );
            // A forged bearer token is refused at the upgrade.
            let refused = play(Some("1.Q0E.AAAA"), caller(Transport::WebSocket, ""));
            assert!(refused.unwrap_err().contains("401"), "{adapter:?}");
        });
        assert!(
            events.lock().unwrap().is_empty(),
            "{adapter:?}: no call began"
        );
    }
    assert_eq!(openai.connections(), 0, "no refused stream reached OpenAI");
}
