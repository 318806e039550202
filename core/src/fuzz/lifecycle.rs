//! `call_lifecycle`: a whole call, driven directly (not through the Sim) by operations decoded
//! from the fuzz bytes, with every invariant checked after every input.
//!
//! The first two bytes choose the configuration (backend, transport, REST credentials, small
//! caps, per-number overrides, the phone codec) and how far the call is brought before the
//! operations start. Then each operation is one byte and its arguments: caller frames (start,
//! media, mark echoes, DTMF, stop, garbage), OpenAI events for the backend in use (valid-looking,
//! with ids from small pools, tool calls included, and garbage), WebSocket opens and closes on
//! either leg, datagrams, HTTP answers to outstanding requests (any status and body, again, or
//! for no request), tool results (known and unknown ids, twice), hang-up, timeouts at or before
//! the deadline, and the clock moving forward by up to hours or backwards. At the end the call is
//! hung up and must end within ten minutes of its own timers.

mod checks;
mod frames;

use std::time::{Duration, Instant};

use crate::audio::{ByteOrder, PhoneCodec};
use crate::call::{Call, WsMessage};
use crate::config::{Backend, CallConfig, SignalWireRest, TransportChoice};
use crate::output::{Leg, RequestId, ToolAction, ToolCallId, ToolResult, TransportFailure};

use super::bytes::Bytes;
use super::harness;
use checks::{Expect, Observer, Request};

/// Operations per run at most.
const MAX_OPS: usize = 400;
/// Operations tried after `CallEnded` (each must be a no-op).
const OPS_AFTER_END: usize = 8;
/// Timeouts one "run for" operation may take before it counts as a livelock.
const MAX_TIMEOUTS_PER_RUN: usize = 5_000;
/// When the call starts, after the origin: room for the clock to go back before it.
const CALL_START: Duration = Duration::from_secs(2 * 3600);

/// A call driven by operations decoded from `data`, applied to a [`Call`] directly.
///
/// After every input it checks: at most 2,000 outputs; `handle_timeout` moves the deadline past
/// `now` (and before the deadline does nothing); nothing sent to the phone after its socket
/// closed, nothing but a close after `CallEnded` and no output from any later input; the queues
/// within `Limits`; everything sent is JSON; at most one `function_call_output` per tool call id
/// on one model session, only for a call that has its output; and a reference model of the
/// tool-call sequencer (each call handed out once, then exactly one output from its result, its
/// webhook answer or its deadline, unless the call ended first; later results ignored). Finally
/// the call is hung up and must end within ten minutes of its timers.
///
/// # Panics
/// On a breach, with a message naming the input and the rule.
pub fn call_lifecycle(origin: std::time::Instant, data: &[u8]) {
    let mut b = Bytes::new(data);
    let setup = Setup::read(&mut b);
    // str0m's non-crypto choices (the offer's mids among them) come from `fastrand`.
    fastrand::seed(super::sdp::OFFER_SEED);
    let mut driver = Driver::new(origin, setup.config, setup.codec);
    driver.prelude(setup.prelude);
    let mut after_end = 0;
    for _ in 0..MAX_OPS {
        if b.is_empty() {
            break;
        }
        if driver.obs.finished {
            after_end += 1;
            if after_end > OPS_AFTER_END {
                break;
            }
        }
        driver.op(&mut b);
    }
    driver.wind_down();
}

struct Setup {
    config: CallConfig,
    codec: PhoneCodec,
    prelude: u8,
}

