use barbara_tests::*;

#[test]
fn webrtc_call_end_to_end() {
    let config = over_webrtc(scenario(
        21,
        2_000,
        vec![say("Sure, let me help with your order.", 2_500)],
        vec![utterance(secs(4), ms(1_500))],
        secs(12),
    ));
    let sim = run_deterministic(config, secs(30));

    assert_eq!(
        transports(&sim),
        vec!["realtime/webrtc"],
        "{}",
        sim.trace_lines().join("\n")
    );
    assert!(fallbacks(&sim).is_empty());
    let ready = time_of(&sim, "model ready", |e| {
        matches!(e, Event::ModelReady { .. })
    });
    assert!(ready < ms(1_000), "ready only at {ready:?}");

    let webrtc = sim.openai_webrtc();
    assert_eq!(webrtc.calls.len(), 1);
    let call = &webrtc.calls[0];
    let session = call.session.as_ref().unwrap();
    assert_eq!(session["type"], "realtime");
    assert_eq!(session["model"], "gpt-realtime-2.1");
    assert!(
        call.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v == "Bearer sk-sim-key")
    );
    assert!(
        webrtc.all_violations().is_empty(),
        "{:?}",
        webrtc.all_violations()
    );

    // Greeting and reply reached the caller over RTP, paced: nothing cut, no clear.
    let heard = sim.caller().heard_speech_ms();
    assert!(heard >= 4_000, "heard only {heard} ms");
    assert!(sim.caller().clears.is_empty());
    assert!(
        sim.caller().violations.is_empty(),
        "{:?}",
        sim.caller().violations
    );
    assert_eq!(call.realtime.responses.len(), 2);
    assert!(call.realtime.speech_started.len() == 1);
    let (_, end) = sim.first(is_end).unwrap();
    assert_eq!(
        end,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
}
