use barbara_tests::*;

#[test]
fn stale_mark_echoes_after_clear_ignored() {
    let config = scenario(
        3,
        8_000,
        vec![say("Go on.", 3_000)],
        vec![utterance(ms(2_000), ms(800)), utterance(ms(5_200), ms(800))],
        secs(10),
    );
    let sim = run_deterministic(config, secs(20));

    // The clear sent back every pending mark; none of those counts as heard audio.
    let stats = sim.call().stats();
    assert!(stats.stale_mark_echoes > 0, "{stats:?}");
    assert!(sim.all(|e| matches!(e, Event::BadInput { .. })).is_empty());

    let barge_ins = sim.all(|e| matches!(e, Event::BargeIn { .. }));
    assert_eq!(barge_ins.len(), 2, "{}", sim.trace_lines().join("\n"));
    for (at, event) in barge_ins {
        let Event::BargeIn { heard_ms, .. } = event else {
            unreachable!()
        };
        let heard = heard_speech_between(&sim, ms(0), at + ms(1));
        assert!(*heard_ms <= heard, "claimed {heard_ms} ms, heard {heard}");
    }
    // Both truncates were accepted by the server: positions never exceeded what it sent.
    assert!(
        sim.openai().truncates.iter().all(|t| t.accepted),
        "{:?}",
        sim.openai().truncates
    );
}
