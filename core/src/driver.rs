//! The runtime-independent half of a call task, shared by every runtime adapter: it owns the
//! [`Call`], turns what woke the task into an [`Input`] (which the adapter may log, then feeds),
//! tags model connection attempts with generations so a late answer to an abandoned one is
//! dropped, and says when the one timer must move. An adapter keeps only its sockets, its
//! timer and its spawning.
//!
//! ```text
//! loop {
//!     let now = clock();                        // once per wakeup
//!     let input = match wakeup { … => driver.text(now, leg, text), … };
//!     if let Some(input) = input { record(&input); driver.feed(&input); }
//!     while let Some(action) = driver.poll_action() { carry it out }
//!     match driver.poll_timer() { Some(Some(at)) => reset(at), Some(None) => disarm(), None => {} }
//! }
//! ```

use core::net::SocketAddr;
use std::time::Instant;

use crate::call::{Call, WsMessage};
use crate::input::Input;
use crate::output::{
    ConnectRequest, Event, HttpRequest, HttpResponse, Leg, Output, RequestId, ToolCall, ToolCallId,
    ToolResult, Transmit, TransportFailure,
};

/// What the adapter must do: an [`Output`] with the driver's bookkeeping applied.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a text frame on a leg.
    Send {
        /// Which leg.
        leg: Leg,
        /// The whole message.
        text: String,
    },
    /// Close a leg; for the model leg, abandon a connection attempt too.
    Close {
        /// Which leg.
        leg: Leg,
    },
    /// Open the model WebSocket (abandoning any earlier attempt); report the outcome with
    /// [`CallDriver::model_opened`] or [`CallDriver::model_failed`] and this generation.
    Connect {
        /// Tags this attempt.
        generation: u64,
        /// Where and how.
        request: ConnectRequest,
    },
    /// Make an HTTP request; answer with [`CallDriver::http_response`].
    Http {
        /// Echo it back.
        id: RequestId,
        /// The request.
        request: HttpRequest,
    },
    /// Run an application tool; answer with [`CallDriver::tool_result`].
    ToolCall(ToolCall),
    /// Send a UDP datagram.
    Transmit(Transmit),
    /// Log, count and record it.
    Event(Event),
}

/// A call and its task's bookkeeping. See the module docs.
#[derive(Debug)]
pub struct CallDriver {
    call: Call,
    started: Instant,
    generation: u64,
    connecting: Option<u64>,
    armed: Option<Instant>,
}

impl CallDriver {
    /// Drives `call`, made with `started` as its `now`.
    pub fn new(call: Call, started: Instant) -> Self {
        CallDriver {
            call,
            started,
            generation: 0,
            connecting: None,
            armed: None,
        }
    }

    /// The call.
    pub fn call(&self) -> &Call {
        &self.call
    }

    /// The `now` the call was made with.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Whether the call is over (after [`Event::CallEnded`]): the task may stop.
    pub fn is_over(&self) -> bool {
        self.call.end_reason().is_some()
    }

    fn at(&self, now: Instant) -> u64 {
        Input::offset(self.started, now)
    }

    /// A whole WebSocket message arrived.
    pub fn message(&self, now: Instant, leg: Leg, message: WsMessage<'_>) -> Input {
        Input::ws_message(self.at(now), leg, message)
    }

    /// A leg's socket closed.
    pub fn closed(&mut self, now: Instant, leg: Leg) -> Input {
        if leg == Leg::Model {
            self.connecting = None;
        }
        Input::WsClosed {
            at_ns: self.at(now),
            leg,
        }
    }

    /// Whether `generation` is the model connection attempt still wanted: an adapter keeps
    /// the socket of a current one and drops any other.
    pub fn is_current_connect(&self, generation: u64) -> bool {
        self.connecting == Some(generation)
    }

    /// The model connection attempt `generation` opened; `None` when it was abandoned.
    pub fn model_opened(&mut self, now: Instant, generation: u64) -> Option<Input> {
        if !self.is_current_connect(generation) {
            return None;
        }
        self.connecting = None;
        Some(Input::WsOpened {
            at_ns: self.at(now),
            leg: Leg::Model,
        })
    }

    /// The model connection attempt `generation` failed; `None` when it was abandoned.
    pub fn model_failed(&mut self, now: Instant, generation: u64) -> Option<Input> {
        if !self.is_current_connect(generation) {
            return None;
        }
        Some(self.closed(now, Leg::Model))
    }

