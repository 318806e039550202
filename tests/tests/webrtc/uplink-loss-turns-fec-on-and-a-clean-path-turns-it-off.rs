use barbara_core::audio::PhoneCodec;
use barbara_tests::*;

const LOSS_FROM: u64 = 10;
const LOSS_UNTIL: u64 = 25;

/// (time, enabled, loss percent) of each FEC change.
fn fec_changes(sim: &Sim) -> Vec<(std::time::Duration, bool, u8)> {
    sim.all(|e| matches!(e, Event::UplinkFec { .. }))
        .into_iter()
        .filter_map(|(t, e)| match e {
            Event::UplinkFec {
                enabled,
                loss_percent,
            } => Some((t, *enabled, *loss_percent)),
            _ => None,
        })
        .collect()
}

fn call_with_a_lossy_stretch() -> Sim {
    let mut config = over_webrtc(scenario(
        31,
        2_000,
        vec![say("Got it.", 1_500)],
        vec![
            utterance(secs(4), ms(1_500)),
            utterance(secs(30), ms(1_500)),
        ],
        secs(70),
    ));
    config.caller.codec = PhoneCodec::L16 { rate_hz: 16_000 };
    let mut sim = Sim::new(origin(), config);
    sim.run_until(secs(LOSS_FROM), |_| false);
    sim.set_net(NetParams {
        latency: ms(30),
        loss: 0.08,
        ..NetParams::default()
    });
    sim.run_until(secs(LOSS_UNTIL), |_| false);
    sim.set_net(NetParams {
        latency: ms(30),
        ..NetParams::default()
    });
    sim.run_to_end(secs(90));
    sim
}

/// Caller audio goes out as Opus without FEC while OpenAI's receiver reports show no loss;
/// the first report with loss turns FEC on, and a run of clean reports turns it off again.
#[test]
fn uplink_loss_turns_fec_on_and_a_clean_path_turns_it_off() {
    let sim = call_with_a_lossy_stretch();
    assert_eq!(sim.trace_lines(), call_with_a_lossy_stretch().trace_lines());
    assert_eq!(transports(&sim), vec!["realtime/webrtc"]);
    assert_eq!(format!("{:?}", sim.openai_webrtc().calls[0].codec), "Opus");

    let changes = fec_changes(&sim);
    assert_eq!(changes.len(), 2, "{changes:?}");
    let (on_at, on, loss) = changes[0];
    assert!(on && loss > 0, "{changes:?}");
    // Receiver reports come every 5 s (str0m's audio interval), summed up each second.
    assert!(
        on_at > secs(LOSS_FROM) && on_at <= secs(LOSS_FROM + 12),
        "FEC on at {on_at:?}"
    );
    let (off_at, on, loss) = changes[1];
    assert!(!on && loss == 0, "{changes:?}");
    // Five clean reports in a row: not before 20 s of clean path, and not long after 25 s.
    assert!(
        off_at >= secs(LOSS_UNTIL + 20) && off_at <= secs(LOSS_UNTIL + 40),
        "FEC off at {off_at:?}"
    );
    // The call itself went on as scripted through all of it.
    let ended = sim.first(|e| matches!(e, Event::CallEnded { .. }));
    assert!(
        matches!(
            ended,
            Some((_, Event::CallEnded { reason })) if *reason == EndReason::CallerStopped
        ),
        "{ended:?}"
    );
}
