//! Replays the committed fuzz corpora through the fuzz bodies on stable.
use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        body(&std::fs::read(&path).unwrap());
        count += 1;
    }
    assert!(count > 0, "no corpus in {}", dir.display());
}

#[test]
fn signalwire_message_corpus_replays() {
    replay("signalwire_message", barbara_core::fuzz::signalwire_message);
}

#[test]
fn openai_event_corpus_replays() {
    replay("openai_event", barbara_core::fuzz::openai_event);
}