impl Setup {
    fn read(b: &mut Bytes<'_>) -> Setup {
        let flags = b.u8();
        let more = b.u8();
        let backend = if flags & 1 == 0 {
            Backend::Realtime
        } else {
            Backend::Live
        };
        let webrtc = (flags >> 1) & 3 == 0;
        let transport = if webrtc {
            TransportChoice::Auto
        } else {
            TransportChoice::WebSocket
        };
        let mut config = harness::config(backend, transport);
        if flags & 0x08 != 0 {
            config.signalwire = Some(SignalWireRest {
                space_url: "https://fuzz.signalwire.com".to_owned(),
                project_id: "project".to_owned(),
                api_token: "token".to_owned(),
            });
        }
        if flags & 0x10 != 0 {
            config.public_url = Some("https://bridge.fuzz".to_owned());
        }
        if flags & 0x20 != 0 {
            let limits = &mut config.limits;
            limits.max_phone_message_bytes = 2_048;
            limits.max_model_message_bytes = 4_096;
            limits.held_audio = Duration::from_millis(100);
            limits.max_outstanding_marks = 3;
            limits.max_running_tools = 2;
            limits.default_tool_timeout = Duration::from_millis(800);
            limits.dtmf_pause = Duration::from_millis(300);
            limits.max_dtmf_digits = 3;
            limits.stream_start_timeout = Duration::from_secs(2);
            limits.model_connect_timeout = Duration::from_secs(3);
            limits.hangup_drain = Duration::from_secs(2);
            limits.http_timeout = Duration::from_secs(1);
            config.tools[0].timeout = Duration::from_millis(700);
            config.webrtc.connect_timeout = Duration::from_secs(1);
            config.live.close_timeout = Duration::from_secs(1);
            limits.session_rollover = Some(Duration::from_secs(20));
        }
        if flags & 0x40 != 0 {
            let other = match backend {
                Backend::Realtime => Backend::Live,
                Backend::Live => Backend::Realtime,
            };
            config
                .backend_by_number
                .insert("+15550002".to_owned(), other);
            config.instructions_by_number.insert(
                "+15550001".to_owned(),
                "Help {{From}} calling {{To}} on {{date}} at {{time}} ({{param.Missing}})."
                    .to_owned(),
            );
        }
        if flags & 0x80 != 0 {
            config.openai.turn_detection.interrupt_response = false;
            config.openai.transcription_model = None;
        }
        config.openai.greet_first = more & 1 == 0;
        if more & 2 != 0 {
            config.l16_byte_order = ByteOrder::Big;
        }
        let codec = [
            PhoneCodec::Pcmu,
            PhoneCodec::Pcmu,
            PhoneCodec::Pcma,
            PhoneCodec::L16 { rate_hz: 8_000 },
            PhoneCodec::L16 { rate_hz: 16_000 },
            PhoneCodec::L16 { rate_hz: 24_000 },
            PhoneCodec::Pcmu,
            PhoneCodec::Pcma,
        ][usize::from(more >> 5)];
        Setup {
            config,
            codec,
            // Mostly a ready session: that is where the interesting paths are.
            prelude: [0, 1, 2, 2, 3, 3, 3, 3][usize::from(more >> 2) & 7],
        }
    }
}

/// The call, its clock and its observer.
struct Driver {
    call: Call,
    base: Instant,
    /// The runtime's clock, as an offset from `base`; it may go backwards.
    clock: Duration,
    /// The latest instant the call was given: the call's own clock.
    seen: Instant,
    codec: PhoneCodec,
    obs: Observer,
}

impl Driver {
    fn new(base: Instant, config: CallConfig, codec: PhoneCodec) -> Driver {
        let obs = Observer::new(&config);
        let start = base + CALL_START;
        let call = Call::new(
            config,
            [0x5e; 32],
            start,
            Duration::from_secs(1_790_000_000),
        )
        .expect("the fuzzed configurations are valid");
        Driver {
            call,
            base,
            clock: CALL_START,
            seen: start,
            codec,
            obs,
        }
    }

    fn at(&self) -> Instant {
        self.base + self.clock
    }

    /// Feeds one input at the runtime's clock and checks what came of it.
    fn input(&mut self, what: &str, expect: Expect<'_>, f: impl FnOnce(&mut Call, Instant)) {
        let at = self.at();
        self.input_at(what, at, expect, f);
    }

