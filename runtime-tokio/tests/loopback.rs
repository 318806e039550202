//! End-to-end tests of the server over loopback sockets: the real server against the core's
//! simulation fakes (a fake OpenAI Realtime WebSocket server and a fake SignalWire caller), on
//! real time. WebRTC, tools and replay have their own files.

mod common;

use std::time::Duration;

use barbara_tokio::fakes;
use common::{CALL_SID, Harness, TempPath, attribute, caller, script, signature};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_call_over_websocket_and_metrics_show_it() {
    let greeting = ("Thanks for calling Acme, how can I help?", 1_200);
    let answer = ("We open at nine.", 800);
    let (h, openai) = Harness::websocket("whole", &[], script(&[greeting, answer])).await;
    let token = h.token().await;
    let script = caller(&[(2_000, 1_000)], 5_500);
    let report = fakes::call(
        &h.stream_url(),
        Some(&token),
        script,
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    h.wait_idle().await;

    assert!(report.violations.is_empty(), "{:?}", report.violations);
    let greeting_heard = report.first_heard_speech().expect("the greeting was heard");
    assert!(
        greeting_heard < Duration::from_millis(1_500),
        "{greeting_heard:?}"
    );
    assert!(
        report.heard_speech_ms() >= 1_700,
        "{}",
        report.heard_speech_ms()
    );
    assert!(report.last_heard_speech().unwrap() > Duration::from_millis(3_000));
    let sessions = openai.closed_sessions(1).await;
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].input_audio_ms > 1_000.0);
    assert_eq!(sessions[0].responses.len(), 2);
    assert!(
        sessions[0].violations.is_empty(),
        "{:?}",
        sessions[0].violations
    );

    let record = h.record();
    assert_eq!(record[0]["record"], "call");
    assert_eq!(record[0]["to"], "+15551230002");
    let events: Vec<&str> = record[1..]
        .iter()
        .filter_map(|l| l["event"].as_str())
        .collect();
    for expected in [
        "stream_started",
        "model_ready",
        "first_audio_to_caller",
        "call_ended",
    ] {
        assert!(
            events.contains(&expected),
            "{expected} missing from {events:?}"
        );
    }
    let metrics = h.get("/metrics").await;
    assert!(
        metrics.contains("barbara_calls_total{transport=\"realtime/websocket\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("barbara_calls_ended_total{reason=\"caller_stopped\"} 1"));
    assert!(metrics.contains("barbara_active_calls{transport=\"realtime/websocket\"} 0"));
    assert_eq!(h.get("/healthz").await.trim(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_in_custom_parameters_is_accepted() {
    let (h, openai) = Harness::websocket("param", &[], script(&[("Hello there.", 600)])).await;
    let mut script = caller(&[], 1_500);
    script
        .custom_parameters
        .push(("token".to_owned(), h.token().await));
    let report = fakes::call(&h.stream_url(), None, script, Duration::from_secs(10))
        .await
        .unwrap();
    h.wait_idle().await;
    assert!(report.heard_speech_ms() > 300, "{report:?}");
    assert_eq!(openai.closed_sessions(1).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_without_a_valid_token_is_closed_before_openai() {
    let (h, openai) = Harness::websocket("notoken", &[], script(&[])).await;
    // No token at all.
    let report = fakes::call(
        &h.stream_url(),
        None,
        caller(&[], 5_000),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert!(report.closed_at.unwrap() < Duration::from_millis(500));
    // A genuine token, but for another call.
    let mut other = caller(&[], 5_000);
    other.call_sid = "CAsomeoneelse".to_owned();
    other
        .custom_parameters
        .push(("token".to_owned(), h.token().await));
    let report = fakes::call(&h.stream_url(), None, other, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(report.closed_at.is_some());
    // A forged bearer token is refused at the upgrade.
    let refused = fakes::call(
        &h.stream_url(),
        Some("1.Q0E.AAAA"),
        caller(&[], 5_000),
        Duration::from_secs(5),
    )
    .await;
    assert!(refused.unwrap_err().contains("401"));
    assert_eq!(openai.connections(), 0, "no rejected stream reached OpenAI");
    // A token is good once.
    let (token, url) = (h.token().await, h.stream_url());
    let first = fakes::call(&url, Some(&token), caller(&[], 300), Duration::from_secs(5));
    first.await.unwrap();
    let again = fakes::call(&url, Some(&token), caller(&[], 300), Duration::from_secs(5));
    assert!(again.await.unwrap_err().contains("401"));
    h.wait_idle().await;
    assert_eq!(
        openai.connections(),
        1,
        "only the genuine call reached OpenAI"
    );
    let metrics = h.get("/metrics").await;
    assert!(
        metrics.contains("barbara_rejected_total{reason=\"stream_token\"} 4"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_signature_is_checked() {
    let key = "PSKtestsigningkey";
    let (h, _openai) =
        Harness::websocket("signed", &[("SIGNALWIRE_SIGNING_KEY", key)], script(&[])).await;
    let fields = [
        ("CallSid", CALL_SID),
        ("From", "+15551230001"),
        ("To", "+15551230002"),
    ];
    let form = format!("CallSid={CALL_SID}&From=%2B15551230001&To=%2B15551230002");
    let good = signature(key, &h.url("/incoming-call"), &fields);
    let (status, cxml) = h
        .post(
            "/incoming-call",
            &form,
            &[("X-SignalWire-Signature", &good)],
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        cxml.contains("<Connect><Stream url=\"ws://127.0.0.1:"),
        "{cxml}"
    );
    assert!(
        cxml.contains("<Parameter name=\"From\" value=\"+15551230001\"/>"),
        "{cxml}"
    );
    assert_eq!(
        attribute(&cxml, "authBearerToken"),
        attribute(&cxml, "value")
    );
    let (status, _) = h
        .post("/incoming-call", &form, &[("X-Twilio-Signature", &good)])
        .await;
    assert_eq!(status, 200);

    let bad = signature("another key", &h.url("/incoming-call"), &fields);
    let (status, _) = h
        .post("/incoming-call", &form, &[("X-SignalWire-Signature", &bad)])
        .await;
    assert_eq!(status, 403);
    let (status, _) = h.post("/incoming-call", &form, &[]).await;
    assert_eq!(status, 403);
    let tampered = form.replace("%2B15551230002", "%2B15559999999");
    let (status, _) = h
        .post(
            "/incoming-call",
            &tampered,
            &[("X-SignalWire-Signature", &good)],
        )
        .await;
    assert_eq!(status, 403);

    let transfer = "/transfer?to=%2B15551230100";
    let signed = signature(key, &h.url(transfer), &[("CallSid", CALL_SID)]);
    let form = format!("CallSid={CALL_SID}");
    let (status, cxml) = h
        .post(transfer, &form, &[("X-SignalWire-Signature", &signed)])
        .await;
    assert_eq!(
        (
            status,
            cxml.contains("<Response><Dial>+15551230100</Dial></Response>")
        ),
        (200, true)
    );
    let (status, _) = h
        .post(transfer, &form, &[("X-SignalWire-Signature", &good)])
        .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_calls_get_503() {
    let (h, _openai) = Harness::websocket("full", &[("BARBARA_MAX_CALLS", "1")], script(&[])).await;
    let url = h.stream_url();
    // Holds the only slot while it waits for `start`, which never comes in time.
    let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let refused = fakes::call(&url, None, caller(&[], 1_000), Duration::from_secs(5)).await;
    assert!(refused.unwrap_err().contains("503"));
    drop(socket);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_gives_new_calls_the_new_file() {
    let dir = TempPath::new("config");
    std::fs::create_dir_all(&*dir).unwrap();
    let file = dir.join("barbara.toml");
    std::fs::write(&file, "codec = \"L16@16000h\"\n").unwrap();
    let path = file.display().to_string();
    let (h, _openai) =
        Harness::websocket("reload", &[("BARBARA_CONFIG", &path)], script(&[])).await;
    let form = format!("CallSid={CALL_SID}");
    assert!(
        h.post("/incoming-call", &form, &[])
            .await
            .1
            .contains("codec=\"L16@16000h\"")
    );
    std::fs::write(&file, "codec = \"L16@24000h\"\n").unwrap();
    h.server.reload().unwrap();
    assert!(
        h.post("/incoming-call", &form, &[])
            .await
            .1
            .contains("codec=\"L16@24000h\"")
    );
    std::fs::write(&file, "codec = \"G729\"\n").unwrap();
    assert_eq!(h.server.reload().unwrap_err().name, "BARBARA_CONFIG");
    assert!(
        h.post("/incoming-call", &form, &[])
            .await
            .1
            .contains("codec=\"L16@24000h\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_calls_run_through_the_grace_period_then_hangs_up() {
    let (h, openai) = Harness::websocket("drain", &[], script(&[("Hello.", 400)])).await;
    let token = h.token().await;
    let url = h.stream_url();
    let call = tokio::spawn(async move {
        fakes::call(
            &url,
            Some(&token),
            caller(&[], 60_000),
            Duration::from_secs(20),
        )
        .await
    });
    // The call is under way once it reaches OpenAI.
    openai.connected(1).await;
    let Harness { server, dir, .. } = h;
    let started = tokio::time::Instant::now();
    server.shutdown(Duration::from_millis(1_000)).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1_000) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let report = call.await.unwrap().unwrap();
    let closed = report.closed_at.expect("the bridge closed the stream");
    // The call ran through the grace period: the stream closed only after it (the caller's
    // clock started before the call reached OpenAI, so this bound is loose).
    assert!(closed >= Duration::from_millis(1_000), "{closed:?}");
    let record = std::fs::read_to_string(dir.join(format!("{CALL_SID}.jsonl"))).unwrap();
    assert!(record.contains("hang_up_requested"), "{record}");
    drop(openai);
}

#[test]
fn config_errors_stop_start_up_with_one_line_and_exit_2() {
    let run = |vars: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_barbara"));
        command.env_clear().envs(vars.iter().copied());
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("OPENAI_API_KEY"), "{stderr}");
    let (code, stderr) = run(&[("OPENAI_API_KEY", "sk-secret-value"), ("PORT", "http")]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("PORT") && !stderr.contains("sk-secret-value"),
        "{stderr}"
    );
    let (code, stderr) = run(&[("OPENAI_API_KEY", "sk-test"), ("BARBARA_BACKEND", "turbo")]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("BARBARA_BACKEND"), "{stderr}");
}

#[test]
fn sigterm_stops_the_server_binary() {
    use std::io::BufRead as _;
    let dir = TempPath::new("sigterm");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_barbara"))
        .env_clear()
        .envs([("OPENAI_API_KEY", "sk-test"), ("PORT", "0")])
        .env("BARBARA_RECORDS_DIR", &*dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut lines = stdout.lines().map_while(Result::ok).take(20);
    assert!(lines.any(|line| line.contains("listening")));
    let pid = child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status();
    assert!(kill.unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}
