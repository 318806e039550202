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
    print(&lines);
    Ok(())
}

/// Prints the record's lines: the metadata line, then the events.
pub(crate) fn print(lines: &[Value]) {
    if let Some(meta) = lines.first().filter(|l| l["record"] == "call") {
        let field = |name: &str| meta[name].as_str().unwrap_or("?").to_owned();
        println!(
            "call {} from {} to {} (model {})",
            field("call_sid"),
            field("from"),
            field("to"),
            field("model")
        );
    }
    println!("\ntimeline");
    for line in lines {
        if let Some(what) = describe(line) {
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

fn describe(line: &Value) -> Option<String> {
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
        "tool_call_started" => format!("tool call {} {}", text("name"), line["arguments"]),
        "tool_call_completed" => {
            let secs = line["latency"]["secs"].as_f64().unwrap_or(0.0)
                + line["latency"]["nanos"].as_f64().unwrap_or(0.0) / 1e9;
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
