//! `barbara demo [--backend realtime|live]`: one whole call in this process over loopback
//! sockets. The real server runs against a fake OpenAI (WebSocket: the Realtime API, or with
//! `--backend live` the Live API), a fake tool webhook and SignalWire REST API, and a fake
//! SignalWire caller whose script triggers a tool call (on Realtime also a barge-in; on Live
//! through Responses delegation) and the assistant's hang-up. It prints the timeline from the
//! call record the server wrote.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{Uri, header};
use axum::routing::post;
use barbara_core::Backend;
use barbara_core::sim::fake_caller::{CallerScript, HangupStyle, Utterance};
use barbara_core::sim::fake_live::{LiveReport, LiveScript, LiveTurn};
use barbara_core::sim::fake_realtime::{RealtimeScript, ScriptedResponse};
use barbara_tokio::fakes::{self, FakeOpenAi};
use barbara_tokio::{Settings, serve};
use tokio::net::TcpListener;

const CALL_SID: &str = "CAdemo0000000000000000000000000001";

pub(crate) fn run(backend: Backend) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("barbara demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo(backend)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("barbara demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn reply(text: &str, audio_ms: u32, tools: &[(&str, serde_json::Value)]) -> ScriptedResponse {
    let tool_calls = tools.iter().map(|(n, a)| ((*n).to_owned(), a.clone()));
    ScriptedResponse {
        text: text.to_owned(),
        audio_ms,
        tool_calls: tool_calls.collect(),
    }
}

fn openai_script() -> RealtimeScript {
    RealtimeScript {
        responses: vec![
            reply("Hello, you've reached Barbara. How can I help?", 2_400, &[]),
            reply(
                "Let me look that up.",
                1_200,
                &[("lookup_order", serde_json::json!({"order_id": "A1234"}))],
            ),
            reply(
                "Your order A1234 shipped yesterday and should arrive on Friday. Anything else?",
                4_500,
                &[],
            ),
            reply(
                "Of course. Thanks for calling, goodbye!",
                2_000,
                &[("end_call", serde_json::json!({"reason": "caller is done"}))],
            ),
        ],
        caller_transcripts: vec![
            "Hi, where is my order A1234?".to_owned(),
            "No, that's all, thanks.".to_owned(),
        ],
        ..RealtimeScript::default()
    }
}

/// A turn of the fake Live voice: it speaks `text`; with `tools`, its Responses backend calls
/// them and the voice then speaks `follow_up`, the backend's answer.
fn turn(
    text: &str,
    ms: u32,
    tools: &[(&str, serde_json::Value)],
    follow_up: (&str, u32),
) -> LiveTurn {
    let tool_calls = tools.iter().map(|(n, a)| ((*n).to_owned(), a.clone()));
    LiveTurn {
        text: text.to_owned(),
        audio_ms: ms,
        tool_calls: tool_calls.collect(),
        follow_up: follow_up.0.to_owned(),
        follow_up_ms: follow_up.1,
    }
}

fn live_script() -> LiveScript {
    let order = serde_json::json!({"order_id": "A1234"});
    let done = serde_json::json!({"reason": "caller is done"});
    LiveScript {
        turns: vec![
            turn(
                "Hello, you've reached Barbara. How can I help?",
                2_400,
                &[],
                ("", 0),
            ),
            turn(
                "Let me look that up.",
                1_200,
                &[("lookup_order", order)],
                (
                    "Your order A1234 shipped yesterday and should arrive on Friday. Anything else?",
                    4_500,
                ),
            ),
            turn(
                "Of course.",
                700,
                &[("end_call", done)],
                ("Thanks for calling, goodbye!", 2_000),
            ),
        ],
        caller_transcripts: vec![
            "Hi, where is my order A1234?".to_owned(),
            "No, that's all, thanks.".to_owned(),
        ],
        usage_interval: Duration::from_secs(5),
        ..LiveScript::default()
    }
}

fn caller_script(backend: Backend) -> CallerScript {
    let ms = Duration::from_millis;
    let utterance = |start, duration| Utterance {
        start: ms(start),
        duration: ms(duration),
    };
    let utterances = match backend {
        // Speaks after the greeting, then talks over the answer: a barge-in.
        Backend::Realtime => vec![utterance(3_200, 1_400), utterance(8_800, 1_200)],
        // Speaks after the greeting, and again once the answer has played.
        Backend::Live => vec![utterance(3_600, 1_400), utterance(12_500, 1_200)],
    };
    CallerScript {
        call_sid: CALL_SID.to_owned(),
        utterances,
        hangup: Some((ms(30_000), HangupStyle::Stop)),
        ..CallerScript::default()
    }
}

/// The fake tool webhook and SignalWire REST API; remembers the requests it got.
async fn backend(seen: Arc<Mutex<Vec<String>>>) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let json = |body: &'static str| ([(header::CONTENT_TYPE, "application/json")], body);
    let log = move |uri: &Uri| {
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(uri.path().to_owned());
    };
    let log2 = log.clone();
    let router = Router::new()
        .route(
            "/tools/lookup_order",
            post(move |uri: Uri| {
                log(&uri);
                async move {
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    json(r#"{"output":{"status":"shipped","shipped":"yesterday","eta":"Friday"}}"#)
                }
            }),
        )
        .route(
            "/api/{*rest}",
            post(move |uri: Uri| {
                log2(&uri);
                async move { json(r#"{"status":"completed"}"#) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{addr}"))
}

async fn demo(api: Backend) -> Result<(), String> {
    let name = match api {
        Backend::Realtime => "Realtime",
        Backend::Live => "Live",
    };
    println!(
        "Barbara demo: one phone call over loopback sockets (the real server; fake SignalWire,"
    );
    println!("OpenAI {name} over WebSocket, tool webhook and REST API)\n");
    let wall = Instant::now();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let backend = backend(seen.clone()).await.map_err(|e| e.to_string())?;
    let openai = FakeOpenAi::start_with(openai_script(), live_script())
        .await
        .map_err(|e| e.to_string())?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let dir = std::env::temp_dir().join(format!("barbara-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let toml = format!(
        "instructions = \"You are Barbara, a phone assistant for Acme. Caller: {{{{From}}}}.\"\n\
         [[tools]]\nname = \"lookup_order\"\ndescription = \"Look up an order.\"\n\
         webhook = \"{backend}/tools/lookup_order\"\ntimeout_ms = 3000\n\
         [tools.parameters]\ntype = \"object\"\nproperties.order_id.type = \"string\"\n"
    );
    let config_file = dir.join("barbara.toml");
    std::fs::write(&config_file, toml).map_err(|e| e.to_string())?;
    let vars = [
        ("OPENAI_API_KEY", "sk-demo".to_owned()),
        ("OPENAI_BASE_URL", openai.base_url()),
        ("PUBLIC_URL", format!("http://127.0.0.1:{port}")),
        ("SIGNALWIRE_SPACE_URL", backend.clone()),
        ("SIGNALWIRE_PROJECT_ID", "demo-project".to_owned()),
        ("SIGNALWIRE_API_TOKEN", "demo-token".to_owned()),
        ("BARBARA_CONFIG", config_file.display().to_string()),
        ("BARBARA_RECORDS_DIR", dir.display().to_string()),
        ("BARBARA_BACKEND", api.name().to_owned()),
    ];
    let settings = Settings::from_vars(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .map_err(|e| e.to_string())?;
    let server = serve(settings, listener).map_err(|e| e.to_string())?;

    // SignalWire fetches the cXML, then opens the stream with the token from it.
    let cxml = fakes::post_form(
        &format!("http://127.0.0.1:{port}/incoming-call"),
        &format!("CallSid={CALL_SID}&From=%2B15551230001&To=%2B15551230002"),
    )
    .await?;
    println!("cXML for the call: {}\n", cxml.lines().last().unwrap_or(""));
    // The stream carries the cXML's <Parameter>s in `start.customParameters`, as SignalWire's.
    let mut script = caller_script(api);
    for parameter in cxml.split("<Parameter name=\"").skip(1) {
        let mut parts = parameter.split('"');
        if let (Some(name), Some(value)) = (parts.next(), parts.nth(1)) {
            script
                .custom_parameters
                .push((name.to_owned(), value.to_owned()));
        }
    }
    let url = format!("ws://127.0.0.1:{port}/media-stream");
    let report = fakes::call(&url, None, script, Duration::from_secs(40)).await?;
    let _ = tokio::time::timeout(Duration::from_secs(5), server.idle()).await;
    server.shutdown(Duration::from_secs(1)).await;

    let record = dir.join(format!("{CALL_SID}.jsonl"));
    crate::timeline::print_file(&record)?;
    println!(
        "\nthe caller heard {:.1} s of speech, {} clear(s); requests to the backend: {:?}",
        f64::from(report.heard_speech_ms()) / 1000.0,
        report.clears.len(),
        seen.lock().unwrap_or_else(|e| e.into_inner())
    );
    if !report.violations.is_empty() {
        println!(
            "protocol violations seen by the fake caller: {:?}",
            report.violations
        );
    }
    if api == Backend::Live {
        let sessions = tokio::time::timeout(Duration::from_secs(5), openai.closed_live_sessions(1));
        match sessions.await.ok().as_deref() {
            Some([live, ..]) => print_live(live),
            _ => println!("the fake Live server has not closed its session"),
        }
    }
    println!(
        "call record: {} (`barbara replay` runs it through the core again)\nthe demo took {:.1} s",
        record.display(),
        wall.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What the fake Live server saw: the delegation, the outputs and the close.
fn print_live(live: &LiveReport) {
    let received = |ty: &str| live.received_types.iter().filter(|t| *t == ty).count();
    let calls: Vec<&str> = live
        .delegations
        .iter()
        .flat_map(|d| d.calls.iter().map(|(_, name)| name.as_str()))
        .collect();
    println!(
        "the fake Live server: {} delegation(s) calling {calls:?}, {} response.item.create, {} \
         response.create; session.close then session.closed ({}) after {:.1} s",
        live.delegations.len(),
        received("response.item.create"),
        received("response.create"),
        live.closed_reason.as_deref().unwrap_or("never sent"),
        live.closed_at.unwrap_or_default().as_secs_f64(),
    );
    if !live.violations.is_empty() || !live.errors_sent.is_empty() {
        println!(
            "protocol violations seen by the fake Live server: {:?}, errors sent: {:?}",
            live.violations, live.errors_sent
        );
    }
}
