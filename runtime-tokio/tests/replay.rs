//! Call records replay: a call over loopback is recorded with its input log, `barbara replay`
//! runs the log through a fresh core and finds the same events; a tampered log is reported, and
//! a record made without its audio is refused.

mod common;

use std::time::Duration;

use barbara_tokio::fakes::{self, FakeHttp};
use common::{Harness, TempPath, caller, config_file, reply, script, script_of};
use serde_json::json;

/// Runs `barbara COMMAND PATH`: its exit code, stdout and stderr.
fn barbara(command: &str, path: &std::path::Path) -> (Option<i32>, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_barbara"))
        .arg(command)
        .arg(path)
        .env_clear()
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn replay_binary(path: &std::path::Path) -> (Option<i32>, String) {
    let (code, stdout, _) = barbara("replay", path);
    (code, stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_websocket_call_replays_exactly_and_a_tampered_one_diverges() {
    let webhook = FakeHttp::start(|_| (200, r#"{"output":"open 9 to 5"}"#.to_owned()))
        .await
        .unwrap();
    let toml = format!(
        "[[tools]]\nname = \"hours\"\ndescription = \"Opening hours.\"\nwebhook = \"{}/hours\"\n",
        webhook.url()
    );
    let config = config_file("replay", &toml);
    let script = script_of(vec![
        reply("Thanks for calling Acme, how can I help?", 1_000, &[]),
        reply("Let me check.", 400, &[("hours", json!({}))]),
        reply("We open at nine.", 800, &[]),
    ]);
    let (h, _openai) = Harness::websocket(
        "replay",
        &[
            ("BARBARA_CONFIG", config.as_str()),
            ("OPENAI_API_KEY", "sk-do-not-record"),
        ],
        script,
    )
    .await;
    let token = h.token().await;
    let report = fakes::call(
        &h.stream_url(),
        Some(&token),
        caller(&[(1_800, 800)], 6_000),
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    h.wait_idle().await;
    assert!(
        report.heard_speech_ms() > 1_500,
        "{}",
        report.heard_speech_ms()
    );

    let path = h.record_path();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("sk-do-not-record"),
        "the API key is never written"
    );
    let record = h.record();
    assert_eq!(record[0]["config"]["openai"]["api_key"], "<not recorded>");
    assert_eq!(record[0]["seed"].as_str().map(str::len), Some(64));
    assert_eq!(record[0]["format"], barbara_tokio::replay::RECORD_FORMAT);
    let inputs = record.iter().filter(|l| l["record"] == "input").count();
    assert!(inputs > 100, "{inputs}");
    assert!(h.has_event("tool_call_completed"));

    let replay = barbara_tokio::replay::replay_file(&path).unwrap();
    assert_eq!(replay.divergence, None, "{replay}");
    assert_eq!(replay.inputs, inputs);
    assert_eq!(replay.events, h.events().len());
    assert!(!replay.webrtc);
    let (code, stdout) = replay_binary(&path);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("matches"), "{stdout}");

    // The model's words changed in the log: the replayed transcript differs from the record's.
    let tampered: String = text
        .lines()
        .map(|line| match line.contains(r#""record":"input""#) {
            true => line.replace("We open at nine.", "We open at ten."),
            false => line.to_owned(),
        })
        .map(|line| line + "\n")
        .collect();
    let tampered_path = TempPath::new("replay-tampered.jsonl");
    std::fs::write(&*tampered_path, tampered).unwrap();
    let (code, stdout) = replay_binary(&tampered_path);
    assert_eq!(code, Some(1), "{stdout}");
    let line = |side: &str| {
        let found = stdout.lines().find(|l| l.trim_start().starts_with(side));
        found
            .unwrap_or_else(|| panic!("no {side} in {stdout}"))
            .to_owned()
    };
    assert!(stdout.starts_with("replay of CA"), "{stdout}");
    assert!(stdout.contains("diverges at event"), "{stdout}");
    assert!(line("recorded:").contains("We open at nine."), "{stdout}");
    assert!(line("replayed:").contains("We open at ten."), "{stdout}");
    assert!(!stdout.contains("WebRTC"), "{stdout}");
}

#[test]
fn replay_refuses_a_file_that_is_not_a_call_record() {
    let path = TempPath::new("replay-not-a-record.jsonl");
    std::fs::write(&*path, "{\"event\":\"call_ended\"}\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_barbara"))
        .arg("replay")
        .arg(&*path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("not a call record"), "{stderr}");
}

#[test]
fn replay_and_show_refuse_a_record_of_a_newer_format_in_one_line() {
    let path = TempPath::new("replay-newer-format.jsonl");
    let meta = json!({"record": "call", "format": 99, "call_sid": "CAfuture", "config": {}});
    std::fs::write(&*path, format!("{meta}\n")).unwrap();
    for (command, exit) in [("replay", 2), ("show", 1)] {
        let (code, stdout, stderr) = barbara(command, &path);
        assert_eq!(code, Some(exit), "{command}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "{command}: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{command}: {stderr}");
        assert!(stderr.contains("format 99"), "{command}: {stderr}");
        assert!(stderr.contains("newer barbara"), "{command}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_audio_the_record_keeps_every_input_but_cannot_be_replayed() {
    let (h, _openai) = Harness::websocket(
        "no-audio",
        &[("BARBARA_RECORD_AUDIO", "false")],
        script(&[("Hello there.", 600), ("We open at nine.", 600)]),
    )
    .await;
    let token = h.token().await;
    let report = fakes::call(
        &h.stream_url(),
        Some(&token),
        caller(&[(1_200, 600)], 3_500),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    h.wait_idle().await;
    assert!(report.heard_speech_ms() > 500, "{report:?}");

    let record = h.record();
    assert_eq!(record[0]["record_audio"], false);
    let inputs: Vec<&serde_json::Value> =
        record.iter().filter(|l| l["record"] == "input").collect();
    let text_of = |line: &serde_json::Value| -> serde_json::Value {
        serde_json::from_str(line["text"].as_str().unwrap_or("null")).unwrap_or_default()
    };
    // Every media frame and audio delta is there, timed, but without its audio.
    let media: Vec<serde_json::Value> = inputs
        .iter()
        .filter(|l| l["leg"] == "phone")
        .map(|l| text_of(l))
        .filter(|t| t["event"] == "media")
        .collect();
    assert!(media.len() > 100, "{}", media.len());
    assert!(media.iter().all(|m| m["media"]["payload"] == ""));
    let deltas: Vec<serde_json::Value> = inputs
        .iter()
        .filter(|l| l["leg"] == "model")
        .map(|l| text_of(l))
        .filter(|t| t["type"] == "response.output_audio.delta")
        .collect();
    assert!(!deltas.is_empty());
    assert!(deltas.iter().all(|d| d["delta"] == ""));
    let omitted = inputs.iter().filter(|l| l["audio_omitted"] == true).count();
    assert_eq!(omitted, media.len() + deltas.len());
    assert!(
        h.has_event("transcript"),
        "the transcript is still recorded"
    );

    let (code, stdout, stderr) = barbara("replay", &h.record_path());
    assert_eq!(code, Some(2), "{stdout}");
    assert!(stderr.contains("BARBARA_RECORD_AUDIO=false"), "{stderr}");
    assert!(stderr.contains("cannot be replayed"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let (code, stdout, _) = barbara("show", &h.record_path());
    assert_eq!(code, Some(0));
    assert!(stdout.contains("audio not recorded"), "{stdout}");
    assert!(stdout.contains("We open at nine."), "{stdout}");
}
