//! One media stream's state: what SignalWire sent, what we send back, and what the caller heard.
//!
//! Model audio goes out in 20 ms frames as fast as it arrives; SignalWire queues and plays it.
//! After each run of frames we send a `mark` named `{item}:{ms}:g{generation}:m{seq}`; SignalWire
//! echoes a mark once the audio before it has played, so live echoes tell how much of each
//! assistant item the caller heard. A `clear` returns every pending mark at once: those echoes
//! carry an old generation and are ignored, because that audio was never heard.

use std::collections::VecDeque;

use crate::audio::{FRAME_MS, PhoneCodec};
use crate::media_stream::messages::{self, InboundMessage, ParseError, StartInfo};
use crate::output::BadInputKind;

/// Frames between two marks inside one long run, so the heard position is never more than
/// this far behind the truth.
const FRAMES_PER_MARK: usize = 5;

/// What a message from SignalWire meant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PhoneEvent {
    /// `start`: the stream is usable.
    Started(StartInfo, PhoneCodec),
    /// `start` described a format we cannot carry.
    UnsupportedStart(String),
    /// A caller audio payload, in the stream's codec.
    Audio(Vec<u8>),
    /// The caller pressed a key.
    Dtmf(char),
    /// `stop`.
    Stopped,
    /// A message was dropped.
    Bad(BadInputKind),
    /// Nothing to act on (`connected`, a stale or live mark echo).
    Nothing,
}

/// A mark we sent and SignalWire has not yet echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingMark {
    name: String,
    item: String,
    /// Milliseconds of this item sent up to the mark.
    item_ms: u32,
}

/// The caller's position in one assistant item.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ItemPlayback {
    /// Item id.
    pub(crate) item: String,
    /// Milliseconds sent to SignalWire.
    pub(crate) sent_ms: u32,
    /// Milliseconds confirmed played by live mark echoes.
    pub(crate) heard_ms: u32,
}

#[derive(Debug)]
enum State {
    AwaitingStart,
    Streaming { stream_sid: String },
    Ended,
}

/// The phone leg of one call.
#[derive(Debug)]
pub(crate) struct PhoneLeg {
    state: State,
    codec: Option<PhoneCodec>,
    max_message_bytes: usize,
    max_pending_marks: usize,
    generation: u32,
    mark_seq: u64,
    pending_marks: VecDeque<PendingMark>,
    /// The item now playing (or last played) and how far.
    current: Option<ItemPlayback>,
    /// Bytes of the current item not yet a whole frame.
    partial: Vec<u8>,
    frames_since_mark: usize,
    outbox: VecDeque<String>,
    /// Mark echoes of cleared audio, ignored.
    pub(crate) stale_mark_echoes: u64,
}

impl PhoneLeg {
    pub(crate) fn new(max_message_bytes: usize, max_pending_marks: usize) -> Self {
        PhoneLeg {
            state: State::AwaitingStart,
            codec: None,
            max_message_bytes,
            max_pending_marks: max_pending_marks.max(1),
            generation: 0,
            mark_seq: 0,
            pending_marks: VecDeque::new(),
            current: None,
            partial: Vec::new(),
            frames_since_mark: 0,
            outbox: VecDeque::new(),
            stale_mark_echoes: 0,
        }
    }

    pub(crate) fn stream_sid(&self) -> Option<&str> {
        match &self.state {
            State::Streaming { stream_sid } => Some(stream_sid),
            State::AwaitingStart | State::Ended => None,
        }
    }

