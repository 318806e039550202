use barbara_tests::*;

#[test]
fn caller_dtmf_reaches_model() {
    let mut config = scenario(
        8,
        1_000,
        vec![say("You entered one two.", 1_500)],
        vec![],
        secs(10),
    );
    config.caller.dtmf = vec![
        (secs(3), '1'),
        (ms(3_300), '2'),
        (ms(3_600), '#'),
        (secs(6), 'B'),
    ];
    let sim = run_deterministic(config, secs(20));

    let digits: Vec<char> = sim
        .all(|e| matches!(e, Event::CallerDtmf { .. }))
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::CallerDtmf { digit } => Some(*digit),
            _ => None,
        })
        .collect();
    assert_eq!(digits, vec!['1', '2', '#', 'B']);

    // "12#" goes at once on '#'; the lone 'B' after the pause.
    let texts = &sim.openai().user_texts;
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].1.contains("12#"), "{texts:?}");
    assert!(texts[0].0 < ms(3_700));
    assert!(texts[1].1.contains('B'));
    assert!(
        texts[1].0 >= ms(7_500) && texts[1].0 < ms(7_700),
        "{texts:?}"
    );
    // Each text got the model to answer.
    assert_eq!(sim.openai().response_creates, 3);
    assert!(
        sim.openai().errors_sent.is_empty(),
        "{:?}",
        sim.openai().errors_sent
    );
}