    /// A datagram arrived on the call's local address `destination`.
    pub fn udp(
        &self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: Vec<u8>,
    ) -> Input {
        Input::Udp {
            at_ns: self.at(now),
            source,
            destination,
            contents,
        }
    }

    /// The answer to [`Action::Http`] `id`.
    pub fn http_response(
        &self,
        now: Instant,
        id: RequestId,
        result: Result<HttpResponse, TransportFailure>,
    ) -> Input {
        Input::HttpResponse {
            at_ns: self.at(now),
            id,
            result,
        }
    }

    /// The application's result for [`Action::ToolCall`] `id`.
    pub fn tool_result(&self, now: Instant, id: ToolCallId, result: ToolResult) -> Input {
        Input::ToolResult {
            at_ns: self.at(now),
            id,
            result,
        }
    }

    /// The armed timer fired.
    pub fn timer_fired(&mut self, now: Instant) -> Input {
        self.armed = None;
        Input::Timeout {
            at_ns: self.at(now),
        }
    }

    /// The application asks the call to end.
    pub fn hang_up(&self, now: Instant) -> Input {
        Input::HangUp {
            at_ns: self.at(now),
        }
    }

    /// Feeds one input (after the adapter logged it, if it keeps a record).
    pub fn feed(&mut self, input: &Input) {
        input.feed(&mut self.call, self.started);
    }

    /// The next thing to do; drain it to `None` after every input.
    pub fn poll_action(&mut self) -> Option<Action> {
        let action = match self.call.poll_output()? {
            Output::Send { leg, text } => Action::Send { leg, text },
            Output::Close { leg } => {
                if leg == Leg::Model {
                    self.connecting = None;
                }
                Action::Close { leg }
            }
            Output::Connect(request) => {
                self.generation += 1;
                self.connecting = Some(self.generation);
                Action::Connect {
                    generation: self.generation,
                    request,
                }
            }
            Output::Http { id, request } => Action::Http { id, request },
            Output::ToolCall(call) => Action::ToolCall(call),
            Output::Transmit(transmit) => Action::Transmit(transmit),
            Output::Event(event) => Action::Event(event),
        };
        Some(action)
    }

    /// Whether the timer must change: `Some(Some(at))` arm it for `at`, `Some(None)` disarm
    /// it, `None` leave it. Ask after draining the actions.
    pub fn poll_timer(&mut self) -> Option<Option<Instant>> {
        let deadline = self.call.poll_timeout();
        if deadline == self.armed {
            return None;
        }
        self.armed = deadline;
        Some(deadline)
    }

    /// Whether a timer is armed.
    pub fn is_timer_armed(&self) -> bool {
        self.armed.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::CallConfig;

    fn driver() -> (CallDriver, Instant) {
        let t0 = crate::tests::origin();
        let call = Call::new(CallConfig::new("sk-test"), [1; 32], t0, Duration::ZERO).unwrap();
        (CallDriver::new(call, t0), t0)
    }

    const START: &str = r#"{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;

    #[test]
    fn a_late_answer_to_an_abandoned_connect_is_dropped() {
        let (mut d, t0) = driver();
        assert_eq!(d.poll_timer(), Some(Some(t0 + Duration::from_secs(10))));
        assert_eq!(d.poll_timer(), None, "unchanged deadline, no timer work");
        let input = d.message(t0, Leg::Phone, WsMessage::Text(START));
        d.feed(&input);
        let mut connects = Vec::new();
        while let Some(action) = d.poll_action() {
            if let Action::Connect { generation, .. } = action {
                connects.push(generation);
            }
        }
        assert_eq!(connects, [1]);
        assert!(d.model_opened(t0, 7).is_none());
        assert!(d.is_current_connect(1));
        let opened = d.model_opened(t0 + Duration::from_millis(90), 1).unwrap();
        assert_eq!(
            opened,
            Input::WsOpened {
                at_ns: 90_000_000,
                leg: Leg::Model
            }
        );
        assert!(d.model_failed(t0, 1).is_none(), "already opened");
    }

    #[test]
    fn timer_fires_once_then_rearms_at_the_next_deadline() {
        let (mut d, t0) = driver();
        let at = d.poll_timer().flatten().unwrap();
        let input = d.timer_fired(at);
        assert!(!d.is_timer_armed());
        d.feed(&input);
        while d.poll_action().is_some() {}
        // No stream ever started: the call ended and nothing is scheduled.
        assert!(d.is_over());
        assert_eq!(d.poll_timer(), None);
        assert_eq!(at, t0 + Duration::from_secs(10));
    }
}