    /// Reads one text frame from SignalWire.
    pub(crate) fn handle_text(&mut self, text: &str) -> PhoneEvent {
        if text.len() > self.max_message_bytes {
            return PhoneEvent::Bad(BadInputKind::Oversized);
        }
        let message = match messages::parse_inbound(text) {
            Ok(m) => m,
            Err(ParseError::Malformed(_)) => return PhoneEvent::Bad(BadInputKind::Malformed),
            Err(ParseError::UnknownEvent(_)) => return PhoneEvent::Bad(BadInputKind::UnknownEvent),
            Err(ParseError::BadBase64) => return PhoneEvent::Bad(BadInputKind::BadBase64),
        };
        match (&self.state, message) {
            (State::Ended, _) => PhoneEvent::Nothing,
            (_, InboundMessage::Connected) => PhoneEvent::Nothing,
            (State::AwaitingStart, InboundMessage::Start(start)) => {
                match start.media_format.codec() {
                    Ok(codec) => {
                        self.state = State::Streaming {
                            stream_sid: start.stream_sid.clone(),
                        };
                        self.codec = Some(codec);
                        PhoneEvent::Started(start, codec)
                    }
                    Err(e) => PhoneEvent::UnsupportedStart(e.to_string()),
                }
            }
            // A second `start` on one socket is not in the protocol.
            (State::Streaming { .. }, InboundMessage::Start(_)) => {
                PhoneEvent::Bad(BadInputKind::Malformed)
            }
            (State::AwaitingStart, InboundMessage::Media(_)) => {
                PhoneEvent::Bad(BadInputKind::MediaBeforeStart)
            }
            (State::AwaitingStart, InboundMessage::Dtmf { .. } | InboundMessage::Mark { .. }) => {
                PhoneEvent::Bad(BadInputKind::MediaBeforeStart)
            }
            (State::AwaitingStart, InboundMessage::Stop { .. }) => {
                self.state = State::Ended;
                PhoneEvent::Stopped
            }
            (State::Streaming { stream_sid }, message) => {
                if let Some(sid) = sid_of(&message)
                    && sid != stream_sid
                {
                    return PhoneEvent::Bad(BadInputKind::WrongStreamSid);
                }
                self.streaming_message(message)
            }
        }
    }

    fn streaming_message(&mut self, message: InboundMessage) -> PhoneEvent {
        match message {
            InboundMessage::Media(media) => {
                if media
                    .track
                    .as_deref()
                    .is_some_and(|t| t != "inbound" && t != "inbound_track")
                {
                    // Only the caller's track is audio for the model.
                    return PhoneEvent::Nothing;
                }
                let whole_samples = match self.codec {
                    Some(PhoneCodec::L16 { .. }) => media.payload.len() % 2 == 0,
                    Some(PhoneCodec::Pcmu | PhoneCodec::Pcma) | None => true,
                };
                if !whole_samples {
                    return PhoneEvent::Bad(BadInputKind::OddLength);
                }
                PhoneEvent::Audio(media.payload)
            }
            InboundMessage::Dtmf { digit, .. } => PhoneEvent::Dtmf(digit),
            InboundMessage::Mark { name, .. } => self.mark_echo(&name),
            InboundMessage::Stop { .. } => {
                self.state = State::Ended;
                PhoneEvent::Stopped
            }
            InboundMessage::Connected | InboundMessage::Start(_) => PhoneEvent::Nothing,
        }
    }

    fn mark_echo(&mut self, name: &str) -> PhoneEvent {
        if let Some(pos) = self.pending_marks.iter().position(|m| m.name == name) {
            // Echoes come in order: every mark before this one has played too.
            let mut heard = None;
            for _ in 0..=pos {
                heard = self.pending_marks.pop_front();
            }
            if let (Some(mark), Some(current)) = (heard, self.current.as_mut())
                && mark.item == current.item
            {
                current.heard_ms = current.heard_ms.max(mark.item_ms.min(current.sent_ms));
            }
            return PhoneEvent::Nothing;
        }
        if mark_generation(name).is_some_and(|g| g < self.generation) {
            self.stale_mark_echoes += 1;
            return PhoneEvent::Nothing;
        }
        PhoneEvent::Bad(BadInputKind::UnknownMark)
    }

    /// Queues model audio (already in the phone's codec) of `item` as 20 ms frames and a mark.
    /// Returns the milliseconds queued.
    pub(crate) fn play(&mut self, item: &str, audio: &[u8]) -> u32 {
        let (Some(codec), Some(stream_sid)) = (self.codec, self.stream_sid().map(str::to_owned))
        else {
            return 0;
        };
        if self.current.as_ref().is_none_or(|c| c.item != item) {
            self.finish_item();
            self.current = Some(ItemPlayback {
                item: item.to_owned(),
                ..ItemPlayback::default()
            });
        }
        let frame = codec.frame_bytes();
        self.partial.extend_from_slice(audio);
        let mut sent = 0;
        let mut offset = 0;
        while self.partial.len() - offset >= frame {
            self.outbox.push_back(messages::media(
                &stream_sid,
                &self.partial[offset..offset + frame],
            ));
            offset += frame;
            sent += FRAME_MS;
            self.add_sent(FRAME_MS);
            self.frames_since_mark += 1;
            if self.frames_since_mark >= FRAMES_PER_MARK {
                self.send_mark(&stream_sid);
            }
        }
        self.partial.drain(..offset);
        if self.frames_since_mark > 0 {
            self.send_mark(&stream_sid);
        }
        sent
    }

