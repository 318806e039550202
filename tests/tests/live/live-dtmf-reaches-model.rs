use barbara_tests::*;

/// Keypad digits reach the Live model as trusted instructions (`delegation_id: null`); the bridge
/// does not cut the model off itself, the model decides.
#[test]
fn live_dtmf_reaches_model() {
    let mut config = live_scenario(8, 5_000, vec![], vec![], secs(10));
    config.caller.dtmf = vec![
        (secs(3), '1'),
        (ms(3_300), '2'),
        (ms(3_600), '#'),
        (secs(6), 'B'),
    ];
    let sim = run_deterministic(config, secs(20));
    assert_clean_live(&sim);
    let live = sim.live();

    let digits: Vec<char> = sim
        .all(|e| matches!(e, Event::CallerDtmf { .. }))
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::CallerDtmf { digit } => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, vec!['1', '2', '#', 'B']);

    // The greeting, then "12#" at once on '#', then the lone 'B' after the pause.
    let appends = &live.appends;
    assert_eq!(appends.len(), 3, "{appends:?}");
    assert!(
        appends
            .iter()
            .all(|a| a.kind == "instructions" && a.delegation_id.is_none())
    );
    assert!(appends[1].content.contains("12#"), "{appends:?}");
    assert!(
        appends[1].at >= ms(3_600) && appends[1].at < ms(3_700),
        "{appends:?}"
    );
    assert!(appends[2].content.contains('B'), "{appends:?}");
    assert!(
        appends[2].at >= ms(7_500) && appends[2].at < ms(7_700),
        "{appends:?}"
    );

    // The greeting played on while the keys were pressed: the bridge cut nothing.
    assert!(sim.caller().clears.is_empty());
    assert!(live.interruptions.is_empty());
    assert_eq!(live.turns[0].speech_ms_sent, 5_000);
    let heard = sim.caller().heard_speech_ms();
    assert!(heard >= 4_950, "heard {heard} ms");
}
