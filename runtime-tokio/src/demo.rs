//! `barbara demo`: one whole call on the simulation, printed as a timeline.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use barbara_core::sim::driver::{ScriptedTool, Sim, SimConfig, ToolBehaviour};
use barbara_core::sim::fake_caller::{HangupStyle, Utterance};
use barbara_core::sim::fake_realtime::ScriptedResponse;
use barbara_core::{Event, Role, ToolAction, ToolSpec};

fn reply(text: &str, audio_ms: u32, tools: &[(&str, serde_json::Value)]) -> ScriptedResponse {
    ScriptedResponse {
        text: text.to_owned(),
        audio_ms,
        tool_calls: tools
            .iter()
            .map(|(n, a)| ((*n).to_owned(), a.clone()))
            .collect(),
    }
}

fn config() -> SimConfig {
    let ms = Duration::from_millis;
    let mut config = SimConfig::new(2026);
    config.openai.responses = vec![
        reply(
            "Hello, you've reached Barbara. How can I help you today?",
            3_000,
            &[],
        ),
        reply(
            "Let me look up that order for you.",
            1_600,
            &[("lookup_order", serde_json::json!({"order_id": "A1234"}))],
        ),
        reply(
            "Your order A1234 shipped yesterday and should arrive on Friday. Is there anything else I can do?",
            5_000,
            &[],
        ),
        reply(
            "Of course. Thanks for calling, goodbye!",
            2_200,
            &[("end_call", serde_json::json!({"reason": "caller is done"}))],
        ),
    ];
    config.openai.caller_transcripts = vec![
        "Hi, where is my order A1234?".to_owned(),
        "No, that's all, thanks.".to_owned(),
    ];
    config.caller.utterances = vec![
        Utterance {
            start: ms(4_000),
            duration: ms(1_800),
        },
        // Talks over the answer: a barge-in.
        Utterance {
            start: ms(10_700),
            duration: ms(1_200),
        },
    ];
    config.caller.hangup = Some((ms(40_000), HangupStyle::Stop));
    config.call.tools.push(ToolSpec {
        name: "lookup_order".to_owned(),
        description: "Look up an order by its id.".to_owned(),
        parameters: serde_json::json!({"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}),
        timeout: Duration::from_secs(5),
        webhook: None,
        filler: None,
    });
    config.tools.push(ScriptedTool {
        name: "lookup_order".to_owned(),
        behaviour: ToolBehaviour::Reply {
            delay: ms(420),
            output: r#"{"status":"shipped","eta":"Friday"}"#.to_owned(),
            action: ToolAction::None,
        },
    });
    config
}

pub(crate) fn run() -> ExitCode {
    println!("Barbara demo: a simulated phone call (virtual clock, fake SignalWire and OpenAI)\n");
    let wall = Instant::now();
    let mut sim = Sim::new(config());
    sim.run_to_end(Duration::from_secs(60));
    let elapsed = wall.elapsed();

    println!("timeline");
    for (at, event) in sim.trace() {
        if let Some(line) = describe(event) {
            println!("  {:>7.3}s  {line}", at.as_secs_f64());
        }
    }
    println!("\ntranscript");
    for (_, event) in sim.trace() {
        if let Event::Transcript { role, text } = event {
            let who = match role {
                Role::Caller => "caller   ",
                Role::Assistant => "assistant",
            };
            println!("  {who}  {text}");
        }
    }
    let heard = sim.caller().heard_speech_ms();
    println!(
        "\nthe caller heard {:.1} s of speech; the call took {:.1} s and simulated in {:.0} ms",
        f64::from(heard) / 1000.0,
        sim.now().as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0
    );
    match sim.call().end_reason() {
        Some(reason) => {
            println!("ended: {reason:?}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("the call did not end");
            ExitCode::FAILURE
        }
    }
}

fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::StreamStarted { codec, .. } => format!("media stream started ({codec:?})"),
        Event::ModelReady { transport } => format!("OpenAI session ready over {transport}"),
        Event::FirstAudioToCaller => "first model audio sent to the caller".to_owned(),
        Event::BargeIn { heard_ms, .. } => {
            format!("barge-in: caller spoke over the model after hearing {heard_ms} ms")
        }
        Event::ToolCallStarted {
            name, arguments, ..
        } => format!("tool call {name} {arguments}"),
        Event::ToolCallCompleted {
            name,
            latency,
            timed_out,
            ..
        } => format!(
            "tool {name} answered in {} ms{}",
            latency.as_millis(),
            if *timed_out { " (timed out)" } else { "" }
        ),
        Event::CallerDtmf { digit } => format!("caller pressed {digit}"),
        Event::HangupRequested => "hang-up requested".to_owned(),
        Event::Fallback { from, to, reason } => format!("fell back from {from} to {to}: {reason}"),
        Event::CallEnded { reason } => format!("call ended: {reason:?}"),
        _ => return None,
    })
}
