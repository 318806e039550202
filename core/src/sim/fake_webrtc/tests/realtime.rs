//! Realtime calls: `POST /v1/realtime/calls`, a `FakeRealtime` brain.

use super::*;

#[test]
fn call_creation_answers_201_with_an_sdp_the_offerer_accepts() {
    fastrand::seed(1);
    let base = origin();
    let mut fake = FakeRealtimeWebRtc::new(script(600), WebRtcFakeMode::default(), server_addr());
    let (mut rtc, _, _, pending, sdp) = offerer(base, Offer::OpusAndPcmu);
    let (status, headers, body) = fake.handle_http(
        base,
        "POST",
        URL,
        &headers(),
        &multipart(&sdp, &session_json()),
    );
    assert_eq!(status, 201);
    assert_eq!(
        headers,
        [
            ("Content-Type".to_owned(), "application/sdp".to_owned()),
            (
                "Location".to_owned(),
                "/v1/realtime/calls/rtc_0001".to_owned()
            ),
        ]
    );
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("opus/48000/2"), "{text}");
    assert!(text.contains("PCMU/8000"), "{text}");
    assert!(text.contains("10.0.0.2 3478 typ host"), "{text}");
    assert!(text.contains("webrtc-datachannel"), "{text}");
    assert!(
        text.contains("a=setup:active"),
        "OpenAI is the DTLS client: {text}"
    );
    let answer = SdpAnswer::from_sdp_string(&text).unwrap();
    rtc.sdp_api().accept_answer(pending, answer).unwrap();
    let report = fake.report();
    let call = &report.calls[0];
    assert_eq!(call.call_id, "rtc_0001");
    assert_eq!(call.session.as_ref(), Some(&session_json()));
    assert_eq!(call.codec, AudioCodec::Opus);
    assert_eq!(call.offer_sdp, sdp);
    assert!(
        call.headers
            .iter()
            .any(|(k, v)| k == "Authorization" && v == "Bearer sk-test")
    );
    assert_eq!(report.requests[0].status, 201);
    assert!(
        report.all_violations().is_empty(),
        "{:?}",
        report.all_violations()
    );
    // Nothing is sent on the channel before it opens.
    assert_eq!(call.realtime.responses.len(), 0);
}

#[test]
fn refusals_carry_the_documented_error_json() {
    fastrand::seed(1);
    let base = origin();
    let (_, _, _, _, sdp) = offerer(base, Offer::OpusAndPcmu);
    let body = multipart(&sdp, &session_json());
    let post = |mode: WebRtcFakeMode, url: &str, h: &[(String, String)], body: &[u8]| {
        let mut fake = FakeRealtimeWebRtc::new(script(600), mode, server_addr());
        let answer = fake.handle_http(base, "POST", url, h, body);
        (answer, fake.report())
    };
    let ok = WebRtcFakeMode::default;

    let refuse = |status| WebRtcFakeMode {
        refuse_with: Some(status),
        ..WebRtcFakeMode::default()
    };
    let (a, r) = post(refuse(401), URL, &headers(), &body);
    let e = error_of(&a);
    assert_eq!(a.0, 401);
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("invalid_request_error"), Some("invalid_api_key"))
    );
    assert!(r.calls.is_empty() && r.violations.is_empty());
    let (a, _) = post(refuse(400), URL, &headers(), &body);
    assert_eq!(
        (a.0, error_of(&a)["type"].as_str()),
        (400, Some("invalid_request_error"))
    );

    let no_auth: Vec<(String, String)> = headers()
        .into_iter()
        .filter(|(k, _)| k != "Authorization")
        .collect();
    let (a, r) = post(ok(), URL, &no_auth, &body);
    assert_eq!(
        (a.0, error_of(&a)["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert_eq!(r.violations.len(), 1);

    let truncated = &body[..body.len() - 30];
    let (a, r) = post(ok(), URL, &headers(), truncated);
    assert_eq!(a.0, 400, "{}", String::from_utf8_lossy(&a.2));
    assert_eq!(error_of(&a)["type"], "invalid_request_error");
    assert_eq!(r.violations.len(), 1);

    let no_sdp = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n{{}}\r\n--{BOUNDARY}--\r\n"
    );
    let (a, r) = post(ok(), URL, &headers(), no_sdp.as_bytes());
    assert_eq!(a.0, 400);
    assert!(r.violations[0].contains("'sdp'"), "{:?}", r.violations);

    let beta = json!({"type": "realtime", "modalities": ["audio"]});
    let (a, r) = post(ok(), URL, &headers(), &multipart(&sdp, &beta));
    let e = error_of(&a);
    assert_eq!(a.0, 400);
    assert_eq!(
        (e["code"].as_str(), e["param"].as_str()),
        (Some("unknown_parameter"), Some("session.modalities"))
    );
    assert_eq!(r.violations.len(), 1);

    let (a, r) = post(
        ok(),
        &format!("{URL}?model=gpt-realtime"),
        &headers(),
        &body,
    );
    assert_eq!(a.0, 201);
    assert!(r.violations[0].contains("model="), "{:?}", r.violations);

    // Plain text fields (no part Content-Type) and raw SDP are accepted.
    let plain = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"sdp\"\r\n\r\n{sdp}\r\n--{BOUNDARY}--\r\n"
    );
    let (a, r) = post(ok(), "/v1/realtime/calls", &headers(), plain.as_bytes());
    assert_eq!(a.0, 201);
    assert_eq!(r.calls[0].session, None);
    assert!(r.violations.is_empty());
    let raw = vec![
        ("authorization".to_owned(), "Bearer ek_1".to_owned()),
        ("content-type".to_owned(), "application/sdp".to_owned()),
    ];
    assert_eq!(post(ok(), URL, &raw, sdp.as_bytes()).0.0, 201);

    let (a, _) = post(
        ok(),
        "https://api.openai.com/v1/realtime/sessions",
        &headers(),
        &body,
    );
    assert_eq!(a.0, 404);
    let mut fake = FakeRealtimeWebRtc::new(script(600), ok(), server_addr());
    assert_eq!(fake.handle_http(base, "GET", URL, &headers(), b"").0, 404);
    let hangup = "https://api.openai.com/v1/realtime/calls/rtc_9999/hangup";
    assert_eq!(
        fake.handle_http(base, "POST", hangup, &headers(), b"").0,
        404
    );

    // Opus only: G.711 leaves the answer; a G.711-only offer is refused.
    let opus_only = WebRtcFakeMode {
        opus_only: true,
        ..WebRtcFakeMode::default()
    };
    let (a, _) = post(opus_only.clone(), URL, &headers(), &body);
    let text = String::from_utf8(a.2).unwrap();
    assert!(text.contains("opus/48000/2") && !text.contains("PCMU") && !text.contains("PCMA"));
    let (_, _, _, _, pcmu_sdp) = offerer(base, Offer::PcmuOnly);
    let (a, _) = post(
        opus_only,
        URL,
        &headers(),
        &multipart(&pcmu_sdp, &session_json()),
    );
    assert_eq!(a.0, 400);
}

