//! Audio bytes through every conversion: the phone codecs (directly and in a call), and RTP
//! payloads from OpenAI through the model-audio decoder into the playout buffer.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::audio::resample::Resampler;
use crate::audio::{ByteOrder, PhoneCodec, g711, l16};
use crate::call::{Call, WsMessage};
use crate::config::{Backend, TransportChoice};
use crate::media_path::{MediaPath, ModelAudio};
use crate::output::Leg;
use crate::playout::Playout;
use crate::webrtc::media::RtcMedia;
use crate::webrtc::rtc::RtpCodec;

use super::bytes::Bytes;
use super::harness;
use super::parsers::check_sends;

/// Every codec the phone leg carries.
const PHONE_CODECS: [PhoneCodec; 5] = [
    PhoneCodec::Pcmu,
    PhoneCodec::Pcma,
    PhoneCodec::L16 { rate_hz: 8_000 },
    PhoneCodec::L16 { rate_hz: 16_000 },
    PhoneCodec::L16 { rate_hz: 24_000 },
];

/// Pairs of rates for the resampler on its own, one per input (by the top bits of the first byte).
const RATE_PAIRS: [(u32, u32); 8] = [
    (8_000, 16_000),
    (16_000, 8_000),
    (8_000, 24_000),
    (24_000, 8_000),
    (16_000, 24_000),
    (24_000, 16_000),
    (8_000, 48_000),
    (48_000, 8_000),
];

/// The model formats to try against `phone`: both G.711 laws (each refused by all but one
/// codec), the formats the two backends choose for it, and now and then 8 or 48 kHz PCM.
fn model_formats(phone: PhoneCodec, choice: u8) -> Vec<ModelAudio> {
    let realtime = crate::realtime::session::RealtimeSession::choose_audio(phone);
    let live = match phone {
        PhoneCodec::Pcmu => ModelAudio::Pcmu,
        PhoneCodec::Pcma => ModelAudio::Pcma,
        PhoneCodec::L16 { rate_hz } if rate_hz <= 16_000 => ModelAudio::Pcm { rate_hz: 16_000 },
        PhoneCodec::L16 { .. } => ModelAudio::Pcm { rate_hz: 24_000 },
    };
    let odd = ModelAudio::Pcm {
        rate_hz: if choice & 0x80 == 0 { 8_000 } else { 48_000 },
    };
    let mut formats = vec![ModelAudio::Pcmu, ModelAudio::Pcma, realtime];
    for extra in [live, odd] {
        if !formats.contains(&extra) {
            formats.push(extra);
        }
    }
    formats
}

const ORDERS: [ByteOrder; 2] = [ByteOrder::Little, ByteOrder::Big];

/// Phone audio, any length. The first byte chooses a codec (bits 0-2), a byte order (bit 3), a
/// backend (bit 4), whether the call gets the payload as the base64 text itself (bit 5), whether
/// its session is ready (bit 6), and a pair of rates for the resampler (bits 5-7). The rest goes
/// through the pure codecs, the resampler, and the codec's media path to the model formats
/// (those the backends choose, and others), both ways; then into a call as caller `media` frames
/// and as the model's audio coming back.
pub fn media_payload(origin: std::time::Instant, data: &[u8]) {
    let choice = data.first().copied().unwrap_or(0);
    let payload = data.get(1..).unwrap_or_default();
    let phone = PHONE_CODECS[usize::from(choice & 7) % PHONE_CODECS.len()];
    let order = ORDERS[usize::from(choice >> 3) & 1];
    codecs(choice, payload);
    for model in model_formats(phone, choice) {
        media_path(phone, order, model, payload);
    }
    in_a_call(origin, choice, phone, order, payload);
}

