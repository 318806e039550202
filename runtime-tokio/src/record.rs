//! The call record: `BARBARA_RECORDS_DIR/{call id}.jsonl`, a metadata line, then one line per
//! core `Event` with its time since the call started. A failure to write is logged once and
//! never affects the call.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use barbara_core::Event;

/// An open call record.
pub(crate) struct Record {
    file: Option<File>,
    path: PathBuf,
    started: Instant,
    unix: Duration,
}

impl Record {
    /// Creates the record for `call_id` (sanitized for a file name; a clash gets a suffix) and
    /// writes `meta` as its first line, with `"record": "call"` and the start time added.
    pub(crate) fn create(
        dir: &Path,
        call_id: &str,
        mut meta: serde_json::Value,
        started: Instant,
        unix: Duration,
    ) -> Record {
        let mut name: String = call_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .take(64)
            .collect();
        if name.is_empty() {
            name = format!("call-{}", unix.as_millis());
        }
        let mut record = Record {
            file: None,
            path: dir.join(format!("{name}.jsonl")),
            started,
            unix,
        };
        let _ = std::fs::create_dir_all(dir);
        for n in 1..100 {
            match File::create_new(&record.path) {
                Ok(file) => {
                    record.file = Some(file);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    record.path = dir.join(format!("{name}-{n}.jsonl"));
                }
                Err(e) => {
                    tracing::warn!(path = %record.path.display(), "cannot write the call record: {e}");
                    break;
                }
            }
        }
        meta["record"] = "call".into();
        meta["unix_ms"] = (unix.as_millis() as u64).into();
        record.write(&meta);
        record
    }

    /// Where the record is written.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` as it happened at `now`.
    pub(crate) fn event(&mut self, now: Instant, event: &Event) {
        if self.file.is_none() {
            return;
        }
        let at = now.saturating_duration_since(self.started);
        let mut line = serde_json::to_value(event).unwrap_or_default();
        line["t_ms"] = (at.as_millis() as u64).into();
        line["unix_ms"] = ((self.unix + at).as_millis() as u64).into();
        self.write(&line);
    }

    fn write(&mut self, value: &serde_json::Value) {
        let Some(file) = &mut self.file else { return };
        let mut line = value.to_string();
        line.push('\n');
        if let Err(e) = file.write_all(line.as_bytes()) {
            tracing::warn!(path = %self.path.display(), "cannot write the call record: {e}");
            self.file = None;
        }
    }
}
