use barbara_tests::*;

fn call_dropped_mid_answer() -> Sim {
    let mut config = live_scenario(
        15,
        2_000,
        vec![
            live_turn(
                "Sure, order 4417 shipped on Monday and should arrive on Friday.",
                4_000,
            ),
            live_turn("You're welcome.", 1_000),
        ],
        vec![utterance(secs(3), secs(1)), utterance(secs(14), secs(1))],
        secs(20),
    );
    config.live.caller_transcripts =
        vec!["Where is order 4417?".to_owned(), "Thank you.".to_owned()];
    // The answer starts about half a second after the caller stops at 4 s and runs 4 s.
    config.live.drop_socket_at = Some(secs(6));
    let mut sim = Sim::new(origin(), config);
    sim.run_to_end(secs(30));
    sim
}

/// The Live socket drops while the model is mid-sentence. The new session gets the
/// conversation so far, with the interrupted line marked as cut off rather than passed on as
/// if the model had finished it; lines that were whole stay unmarked.
#[test]
fn live_line_cut_by_a_dropped_socket_is_marked_cut_off() {
    let sim = call_dropped_mid_answer();
    assert_eq!(sim.trace_lines(), call_dropped_mid_answer().trace_lines());
    assert_eq!(
        sim.all(|e| matches!(e, Event::ModelReconnecting { .. }))
            .len(),
        1,
        "{}",
        sim.trace_lines().join("\n")
    );
    let start = sim.live().session_start.clone().expect("session.start");
    let input = start["input"].as_array().cloned().unwrap_or_default();
    let lines: Vec<String> = input
        .iter()
        .map(|item| item["content"][0]["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(lines.len() >= 3, "{lines:?}");
    assert!(lines[0].ends_with("How can I help?"), "{lines:?}");
    assert!(!lines[0].contains("[cut off"), "{lines:?}");
    assert_eq!(lines[1], "Where is order 4417?");
    let last = lines.last().unwrap();
    assert_eq!(input.last().unwrap()["role"], "assistant");
    assert!(last.starts_with("Sure, order 4417"), "{lines:?}");
    assert!(
        !last.contains("Friday"),
        "the whole line got through: {lines:?}"
    );
    assert!(
        last.ends_with("[cut off: the connection dropped]"),
        "{lines:?}"
    );
}
