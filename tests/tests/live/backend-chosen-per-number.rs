use std::collections::BTreeMap;

use barbara_tests::*;

/// One configuration for every call: the default backend is Realtime, but one called number is
/// answered by Live.
fn config_for(seed: u64, to: &str) -> SimConfig {
    let mut config = scenario(
        seed,
        1_500,
        vec![say("Realtime here.", 1_000)],
        vec![utterance(secs(3), ms(800))],
        secs(8),
    );
    config.live.turns = vec![
        live_turn("Live here.", 1_500),
        live_turn("Still Live.", 1_000),
    ];
    config.call.backend = Backend::Realtime;
    config.call.backend_by_number = BTreeMap::from([("+15550001111".to_owned(), Backend::Live)]);
    config.caller.custom_parameters = vec![("To".to_owned(), to.to_owned())];
    config
}

#[test]
fn backend_chosen_per_number() {
    let realtime = run_deterministic(config_for(12, "+15550002222"), secs(20));
    assert_eq!(transports(&realtime), ["realtime/websocket"]);
    assert!(!realtime.openai().session_updates.is_empty());
    assert_eq!(realtime.openai().responses.len(), 2);
    assert!(realtime.live().url.is_none(), "Live was not dialled");
    assert!(realtime.caller().heard_speech_ms() >= 2_400);

    let live = run_deterministic(config_for(12, "+15550001111"), secs(20));
    assert_clean_live(&live);
    assert_eq!(transports(&live), ["live/websocket"]);
    assert!(
        live.openai().received_types.is_empty(),
        "Realtime was not dialled"
    );
    assert!(live.live().session_start.is_some());
    assert_eq!(live.live().speech_ms_sent(), 2_500);
    assert!(live.caller().heard_speech_ms() >= 2_400);

    // Both calls ended the same way.
    for sim in [&realtime, &live] {
        let (_, event) = sim.first(is_end).unwrap();
        assert_eq!(
            event,
            &Event::CallEnded {
                reason: EndReason::CallerStopped
            }
        );
    }
}
