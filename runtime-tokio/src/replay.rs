//! `barbara replay FILE`: runs a call record's input log through a fresh `Call` (the same
//! configuration, seed, start and wall clock) and compares the events it reports with the
//! recorded ones. Nothing connects anywhere: the outputs other than events are dropped.

use std::path::Path;
use std::time::{Duration, Instant};

use barbara_core::{Call, Input, Output};
use serde_json::Value;

use crate::record::{event_line, unhex};

/// Why a record written without its audio cannot be replayed.
const NO_AUDIO: &str = "this call was recorded with BARBARA_RECORD_AUDIO=false: its input log \
     has no audio, so it cannot be replayed (`barbara show` prints its timeline and transcript)";

/// The version of the call record format this `barbara` writes and reads, in the record's first
/// line as `"format"`. It goes up when a line changes so that an older `barbara` would misread
/// it (a field renamed, removed or given another meaning); a configuration field added with a
/// default that keeps older records' meaning (see `snapshot`) does not change it.
pub const RECORD_FORMAT: u64 = 1;

/// How a call record's first line states its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// [`RECORD_FORMAT`], stated.
    Current,
    /// No `"format"`: written before records had one, which is read as format 1.
    Unversioned,
}

/// Checks the format of the record whose first line is `meta`.
///
/// # Errors
/// A format newer than [`RECORD_FORMAT`], or one that is not a format number, as one line.
pub fn record_format(meta: &Value) -> Result<RecordFormat, String> {
    match &meta["format"] {
        Value::Null => Ok(RecordFormat::Unversioned),
        format => match format.as_u64() {
            Some(RECORD_FORMAT) => Ok(RecordFormat::Current),
            Some(newer) if newer > RECORD_FORMAT => Err(format!(
                "this record is format {newer}, newer than this barbara reads (format \
                 {RECORD_FORMAT}): read it with a newer barbara"
            )),
            _ => Err(format!(
                "unknown record format {format} (this barbara reads format {RECORD_FORMAT})"
            )),
        },
    }
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// The call's id, from the record.
    pub call_sid: String,
    /// Inputs fed.
    pub inputs: usize,
    /// Events recorded (the replay's own, when it matches).
    pub events: usize,
    /// The offset of the last input.
    pub duration: Duration,
    /// Datagrams were part of the call: its WebRTC peer connection cannot replay exactly.
    pub webrtc: bool,
    /// The first event that differs, if any.
    pub divergence: Option<Divergence>,
    /// Settings in the record that this `barbara` does not know (dotted paths), ignored.
    pub unknown_settings: Vec<String>,
}

/// The first event where the record and the replay disagree.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// Its position among the events (from 0).
    pub index: usize,
    /// The recorded event and its line number in the file (from 1), if the record has one.
    pub recorded: Option<(usize, Value)>,
    /// The replayed event and the line number of the input that produced it, if any.
    pub replayed: Option<(usize, Value)>,
}

impl std::fmt::Display for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(d) = &self.divergence else {
            return write!(
                f,
                "replay of {} matches: {} inputs over {:.3} s gave the {} recorded events",
                self.call_sid,
                self.inputs,
                self.duration.as_secs_f64(),
                self.events
            );
        };
        writeln!(
            f,
            "replay of {} diverges at event {} (of {} recorded):",
            self.call_sid, d.index, self.events
        )?;
        let side = |side: &Option<(usize, Value)>, line: &str| match side {
            Some((n, event)) => format!("{event}  ({line} {n})"),
            None => "nothing".to_owned(),
        };
        writeln!(f, "  recorded: {}", side(&d.recorded, "line"))?;
        write!(
            f,
            "  replayed: {}",
            side(&d.replayed, "after the input on line")
        )?;
        if !self.unknown_settings.is_empty() {
            write!(
                f,
                "\nnote: the record has settings this barbara does not know ({}): a newer \
                 barbara wrote it, and they may be why the replay differs.",
                self.unknown_settings.join(", ")
            )?;
        }
        if self.webrtc {
            write!(
                f,
                "\nnote: this call ran WebRTC. str0m draws its DTLS keys from the operating \
                 system, and its ICE credentials and media ids from an unseeded generator, so a \
                 replay makes a different offer and cannot answer the recorded datagrams: \
                 WebRTC calls are expected to diverge once the peer connection is set up."
            )?;
        }
        Ok(())
    }
}

