//! The call record: `BARBARA_RECORDS_DIR/{call id}.jsonl`. Its first line (`"record":"call"`)
//! holds the record's format ([`crate::replay::RECORD_FORMAT`]), the metadata and what the
//! call was made with (the configuration without its secrets, the seed, the wall clock, the
//! backend for the called number); then, in order, one `"record":"input"` line per input the
//! core was fed and one `"record":"event"` line per core `Event`, with its time since the call
//! started. `barbara replay` feeds the inputs to a fresh call and compares the events. A failure
//! to write is logged once and never affects the call.
//!
//! With `BARBARA_RECORD_AUDIO=false` the input log keeps every input but not its audio: the
//! base64 of SignalWire `media` payloads and of the model's `*audio.delta` events is blanked,
//! RTP datagrams and binary frames lose their contents, and each such line says
//! `"audio_omitted": true`. Such a record cannot be replayed.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use barbara_core::{Backend, Call, CallConfig, Event, Input};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::Settings;

/// Lines queued for a record's writer at most; past it the call waits for the writer.
const QUEUED_LINES: usize = 64;
/// Room for formatted lines; they are written out once they fill [`WRITE_AT`] of it, so a
/// line rarely makes the buffer grow.
const BUFFER_BYTES: usize = 64 * 1024;
/// Formatted bytes gathered before they are written out.
const WRITE_AT: usize = 48 * 1024;

/// An open call record. Lines are formatted by a writer task, off the call's path from one
/// socket to the other, and written in chunks on tokio's blocking pool, so a slow disk holds up
/// that writer (and, through the bounded queue, its call) but never a runtime worker. The call
/// hands lines over in order through a bounded queue: a slow disk slows the call down rather
/// than losing lines.
pub(crate) struct Record {
    path: PathBuf,
    /// `None` once finished, or when the file could not be created.
    lines: Option<mpsc::Sender<Line>>,
    writer: Option<JoinHandle<()>>,
}

/// What the call hands its record's writer.
enum Line {
    Input(Input),
    Event(Instant, Event),
}

/// The writing half of a record, on its own task.
struct Writer {
    /// `None` once a write failed (or when the file could not be created).
    file: Option<File>,
    /// Formatted lines not yet written.
    buffer: Vec<u8>,
    path: PathBuf,
    started: Instant,
    unix: Duration,
    /// Whether audio goes into the input log.
    audio: bool,
}

impl Record {
    /// Creates the record for `call_id` in `settings.records_dir` (sanitized for a file name; a
    /// clash gets a suffix), writes `meta` as its first line, with `"record": "call"`, the
    /// start time, what `call` (made at `started`) was made with, and the backend it runs on,
    /// and starts its writer. The future holds nothing of `call`: creating the file can block
    /// on a slow disk, so it is done on the blocking pool.
    pub(crate) fn create(
        settings: &Settings,
        call_id: &str,
        mut meta: Value,
        call: &Call,
        started: Instant,
    ) -> impl Future<Output = Record> + Send + 'static {
        let dir = settings.records_dir.clone();
        let audio = settings.record_audio;
        let unix = call.unix_time();
        let mut name: String = call_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .take(64)
            .collect();
        if name.is_empty() {
            name = format!("call-{}", unix.as_millis());
        }
        meta["record"] = "call".into();
        meta["format"] = crate::replay::RECORD_FORMAT.into();
        meta["unix_ms"] = (unix.as_millis() as u64).into();
        meta["unix_ns"] = (unix.as_nanos() as u64).into();
        meta["seed"] = hex(&call.seed()).into();
        meta["config"] = crate::snapshot::to_json(call.config());
        meta["record_audio"] = audio.into();
        backend_meta(&mut meta, call.config());
        async move {
            let fallback = dir.join(format!("{name}.jsonl"));
            let (file, path) = tokio::task::spawn_blocking(move || open_new(&dir, &name))
                .await
                .unwrap_or((None, fallback));
            let mut writer = Writer {
                file,
                buffer: Vec::with_capacity(BUFFER_BYTES),
                path: path.clone(),
                started,
                unix,
                audio,
            };
            writer.write(&meta);
            if writer.file.is_none() {
                return Record {
                    path,
                    lines: None,
                    writer: None,
                };
            }
            let (lines, queue) = mpsc::channel(QUEUED_LINES);
            Record {
                path,
                lines: Some(lines),
                writer: Some(tokio::spawn(writer.run(queue))),
            }
        }
    }

    /// Where the record is written.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `input`, just fed (without its audio unless audio is recorded).
    pub(crate) async fn input(&mut self, input: Input) {
        self.queue(Line::Input(input)).await;
    }

    /// Appends `event` as it happened at `now`.
    pub(crate) async fn event(&mut self, now: Instant, event: Event) {
        self.queue(Line::Event(now, event)).await;
    }

    async fn queue(&mut self, line: Line) {
        if let Some(lines) = &self.lines
            && lines.send(line).await.is_err()
        {
            // The writer is gone (it panicked): the call goes on unrecorded.
            self.lines = None;
        }
    }

    /// Waits until every line handed over is written and flushed.
    pub(crate) async fn finish(&mut self) {
        self.lines = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.await;
        }
    }
}