    fn input_at(
        &mut self,
        what: &str,
        at: Instant,
        expect: Expect<'_>,
        f: impl FnOnce(&mut Call, Instant),
    ) {
        self.seen = self.seen.max(at);
        f(&mut self.call, at);
        let outputs = harness::drain(&mut self.call);
        self.obs
            .observe(&self.call, what, self.seen, outputs, expect);
    }

    fn phone_text(&mut self, what: &str, text: &str) {
        self.input(what, Expect::Nothing, |call, now| {
            call.handle_ws_message(now, Leg::Phone, WsMessage::Text(text));
        });
    }

    fn model_text(&mut self, what: &str, text: &str) {
        self.input(what, Expect::Nothing, |call, now| {
            call.handle_ws_message(now, Leg::Model, WsMessage::Text(text));
        });
    }

    fn timeout(&mut self, what: &str, at: Instant) {
        let before = self.call.poll_timeout();
        self.input_at(what, at, Expect::Timeout { before }, |call, now| {
            call.handle_timeout(now);
        });
    }

    fn advance(&mut self, by: Duration) {
        self.clock += by;
    }

    /// Brings the call to `level`: 1 started, 2 the model socket open, 3 the session ready.
    fn prelude(&mut self, level: u8) {
        if level >= 1 {
            let start = harness::start_frame(self.codec, None);
            self.phone_text("start (prelude)", &start);
        }
        self.advance(Duration::from_millis(40));
        if level >= 2 {
            self.input(
                "model socket opened (prelude)",
                Expect::Nothing,
                |call, now| {
                    call.handle_ws_opened(now, Leg::Model);
                },
            );
        }
        self.advance(Duration::from_millis(40));
        if level >= 3 {
            let ready = harness::ready_event(self.obs.backend);
            self.model_text("session ready (prelude)", ready);
        }
    }

    /// One operation: a byte chooses it, weighted so that calls mostly live long enough to get
    /// somewhere (the ways to end one are rare), then its arguments follow.
    fn op(&mut self, b: &mut Bytes<'_>) {
        match b.u8() {
            0..=39 => {
                let frame = frames::media(b);
                self.phone_text("caller media", &frame);
                self.advance(Duration::from_millis(20));
            }
            40..=42 => {
                let frame = frames::start(b, self.codec);
                self.phone_text("caller start", &frame);
            }
            43..=57 => self.mark_echo(b),
            58..=67 => {
                let frame = frames::dtmf(b);
                self.phone_text("caller dtmf", &frame);
            }
            68 => self.phone_text("caller stop", &frames::stop()),
            69..=76 => {
                if b.below(4) == 0 {
                    let raw = b.take(8).to_vec();
                    self.input("caller binary frame", Expect::Nothing, |call, now| {
                        call.handle_ws_message(now, Leg::Phone, WsMessage::Binary(&raw));
                    });
                } else {
                    let text = frames::phone_garbage(b);
                    self.phone_text("caller garbage", &text);
                }
            }
            77..=136 => {
                let text = match self.obs.backend {
                    Backend::Realtime => frames::realtime_event(b),
                    Backend::Live => frames::live_event(b),
                };
                self.model_text("model event", &text);
            }
            137..=144 => {
                if b.below(4) == 0 {
                    let raw = b.take(8).to_vec();
                    self.input("model binary frame", Expect::Nothing, |call, now| {
                        call.handle_ws_message(now, Leg::Model, WsMessage::Binary(&raw));
                    });
                } else {
                    let text = frames::model_garbage(b);
                    self.model_text("model garbage", &text);
                }
            }
            145..=152 => {
                let leg = if b.below(4) == 0 {
                    Leg::Phone
                } else {
                    Leg::Model
                };
                self.input("socket opened", Expect::Nothing, |call, now| {
                    call.handle_ws_opened(now, leg);
                });
            }
            153 => self.input("phone socket closed", Expect::PhoneClosed, |call, now| {
                call.handle_ws_closed(now, Leg::Phone);
            }),
            154 | 155 => self.input("model socket closed", Expect::Nothing, |call, now| {
                call.handle_ws_closed(now, Leg::Model);
            }),
            156..=163 => self.datagram(b),
            164..=179 => self.http_answer(b),
            180..=199 => self.tool_result(b),
            200 => self.input("hang_up", Expect::Nothing, |call, now| call.hang_up(now)),
            201..=214 => match self.call.poll_timeout() {
                Some(deadline) => {
                    self.clock = self
                        .clock
                        .max(deadline.saturating_duration_since(self.base));
                    self.timeout("timeout at the deadline", deadline);
                }
                None => self.timeout("timeout with no deadline", self.at()),
            },
            215..=218 => {
                let early = Duration::from_millis(1 + u64::from(b.u8()));
                let at = match self.call.poll_timeout() {
                    Some(deadline) => deadline.checked_sub(early).unwrap_or(deadline),
                    None => self.at(),
                };
                self.timeout("timeout before the deadline", at);
            }
            219..=222 => self.timeout("timeout at the runtime's clock", self.at()),
            223..=237 => self.advance(Duration::from_millis(10 * u64::from(b.u8()))),
            238..=240 => self.jump(b),
            241..=255 => self.run_for(Duration::from_millis(40 * u64::from(b.u8()))),
        }
    }

