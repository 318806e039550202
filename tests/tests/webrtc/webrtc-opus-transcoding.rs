use barbara_core::audio::PhoneCodec;
use barbara_tests::*;

/// An L16 16 kHz phone leg: caller audio goes out as Opus at 16 kHz and the model's Opus comes
/// back decoded at 16 kHz; speech energy survives both ways.
#[test]
fn webrtc_opus_transcoding() {
    let mut config = over_webrtc(scenario(
        23,
        2_000,
        vec![say("Got it.", 1_500)],
        vec![utterance(secs(3), ms(1_500))],
        secs(8),
    ));
    config.caller.codec = PhoneCodec::L16 { rate_hz: 16_000 };
    let sim = run_deterministic(config, secs(20));

    assert_eq!(transports(&sim), vec!["realtime/webrtc"]);
    let webrtc = sim.openai_webrtc();
    let call = &webrtc.calls[0];
    assert_eq!(format!("{:?}", call.codec), "Opus");
    // Speech in: the fake's VAD heard the whole utterance as one turn.
    assert_eq!(call.realtime.speech_started.len(), 1);
    assert_eq!(call.realtime.speech_stopped.len(), 1);
    // Speech out: the caller heard the greeting and the reply at speech level.
    let (heard_ms, db) = heard_speech_level(&sim);
    assert!(heard_ms >= 3_000, "heard {heard_ms} ms");
    // The fake speaks at about 3,000 RMS; Opus at 16 kHz keeps the level within 3 dB.
    assert!(db.abs() < 3.0, "level {db:.1} dB");
}
