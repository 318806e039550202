use barbara_tests::*;

fn lossy_call() -> Sim {
    let config = over_webrtc(scenario(
        27,
        3_000,
        vec![say("Understood.", 2_000)],
        vec![utterance(secs(5), ms(1_200))],
        secs(12),
    ));
    let mut sim = Sim::new(origin(), config);
    // Loss starts once the call is up: DTLS's own key material is random, so a lossy handshake
    // would not repeat; media under loss does.
    assert!(sim.run_until(secs(3), |s| !transports(s).is_empty()));
    sim.set_net(NetParams {
        latency: ms(30),
        jitter: ms(15),
        loss: 0.05,
        ..NetParams::default()
    });
    sim.run_to_end(secs(30));
    sim
}

/// 5 % of datagrams lost both ways, with jitter: the model still hears the caller, and the
/// caller hears continuous speech (losses concealed, not gaps).
#[test]
fn webrtc_5pct_loss_plc() {
    let sim = lossy_call();
    assert_eq!(sim.trace_lines(), lossy_call().trace_lines());

    assert_eq!(
        transports(&sim),
        vec!["realtime/webrtc"],
        "{}",
        sim.trace_lines().join("\n")
    );
    let webrtc = sim.openai_webrtc();
    let call = &webrtc.calls[0];
    assert_eq!(call.realtime.speech_started.len(), 1);
    assert!(
        call.rtp_concealed > 0,
        "nothing was lost on the way to OpenAI"
    );
    assert!(sim.call().stats().playout_dropped_frames < 10);
    // The greeting plays through with concealment: at most a few short gaps.
    let heard = sim.caller().heard_speech_ms();
    assert!(heard >= 4_300, "heard {heard} ms of 5,000");
}