/// Creates `{name}.jsonl` in `dir` (and `dir` itself), or `{name}-{n}.jsonl` when that
/// exists; `None` and a warning when it cannot.
fn open_new(dir: &Path, name: &str) -> (Option<File>, PathBuf) {
    let _ = std::fs::create_dir_all(dir);
    let mut path = dir.join(format!("{name}.jsonl"));
    for n in 1..100 {
        match File::create_new(&path) {
            Ok(file) => return (Some(file), path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                path = dir.join(format!("{name}-{n}.jsonl"));
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot write the call record: {e}");
                break;
            }
        }
    }
    (None, path)
}

impl Writer {
    /// Writes the lines queued until the call drops its end, then flushes.
    async fn run(mut self, mut queue: mpsc::Receiver<Line>) {
        while let Some(line) = queue.recv().await {
            match line {
                Line::Input(input) => self.input(&input),
                Line::Event(now, event) => {
                    self.event(now, &event);
                    // Events are few: writing each out keeps what happened readable while the
                    // call runs.
                    self.flush().await;
                }
            }
            if self.buffer.len() >= WRITE_AT {
                self.flush().await;
            }
        }
        self.flush().await;
    }

    fn input(&mut self, input: &Input) {
        // Written straight from the input: its text and base64 are most of the record.
        #[derive(serde::Serialize)]
        struct InputLine<'a> {
            record: &'static str,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            audio_omitted: bool,
            #[serde(flatten)]
            input: &'a Input,
        }
        if self.file.is_none() {
            return;
        }
        let stripped = if self.audio {
            None
        } else {
            input.without_audio()
        };
        let line = InputLine {
            record: "input",
            audio_omitted: stripped.is_some(),
            input: stripped.as_ref().unwrap_or(input),
        };
        let mark = self.buffer.len();
        match serde_json::to_writer(&mut self.buffer, &line) {
            Ok(()) => self.buffer.push(b'\n'),
            Err(e) => {
                // Not a disk failure: this one line is left out, the record goes on.
                self.buffer.truncate(mark);
                tracing::warn!(path = %self.path.display(), "cannot format a record line: {e}");
            }
        }
    }

    fn event(&mut self, now: Instant, event: &Event) {
        if self.file.is_none() {
            return;
        }
        let line = event_line(self.started, self.unix, now, event);
        self.write(&line);
    }

    fn write(&mut self, value: &serde_json::Value) {
        if self.file.is_none() {
            return;
        }
        self.buffer.extend_from_slice(value.to_string().as_bytes());
        self.buffer.push(b'\n');
    }

    /// Writes the buffered lines out on the blocking pool and waits for it.
    async fn flush(&mut self) {
        let Some(mut file) = self.file.take() else {
            self.buffer.clear();
            return;
        };
        if self.buffer.is_empty() {
            self.file = Some(file);
            return;
        }
        let buffer = std::mem::take(&mut self.buffer);
        let written = tokio::task::spawn_blocking(move || {
            let result = file.write_all(&buffer);
            (file, buffer, result)
        })
        .await;
        match written {
            Ok((file, mut buffer, Ok(()))) => {
                buffer.clear();
                self.buffer = buffer;
                self.file = Some(file);
            }
            Ok((_, _, Err(e))) => self.failed(&e),
            Err(e) => self.failed(&std::io::Error::other(e.to_string())),
        }
    }

    fn failed(&mut self, e: &std::io::Error) {
        tracing::warn!(path = %self.path.display(), "cannot write the call record: {e}");
        self.file = None;
    }
}

/// An event's line: the event, `"record":"event"`, and its time since the call started
/// (`t_ms`) and since the epoch (`unix_ms`). The replay builds its lines the same way.
pub(crate) fn event_line(
    started: Instant,
    unix: Duration,
    now: Instant,
    event: &Event,
) -> serde_json::Value {
    let at = now.saturating_duration_since(started);
    let mut line = serde_json::to_value(event).unwrap_or_default();
    line["record"] = "event".into();
    line["t_ms"] = (at.as_millis() as u64).into();
    line["unix_ms"] = ((unix + at).as_millis() as u64).into();
    line
}

