//! Prints a call record (`.jsonl`) as a timeline and a transcript.

use std::path::Path;

use serde_json::Value;

/// Prints the record at `path`.
pub(crate) fn print_file(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let lines: Vec<Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a call record: {e}", path.display()))?;
    if let Some(meta) = lines.first().filter(|l| l["record"] == "call") {
        barbara_tokio::replay::record_format(meta)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    print(&lines);
    Ok(())
}

/// Prints the record's lines: the metadata line, then the events.
pub(crate) fn print(lines: &[Value]) {
    // The transport the call ended up on, as its events tell.
    let transport = lines.iter().rev().find_map(|l| match l["event"].as_str()? {
        "model_ready" => l["transport"].as_str(),
        "fallback" => l["to"].as_str(),
        _ => None,
    });
    if let Some(meta) = lines.first().filter(|l| l["record"] == "call") {
        header(meta, transport);
    }
    let live = transport.is_some_and(|t| t.starts_with("live/"));
    println!("\ntimeline");
    for line in lines {
        if let Some(what) = describe(line, live) {
            let at = line["t_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
            println!("  {at:>7.3}s  {what}");
        }
    }
    println!("\ntranscript");
    for line in lines.iter().filter(|l| l["event"] == "transcript") {
        let who = match line["role"].as_str() {
            Some("caller") => "caller   ",
            _ => "assistant",
        };
        println!("  {who}  {}", line["text"].as_str().unwrap_or(""));
    }
}

/// Who the call was, which backend the configuration chose for it, where it ran.
fn header(meta: &Value, transport: Option<&str>) {
    let field = |name: &str| meta[name].as_str().unwrap_or("?").to_owned();
    println!(
        "call {} from {} to {} (model {})",
        field("call_sid"),
        field("from"),
        field("to"),
        field("model")
    );
    if let Some(backend) = meta["backend"].as_str() {
        let why = match meta["backend_for_number"].as_str() {
            Some(_) => format!(
                "chosen for {}, the default is {}",
                field("to"),
                field("backend_default")
            ),
            None => "the configured default".to_owned(),
        };
        let tools = match meta["delegation_model"].as_str() {
            Some(model) => format!("; tools delegated to {model}"),
            None => String::new(),
        };
        println!("backend {backend} ({why}){tools}");
    }
    println!(
        "ran on {}",
        transport.unwrap_or("nothing: OpenAI was never ready")
    );
    if meta["record_audio"] == false {
        println!("audio not recorded (BARBARA_RECORD_AUDIO=false): this record cannot be replayed");
    }
}

/// One event as a timeline line; `None` for events the timeline leaves out. On `live`, tool
/// calls come from the Responses backend the session delegates to.
fn describe(line: &Value, live: bool) -> Option<String> {
    let text = |name: &str| line[name].as_str().unwrap_or("?").to_owned();
    Some(match line["event"].as_str()? {
        "stream_started" => match line["codec"].as_str() {
            Some(codec) => format!("connected: media stream started ({codec})"),
            None => format!("connected: media stream started ({})", line["codec"]),
        },
        "model_ready" => format!(
            "transport chosen: OpenAI session ready over {}",
            text("transport")
        ),
        "fallback" => format!(
            "fell back from {} to {}: {}",
            text("from"),
            text("to"),
            text("reason")
        ),
        "first_audio_to_caller" => "first audio: the model's voice reaches the caller".to_owned(),
        "barge_in" => format!(
            "barge-in: the caller spoke over the model after hearing {} ms",
            line["heard_ms"]
        ),
        "tool_call_started" if live => format!(
            "tool call {} {} (from the Responses backend)",
            text("name"),
            line["arguments"]
        ),
        "tool_call_started" => format!("tool call {} {}", text("name"), line["arguments"]),
        "model_reconnecting" => format!(
            "the OpenAI socket dropped: reconnect attempt {} after {:.0} ms",
            line["attempt"],
            secs(&line["after"]) * 1000.0
        ),
        "model_session_rollover" => {
            "session rollover: a new OpenAI session took over before the cap".to_owned()
        }
        "uplink_fec" => {
            let state = if line["enabled"] == true { "on" } else { "off" };
            format!(
                "uplink FEC {state}: OpenAI reports {}% loss on the caller's audio",
                line["loss_percent"]
            )
        }
        "billed_seconds" => format!("billed so far: {} s", line["seconds"].as_f64()?),
        "model_session_closed" => match line["billed_seconds"].as_f64() {
            Some(billed) => format!("session.closed ({}): {billed} s billed", text("reason")),
            None => format!("session.closed ({}), no final billing", text("reason")),
        },
        "overloaded" => format!("overloaded: {} dropped its oldest entries", text("queue")),
        "tool_call_completed" => {
            let secs = secs(&line["latency"]);
            let late = if line["timed_out"] == true {
                " (timed out)"
            } else {
                ""
            };
            format!(
                "tool {} answered in {:.0} ms{late}: {}",
                text("name"),
                secs * 1000.0,
                text("output")
            )
        }
        "caller_dtmf" => format!("caller pressed {}", text("digit")),
        "dtmf_sent" => format!("sent DTMF {}", text("digits")),
        "model_error" => format!("OpenAI error {}: {}", line["code"], text("message")),
        "hangup_requested" => "hang-up requested from SignalWire".to_owned(),
        "call_ended" => match &line["reason"]["detail"] {
            Value::Null => format!("call ended: {}", line["reason"]["reason"]),
            detail => format!("call ended: {} ({detail})", line["reason"]["reason"]),
        },
        _ => return None,
    })
}

/// Seconds of a serialized `Duration` (`{"secs", "nanos"}`).
fn secs(duration: &Value) -> f64 {
    duration["secs"].as_f64().unwrap_or(0.0) + duration["nanos"].as_f64().unwrap_or(0.0) / 1e9
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_newer_events_have_lines() {
        let cases = [
            (
                json!({"event": "model_reconnecting", "attempt": 2, "after": {"secs": 1, "nanos": 500_000_000}}),
                "the OpenAI socket dropped: reconnect attempt 2 after 1500 ms",
            ),
            (
                json!({"event": "model_session_rollover"}),
                "session rollover: a new OpenAI session took over before the cap",
            ),
            (
                json!({"event": "uplink_fec", "enabled": true, "loss_percent": 4}),
                "uplink FEC on: OpenAI reports 4% loss on the caller's audio",
            ),
            (
                json!({"event": "uplink_fec", "enabled": false, "loss_percent": 0}),
                "uplink FEC off: OpenAI reports 0% loss on the caller's audio",
            ),
            (
                json!({"event": "billed_seconds", "seconds": 60.0}),
                "billed so far: 60 s",
            ),
            (
                json!({"event": "model_session_closed", "reason": "close_requested", "billed_seconds": 17.0}),
                "session.closed (close_requested): 17 s billed",
            ),
            (
                json!({"event": "model_session_closed", "reason": "expired", "billed_seconds": null}),
                "session.closed (expired), no final billing",
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(describe(&line, true).as_deref(), Some(expected));
        }
        let tool = json!({"event": "tool_call_started", "name": "hours", "arguments": {}});
        assert_eq!(describe(&tool, false).unwrap(), "tool call hours {}");
        assert!(
            describe(&tool, true)
                .unwrap()
                .ends_with("(from the Responses backend)")
        );
    }
}
