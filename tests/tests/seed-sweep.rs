//! A seed sweep through the `call_lifecycle` fuzz body: deterministic pseudo-random byte strings
//! from seeds `0..N` decode to whole calls with faults (garbage on both legs, sockets dropping,
//! HTTP failures, late and repeated tool results, hang-ups, clock jumps), each checked after
//! every input.
//!
//! - `BARBARA_SWEEP_CASES=N` sweeps `N` seeds (default 1000; `scripts/sweep` runs 10,000).
//! - `BARBARA_SWEEP_SEED=n` replays one seed, the one a failure printed.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

const DEFAULT_CASES: u64 = 1_000;

/// The bytes of one case: 16 to 1,039 of them, from splitmix64 seeded with `seed`.
fn case_bytes(seed: u64) -> Vec<u8> {
    let mut state = seed ^ 0xB4_7B_A7_A0;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let len = 16 + (next() % 1_024) as usize;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&next().to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

fn run(seed: u64) {
    let bytes = case_bytes(seed);
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| {
        barbara_core::fuzz::call_lifecycle(std::time::Instant::now(), &bytes)
    })) {
        eprintln!(
            "seed-sweep: seed {seed} failed; replay it with BARBARA_SWEEP_SEED={seed} \
             cargo test -p barbara-tests --test seed-sweep"
        );
        resume_unwind(panic);
    }
}

#[test]
fn random_call_lifecycles_keep_the_invariants() {
    if let Some(seed) = env_u64("BARBARA_SWEEP_SEED") {
        run(seed);
        return;
    }
    let cases = env_u64("BARBARA_SWEEP_CASES").unwrap_or(DEFAULT_CASES);
    for seed in 0..cases {
        run(seed);
    }
}

#[test]
fn case_bytes_are_deterministic() {
    assert_eq!(case_bytes(7), case_bytes(7));
    assert_ne!(case_bytes(7), case_bytes(8));
    assert!((16..1_040).contains(&case_bytes(3).len()));
}