/// G.711 and L16 on their own.
fn codecs(choice: u8, payload: &[u8]) {
    for &code in payload {
        let linear = g711::ulaw_decode(code);
        assert_eq!(
            g711::ulaw_decode(g711::ulaw_encode(linear)),
            linear,
            "μ-law {code:#04x} does not survive decode-encode-decode"
        );
        let linear = g711::alaw_decode(code);
        assert_eq!(
            g711::alaw_decode(g711::alaw_encode(linear)),
            linear,
            "A-law {code:#04x} does not survive decode-encode-decode"
        );
    }
    let mut samples = Vec::new();
    g711::ulaw_decode_slice(payload, &mut samples);
    assert_eq!(
        samples.len(),
        payload.len(),
        "μ-law decodes one sample per byte"
    );
    let mut bytes = Vec::new();
    g711::alaw_encode_slice(&samples, &mut bytes);
    assert_eq!(
        bytes.len(),
        samples.len(),
        "A-law encodes one byte per sample"
    );
    for order in ORDERS {
        let mut samples = Vec::new();
        let decoded = l16::decode(payload, order, &mut samples);
        assert_eq!(
            decoded.is_ok(),
            payload.len().is_multiple_of(2),
            "L16 takes exactly the even lengths"
        );
        if decoded.is_ok() {
            let mut again = Vec::new();
            l16::encode(&samples, order, &mut again);
            assert_eq!(again, payload, "L16 {order:?} does not round-trip");
        } else {
            assert!(samples.is_empty(), "odd L16 left samples behind");
        }
    }
    let mut swapped = payload.to_vec();
    l16::swap_in_place(&mut swapped);
    l16::swap_in_place(&mut swapped);
    assert_eq!(swapped, payload, "swapping twice changed the bytes");
    let mut samples = Vec::new();
    let even = payload.get(..payload.len() & !1).unwrap_or_default();
    let _ = l16::decode(even, ByteOrder::Little, &mut samples);
    // One pair of rates per input (building a resampler plans FFTs: keep runs fast).
    let (from, to) = RATE_PAIRS[usize::from(choice >> 5)];
    let mut resampler = Resampler::new(from, to).expect("phone rates resample");
    let fresh_delay = resampler.delay_samples();
    let mut out = Vec::new();
    resampler.process(&samples, &mut out);
    resampler.process(&samples, &mut out);
    // Two passes of n samples give about 2n·to/from, minus what the filter still holds.
    let bound = (2 * samples.len() + 2 * from as usize / 50) * to as usize / from as usize;
    assert!(
        out.len() <= bound,
        "{from}->{to}: {} samples in gave {} out",
        2 * samples.len(),
        out.len()
    );
    resampler.reset();
    assert_eq!(
        resampler.delay_samples(),
        fresh_delay,
        "reset left samples in the resampler"
    );
}

/// One phone codec against one model format, both ways, with a reset in between.
fn media_path(phone: PhoneCodec, order: ByteOrder, model: ModelAudio, payload: &[u8]) {
    let Ok(mut path) = MediaPath::new(phone, order, model) else {
        return;
    };
    let l16 = matches!(phone, PhoneCodec::L16 { .. });
    let passthrough = match (phone, model) {
        (PhoneCodec::Pcmu, ModelAudio::Pcmu) | (PhoneCodec::Pcma, ModelAudio::Pcma) => true,
        (PhoneCodec::L16 { rate_hz }, ModelAudio::Pcm { rate_hz: m }) => rate_hz == m,
        (PhoneCodec::Pcmu | PhoneCodec::Pcma | PhoneCodec::L16 { .. }, _) => false,
    };
    for round in 0..2 {
        let mut out = Vec::new();
        let to_model = path.convert_to_model(payload, &mut out);
        check_conversion(
            phone,
            order,
            passthrough,
            l16,
            payload,
            &out,
            to_model.is_ok(),
        );
        let mut out = Vec::new();
        let to_phone = path.convert_to_phone(payload, &mut out);
        check_conversion(
            phone,
            order,
            passthrough,
            l16,
            payload,
            &out,
            to_phone.is_ok(),
        );
        if round == 0 {
            path.reset_to_phone();
        }
    }
}

fn check_conversion(
    phone: PhoneCodec,
    order: ByteOrder,
    passthrough: bool,
    l16: bool,
    payload: &[u8],
    out: &[u8],
    ok: bool,
) {
    let odd = payload.len() % 2 == 1;
    assert!(
        !(l16 && odd && ok),
        "{phone:?} {order:?} took {} bytes: half a sample",
        payload.len()
    );
    if !ok {
        assert!(
            l16 && odd,
            "{phone:?} {order:?} refused {} bytes",
            payload.len()
        );
        assert!(out.is_empty(), "a refused conversion wrote output");
        return;
    }
    if passthrough {
        assert_eq!(
            out.len(),
            payload.len(),
            "{phone:?} {order:?} pass-through changed the length"
        );
    } else if l16 {
        assert!(
            out.len().is_multiple_of(2),
            "{phone:?} {order:?} wrote half a sample"
        );
    }
}

/// The payload in a call on the chosen codec: caller media frames, then model audio back.
fn in_a_call(origin: Instant, choice: u8, phone: PhoneCodec, order: ByteOrder, payload: &[u8]) {
    let backend = if choice & 0x10 == 0 {
        Backend::Realtime
    } else {
        Backend::Live
    };
    let as_text = choice & 0x20 != 0;
    let ready = choice & 0x40 == 0;
    let t0 = origin;
    let mut config = harness::config(backend, TransportChoice::WebSocket);
    config.l16_byte_order = order;
    config.limits.held_audio = Duration::from_millis(100);
    let held_cap = 100 * phone.bytes_per_ms();
    let mut call = if ready {
        harness::ready_call(t0, config, phone)
    } else {
        harness::started_call(t0, config, phone)
    };
    let mut now = t0 + Duration::from_millis(10);
    let frame = if as_text {
        harness::media_frame_raw(&String::from_utf8_lossy(payload))
    } else {
        harness::media_frame(payload)
    };
    for _ in 0..3 {
        call.handle_ws_message(now, Leg::Phone, WsMessage::Text(&frame));
        check_sends(&harness::drain(&mut call));
        assert!(
            call.queue_lengths().0 <= held_cap,
            "held caller audio {} over its cap {held_cap}",
            call.queue_lengths().0
        );
        now += Duration::from_millis(20);
    }
    let delta = STANDARD.encode(payload);
    let audio = match backend {
        Backend::Realtime => serde_json::json!({"type": "response.output_audio.delta",
            "response_id": "resp_1", "item_id": "item_1", "output_index": 0,
            "content_index": 0, "delta": delta}),
        Backend::Live => serde_json::json!({"type": "session.output_audio.delta", "delta": delta}),
    }
    .to_string();
    for _ in 0..2 {
        call.handle_ws_message(now, Leg::Model, WsMessage::Text(&audio));
        check_sends(&harness::drain(&mut call));
        now += Duration::from_millis(20);
    }
    run_timers(&mut call, now + Duration::from_secs(2));
}

