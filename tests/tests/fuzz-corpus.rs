//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz bodies on
//! stable, so every input that ever mattered to the fuzzer keeps passing.
use std::path::Path;

fn replay(target: &str, body: fn(std::time::Instant, &[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no corpus in {}", dir.display());
    for path in paths {
        let data = std::fs::read(&path).unwrap();
        if let Err(panic) = std::panic::catch_unwind(|| body(std::time::Instant::now(), &data)) {
            eprintln!("{target}: {} fails", path.display());
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn signalwire_message_corpus_replays() {
    replay("signalwire_message", barbara_core::fuzz::signalwire_message);
}

#[test]
fn openai_event_corpus_replays() {
    replay("openai_event", barbara_core::fuzz::openai_event);
}

#[test]
fn sdp_answer_corpus_replays() {
    replay("sdp_answer", barbara_core::fuzz::sdp_answer);
}

#[test]
fn media_payload_corpus_replays() {
    replay("media_payload", barbara_core::fuzz::media_payload);
}

#[test]
fn rtp_payload_corpus_replays() {
    replay("rtp_payload", barbara_core::fuzz::rtp_payload);
}

#[test]
fn call_lifecycle_corpus_replays() {
    replay("call_lifecycle", barbara_core::fuzz::call_lifecycle);
}
