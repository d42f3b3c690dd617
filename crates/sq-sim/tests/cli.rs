//! The `sq-sim` binary as a user meets it: the same seed prints the same trace hash in two
//! separate processes, and bad input gets a one-line error with exit code 2.

use pretty_assertions::assert_eq;
use std::process::{Command, Output, Stdio};

fn sq_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sq-sim"))
        .args(args)
        .output()
        .expect("the sq-sim binary runs")
}

fn hash_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("trace hash: "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn one_seed_gives_one_trace_hash_across_processes() {
    let args = ["run", "--scenario", "S04", "--seed", "7"];
    let (a, b) = (sq_sim(&args), sq_sim(&args));
    assert_eq!(
        a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert!(hash_line(&a).len() > "trace hash: ".len());
    assert_eq!(hash_line(&a), hash_line(&b));
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let seeds = dir.join("bad.seeds");
    std::fs::write(&seeds, "12\nnot-a-seed\n").expect("write");
    let script = dir.join("bad.script");
    std::fs::write(&script, "run ms=5 seed=1\ncrash node=7 seed=0\n").expect("write");
    let seeds = seeds.display().to_string();
    let script = script.display().to_string();
    for args in [
        vec!["run", "--bogus"],
        vec!["run", "--scenario", "S99"],
        vec!["run", "--scenario", "S01", "--seeds-file", &seeds],
        vec!["replay", "--script", &script],
        vec!["replay", "--script", "/nonexistent/file.script"],
    ] {
        let out = sq_sim(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error"), "{args:?}: {stderr}");
    }
}

/// Runs sq-sim with its stderr a pipe whose reading end is already closed: every write to it
/// fails with a broken pipe.
fn sq_sim_broken_stderr(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_sq-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(writer)
        .output()
        .expect("the sq-sim binary runs")
}

#[test]
fn a_broken_stderr_does_not_change_the_exit_code() {
    // An error message that cannot be written still exits 2, not with a panic's 101.
    assert_eq!(
        sq_sim_broken_stderr(&["run", "--scenario", "S99"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        sq_sim_broken_stderr(&["run", "--bogus"]).status.code(),
        Some(2)
    );
}

/// A path as sq-sim's errors show it: if longer than 80 characters, `…` and its last 80.
fn shown(path: &str) -> String {
    let count = path.chars().count();
    match count.checked_sub(80) {
        Some(skip) if skip > 0 => format!("…{}", path.chars().skip(skip).collect::<String>()),
        _ => path.to_string(),
    }
}

/// The first line of stderr, and how many lines it has.
fn first_stderr_line(out: &Output) -> (String, usize) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default().to_string();
    (first, stderr.lines().count())
}

/// Runs `sq-sim args`, asserts it exits 2 with exactly one stderr line starting `error: `, and
/// returns its output.
fn assert_one_line_error(args: &[&str]) -> Output {
    let out = sq_sim(args);
    let (first, lines) = first_stderr_line(&out);
    assert_eq!(
        (out.status.code(), lines),
        (Some(2), 1),
        "{args:?}: {first}"
    );
    assert!(first.starts_with("error: "), "{args:?}: {first}");
    out
}

#[test]
fn no_command_is_a_one_line_error() {
    let out = sq_sim(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        first_stderr_line(&out),
        (
            "error: no command given; use one of run, replay, swarm, merge, bench, figures (see sq-sim --help)"
                .to_string(),
            1
        )
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn numbers_are_digits_only() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let seeds = dir.join("plus.seeds");
    std::fs::write(&seeds, "12\n+5\n").expect("write");
    let seeds = seeds.display().to_string();
    let script = dir.join("ok.script");
    std::fs::write(&script, "run ms=5 seed=1\n").expect("write");
    let script = script.display().to_string();
    for args in [
        vec!["run", "--scenario", "S04", "--seed", "+7"],
        vec!["run", "--scenario", "S04", "--seed", "-7"],
        vec!["run", "--scenario", "S04", "--seed", " 7"],
        vec!["run", "--scenario", "S01", "--seeds-file", &seeds],
        vec!["replay", "--script", &script, "--seed", "+1"],
        vec!["swarm", "--seeds", "+1"],
        vec!["swarm", "--start", "+1", "--seeds", "1"],
        vec!["bench", "--rounds", "+1"],
    ] {
        assert_one_line_error(&args);
    }
    let out = sq_sim(&["run", "--scenario", "S01", "--seeds-file", &seeds]);
    assert_eq!(
        first_stderr_line(&out).0,
        format!(
            "error: {}: line 2: `+5` is not a seed (an unsigned 64-bit number)",
            shown(&seeds)
        )
    );
}

#[test]
fn swarm_length_is_capped() {
    for length in ["18446744073709551615", "1000000000000", "1000001", "0"] {
        let out = sq_sim(&["swarm", "--seeds", "1", "--length", length]);
        assert_eq!(
            (out.status.code(), first_stderr_line(&out)),
            (
                Some(2),
                (
                    format!(
                        "error: invalid value '{length}' for '--length <LENGTH>': must be from 1 \
                         to 1000000 (see sq-sim --help)"
                    ),
                    1
                )
            )
        );
    }
}

/// `swarm`'s summary line: how many seeds it ran, from which.
fn swarm_summary(out: &Output) -> Option<(u64, u64)> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("swarm: "))?;
    let mut words = line.split_whitespace().skip(1);
    let ran = words.next()?.parse().ok()?;
    let start = words.nth(2)?.parse().ok()?;
    Some((ran, start))
}

#[test]
fn swarm_runs_exactly_the_seeds_asked_for() {
    let max = u64::MAX.to_string();
    let out = sq_sim(&["swarm", "--start", &max, "--seeds", "1", "--length", "3"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(swarm_summary(&out), Some((1, u64::MAX)));
    let out = sq_sim(&["swarm", "--start", "5", "--seeds", "2", "--length", "3"]);
    assert_eq!(swarm_summary(&out), Some((2, 5)));

    let before_max = (u64::MAX - 1).to_string();
    for args in [
        vec!["swarm", "--start", &max, "--seeds", "2"],
        vec!["swarm", "--start", &before_max, "--seeds", "3"],
        vec!["swarm", "--start", "2", "--seeds", &max],
        vec!["swarm", "--seeds", "0"],
    ] {
        let out = assert_one_line_error(&args);
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = sq_sim(&["swarm", "--start", &max, "--seeds", "2"]);
    assert_eq!(
        first_stderr_line(&out).0,
        format!("error: --start {max} --seeds 2 would pass the last seed, {max}")
    );
}

#[test]
fn a_seeds_file_without_seeds_is_refused() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    for (name, text) in [
        ("empty.seeds", ""),
        ("blank.seeds", "\n  \n\t\n"),
        ("comments.seeds", "# no seeds yet\n  # still none\n"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        let path = path.display().to_string();
        let out = sq_sim(&["run", "--scenario", "S01", "--seeds-file", &path]);
        assert_eq!(
            (out.status.code(), first_stderr_line(&out)),
            (Some(2), (format!("error: no seeds in {}", shown(&path)), 1))
        );
        assert!(out.stdout.is_empty(), "{name}");
    }
}

/// Runs sq-sim, killing it if it has not finished within `secs` seconds (`None` then).
fn sq_sim_within(args: &[&str], secs: u64) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sq-sim"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the sq-sim binary runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return Some(child.wait_with_output().expect("output"));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn only_regular_files_of_bounded_size_are_read() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let fifo = dir.join("input.fifo");
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", fifo.display());
    let fifo = fifo.display().to_string();
    let big = dir.join("big.seeds");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len((16 << 20) + 1)
        .expect("a sparse file just over 16 MiB");
    drop(file);
    let big = big.display().to_string();
    let dir_name = dir.display().to_string();
    let binary = dir.join("binary.seeds");
    std::fs::write(&binary, b"12\n\xff\n").expect("write");
    let binary = binary.display().to_string();
    for (args, error) in [
        (
            vec!["run", "--scenario", "S01", "--seeds-file", &binary],
            format!("error: {} is not UTF-8 text (byte 3)", shown(&binary)),
        ),
        (
            vec!["run", "--scenario", "S01", "--seeds-file", &fifo],
            format!("error: {} is not a regular file", shown(&fifo)),
        ),
        (
            vec!["replay", "--script", &fifo],
            format!("error: {} is not a regular file", shown(&fifo)),
        ),
        (
            vec!["run", "--scenario", "S01", "--seeds-file", "/dev/zero"],
            "error: /dev/zero is not a regular file".to_string(),
        ),
        (
            vec!["replay", "--script", "/dev/zero"],
            "error: /dev/zero is not a regular file".to_string(),
        ),
        (
            vec!["replay", "--script", &dir_name],
            format!("error: {} is not a regular file", shown(&dir_name)),
        ),
        (
            vec!["run", "--scenario", "S01", "--seeds-file", &big],
            format!("error: {} is larger than 16 MiB", shown(&big)),
        ),
    ] {
        let out = sq_sim_within(&args, 30).unwrap_or_else(|| panic!("{args:?} hangs"));
        assert_eq!(
            (out.status.code(), first_stderr_line(&out)),
            (Some(2), (error, 1)),
            "{args:?}"
        );
    }
}

#[test]
fn a_script_seed_line_is_read_in_any_spacing_or_refused() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("seed-line.script");
    let path_name = path.display().to_string();
    let seed_of = |out: &Output| -> Option<u64> {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .next()?
            .strip_prefix(&format!("{path_name}: ok · seed "))?;
        line.split_whitespace().next()?.parse().ok()
    };
    for text in [
        "#seed:5\nrun ms=5 seed=1\n",
        "#  seed :5\nrun ms=5 seed=1\n",
    ] {
        std::fs::write(&path, text).expect("write");
        let out = sq_sim(&["replay", "--script", &path_name]);
        assert_eq!(
            (out.status.code(), seed_of(&out)),
            (Some(0), Some(5)),
            "{text:?}"
        );
        // --seed overrides the file's.
        let out = sq_sim(&["replay", "--script", &path_name, "--seed", "9"]);
        assert_eq!(
            (out.status.code(), seed_of(&out)),
            (Some(0), Some(9)),
            "{text:?}"
        );
    }
    for (text, error) in [
        (
            "run ms=5 seed=1\n# Seed: 5\n",
            "line 2: `# Seed: 5` looks like a seed line; write it as `# seed: N`, N in the digits 0-9",
        ),
        (
            "# seed: 5\nrun ms=5 seed=1\n#seed: 6\n",
            "line 3: seed 6 contradicts seed 5 on line 1",
        ),
    ] {
        std::fs::write(&path, text).expect("write");
        let out = sq_sim(&["replay", "--script", &path_name]);
        assert_eq!(
            (out.status.code(), first_stderr_line(&out)),
            (Some(2), (format!("error: {}: {error}", shown(&path_name)), 1))
        );
    }
}

#[test]
fn errors_echo_input_escaped_and_cut_to_one_line() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let seeds = dir.join("huge-line.seeds");
    let mut text = format!("7\n\u{1b}[2J\u{7}{}\n", "9".repeat(10 << 20));
    std::fs::write(&seeds, &text).expect("write");
    let seeds = seeds.display().to_string();
    let script = dir.join("huge-line.script");
    text = format!(
        "run ms=5 seed=1\nrun ms=5 seed=1 x{}\r\u{1b}]0;title\n",
        "y".repeat(10 << 20)
    );
    std::fs::write(&script, &text).expect("write");
    let script = script.display().to_string();
    let newline_name = dir.join("two\nlines.seeds");
    std::fs::write(&newline_name, "").expect("write");
    let newline_name = newline_name.display().to_string();
    for args in [
        vec!["run", "--scenario", "S01", "--seeds-file", &seeds],
        vec!["replay", "--script", &script],
        vec!["run", "--scenario", "S01", "--seeds-file", &newline_name],
        vec!["run", "--scenario", "S\n0\u{1b}[31m1"],
        vec!["run", "--scenario", &"S".repeat(100_000)],
        vec!["run", "--scenario", "S04", "--seed", &"9".repeat(100_000)],
        vec!["run", "--scenario", "S04", "--seed", "\u{1b}[2J"],
    ] {
        let out = sq_sim(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let shown = &stderr[..stderr.len().min(300)];
        assert_eq!(out.status.code(), Some(2), "{shown}");
        assert!(stderr.starts_with("error: "), "{shown}");
        assert!(stderr.ends_with('\n'), "{shown}");
        let line = stderr.trim_end_matches('\n');
        assert!(!line.chars().any(char::is_control), "{shown}");
        assert!(line.chars().count() <= 420, "{shown}");
    }
    let out = sq_sim(&["run", "--scenario", "S01", "--seeds-file", &seeds]);
    assert_eq!(
        first_stderr_line(&out),
        (
            format!(
                "error: {}: line 2: `\\u{{1b}}[2J\\u{{7}}{}…` is not a seed (an unsigned \
                 64-bit number)",
                shown(&seeds),
                "9".repeat(66)
            ),
            1
        )
    );
    let out = sq_sim(&["run", "--scenario", "S\n0\u{1b}[31m1"]);
    assert_eq!(
        first_stderr_line(&out),
        (
            "error: no scenario `S\\n0\\u{1b}[31m1`; there are S01, S02, S03, S04, S05, S06, S07, S08, S09, S10, S11, S12"
                .to_string(),
            1
        )
    );
}

/// Every stdout line parsed as JSON: the events, then the summary's fields.
fn json_lines(out: &Output) -> (Vec<serde_json::Value>, serde_json::Value) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let last = lines.pop().expect("a summary line");
    let summary = last
        .get("summary")
        .cloned()
        .expect("the last line is the summary");
    assert!(lines.iter().all(|e| e.get("summary").is_none()));
    (lines, summary)
}

#[test]
fn json_mode_prints_only_json_and_no_wall_time() {
    let human = sq_sim(&["run", "--scenario", "S04", "--seed", "7"]);
    let hash = hash_line(&human)
        .trim_start_matches("trace hash: ")
        .to_string();
    let out = sq_sim(&[
        "run",
        "--scenario",
        "S04",
        "--seed",
        "7",
        "--trace",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (events, summary) = json_lines(&out);
    let seqs: Vec<u64> = events.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());
    let last_time = events
        .last()
        .and_then(|e| e["time"].as_u64())
        .expect("events");
    let sim_time = summary["sim_time_ns"].as_u64().expect("sim_time_ns");
    assert!(sim_time >= last_time, "{summary}");
    let probes = every_probe(&summary);
    assert_eq!(
        summary,
        serde_json::json!({
            "scenario": "S04",
            "seed": 7,
            "verdict": "ok",
            "events": events.len(),
            "sim_time_ns": sim_time,
            "trace_hash": hash,
            "probes": probes,
        })
    );
    // The same bytes from a second process: nothing in JSON mode depends on the wall clock.
    let again = sq_sim(&[
        "run",
        "--scenario",
        "S04",
        "--seed",
        "7",
        "--trace",
        "--json",
    ]);
    assert!(out.stdout == again.stdout, "two runs of one seed differ");

    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let script = dir.join("json.script");
    std::fs::write(&script, "# seed: 3\nrun ms=5 seed=1\nproduce producer=0 partition=0 records=2 seed=0\nrun ms=20 seed=2\n")
        .expect("write");
    let script = script.display().to_string();
    let out = sq_sim(&["replay", "--script", &script, "--trace", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (events, summary) = json_lines(&out);
    let sim_time = summary["sim_time_ns"].as_u64().expect("sim_time_ns");
    let hash = summary["trace_hash"]
        .as_str()
        .expect("trace_hash")
        .to_string();
    assert_eq!(hash.len(), 16);
    let probes = every_probe(&summary);
    assert_eq!(
        summary,
        serde_json::json!({
            "script": script,
            "seed": 3,
            "transitions": 3,
            "verdict": "ok",
            "events": events.len(),
            "sim_time_ns": sim_time,
            "trace_hash": hash,
            "probes": probes,
        })
    );
}

/// A summary's probe counts, checked to name every probe (and nothing else) with a count.
fn every_probe(summary: &serde_json::Value) -> serde_json::Value {
    let probes = summary["probes"].clone();
    let names: Vec<String> = probes
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(_, n)| n.is_u64())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    let mut all: Vec<String> = sq_core::Probe::ALL
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    all.sort();
    assert_eq!(names, all);
    probes
}

#[test]
fn trace_history_and_diagram_go_to_files() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("outputs");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let (trace, history, html) = (
        dir.join("s04.trace.jsonl"),
        dir.join("s04.history.jsonl"),
        dir.join("s04.html"),
    );
    let [trace_s, history_s, html_s] = [&trace, &history, &html].map(|p| p.display().to_string());
    let out = sq_sim(&[
        "run",
        "--scenario",
        "S04",
        "--seed",
        "7",
        "--trace",
        &trace_s,
        "--json",
        "--history",
        &history_s,
        "--html",
        &html_s,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Stdout is the human report when the trace goes to a file; the file ends in the summary.
    let hash = hash_line(&out)
        .trim_start_matches("trace hash: ")
        .to_string();
    let text = std::fs::read_to_string(&trace).expect("trace file");
    let last: serde_json::Value =
        serde_json::from_str(text.lines().last().unwrap_or_default()).expect("json");
    assert_eq!(last["summary"]["trace_hash"], serde_json::json!(hash));
    assert!(text.lines().count() > 100);
    // Every history line is one operation event; each completion names its operation.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&history)
        .expect("history file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let kinds: std::collections::BTreeSet<(String, String)> = lines
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or("?").to_string();
            (s("f"), s("type"))
        })
        .collect();
    for kind in [
        ("produce", "invoke"),
        ("produce", "ok"),
        ("fetch", "invoke"),
        ("fetch", "ok"),
    ] {
        assert!(
            kinds.contains(&(kind.0.to_string(), kind.1.to_string())),
            "{kind:?} not in {kinds:?}"
        );
    }
    let acked = lines
        .iter()
        .find(|l| l["f"] == "produce" && l["type"] == "ok")
        .expect("an ack");
    assert_eq!(
        acked["offsets"].as_array().map(Vec::len),
        acked["values"].as_array().map(Vec::len)
    );
    // The diagram is one page that fetches nothing.
    let page = std::fs::read_to_string(&html).expect("html file");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains(r#"<script type="application/json" id="data">"#));
    for outside in ["src=", "href=", "http://", "https://", "@import"] {
        let found = page
            .replace("http://www.w3.org/2000/svg", "")
            .contains(outside);
        assert!(!found, "the page refers to something outside: {outside}");
    }
    // A file that cannot be written is refused before the run.
    let out = sq_sim(&[
        "run",
        "--scenario",
        "S04",
        "--seed",
        "7",
        "--html",
        "/nonexistent/dir/x.html",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// `swarm --json`'s summary.
fn swarm_json(args: &[&str]) -> serde_json::Value {
    let out = sq_sim(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON summary")
}

#[test]
fn swarm_results_do_not_depend_on_jobs_and_shards_merge_to_the_whole() {
    let base = [
        "swarm", "--seeds", "9", "--start", "40", "--length", "25", "--nodes", "3",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |extra: &[&str]| {
        let args = with(extra);
        swarm_json(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let one = run(&["--jobs", "1", "--json"]);
    let three = run(&["--jobs", "3", "--json"]);
    assert_eq!(one, three);
    assert_eq!(one["ok"], 9);
    assert_eq!(one["seed_hashes"].as_array().map(Vec::len), Some(9));
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("shards");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut files = Vec::new();
    for i in 0..3 {
        let file = dir.join(format!("shard-{i}.json")).display().to_string();
        let shard = format!("{i}/3");
        let out = sq_sim(
            &with(&["--shard", &shard, "--summary", &file])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert_eq!(out.status.code(), Some(0));
        files.push(file);
    }
    let merged = dir.join("merged.json").display().to_string();
    let mut args = vec!["merge", "--summary", &merged];
    // In any order.
    args.extend(files.iter().rev().map(String::as_str));
    let out = sq_sim(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&merged).expect("merged")).expect("json");
    assert_eq!(merged, one);
    // Two shards that leave a gap do not merge.
    let out = sq_sim(&["merge", &files[0], &files[2]]);
    assert_eq!(out.status.code(), Some(2));
    assert!(first_stderr_line(&out)
        .0
        .starts_with("error: the shards do not tile one range"));
}

#[test]
fn swarm_reports_progress_on_stderr() {
    let out = sq_sim(&[
        "swarm",
        "--seeds",
        "3",
        "--start",
        "10",
        "--length",
        "3",
        "--progress",
        "0",
        "--jobs",
        "1",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(swarm_summary(&out), Some((3, 10)));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let progress: Vec<(String, String)> = stderr
        .lines()
        .map(|l| {
            let (count, rest) = l.split_once(" (last ").unwrap_or((l, ""));
            let last = rest.split(')').next().unwrap_or_default();
            (count.to_string(), last.to_string())
        })
        .collect();
    assert_eq!(
        progress,
        [
            ("swarm: 1 of 3 seeds done", "10"),
            ("swarm: 2 of 3 seeds done", "11"),
            ("swarm: 3 of 3 seeds done", "12"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // The default interval (5 s) prints nothing on a search this short; stdout is the summary
    // line and the probe table (a header and a line per probe).
    let out = sq_sim(&["swarm", "--seeds", "2", "--length", "3"]);
    assert_eq!((out.status.code(), out.stderr.len()), (Some(0), 0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2 + sq_core::Probe::ALL.len()
    );
    // A broken stderr does not stop the search.
    let out = sq_sim_broken_stderr(&["swarm", "--seeds", "2", "--length", "3", "--progress", "0"]);
    assert_eq!(
        (out.status.code(), swarm_summary(&out)),
        (Some(0), Some((2, 0)))
    );
}
