//! SDP answers through our accept path.
//!
//! str0m draws the offer's mids from `fastrand`, so the body seeds it first: the same offer
//! comes out every run, and an answer in the corpus that matches it gets past the mid checks
//! into the codec choice, the media converters and the connection's timers.

use std::time::{Duration, Instant};

use crate::audio::{ByteOrder, PhoneCodec};
use crate::call::Call;
use crate::config::{Backend, TransportChoice};
use crate::output::{HttpResponse, Output};
use crate::webrtc::media::RtcMedia;
use crate::webrtc::rtc::{RtcLeg, RtpCodec};

use super::harness;
use super::parsers::check_sends;

/// What `fastrand` is seeded with before each offer.
pub(super) const OFFER_SEED: u64 = 0x5d9_0ffe;

const PHONE_CODECS: [PhoneCodec; 5] = [
    PhoneCodec::Pcmu,
    PhoneCodec::Pcma,
    PhoneCodec::L16 { rate_hz: 8_000 },
    PhoneCodec::L16 { rate_hz: 16_000 },
    PhoneCodec::L16 { rate_hz: 24_000 },
];

/// An SDP answer applied to our offer: by `RtcLeg::accept_answer` directly (the preferred
/// codec chosen by the input's length), then as the body of a `201` to a call's WebRTC call
/// creation (Realtime or Live, by the length's parity).
pub fn sdp_answer(origin: std::time::Instant, data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let t0 = origin;
    direct(t0, text, data.len());
    let backend = if data.len().is_multiple_of(2) {
        Backend::Realtime
    } else {
        Backend::Live
    };
    through_a_call(t0, backend, data);
}

fn direct(t0: Instant, text: &str, len: usize) {
    fastrand::seed(OFFER_SEED);
    let mut leg = RtcLeg::new(t0, &[harness::local_udp()]).expect("a loopback address works");
    let _offer = leg.create_offer(t0).expect("a new leg makes an offer");
    let prefer = [None, Some(RtpCodec::Pcmu), Some(RtpCodec::Pcma)][len % 3];
    let now = t0 + Duration::from_millis(1);
    match leg.accept_answer(now, text, prefer) {
        Ok(codec) => {
            assert_eq!(
                leg.send_codec(),
                Some(codec),
                "the chosen codec is not sent"
            );
            assert!(
                leg.accept_answer(now, text, prefer).is_err(),
                "a second answer to one offer was accepted"
            );
            for phone in PHONE_CODECS {
                if let Ok(mut media) = RtcMedia::new(phone, ByteOrder::Little, codec) {
                    let mut packets = Vec::new();
                    media.encode_caller(
                        &vec![phone.silence_byte(); phone.frame_bytes()],
                        &mut packets,
                    );
                }
            }
            let _ = leg.send_audio(now, vec![0xFF; 160]);
            let _ = leg.send_text(now, r#"{"type":"session.update"}"#);
        }
        Err(_) => {
            assert_eq!(leg.send_codec(), None, "a refused answer chose a codec");
        }
    }
    drive(&mut leg, now);
    leg.close(now + Duration::from_secs(1));
    while leg.poll_transmit().is_some() {}
    while leg.poll_event().is_some() {}
    assert_eq!(
        leg.poll_timeout(),
        None,
        "a closed leg still wants a timeout"
    );
}

/// A few rounds of the leg's timers: each moves its deadline forward.
fn drive(leg: &mut RtcLeg, mut now: Instant) {
    for _ in 0..20 {
        while leg.poll_transmit().is_some() {}
        while leg.poll_event().is_some() {}
        let Some(deadline) = leg.poll_timeout() else {
            return;
        };
        now = now.max(deadline);
        leg.handle_timeout(now);
        let next = leg.poll_timeout();
        assert!(
            next.is_none_or(|next| next > now),
            "the WebRTC leg's deadline stayed due after handle_timeout"
        );
    }
}

fn through_a_call(t0: Instant, backend: Backend, body: &[u8]) {
    fastrand::seed(OFFER_SEED);
    let config = harness::config(backend, TransportChoice::Auto);
    let mut call = Call::new(config, [9; 32], t0, Duration::ZERO).expect("the config is valid");
    call.handle_ws_message(
        t0 + Duration::from_millis(1),
        crate::output::Leg::Phone,
        crate::call::WsMessage::Text(&harness::start_frame(PhoneCodec::Pcmu, None)),
    );
    let create = harness::drain(&mut call).into_iter().find_map(|o| match o {
        Output::Http { id, request }
            if request.url.ends_with("/realtime/calls")
                || request.url.ends_with("/live/sessions") =>
        {
            Some(id)
        }
        Output::Http { .. }
        | Output::Send { .. }
        | Output::Close { .. }
        | Output::Connect(_)
        | Output::ToolCall(_)
        | Output::Transmit(_)
        | Output::Event(_) => None,
    });
    let id = create.expect("a WebRTC call first asks OpenAI to create the call");
    let mut now = t0 + Duration::from_millis(5);
    call.handle_http_response(
        now,
        id,
        Ok(HttpResponse {
            status: 201,
            headers: vec![(
                "Location".to_owned(),
                "/v1/realtime/calls/rtc_fuzz".to_owned(),
            )],
            body: body.to_vec(),
        }),
    );
    check_sends(&harness::drain(&mut call));
    for _ in 0..20 {
        let Some(deadline) = call.poll_timeout() else {
            break;
        };
        now = now.max(deadline);
        call.handle_timeout(now);
        check_sends(&harness::drain(&mut call));
        assert!(
            call.poll_timeout().is_none_or(|next| next > now),
            "handle_timeout left the {:?} deadline due",
            call.next_timer().map(|t| t.1)
        );
    }
}
