use barbara_core::audio::PhoneCodec;
use barbara_tests::*;

/// A call with a `phone` leg to a fake that answers Opus only and does or does not honour the
/// offer's `maxplaybackrate`.
fn call(phone: PhoneCodec, honour: bool) -> Sim {
    let mut config = over_webrtc(scenario(
        37,
        2_000,
        vec![say("Got it.", 1_500)],
        vec![utterance(secs(3), ms(1_500))],
        secs(8),
    ));
    config.caller.codec = phone;
    config.webrtc.opus_only = true;
    config.webrtc.honour_max_playback_rate = honour;
    run_deterministic(config, secs(20))
}

/// The offer declares the phone's rate as Opus `maxplaybackrate` and `sprop-maxcapturerate`.
/// An OpenAI that honours it sends Opus at that rate (narrowband for a μ-law phone, wideband
/// for L16 at 16 kHz); one that ignores it sends 24 kHz Opus. Either way the caller hears the
/// model at speech level, and the fake's VAD hears the caller's one turn.
#[test]
fn model_opus_follows_the_offered_phone_rate() {
    for (phone, rate) in [
        (PhoneCodec::Pcmu, 8_000),
        (PhoneCodec::L16 { rate_hz: 16_000 }, 16_000),
    ] {
        for honour in [true, false] {
            let sim = call(phone, honour);
            assert_eq!(transports(&sim), vec!["realtime/webrtc"]);
            let webrtc = sim.openai_webrtc();
            let fake = &webrtc.calls[0];
            let declared = format!("maxplaybackrate={rate};sprop-maxcapturerate={rate}");
            assert!(fake.offer_sdp.contains(&declared), "{}", fake.offer_sdp);
            assert_eq!(format!("{:?}", fake.codec), "Opus");
            let sent = if honour { rate } else { 24_000 };
            assert_eq!(
                (fake.send_rate, fake.receive_rate),
                (sent, rate),
                "{phone:?}"
            );

            assert_eq!(fake.realtime.speech_started.len(), 1, "{phone:?} {honour}");
            assert_eq!(fake.realtime.speech_stopped.len(), 1, "{phone:?} {honour}");
            let (heard_ms, db) = heard_speech_level(&sim);
            assert!(heard_ms >= 3_000, "{phone:?} {honour}: heard {heard_ms} ms");
            assert!(db.abs() < 3.0, "{phone:?} {honour}: level {db:.1} dB");
        }
    }
}