/// Adds the backend the core chooses for the called number (`meta.to`): `backend`, with the
/// configured default (`backend_default`) and the number's own choice (`backend_for_number`,
/// `null` when it has none); on Live, `model` is the Live model and `delegation_model` the one
/// running its tools. The transport actually used is in the `model_ready` event.
fn backend_meta(meta: &mut Value, config: &CallConfig) {
    let to = meta["to"].as_str();
    let for_number = to.and_then(|to| config.backend_by_number.get(to)).copied();
    let backend = config.backend_for(to);
    meta["backend"] = backend.name().into();
    meta["backend_default"] = config.backend.name().into();
    meta["backend_for_number"] = for_number.map(Backend::name).into();
    if backend == Backend::Live {
        meta["model"] = config.live.model.clone().into();
        meta["delegation_model"] = config.live.delegation_model.clone().into();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a [`hex`] string.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use barbara_core::Leg;

    use super::*;

    #[tokio::test]
    async fn lines_handed_to_the_writer_are_all_written_in_order() {
        let dir = std::env::temp_dir().join(format!("barbara-record-{}", std::process::id()));
        let (mut record, started) = open_record(&dir, "CAorder").await;
        // Many more lines than the queue holds: the call waits for the writer, none is lost.
        let lines = QUEUED_LINES * 20;
        for i in 0..lines {
            if i % 10 == 9 {
                record.event(started, Event::HangupRequested).await;
            } else {
                let input = text(Leg::Phone, &i.to_string());
                record.input(input).await;
            }
        }
        record.finish().await;
        let written = std::fs::read_to_string(record.path()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let written: Vec<Value> = written
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(written.len(), lines + 1);
        assert_eq!(written[0]["record"], "call");
        assert_eq!(written[0]["format"], crate::replay::RECORD_FORMAT);
        for (i, line) in written[1..].iter().enumerate() {
            if i % 10 == 9 {
                assert_eq!(line["record"], "event", "line {i}: {line}");
            } else {
                assert_eq!(line["record"], "input", "line {i}: {line}");
                assert_eq!(line["text"], i.to_string(), "line {i}: {line}");
            }
        }
    }

    #[tokio::test]
    async fn long_lines_are_written_out_in_chunks_whole_and_in_order() {
        let dir = std::env::temp_dir().join(format!("barbara-record-big-{}", std::process::id()));
        let (mut record, _) = open_record(&dir, "CAbig").await;
        // No events (which write at once): only the size threshold writes, several times over.
        let lines = 200;
        for i in 0..lines {
            let body = format!("{i}:{}", "x".repeat(3_000 + i));
            record.input(text(Leg::Model, &body)).await;
        }
        record.finish().await;
        let written = std::fs::read_to_string(record.path()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(written.len() > 8 * WRITE_AT, "{} bytes", written.len());
        let written: Vec<Value> = written
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(written.len(), lines + 1);
        for (i, line) in written[1..].iter().enumerate() {
            let body = line["text"].as_str().unwrap();
            assert_eq!(body, format!("{i}:{}", "x".repeat(3_000 + i)), "line {i}");
        }
    }

    #[tokio::test]
    async fn a_record_that_cannot_be_created_leaves_the_call_unrecorded_and_going() {
        // The records "directory" is a file: nothing can be created below it.
        let blocker =
            std::env::temp_dir().join(format!("barbara-record-file-{}", std::process::id()));
        std::fs::write(&blocker, b"not a directory").unwrap();
        let (mut record, started) = open_record(&blocker, "CAnowhere").await;
        assert!(record.path().starts_with(&blocker));
        record.input(text(Leg::Phone, "hello")).await;
        record.event(started, Event::HangupRequested).await;
        record.finish().await;
        assert_eq!(std::fs::read(&blocker).unwrap(), b"not a directory");
        let _ = std::fs::remove_file(&blocker);
    }

    /// A record for a fresh call `call_sid` in `dir`, and the instant the call started.
    async fn open_record(dir: &Path, call_sid: &str) -> (Record, Instant) {
        let settings = Settings::from_vars(|name| match name {
            "OPENAI_API_KEY" => Some("sk-test".to_owned()),
            "BARBARA_RECORDS_DIR" => Some(dir.display().to_string()),
            _ => None,
        })
        .unwrap();
        let started = Instant::now();
        let call = Call::new(
            barbara_core::CallConfig::new("sk-test"),
            [7; 32],
            started,
            Duration::ZERO,
        )
        .unwrap();
        let meta = serde_json::json!({ "call_sid": call_sid });
        let record = Record::create(&settings, call_sid, meta, &call, started).await;
        (record, started)
    }

    fn text(leg: Leg, text: &str) -> Input {
        Input::WsText {
            at_ns: 7,
            leg,
            text: text.to_owned(),
        }
    }
}