    /// Sends what is left of the current item (a short last frame) and its mark.
    pub(crate) fn finish_item(&mut self) {
        let (Some(codec), Some(stream_sid)) = (self.codec, self.stream_sid().map(str::to_owned))
        else {
            return;
        };
        if self.partial.is_empty() {
            return;
        }
        let rest = std::mem::take(&mut self.partial);
        let ms = (rest.len() / codec.bytes_per_ms().max(1)) as u32;
        self.outbox.push_back(messages::media(&stream_sid, &rest));
        self.add_sent(ms);
        self.send_mark(&stream_sid);
    }

    fn add_sent(&mut self, ms: u32) {
        if let Some(current) = self.current.as_mut() {
            current.sent_ms = current.sent_ms.saturating_add(ms);
        }
    }

    fn send_mark(&mut self, stream_sid: &str) {
        self.frames_since_mark = 0;
        let Some(current) = self.current.as_ref() else {
            return;
        };
        if self.pending_marks.len() >= self.max_pending_marks {
            // The next mark that fits covers this audio too.
            return;
        }
        self.mark_seq += 1;
        let name = format!(
            "{}:{}:g{}:m{}",
            current.item, current.sent_ms, self.generation, self.mark_seq
        );
        self.outbox.push_back(messages::mark(stream_sid, &name));
        self.pending_marks.push_back(PendingMark {
            name,
            item: current.item.clone(),
            item_ms: current.sent_ms,
        });
    }

    /// Whether audio we sent may still be playing.
    pub(crate) fn is_playing(&self) -> bool {
        !self.pending_marks.is_empty() || !self.partial.is_empty()
    }

    /// Stops playback at once: sends `clear` and forgets pending marks.
    /// Returns the item that was playing and how much of it was heard.
    pub(crate) fn clear(&mut self) -> Option<ItemPlayback> {
        let stream_sid = self.stream_sid()?.to_owned();
        self.outbox.push_back(messages::clear(&stream_sid));
        self.generation += 1;
        self.pending_marks.clear();
        self.partial.clear();
        self.frames_since_mark = 0;
        self.current.take()
    }

    /// Milliseconds of the current item sent but not yet confirmed played.
    pub(crate) fn unplayed_ms(&self) -> u32 {
        self.playing_item()
            .map_or(0, |p| p.sent_ms.saturating_sub(p.heard_ms))
    }

    /// The item now playing, if any audio of it is unconfirmed.
    pub(crate) fn playing_item(&self) -> Option<&ItemPlayback> {
        self.current.as_ref().filter(|_| self.is_playing())
    }

    /// Plays a DTMF digit to the caller's line.
    pub(crate) fn send_dtmf(&mut self, digit: char) {
        if let Some(stream_sid) = self.stream_sid().map(str::to_owned) {
            self.outbox.push_back(messages::dtmf(&stream_sid, digit));
        }
    }

    /// The stream is over: nothing more is sent.
    pub(crate) fn end(&mut self) {
        self.state = State::Ended;
        self.outbox.clear();
        self.pending_marks.clear();
        self.partial.clear();
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<String> {
        self.outbox.pop_front()
    }

    pub(crate) fn pending_marks(&self) -> usize {
        self.pending_marks.len()
    }
}

fn sid_of(message: &InboundMessage) -> Option<&str> {
    match message {
        InboundMessage::Media(m) => m.stream_sid.as_deref(),
        InboundMessage::Dtmf { stream_sid, .. }
        | InboundMessage::Mark { stream_sid, .. }
        | InboundMessage::Stop { stream_sid } => stream_sid.as_deref(),
        InboundMessage::Start(s) => Some(&s.stream_sid),
        InboundMessage::Connected => None,
    }
}

/// The generation in a mark name of ours (`…:g{n}:m{seq}`).
fn mark_generation(name: &str) -> Option<u32> {
    let mut parts = name.rsplit(':');
    let _seq = parts.next()?.strip_prefix('m')?;
    parts.next()?.strip_prefix('g')?.parse().ok()
}