/// Every deadline up to `until`, each moving forward.
fn run_timers(call: &mut Call, until: Instant) {
    for _ in 0..1_000 {
        let Some(deadline) = call.poll_timeout().filter(|d| *d <= until) else {
            return;
        };
        call.handle_timeout(deadline);
        check_sends(&harness::drain(call));
        assert!(
            call.poll_timeout().is_none_or(|next| next > deadline),
            "handle_timeout left the {:?} deadline due",
            call.next_timer().map(|t| t.1)
        );
    }
    panic!("more than 1,000 timeouts in two seconds");
}

/// RTP payloads from OpenAI: the first byte chooses the phone codec (bits 0-2), its byte order
/// (bit 3) and the codec we send (bits 4-7); then each packet is a byte (its codec, the byte mod 3;
/// packets lost before it, bits 2-4; how late it comes, bits 5-6; a barge-in after it, bit 7),
/// a little-endian `u16` length and the payload. Each is decoded for the
/// phone and pushed into the playout buffer, which is drained at 20 ms ticks; the same bytes go
/// through the caller's encoder.
pub fn rtp_payload(origin: std::time::Instant, data: &[u8]) {
    let mut b = Bytes::new(data);
    let choice = b.u8();
    let phone = PHONE_CODECS[usize::from(choice & 7) % PHONE_CODECS.len()];
    let order = ORDERS[usize::from(choice >> 3) & 1];
    let codecs = [RtpCodec::Opus, RtpCodec::Pcmu, RtpCodec::Pcma];
    let send = codecs[usize::from(choice >> 4) % 3];
    let Ok(mut media) = RtcMedia::new(phone, order, send) else {
        panic!("no media converters for {phone:?} sending {send:?}");
    };
    let frame_bytes = phone.frame_bytes();
    let mut playout = Playout::new(frame_bytes);
    let t0 = origin;
    let mut now = t0;
    let (mut frames_in, mut frames_out, mut partial) = (0usize, 0usize, 0usize);
    let mut packets = Vec::new();
    while !b.is_empty() {
        let op = b.u8();
        let codec = codecs[usize::from(op) % 3];
        let lost_before = match (op >> 2) & 7 {
            7 => 50,
            n => u32::from(n),
        };
        let len = usize::from(b.u16()) % 1600;
        let payload = b.take(len);
        let mut out = Vec::new();
        media.decode_model(codec, payload, lost_before, &mut out);
        let passthrough = matches!(
            (phone, codec),
            (PhoneCodec::Pcmu, RtpCodec::Pcmu) | (PhoneCodec::Pcma, RtpCodec::Pcma)
        );
        if passthrough {
            let expected = lost_before.min(5) as usize * frame_bytes + payload.len();
            assert_eq!(out.len(), expected, "{codec:?} pass-through: wrong length");
        } else if matches!(phone, PhoneCodec::L16 { .. }) {
            assert!(out.len().is_multiple_of(2), "decoded L16 has half a sample");
        }
        // Packets come every 20 ms, some late by up to 140 ms.
        now += Duration::from_millis(20 + 20 * u64::from(op >> 5 & 3));
        let dropped_before = playout.dropped;
        playout.push(now, "webrtc", &out);
        partial += out.len();
        frames_in += partial / frame_bytes;
        partial %= frame_bytes;
        if op & 0x80 != 0 {
            playout.flush();
            assert!(playout.is_empty(), "a flushed playout buffer holds audio");
            assert_eq!(playout.next_tick(), None, "a flushed buffer still ticks");
            frames_in = frames_out + (playout.dropped as usize);
            partial = 0;
        }
        while let Some((item, frame)) = playout.pop_due(now) {
            assert_eq!(item, "webrtc");
            assert_eq!(
                frame.len(),
                frame_bytes,
                "the playout buffer gave a short frame"
            );
            frames_out += 1;
        }
        assert!(
            playout.next_tick().is_none_or(|t| t > now),
            "a due frame was left in the playout buffer"
        );
        let held = frames_in - frames_out - playout.dropped as usize;
        assert!(held <= 4, "the playout buffer holds {held} frames");
        assert!(playout.dropped >= dropped_before);
        packets.clear();
        media.encode_caller(payload, &mut packets);
        for packet in &packets {
            assert!(
                packet.len() <= crate::audio::opus::MAX_ENCODED_BYTES,
                "an encoded caller frame of {} bytes",
                packet.len()
            );
        }
    }
}
