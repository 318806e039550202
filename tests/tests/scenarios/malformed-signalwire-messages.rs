use std::time::{Duration, Instant};

use barbara_core::{BadInputKind, Call, CallConfig, Leg, Output, WsMessage};
use barbara_tests::*;

#[test]
fn malformed_signalwire_messages() {
    let mut config = scenario(11, 2_000, vec![], vec![], secs(6));
    let sid = config.caller.stream_sid.clone();
    let oversized = format!(
        r#"{{"event":"media","media":{{"payload":"{}"}}}}"#,
        "A".repeat(70_000)
    );
    config.caller.raw_messages = vec![
        (secs(1), "not json at all".to_owned()),
        (
            ms(1_100),
            r#"{"event":"media","media":{"payload":"***"}}"#.to_owned(),
        ),
        (
            ms(1_200),
            r#"{"event":"transcription","text":"hi"}"#.to_owned(),
        ),
        (
            ms(1_300),
            r#"{"event":"dtmf","streamSid":"someone-else","dtmf":{"digit":"1"}}"#.to_owned(),
        ),
        (ms(1_400), oversized),
        (
            ms(1_500),
            r#"{"event":"mark","streamSid":"SID","mark":{"name":"never-sent"}}"#
                .replace("SID", &sid),
        ),
        (ms(1_600), r#"{"event":"media"}"#.to_owned()),
    ];
    let mut sim = Sim::new(origin(), config);
    // Media before `start`: injected before the caller's own `connected`/`start` arrive.
    sim.inject_phone_text(ms(1), r#"{"event":"media","media":{"payload":"//8="}}"#);
    sim.run_to_end(secs(20));

    let kinds: Vec<BadInputKind> = sim
        .all(|e| matches!(e, Event::BadInput { .. }))
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::BadInput { kind, .. } => Some(kind.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            BadInputKind::MediaBeforeStart,
            BadInputKind::Malformed,
            BadInputKind::BadBase64,
            BadInputKind::UnknownEvent,
            BadInputKind::WrongStreamSid,
            BadInputKind::Oversized,
            BadInputKind::UnknownMark,
            BadInputKind::Malformed,
        ]
    );
    assert_eq!(sim.call().stats().bad_phone_messages, 8);
    // None of it hurt the call: the greeting played and the call ended as the caller chose.
    assert!(sim.caller().heard_speech_ms() >= 1_900);
    let (_, end) = sim.first(is_end).unwrap();
    assert_eq!(
        end,
        &Event::CallEnded {
            reason: EndReason::CallerStopped
        }
    );
}

#[test]
fn odd_l16_payload_and_binary_frames_are_dropped() {
    let start = Instant::now();
    let mut call = Call::new(CallConfig::new("sk-x"), [1; 32], start, Duration::ZERO).unwrap();
    let t = |ms| start + Duration::from_millis(ms);
    call.handle_ws_message(
        t(1),
        Leg::Phone,
        WsMessage::Text(r#"{"event":"start","start":{"streamSid":"s1","callSid":"c1","mediaFormat":{"encoding":"audio/x-L16","sampleRate":16000,"channels":1}}}"#),
    );
    call.handle_ws_message(
        t(2),
        Leg::Phone,
        WsMessage::Text(r#"{"event":"media","media":{"payload":"AAEC"}}"#),
    );
    call.handle_ws_message(t(3), Leg::Phone, WsMessage::Binary(&[1, 2, 3]));
    let outputs: Vec<Output> = std::iter::from_fn(|| call.poll_output()).collect();
    let bad: Vec<&Event> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Event(e @ Event::BadInput { .. }) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(
        bad,
        vec![
            &Event::BadInput {
                leg: Leg::Phone,
                kind: BadInputKind::OddLength
            },
            &Event::BadInput {
                leg: Leg::Phone,
                kind: BadInputKind::Binary
            },
        ]
    );
    assert!(call.end_reason().is_none());
}
