use barbara_tests::*;

#[test]
fn barge_in_over_webrtc() {
    let config = over_webrtc(scenario(
        28,
        6_000,
        vec![say("Okay.", 800)],
        vec![utterance(ms(2_500), ms(1_000))],
        secs(9),
    ));
    let sim = run_deterministic(config, secs(20));

    assert_eq!(transports(&sim), vec!["realtime/webrtc"]);
    let (cut_at, _) = sim.first(|e| matches!(e, Event::BargeIn { .. })).unwrap();
    // The server cut its output audio; the bridge cleared SignalWire's queue.
    let webrtc = sim.openai_webrtc();
    let rt = &webrtc.calls[0].realtime;
    let cleared: Vec<_> = rt
        .output_buffer
        .iter()
        .filter(|r| format!("{:?}", r.event) == "ClearedByVad")
        .collect();
    assert_eq!(cleared.len(), 1, "{:?}", rt.output_buffer);
    assert!(cleared[0].played_ms < 3_000, "{:?}", cleared[0]);
    assert_eq!(sim.caller().clears.len(), 1);
    // No truncate over WebRTC: the server knows what it played.
    assert!(rt.truncates.is_empty());
    // The caller stops hearing the greeting within 100 ms of the cut.
    let leaked = heard_speech_between(&sim, cut_at + ms(100), rt.responses[1].created_at);
    assert_eq!(leaked, 0);
}
