use std::time::Duration;

use barbara_tests::*;
use serde_json::json;

/// A Live call over WebRTC: greeting, a caller turn answered through a delegated tool call,
/// and the caller's hang-up; `close_delay` is how long the fake takes to answer `session.close`.
fn call(seed: u64, close_delay: Duration) -> SimConfig {
    let mut config = live_scenario(
        seed,
        2_000,
        vec![live_turn_calling(
            "Let me check that order.",
            1_200,
            &[("lookup_order", json!({"order_id": "4417"}))],
            "Your order shipped and arrives Thursday.",
            2_000,
        )],
        vec![utterance(secs(4), ms(1_500))],
        secs(14),
    );
    config.call.tools.push(tool_spec("lookup_order", secs(5)));
    config.tools.push(ScriptedTool {
        name: "lookup_order".to_owned(),
        behaviour: ToolBehaviour::Reply {
            delay: ms(400),
            output: r#"{"status":"shipped","eta":"Thursday"}"#.to_owned(),
            action: ToolAction::None,
        },
    });
    config.live.close_delay = Some(close_delay);
    live_over_webrtc(config)
}

#[test]
fn live_webrtc_call_end_to_end() {
    let sim = run_deterministic_webrtc(call(31, ms(300)), secs(30));
    assert_clean_live_webrtc(&sim);

    // One Live session, created over WebRTC; the WebSocket was never used.
    assert_eq!(
        transports(&sim),
        ["live/webrtc"],
        "{}",
        sim.trace_lines().join("\n")
    );
    assert!(fallbacks(&sim).is_empty());
    assert!(sim.model_events_sent().is_empty());
    assert_eq!(sim.live().url, None);
    let requests = sim.http_requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].1.url, "https://api.openai.com/v1/live/sessions");
    let webrtc = sim.openai_webrtc();
    assert_eq!(webrtc.calls.len(), 1);
    let call = &webrtc.calls[0];
    assert_eq!(call.call_id, "live_rtc_0001");
    assert!(
        call.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v == "Bearer sk-sim-key")
    );
    let session = call.session.as_ref().unwrap();
    assert_eq!(session["model"], "gpt-live-1");
    assert!(session["audio"].get("format").is_none(), "{session}");
    let tools = session["delegation"]["responses"]["tools"]
        .as_array()
        .unwrap();
    assert!(tools.iter().any(|t| t["name"] == "lookup_order"));
    // The μ-law phone leg kept PCMU on RTP.
    assert_eq!(format!("{:?}", call.codec_in), "Some(Pcmu)");
    assert!(call.rtp_in > 500, "{} packets", call.rtp_in);

    // session.started arrived on the channel, then the greeting instruction went out at once.
    let live = call.live.as_ref().unwrap();
    let started = live.started_at.unwrap();
    let ready = time_of(&sim, "model ready", |e| {
        matches!(e, Event::ModelReady { .. })
    });
    assert!(ready < ms(600), "ready only at {ready:?}");
    assert_eq!(ready, started + ms(20), "one UDP hop");
    assert_eq!(
        live.instructions(),
        [LiveConfig::default().greeting.as_str()]
    );
    assert_eq!(live.appends[0].at, ready + ms(20));
    // Caller audio flowed over RTP from then on, without pauses.
    assert!(live.first_input_at.unwrap() <= ready + ms(40));
    assert!(live.input_gaps.is_empty(), "{:?}", live.input_gaps);

    // The greeting was heard, quickly, then the reply and the backend's answer.
    let triggers: Vec<TurnTrigger> = live.turns.iter().map(|t| t.trigger).collect();
    assert_eq!(
        triggers,
        [
            TurnTrigger::Greeting,
            TurnTrigger::CallerTurn,
            TurnTrigger::FollowUp
        ]
    );
    assert_eq!(live.speech_ms_sent(), 5_200);
    let first_audio = time_of(&sim, "first audio", |e| {
        matches!(e, Event::FirstAudioToCaller)
    });
    assert!(
        first_audio < ms(1_000),
        "first audio only at {first_audio:?}"
    );
    let greeting = live.turns[0].first_chunk_at.unwrap();
    assert!(
        first_audio >= greeting + ms(20),
        "{first_audio:?} {greeting:?}"
    );
    let heard = sim.caller().heard_speech_ms();
    // Opus edges can make a frame either side of a run count as speech.
    assert!(
        (5_100..=5_300).contains(&heard),
        "heard {heard} ms of speech"
    );
    assert!(sim.caller().clears.is_empty());
    assert_eq!(live.caller_speech_started.len(), 1);
    assert!(live.interruptions.is_empty());
    assert_eq!(
        transcripts(&sim)[..2],
        [
            (
                Role::Assistant,
                "Hello, this is Barbara. How can I help?".to_owned()
            ),
            (Role::Caller, "I would like to check my order.".to_owned()),
        ]
    );

    // The delegated call reached the application and was answered once, then continued with
    // one response.create after the backend's response ended.
    assert_eq!(live.delegations.len(), 1);
    let delegation = &live.delegations[0];
    let (call_id, name) = delegation.calls[0].clone();
    assert_eq!(name, "lookup_order");
    let (started_at, started_event) = sim
        .first(|e| matches!(e, Event::ToolCallStarted { .. }))
        .unwrap();
    let Event::ToolCallStarted { id, arguments, .. } = started_event else {
        unreachable!()
    };
    assert_eq!(id, &call_id);
    assert_eq!(arguments, &json!({"order_id": "4417"}));
    assert_eq!(started_at, delegation.created_at + ms(20));
    assert_eq!(live.function_outputs.len(), 1);
    let (output_at, output_call, output) = &live.function_outputs[0];
    assert_eq!(output_call, &call_id);
    assert!(output.contains("shipped"), "{output}");
    assert_eq!(*output_at, started_at + ms(400) + ms(20));
    assert_eq!(live.response_creates.len(), 1);
    let create_at = live.response_creates[0];
    assert!(create_at >= *output_at && create_at >= delegation.completed_at.unwrap());
    assert_eq!(delegation.continued_at, Some(create_at));
    let follow_up = &live.turns[2];
    assert_eq!(follow_up.speech_ms_sent, 2_000);
    let from = follow_up.first_chunk_at.unwrap();
    assert!(heard_speech_between(&sim, from, from + secs(3)) >= 1_950);
    // (The driver sees only WebSocket events; over WebRTC the fake's record is the proof.)
    assert_eq!(
        sim.all(|e| matches!(e, Event::ToolCallStarted { .. }))
            .len(),
        1
    );

    // The caller's stop: session.close on the channel at once, and nothing after it.
    assert_eq!(live.close_requested_at, Some(secs(14) + ms(15) + ms(20)));
    assert_eq!(live.events_after_close, 0);
    assert_eq!(live.closed_reason.as_deref(), Some("close_requested"));
    assert!(!live.closed_without_session_close);
    // session.closed came back on the channel and ended the call.
    let closed = session_closed_events(&sim);
    assert_eq!(closed.len(), 1, "{}", sim.trace_lines().join("\n"));
    assert_eq!(closed[0].0, live.closed_at.unwrap() + ms(20));
    let (end, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
    assert!(
        end >= closed[0].0 && end < closed[0].0 + ms(100),
        "ended at {end:?}"
    );
}

/// The hang-up waits for `session.closed`, which arrives on the data channel, and records it.
#[test]
fn live_webrtc_hangup_waits_for_session_closed() {
    let sim = run_deterministic_webrtc(call(32, ms(700)), secs(30));
    assert_clean_live_webrtc(&sim);
    let live = &live_webrtc_sessions(&sim)[0];

    let requested = live.close_requested_at.unwrap();
    assert_eq!(requested, secs(14) + ms(15) + ms(20));
    let closed_at = live.closed_at.unwrap();
    assert_eq!(closed_at, requested + ms(700));
    let closed = session_closed_events(&sim);
    assert_eq!(closed.len(), 1, "{}", sim.trace_lines().join("\n"));
    let (closed_event_at, reason, billed) = &closed[0];
    assert_eq!(reason, "close_requested");
    assert_eq!(*closed_event_at, closed_at + ms(20));
    assert_eq!(*billed, Some(14.0));
    let (end, event) = sim.first(is_end).unwrap();
    assert_eq!(
        event,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
    assert!(
        end >= *closed_event_at,
        "ended at {end:?} before session.closed"
    );
    assert!(end < closed_at + ms(100), "ended at {end:?}");
}