#[test]
fn offerer_connects_and_gets_session_created_on_oai_events() {
    fastrand::seed(1);
    let mut h = harness(600);
    h.connect();
    let (_, created) = h.first("session.created");
    assert_eq!(h.types()[0], "session.created");
    assert_eq!(created["session"]["instructions"], "Be brief.");
    assert_eq!(created["session"]["audio"]["output"]["voice"], "marin");
    assert_eq!(created["session"]["model"], "gpt-realtime");
    let report = h.fake.report();
    let call = &report.calls[0];
    assert!(call.connected_at.is_some());
    assert_eq!(
        call.channel.as_ref().map(|c| c.1.as_str()),
        Some(CHANNEL_LABEL)
    );
    assert!(
        report.all_violations().is_empty(),
        "{:?}",
        report.all_violations()
    );
    // A session.update over the channel works as on the WebSocket.
    h.send(
        json!({"type": "session.update", "session": {"type": "realtime", "instructions": "Hi."}}),
    );
    h.run_for(ms(100));
    assert_eq!(
        h.first("session.updated").1["session"]["instructions"],
        "Hi."
    );
}

#[test]
fn response_create_plays_paced_rtp_with_buffer_events() {
    fastrand::seed(1);
    let mut h = harness(1000);
    h.connect();
    let asked = h.at();
    h.send(json!({"type": "response.create"}));
    h.run_for(ms(3000));
    // 50 frames of 20 ms, every 20 ms: real time, not a burst.
    assert_eq!(h.media.len(), 50, "{:?}", h.media.len());
    for w in h.media.windows(2) {
        assert_eq!(w[1].0 - w[0].0, ms(20));
        assert_eq!(w[1].2 - w[0].2, 960, "Opus RTP clock: 960 ticks per 20 ms");
    }
    let first_media = h.media[0].0;
    let last_media = h.media[49].0;
    assert!(first_media >= asked + ms(300), "{first_media:?} {asked:?}");
    let (started, _) = h.first("output_audio_buffer.started");
    let (done, done_ev) = h.first("response.done");
    let (stopped, stopped_ev) = h.first("output_audio_buffer.stopped");
    assert_eq!(done_ev["response"]["status"], "completed");
    assert_eq!(stopped_ev["response_id"], done_ev["response"]["id"]);
    assert!(
        started <= first_media + ms(5),
        "{started:?} {first_media:?}"
    );
    assert!(done < stopped, "response.done before the buffer drains");
    assert_eq!(
        stopped,
        last_media + ms(20),
        "stopped one frame after the last"
    );
    assert!(!h.types().contains(&"response.output_audio.delta"));
    let transcript: String = h
        .events
        .iter()
        .filter(|(_, e)| e["type"] == "response.output_audio_transcript.delta")
        .map(|(_, e)| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(transcript, "Hello, how can I help?");
    let report = h.fake.report();
    let call = &report.calls[0];
    assert_eq!((call.rtp_out, call.rtp_out_ms), (50, 1000));
    let rt = &call.realtime;
    assert_eq!(rt.audio_played_ms, 1000);
    assert_eq!(rt.responses[0].audio_ms_played, 1000);
    let kinds: Vec<BufferEvent> = rt.output_buffer.iter().map(|b| b.event).collect();
    assert_eq!(kinds, [BufferEvent::Started, BufferEvent::Stopped]);
    assert!(
        report.all_violations().is_empty(),
        "{:?}",
        report.all_violations()
    );
}

#[test]
fn loud_caller_audio_cuts_the_response_server_side() {
    fastrand::seed(1);
    let mut h = harness(3000);
    h.connect();
    h.send(json!({"type": "response.create"}));
    h.talk(false, 800);
    h.talk(true, 200);
    h.run_for(ms(2000));
    let (speech, _) = h.first("input_audio_buffer.speech_started");
    let (cleared, cleared_ev) = h.first("output_audio_buffer.cleared");
    let (_, done) = h.first("response.done");
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(
        done["response"]["status_details"]["reason"],
        "turn_detected"
    );
    assert_eq!(cleared_ev["response_id"], done["response"]["id"]);
    assert!(cleared >= speech);
    assert!(!h.types().contains(&"output_audio_buffer.stopped"));
    let last_media = h.media.last().unwrap().0;
    assert!(last_media <= cleared + ms(20), "RTP stops with the clear");
    let report = h.fake.report();
    let rt = &report.calls[0].realtime;
    let played = rt.responses[0].audio_ms_played;
    assert!(played > 300 && played < 1000, "{played}");
    assert_eq!(u64::from(played), report.calls[0].rtp_out_ms);
    let last = rt.output_buffer.last().unwrap();
    assert_eq!(
        (last.event, last.played_ms),
        (BufferEvent::ClearedByVad, played)
    );
    assert!(report.calls[0].rtp_in >= 50);
    assert!(
        report.all_violations().is_empty(),
        "{:?}",
        report.all_violations()
    );
}

#[test]
fn client_clear_is_accepted_and_append_is_a_violation() {
    fastrand::seed(1);
    let mut h = harness(3000);
    h.connect();
    h.send(json!({"type": "response.create"}));
    h.run_for(ms(700));
    h.send(json!({"type": "response.cancel"}));
    h.send(json!({"type": "output_audio_buffer.clear"}));
    let sent = h.at();
    h.run_for(ms(500));
    let (cleared, _) = h.first("output_audio_buffer.cleared");
    assert!(cleared >= sent);
    assert!(h.media.last().unwrap().0 <= cleared + ms(20));
    let report = h.fake.report();
    let rt = &report.calls[0].realtime;
    assert_eq!(
        rt.output_buffer.last().unwrap().event,
        BufferEvent::ClearedByClient
    );
    assert!(rt.violations.is_empty(), "{:?}", rt.violations);
    h.send(json!({"type": "input_audio_buffer.append", "audio": "AAAA"}));
    h.run_for(ms(100));
    assert_eq!(h.events.last().unwrap().1["type"], "error");
    assert_eq!(h.fake.report().all_violations().len(), 1);
}

#[test]
fn never_connect_never_connects() {
    fastrand::seed(1);
    let mode = WebRtcFakeMode {
        never_connect: true,
        ..WebRtcFakeMode::default()
    };
    let mut h = Harness::new(script(600), mode, Offer::OpusAndPcmu, NetParams::default());
    h.run_for(ms(5000));
    assert_eq!(h.connected_at, None);
    assert!(!h.channel_open);
    let report = h.fake.report();
    assert_eq!(report.calls[0].connected_at, None);
    assert!(report.udp_ignored > 0);
    assert_eq!(h.down.stats().sent, 0, "the fake sends nothing");
}

#[test]
fn drop_after_silences_the_call() {
    fastrand::seed(1);
    let mode = WebRtcFakeMode {
        drop_after: Some(ms(1500)),
        ..WebRtcFakeMode::default()
    };
    let mut h = Harness::new(script(5000), mode, Offer::OpusAndPcmu, NetParams::default());
    h.connect();
    h.send(json!({"type": "response.create"}));
    h.run_for(ms(3000));
    let report = h.fake.report();
    let call = &report.calls[0];
    let dropped = call.dropped_at.unwrap();
    assert_eq!(dropped, call.connected_at.unwrap() + ms(1500));
    let sent_before = h.down.stats().sent;
    h.run_for(ms(3000));
    assert_eq!(h.down.stats().sent, sent_before, "nothing after the drop");
    assert!(h.media.last().unwrap().0 <= dropped + ms(40));
    assert!(call.rtp_out > 0 && call.rtp_out_ms < 5000);
    assert_eq!(h.fake.poll_timeout(), None);
}

#[test]
fn hangup_closes_the_call() {
    fastrand::seed(1);
    let mut h = harness(5000);
    h.connect();
    h.send(json!({"type": "response.create"}));
    h.run_for(ms(800));
    let url = "https://api.openai.com/v1/realtime/calls/rtc_0001/hangup";
    let (status, _, _) = h.fake.handle_http(h.now, "POST", url, &headers(), b"");
    assert_eq!(status, 200);
    h.move_fake_transmits();
    let at = h.at();
    h.run_for(ms(2000));
    assert!(h.media.last().unwrap().0 <= at + ms(40));
    let report = h.fake.report();
    assert_eq!(report.hangups, [(at, "rtc_0001".to_owned())]);
    assert_eq!(report.calls[0].hung_up_at, Some(at));
    assert!(report.calls[0].realtime.closed_by_client);
    assert_eq!(h.fake.poll_timeout(), None);
    assert!(h.closed, "the offerer saw the DTLS close");
}

#[test]
fn pcmu_only_offer_gets_pcmu_audio() {
    fastrand::seed(1);
    let mut h = Harness::new(
        script(400),
        WebRtcFakeMode::default(),
        Offer::PcmuOnly,
        NetParams::default(),
    );
    h.connect();
    assert_eq!(h.fake.report().calls[0].codec, AudioCodec::Pcmu);
    h.send(json!({"type": "response.create"}));
    h.run_for(ms(1500));
    assert_eq!(h.media.len(), 20);
    for (_, pt, _, len) in &h.media {
        assert_eq!((**pt, *len), (0, 160));
    }
    for w in h.media.windows(2) {
        assert_eq!(w[1].2 - w[0].2, 160);
    }
}

#[test]
fn lossy_jittery_path_still_carries_audio() {
    fastrand::seed(1);
    let net = NetParams {
        latency: ms(40),
        jitter: ms(15),
        loss: 0.03,
        ..NetParams::default()
    };
    let mut h = Harness::new(
        script(2000),
        WebRtcFakeMode::default(),
        Offer::OpusAndPcmu,
        net,
    );
    // Loss can hit the DTLS or SCTP handshake, whose retransmits back off to seconds. The
    // handshake's packet count varies with its random key material, so with loss the run
    // is not repeatable the way a lossless one is.
    for _ in 0..30 {
        if h.connected_at.is_some() && h.channel_open {
            break;
        }
        h.run_for(ms(500));
    }
    assert!(h.connected_at.is_some() && h.channel_open);
    h.talk(true, 1000);
    h.talk(false, 1000);
    h.run_for(ms(4000));
    let report = h.fake.report();
    let call = &report.calls[0];
    assert!(call.rtp_in > 30, "{call:?}");
    assert!(h.types().contains(&"input_audio_buffer.speech_started"));
    assert!(h.types().contains(&"output_audio_buffer.stopped"));
    assert!(h.media.len() > 80, "{}", h.media.len());
}

/// Connect, a greeting, caller speech with barge-in, a second turn: the event trace.
fn scenario() -> Vec<String> {
    fastrand::seed(1);
    let mut h = harness(1200);
    h.connect();
    h.send(json!({"type": "response.create"}));
    h.run_for(ms(600));
    h.talk(true, 400);
    h.talk(false, 1500);
    h.run_for(ms(2000));
    let mut trace: Vec<String> = h
        .events
        .iter()
        .map(|(t, e)| format!("{t:?} {}", e["type"]))
        .collect();
    trace.extend(
        h.media
            .iter()
            .map(|(t, pt, ts, _)| format!("{t:?} rtp {pt} {ts}")),
    );
    trace.push(format!("connected {:?}", h.connected_at));
    trace
}

#[test]
fn event_timings_are_deterministic() {
    let a = scenario();
    let b = scenario();
    assert_eq!(a, b);
    assert!(a.iter().any(|l| l.contains("output_audio_buffer.cleared")));
    assert!(a.iter().any(|l| l.contains("output_audio_buffer.stopped")));
}