    fn mark_echo(&mut self, b: &mut Bytes<'_>) {
        let pick = b.below(8);
        let name = match pick {
            // Mostly the oldest pending mark, as SignalWire echoes them in order.
            0..=4 if !self.obs.marks.is_empty() => self.obs.marks.pop_front(),
            5 if self.obs.marks.len() > 1 => {
                let i = b.below(self.obs.marks.len());
                let name = self.obs.marks.get(i).cloned();
                self.obs.marks.drain(..=i);
                name
            }
            _ => None,
        }
        .unwrap_or_else(|| frames::made_up_mark(b));
        self.phone_text("caller mark echo", &frames::mark(&name));
    }

    fn datagram(&mut self, b: &mut Bytes<'_>) {
        let source = if b.below(4) == 0 {
            core::net::SocketAddr::from(([10, 9, 8, b.u8()], 5_000))
        } else {
            harness::openai_udp()
        };
        let destination = harness::local_udp();
        let len = b.below(200);
        let mut contents: Vec<u8> = match b.below(4) {
            // A STUN binding request header, a DTLS record header, an RTP header.
            0 => vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42],
            1 => vec![22, 0xFE, 0xFD, 0, 0, 0, 0, 0],
            2 => vec![0x80, 0x6F, 0x00, 0x01, 0, 0, 0, 0],
            _ => Vec::new(),
        };
        contents.extend_from_slice(b.take(len));
        self.input("datagram", Expect::Nothing, |call, now| {
            call.handle_udp(now, source, destination, &contents);
        });
    }

    fn http_answer(&mut self, b: &mut Bytes<'_>) {
        let choice = b.below(8);
        let (id, kind, first) = if choice == 0 {
            (RequestId(1_000 + u64::from(b.u8())), None, false)
        } else if choice == 1 && !self.obs.answered.is_empty() {
            let i = b.below(self.obs.answered.len());
            let (id, kind) = self.obs.answered[i].clone();
            (id, Some(kind), false)
        } else if !self.obs.outstanding.is_empty() {
            let i = b.below(self.obs.outstanding.len());
            let (id, kind) = self.obs.outstanding.remove(i);
            self.obs.answered.push((id, kind.clone()));
            (id, Some(kind), true)
        } else {
            (RequestId(u64::from(b.u8())), None, false)
        };
        let response = if b.below(6) == 0 {
            Err(TransportFailure("connection refused".to_owned()))
        } else {
            Ok(frames::http_answer(b))
        };
        let tool = match (&kind, first) {
            (Some(Request::Webhook(tool)), true) => Some(tool.clone()),
            (Some(Request::Webhook(_) | Request::Model | Request::Rest) | None, _) => None,
        };
        let expect = match &tool {
            Some(tool) => Expect::WebhookAnswer(tool),
            None => Expect::Nothing,
        };
        self.input("HTTP answer", expect, |call, now| {
            call.handle_http_response(now, id, response);
        });
    }

    fn tool_result(&mut self, b: &mut Bytes<'_>) {
        let handed = self.obs.handed_out.len();
        let webhooks: Vec<String> = self
            .obs
            .outstanding
            .iter()
            .chain(&self.obs.answered)
            .filter_map(|(_, kind)| match kind {
                Request::Webhook(tool) => Some(tool.clone()),
                Request::Model | Request::Rest => None,
            })
            .collect();
        let id = match b.below(8) {
            0..=4 if handed > 0 => self.obs.handed_out[handed - 1 - b.below(handed.min(4))].clone(),
            5 if !webhooks.is_empty() => webhooks[b.below(webhooks.len())].clone(),
            6 | 7 => frames::CALL_IDS[b.below(frames::CALL_IDS.len())].to_owned(),
            _ => format!("unknown_{}", b.u8()),
        };
        let action = match b.below(8) {
            0 => ToolAction::HangUp,
            1 => ToolAction::Transfer {
                to: "+15551234567".to_owned(),
            },
            2 => ToolAction::Transfer {
                to: "sip:desk@example.com".to_owned(),
            },
            _ => ToolAction::None,
        };
        let result = ToolResult {
            output: frames::tool_output(b),
            action,
        };
        let twice = b.below(4) == 0;
        for what in ["tool result", "tool result again"]
            .into_iter()
            .take(if twice { 2 } else { 1 })
        {
            let result = result.clone();
            let tool_id = ToolCallId(id.clone());
            self.input(what, Expect::ToolResult(&id), |call, now| {
                call.handle_tool_result(now, &tool_id, result);
            });
        }
    }

    fn jump(&mut self, b: &mut Bytes<'_>) {
        match b.below(4) {
            0 => self.advance(Duration::from_secs(u64::from(b.u16()) % (3 * 3600))),
            1 => self.advance(Duration::from_secs(60 * u64::from(b.u8() % 16))),
            2 => {
                self.clock = self
                    .clock
                    .saturating_sub(Duration::from_millis(u64::from(b.u16())))
            }
            _ => {
                let back = Duration::from_secs(60 * u64::from(b.u8()));
                self.clock = self.clock.saturating_sub(back);
            }
        }
    }

    /// Every deadline up to `span` from the runtime's clock, as a runtime would run them.
    fn run_for(&mut self, span: Duration) {
        let until = self.at() + span;
        for _ in 0..MAX_TIMEOUTS_PER_RUN {
            let Some(deadline) = self.call.poll_timeout().filter(|d| *d <= until) else {
                self.clock = self.clock.max(until - self.base);
                return;
            };
            // A runtime wakes at the deadline, or at once if its clock is past it.
            let at = deadline.max(self.at());
            self.clock = at - self.base;
            self.timeout("timeout (run)", at);
        }
        panic!(
            "call_lifecycle: livelock: more than {MAX_TIMEOUTS_PER_RUN} timeouts in {span:?} \
             (next: {:?})",
            self.call.next_timer().map(|t| t.1)
        );
    }

    /// Hangs up and runs the call's timers until it ends; it must end within ten minutes.
    fn wind_down(&mut self) {
        if !self.obs.finished {
            self.input("hang_up (wind-down)", Expect::Nothing, |call, now| {
                call.hang_up(now)
            });
        }
        let limit = self.seen + Duration::from_secs(600);
        for _ in 0..20_000 {
            if self.obs.finished {
                return;
            }
            let Some(deadline) = self.call.poll_timeout().filter(|d| *d <= limit) else {
                break;
            };
            self.clock = self
                .clock
                .max(deadline.saturating_duration_since(self.base));
            self.timeout("timeout (wind-down)", deadline);
        }
        assert!(
            self.obs.finished,
            "call_lifecycle: the call did not end within ten minutes of hang_up (next: {:?})",
            self.call.next_timer()
        );
    }
}
