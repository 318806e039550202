//! The OpenAI leg over WebRTC on loopback: the real server's per-call UDP socket against the
//! fake OpenAI WebRTC endpoint (a real str0m answerer behind real UDP and HTTP sockets), and the
//! fallback to the WebSocket when OpenAI offers no WebRTC.

mod common;

use std::time::Duration;

use barbara_core::sim::fake_webrtc::WebRtcFakeMode;
use barbara_tokio::fakes::{self, FakeOpenAiWebRtc};
use common::{Harness, caller, script};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_call_over_webrtc_and_its_replay_explains_any_divergence() {
    let greeting = ("Thanks for calling Acme, how can I help?", 1_200);
    let answer = ("We open at nine.", 800);
    let openai = FakeOpenAiWebRtc::start(script(&[greeting, answer]), WebRtcFakeMode::default())
        .await
        .unwrap();
    let h = Harness::start("webrtc", &openai.base_url(), &[("USE_WEBRTC", "true")]).await;
    let token = h.token().await;
    let report = fakes::call(
        &h.stream_url(),
        Some(&token),
        caller(&[(2_500, 1_000)], 6_000),
        Duration::from_secs(15),
    )
    .await
    .unwrap();
    h.wait_idle().await;

    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert!(
        report.heard_speech_ms() >= 1_500,
        "the caller heard {} ms",
        report.heard_speech_ms()
    );
    let events = h.events();
    let ready: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "model_ready")
        .collect();
    assert_eq!(ready.len(), 1, "{events:?}");
    assert_eq!(ready[0]["transport"], "realtime/webrtc");
    assert!(!h.has_event("fallback"), "{events:?}");
    let fake = openai.report().await;
    assert_eq!(fake.calls.len(), 1, "{fake:?}");
    let call = &fake.calls[0];
    assert!(call.connected_at.is_some() && call.channel.is_some());
    assert!(
        call.rtp_in > 100,
        "caller audio reached OpenAI: {}",
        call.rtp_in
    );
    assert!(call.rtp_out_ms >= 1_500, "{}", call.rtp_out_ms);
    assert!(
        call.realtime.speech_started.len() == 1,
        "{:?}",
        call.realtime
    );
    let metrics = h.get("/metrics").await;
    assert!(
        metrics.contains("barbara_calls_total{transport=\"realtime/webrtc\"} 1"),
        "{metrics}"
    );

    // str0m's DTLS keys come from the OS, so the replay may not match; it must say why.
    let replay = barbara_tokio::replay::replay_file(&h.record_path()).unwrap();
    assert!(replay.webrtc);
    if replay.divergence.is_some() {
        assert!(
            replay.to_string().contains("note: this call ran WebRTC"),
            "{replay}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webrtc_falls_back_to_websocket_against_a_websocket_only_openai() {
    let greeting = ("Hello, this is Barbara.", 800);
    let (h, _openai) =
        Harness::websocket("fallback", &[("USE_WEBRTC", "true")], script(&[greeting])).await;
    let token = h.token().await;
    let report = fakes::call(
        &h.stream_url(),
        Some(&token),
        caller(&[], 4_000),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    h.wait_idle().await;
    assert!(report.heard_speech_ms() >= 600, "{report:?}");
    let record = h.record();
    assert!(
        record[0]["local_addrs"][0]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(h.has_event("fallback"), "{record:?}");
    let metrics = h.get("/metrics").await;
    assert!(metrics.contains("barbara_fallbacks_total{"), "{metrics}");
    assert!(metrics.contains("barbara_calls_total{transport=\"realtime/websocket\"} 1"));
}
