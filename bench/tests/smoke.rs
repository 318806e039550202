//! The benchmark binary runs end to end with tiny figures: one call per shape, a short
//! simulated call, a two-call load test. No figure is checked (they are wall-clock times).

use std::process::Command;

fn bench(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_barbara-bench"))
        .args(args)
        .output()
        .expect("the benchmark binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "barbara-bench {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn rows(table: &str) -> Vec<&str> {
    table.lines().filter(|l| l.starts_with("| ")).collect()
}

#[test]
fn core_table_has_every_row() {
    let table = bench(&[
        "--calls",
        "1",
        "--seconds",
        "8",
        "--sim-seconds",
        "8",
        "--repeat",
        "2",
    ]);
    let rows = rows(&table);
    // Setup, 4 rows per call shape (5 shapes), 5 simulation speeds; the header.
    assert_eq!(rows.len(), 1 + 1 + 20 + 5, "{table}");
    assert!(!table.contains("broken run"), "{table}");
    // Each figure says it is the best of two runs, and shows both.
    assert_eq!(
        table.matches("; best of 2, runs ").count(),
        5 + 5,
        "{table}"
    );
}

#[test]
fn load_test_runs_two_calls() {
    let table = bench(&[
        "load",
        "--calls",
        "2",
        "--seconds",
        "6",
        "--ramp-seconds",
        "1",
    ]);
    assert!(table.contains("| Calls dropped |"), "{table}");
    assert!(table.contains("| 0 of 2 (2 completed"), "{table}");
}

#[test]
fn an_unknown_figure_is_refused_with_the_list() {
    let output = Command::new(env!("CARGO_BIN_EXE_barbara-bench"))
        .args(["--only", "webrtc-pcmu-narow"])
        .output()
        .expect("the benchmark binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no figure is called \"webrtc-pcmu-narow\""),
        "{stderr}"
    );
    // The keys listed are the ones accepted: each of them runs.
    let (_, listed) = stderr.split_once("takes one of: ").expect("a list");
    assert!(listed.contains("sim-webrtc-pcmu-narrow"), "{stderr}");
    for key in listed.split_whitespace() {
        bench(&[
            "--only",
            key,
            "--calls",
            "1",
            "--seconds",
            "4",
            "--sim-seconds",
            "4",
        ]);
    }
    assert!(output.stdout.is_empty());
}