/// Replays the record at `path`.
///
/// # Errors
/// An unreadable file, or one that is not a call record with an input log, or whose input log
/// has no audio.
pub fn replay_file(path: &Path) -> Result<Replay, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    replay(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Replays a record's text.
///
/// # Errors
/// When it is not a call record with an input log, or its input log has no audio.
pub fn replay(record: &str) -> Result<Replay, String> {
    let mut lines = record
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let meta: Value = match lines.next() {
        Some((_, line)) => serde_json::from_str(line).map_err(|e| format!("line 1: {e}"))?,
        None => return Err("the file is empty".to_owned()),
    };
    if meta["record"] != "call" {
        return Err("not a call record: its first line is not \"record\":\"call\"".to_owned());
    }
    let format = record_format(&meta)?;
    if meta["record_audio"] == false {
        return Err(NO_AUDIO.to_owned());
    }
    let seed: [u8; 32] = meta["seed"]
        .as_str()
        .and_then(unhex)
        .and_then(|s| s.try_into().ok())
        .ok_or("the record has no seed (recorded before replay was possible?)")?;
    let unix = Duration::from_nanos(
        meta["unix_ns"]
            .as_u64()
            .ok_or("the record has no unix_ns")?,
    );
    let config = crate::snapshot::from_json(&meta["config"]).map_err(|e| match format {
        RecordFormat::Current => format!("the record's configuration: {e}"),
        RecordFormat::Unversioned => format!(
            "the record's configuration: {e} (the record has no \"format\": it predates \
             format versioning and does not read as format {RECORD_FORMAT})"
        ),
    })?;
    let unknown_settings = crate::snapshot::unknown_settings(&meta["config"], &config);
    let start = Instant::now();
    let mut call = Call::new(config, seed, start, unix)
        .map_err(|e| format!("the record's configuration is refused: {e}"))?;

    let mut recorded = Vec::new();
    let mut replayed = Vec::new();
    let mut inputs = 0;
    let mut duration = Duration::ZERO;
    let mut webrtc = false;
    for (n, line) in lines {
        let n = n + 1;
        let value: Value = serde_json::from_str(line).map_err(|e| format!("line {n}: {e}"))?;
        match value["record"].as_str() {
            Some("event") => recorded.push((n, value)),
            Some("input") => {
                if value["audio_omitted"] == true {
                    return Err(NO_AUDIO.to_owned());
                }
                let input: Input =
                    serde_json::from_value(value).map_err(|e| format!("line {n}: {e}"))?;
                inputs += 1;
                duration = input.at();
                webrtc |= matches!(input, Input::Udp { .. });
                input.feed(&mut call, start);
                let now = start + input.at();
                while let Some(output) = call.poll_output() {
                    if let Output::Event(event) = output {
                        // Through text, as the recorded side went, so that numbers compare equal.
                        let line = event_line(start, unix, now, &event).to_string();
                        let event = serde_json::from_str(&line).unwrap_or_default();
                        replayed.push((n, event));
                    }
                }
            }
            _ => {}
        }
    }
    if inputs == 0 {
        return Err("the record has no input log".to_owned());
    }
    let index = (0..recorded.len().max(replayed.len()))
        .find(|&i| recorded.get(i).map(|r| &r.1) != replayed.get(i).map(|r| &r.1));
    Ok(Replay {
        call_sid: meta["call_sid"].as_str().unwrap_or("?").to_owned(),
        inputs,
        events: recorded.len(),
        duration,
        webrtc,
        divergence: index.map(|index| Divergence {
            index,
            recorded: recorded.get(index).cloned(),
            replayed: replayed.get(index).cloned(),
        }),
        unknown_settings,
    })
}

#[cfg(test)]
mod tests {
    use barbara_core::CallConfig;
    use serde_json::json;

    use super::*;

    /// A record of a call hung up at once, made with the configuration `config`, whose first
    /// line is then changed by `edit`; its events are the ones a replay gives, so it matches.
    fn record(config: Value, edit: impl FnOnce(&mut Value)) -> String {
        let mut meta = json!({
            "record": "call",
            "format": RECORD_FORMAT,
            "call_sid": "CAformat",
            "seed": "07".repeat(32),
            "unix_ns": 1_790_000_000_000_000_000_u64,
            "config": config,
        });
        let input = json!({"record": "input", "input": "hang_up", "at_ns": 1_000_000});
        let mut lines = vec![meta.to_string(), input.to_string()];
        // Each replay names the first event the record lacks; add them until none is missing.
        while let Ok(Replay {
            divergence:
                Some(Divergence {
                    recorded: None,
                    replayed: Some((_, event)),
                    ..
                }),
            ..
        }) = replay(&lines.join("\n"))
        {
            lines.push(event.to_string());
        }
        edit(&mut meta);
        lines[0] = meta.to_string();
        lines.join("\n")
    }

    fn todays_config() -> Value {
        crate::snapshot::to_json(&CallConfig::new("sk-test"))
    }

    #[test]
    fn a_record_of_the_current_format_replays() {
        let replay = replay(&record(todays_config(), |_| {})).unwrap();
        assert_eq!(replay.divergence, None, "{replay}");
        assert!(replay.events > 0);
    }

    #[test]
    fn a_record_without_a_format_reads_as_the_first_format() {
        let text = record(todays_config(), |meta| {
            meta.as_object_mut().unwrap().remove("format");
        });
        let replay = replay(&text).unwrap();
        assert_eq!(replay.divergence, None, "{replay}");
    }

    #[test]
    fn a_record_of_a_newer_format_is_refused_in_one_line() {
        let text = record(todays_config(), |meta| meta["format"] = 99.into());
        let e = replay(&text).unwrap_err();
        assert!(e.contains("format 99") && e.contains("newer"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn a_format_that_is_not_a_known_number_is_refused() {
        for format in [json!("1.0-beta"), json!(0), json!(-1), json!(1.5)] {
            let text = record(todays_config(), |meta| meta["format"] = format.clone());
            let e = replay(&text).unwrap_err();
            assert!(e.starts_with("unknown record format"), "{format}: {e}");
        }
    }

    #[test]
    fn settings_a_newer_barbara_added_are_named_and_noted_only_when_the_replay_diverges() {
        let known = replay(&record(todays_config(), |_| {})).unwrap();
        assert!(known.unknown_settings.is_empty(), "{known}");

        // Settings this code does not read: the record still replays, and they are named.
        let text = record(todays_config(), |meta| {
            meta["config"]["webrtc"]["future_knob"] = 3.into();
            meta["config"]["tools"] = json!([{"name": "t", "description": "d",
                "parameters": {}, "timeout": {"secs": 5, "nanos": 0}, "future_flag": true}]);
        });
        let matching = replay(&text).unwrap();
        assert_eq!(matching.divergence, None, "{matching}");
        assert_eq!(
            matching.unknown_settings,
            ["tools[0].future_flag", "webrtc.future_knob"]
        );
        assert!(!matching.to_string().contains("note"), "{matching}");

        // When the replay differs (here: the recorded events are gone), the note names them.
        let mut lines: Vec<&str> = text.lines().collect();
        lines.truncate(2);
        let diverging = replay(&lines.join("\n")).unwrap();
        assert!(diverging.divergence.is_some());
        let shown = diverging.to_string();
        assert!(
            shown.contains("does not know (tools[0].future_flag, webrtc.future_knob)"),
            "{shown}"
        );
    }

    #[test]
    fn a_record_missing_a_later_optional_setting_replays() {
        let mut config = todays_config();
        config["limits"]
            .as_object_mut()
            .unwrap()
            .remove("session_rollover");
        let replay = replay(&record(config, |_| {})).unwrap();
        assert_eq!(replay.divergence, None, "{replay}");
    }

    #[test]
    fn an_unversioned_record_whose_configuration_does_not_read_says_why() {
        let mut config = todays_config();
        config["openai"]
            .as_object_mut()
            .unwrap()
            .remove("greet_first");
        let text = record(config, |meta| {
            meta.as_object_mut().unwrap().remove("format");
        });
        let e = replay(&text).unwrap_err();
        assert!(e.contains("greet_first"), "{e}");
        assert!(e.contains("predates format versioning"), "{e}");
    }
}
