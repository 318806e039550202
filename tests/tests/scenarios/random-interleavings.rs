//! Random calls: caller audio, DTMF, hang-ups, model replies with tool calls, tool results and
//! failures, all interleaved by random latencies. The simulation checks the core's invariants
//! after every step (nothing sent after the end, deadlines advance, queues within caps, truncates
//! within what was heard, at most one output per tool call); this test adds the end-of-call ones.

use barbara_core::audio::PhoneCodec;
use barbara_tests::*;
use proptest::prelude::*;

fn codec() -> impl Strategy<Value = PhoneCodec> {
    prop_oneof![
        Just(PhoneCodec::Pcmu),
        Just(PhoneCodec::Pcma),
        Just(PhoneCodec::L16 { rate_hz: 16_000 }),
        Just(PhoneCodec::L16 { rate_hz: 24_000 }),
    ]
}

fn response() -> impl Strategy<Value = ScriptedResponse> {
    let tool = prop_oneof![
        Just("alpha"),
        Just("beta"),
        Just("end_call"),
        Just("send_dtmf"),
        Just("nonexistent"),
    ];
    (0u32..3_000, proptest::collection::vec(tool, 0..3)).prop_map(|(audio_ms, tools)| {
        let calls: Vec<(&str, serde_json::Value)> = tools
            .into_iter()
            .map(|name| (name, serde_json::json!({"digits": "12#"})))
            .collect();
        say_and_call("Random reply.", audio_ms, &calls)
    })
}

fn behaviour() -> impl Strategy<Value = ToolBehaviour> {
    prop_oneof![
        (0u64..4_000).prop_map(|d| ToolBehaviour::Reply {
            delay: ms(d),
            output: "{}".to_owned(),
            action: ToolAction::None,
        }),
        (0u64..4_000).prop_map(|d| ToolBehaviour::Reply {
            delay: ms(d),
            output: "{}".to_owned(),
            action: ToolAction::HangUp,
        }),
        Just(ToolBehaviour::Never),
        (0u64..3_000, 0u64..3_000).prop_map(|(d, a)| ToolBehaviour::ReplyTwice {
            delay: ms(d),
            again_after: ms(a),
            output: "{}".to_owned(),
        }),
    ]
}

prop_compose! {
    fn random_call()(
        seed in any::<u64>(),
        codec in codec(),
        greeting in 0u32..4_000,
        replies in proptest::collection::vec(response(), 0..4),
        utterances in proptest::collection::vec((0u64..15_000, 200u64..2_000), 0..4),
        dtmf in proptest::collection::vec((0u64..15_000, prop_oneof![Just('1'), Just('#'), Just('*'), Just('D')]), 0..5),
        hangup_at in 1_000u64..25_000,
        close_without_stop in any::<bool>(),
        alpha in behaviour(),
        beta in behaviour(),
        timeouts in (500u64..5_000, 500u64..5_000),
        latencies in (0u64..60, 0u64..120),
    ) -> SimConfig {
        let mut config = scenario(
            seed,
            greeting,
            replies,
            utterances.into_iter().map(|(s, d)| utterance(ms(s), ms(d))).collect(),
            ms(hangup_at),
        );
        config.caller.codec = codec;
        config.caller.dtmf = {
            let mut d: Vec<_> = dtmf.into_iter().map(|(t, c)| (ms(t), c)).collect();
            d.sort();
            d
        };
        if close_without_stop {
            config.caller.hangup = Some((ms(hangup_at), HangupStyle::CloseWithoutStop));
        }
        config.call.tools.push(tool_spec("alpha", ms(timeouts.0)));
        config.call.tools.push(tool_spec("beta", ms(timeouts.1)));
        config.tools.push(ScriptedTool { name: "alpha".to_owned(), behaviour: alpha });
        config.tools.push(ScriptedTool { name: "beta".to_owned(), behaviour: beta });
        config.phone_latency = ms(latencies.0);
        config.model_latency = ms(latencies.1);
        config
    }
}

/// The same cases on every run, so CI is repeatable; `BARBARA_PROPTEST_SEED=<u64>` explores others.
fn config() -> ProptestConfig {
    let seed = std::env::var("BARBARA_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_125);
    ProptestConfig {
        cases: 48,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_interleavings_keep_the_invariants(config in random_call()) {
        let seed = config.seed;
        let timeouts = (config.call.tools[0].timeout, config.call.tools[1].timeout);
        let timeouts = (timeouts.0.as_millis() as u64, timeouts.1.as_millis() as u64);
        let latencies = (config.phone_latency, config.model_latency);
        let mut sim = Sim::new(origin(), config);
        sim.run_to_end(secs(60));
        prop_assert!(sim.ended_at().is_some(), "seed {seed}: the call never ended");
        prop_assert!(sim.caller().violations.is_empty(), "seed {seed}: {:?}", sim.caller().violations);
        prop_assert_eq!(sim.caller().received_after_close, 0);
        // Every tool call got its output before its deadline passed (or the call ended first),
        // and every output reached the model unless the call ended while it was on the wire.
        let ended = sim.ended_at().unwrap();
        let deadlines = [("alpha", ms(timeouts.0)), ("beta", ms(timeouts.1))];
        for (started_at, event) in sim.all(|e| matches!(e, Event::ToolCallStarted { .. })) {
            let Event::ToolCallStarted { id, name, .. } = event else { unreachable!() };
            let deadline = deadlines.iter().find(|(n, _)| n == name).map_or(ms(0), |(_, d)| *d);
            let completed = sim.first(|e| matches!(e, Event::ToolCallCompleted { id: done, .. } if done == id));
            match completed {
                Some((at, _)) => {
                    prop_assert!(at <= started_at + deadline, "seed {seed}: {id} answered late at {at:?}");
                    if at + latencies.1 + ms(1) < ended {
                        prop_assert!(
                            sim.openai().function_outputs.iter().any(|(_, call, _)| call == id),
                            "seed {seed}: the output of {id} never reached the model"
                        );
                    }
                }
                None => prop_assert!(
                    ended <= started_at + deadline,
                    "seed {seed}: {id} never got an output though the call went on"
                ),
            }
        }
        prop_assert!(sim.outputs_per_input_max() < 2_000);
    }
}
