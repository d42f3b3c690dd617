//! `sq-sim`: run the scenarios, replay a seed or a saved script, benchmark the simulator.
//!
//! Exit codes: 0 every run kept every invariant; 1 an invariant was violated; 2 a usage error or
//! unreadable input (a bad argument, a malformed seeds or script file), with one `error: …` line
//! on stderr. Input files must be regular files of at most 16 MiB.

use clap::{CommandFactory, Parser, Subcommand};
use serde_json::{json, Map, Value};
use sq_sim::diagram::{self, Recorder};
use sq_sim::scenarios::{self, Scenario};
use sq_sim::sweep::{self, Summary};
use sq_sim::text::{self, escaped, push_escaped, ECHO};
use sq_sim::trace::{TraceEvent, TraceSink};
use sq_sim::{bench, Failure, RunReport, Sim};
use std::cell::RefCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

/// Prints a line to stdout; a closed pipe (`sq-sim … | head`) is not an error worth a panic.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Prints a line to stderr. `eprintln!` panics when stderr is closed or a broken pipe; a
/// diagnostic nobody can read is still no reason to change the exit code.
macro_rules! errln {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// The deterministic simulator of sq.
#[derive(Parser)]
#[command(name = "sq-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios over their pinned seeds (all of them by default) and print a table.
    Run {
        /// Only this scenario (S01…).
        #[arg(long)]
        scenario: Option<String>,
        /// Only this seed (needs --scenario).
        #[arg(long, requires = "scenario", value_parser = digits)]
        seed: Option<u64>,
        /// Seeds from this file (one per line; a regular file, at most 16 MiB) instead of the
        /// pinned ones (needs --scenario).
        #[arg(long, requires = "scenario", conflicts_with = "seed")]
        seeds_file: Option<std::path::PathBuf>,
        /// Print every trace event of the run (one seed only), or write them to FILE.
        #[arg(long, requires = "seed", num_args = 0..=1, value_name = "FILE")]
        trace: Option<Option<std::path::PathBuf>>,
        /// With --trace: events as JSON lines, then a `{"summary": …}` line.
        #[arg(long, requires = "trace")]
        json: bool,
        /// Write the client history to FILE as JSON lines (one seed only).
        #[arg(long, requires = "seed", value_name = "FILE")]
        history: Option<std::path::PathBuf>,
        /// Write the run's space-time diagram to FILE, one self-contained HTML page (one seed
        /// only).
        #[arg(long, requires = "seed", value_name = "FILE")]
        html: Option<std::path::PathBuf>,
    },
    /// Replay a saved transition script (as a failing model-based case writes it).
    Replay {
        /// The script file (a regular file, at most 16 MiB).
        #[arg(long)]
        script: std::path::PathBuf,
        /// The run's seed (default: the file's `# seed:` line, else 0).
        #[arg(long, value_parser = digits)]
        seed: Option<u64>,
        /// Print every trace event, or write them to FILE.
        #[arg(long, num_args = 0..=1, value_name = "FILE")]
        trace: Option<Option<std::path::PathBuf>>,
        /// With --trace: events as JSON lines, then a `{"summary": …}` line.
        #[arg(long, requires = "trace")]
        json: bool,
        /// Write the client history to FILE as JSON lines.
        #[arg(long, value_name = "FILE")]
        history: Option<std::path::PathBuf>,
        /// Write the run's space-time diagram to FILE, one self-contained HTML page.
        #[arg(long, value_name = "FILE")]
        html: Option<std::path::PathBuf>,
    },
    /// A long randomized search: each seed draws its own fault mix and a script from the model's
    /// strategy. A failing script is saved as swarm-<seed>.script for `replay`.
    Swarm {
        /// How many seeds to try (at least 1).
        #[arg(long, default_value_t = 1000, value_parser = count)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 0, value_parser = digits)]
        start: u64,
        /// Transitions per script, at most 1000000.
        #[arg(long, default_value_t = 200, value_parser = length)]
        length: usize,
        /// Seconds between progress lines on stderr when it is not a terminal (0: one after
        /// every seed); on a terminal a progress bar shows instead.
        #[arg(long, default_value_t = 5, value_parser = digits)]
        progress: u64,
        /// The cluster: 1 node, or 3 (partitions, clogs and pauses join the fault mix).
        #[arg(long, default_value_t = 1, value_parser = node_count)]
        nodes: u8,
        /// Threads running seeds (default: every core). Results do not depend on it.
        #[arg(long, value_parser = count)]
        jobs: Option<u64>,
        /// Run only slice I of N of the seeds (I from 0), e.g. `--shard 3/8`.
        #[arg(long, value_parser = shard)]
        shard: Option<(u64, u64)>,
        /// Write the JSON summary to FILE (`sq-sim merge` combines those of many shards).
        #[arg(long, value_name = "FILE")]
        summary: Option<std::path::PathBuf>,
        /// Print the JSON summary on stdout instead of the closing line and probe table.
        #[arg(long)]
        json: bool,
    },
    /// Merge the JSON summaries of swarm shards (`swarm --shard I/N --summary FILE`) into the
    /// summary of the whole range, as one run over it would have reported.
    Merge {
        /// The summary files.
        #[arg(required = true)]
        files: Vec<std::path::PathBuf>,
        /// Write the merged summary to FILE as well.
        #[arg(long, value_name = "FILE")]
        summary: Option<std::path::PathBuf>,
    },
    /// Measure the simulator: events per wall second and simulated seconds per wall second.
    Bench {
        /// Rounds of the steady produce/fetch workload.
        #[arg(long, default_value_t = 20_000, value_parser = digits_u32)]
        rounds: u32,
        /// Requests per client in the ping-pong workload.
        #[arg(long, default_value_t = 20_000, value_parser = digits)]
        requests: u64,
        /// Also run the steady workload at 1/10, 1 and 10 times --rounds, to show that events/s
        /// stays flat as a run grows (the checks follow what changed, not the whole log).
        #[arg(long)]
        long: bool,
    },
    /// Measure the cluster in simulated time over the pinned seeds: leader failover (S06),
    /// produce latency (S05), catch-up of a replica that was away (S12).
    Figures,
}

/// A cluster size the swarm runs: 1 or 3.
fn node_count(s: &str) -> Result<u8, String> {
    match digits(s)? {
        1 => Ok(1),
        3 => Ok(3),
        _ => Err("the cluster has 1 node or 3".into()),
    }
}

/// A `--shard I/N`: N at least 1, I below N.
fn shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s.split_once('/').ok_or("expected I/N, e.g. 0/4")?;
    let (i, n) = (digits(i)?, count(n)?);
    if i >= n {
        return Err(format!("the shard index must be below {n}"));
    }
    Ok((i, n))
}

/// A number as the command line takes it: ASCII digits only ([`text::digits`]).
fn digits(s: &str) -> Result<u64, String> {
    text::digits(s).ok_or_else(|| {
        if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
            format!("more than {}", u64::MAX)
        } else {
            "expected a number written in the digits 0-9 only".into()
        }
    })
}

/// [`digits`], at least 1: zero seeds would report "ok" over nothing.
fn count(s: &str) -> Result<u64, String> {
    match digits(s)? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// [`digits`], at most `u32::MAX`.
fn digits_u32(s: &str) -> Result<u32, String> {
    u32::try_from(digits(s)?).map_err(|_| format!("more than {}", u32::MAX))
}

/// The longest script `swarm` draws. A run's memory grows with its script (about 0.6 KiB per
/// transition) and its time faster than that, so a million is already far past a useful search.
const MAX_LENGTH: usize = 1_000_000;

/// A `--length`: [`digits`], from 1 to [`MAX_LENGTH`].
fn length(s: &str) -> Result<usize, String> {
    usize::try_from(digits(s)?)
        .ok()
        .filter(|n| (1..=MAX_LENGTH).contains(n))
        .ok_or_else(|| format!("must be from 1 to {MAX_LENGTH}"))
}

/// What went wrong, and with which exit code.
enum Exit {
    Violation(Box<Failure>),
    Input(String),
    /// A violation reported elsewhere (a merged summary names it): exit code 1.
    Failed,
}

/// Writes one trace event as a text or JSON line.
fn write_event(out: &mut dyn Write, e: &TraceEvent, json: bool) -> std::io::Result<()> {
    if json {
        match serde_json::to_string(e) {
            Ok(line) => writeln!(out, "{line}"),
            Err(err) => writeln!(out, "{}", json!({ "error": err.to_string() })),
        }
    } else {
        writeln!(out, "{e}")
    }
}

/// Where a run's trace, history and diagram go (`--trace [FILE]`, `--json`, `--history FILE`,
/// `--html FILE`).
struct Outputs {
    trace: Option<Option<PathBuf>>,
    json: bool,
    history: Option<PathBuf>,
    html: Option<PathBuf>,
}

type Writer = std::io::BufWriter<std::fs::File>;

/// A trace file shared by the sink and the code that ends it, with its first write error.
type SharedWriter = Rc<RefCell<(Writer, Option<std::io::Error>)>>;

/// Opens `path` for writing: before the run, so a bad path costs no run.
fn create(path: &Path) -> Result<Writer, Exit> {
    std::fs::File::create(path)
        .map(std::io::BufWriter::new)
        .map_err(|e| Exit::Input(format!("cannot write {}: {e}", shown(path))))
}

/// The outputs of one run, opened: the trace sink to give the simulation, and what is written
/// once it ends.
struct Opened {
    sink: Option<TraceSink>,
    /// The trace file, shared with the sink; its first write error.
    trace_file: Option<(PathBuf, SharedWriter)>,
    json: bool,
    recorder: Option<Recorder>,
    history: Option<(PathBuf, Writer)>,
    html: Option<(PathBuf, Writer)>,
}

impl Outputs {
    fn open(self) -> Result<Opened, Exit> {
        let json = self.json;
        let mut sinks: Vec<TraceSink> = Vec::new();
        let mut trace_file = None;
        match self.trace {
            None => {}
            Some(None) => sinks.push(Box::new(move |e: &TraceEvent| {
                let _ = write_event(&mut std::io::stdout().lock(), e, json);
            })),
            Some(Some(path)) => {
                let file = Rc::new(RefCell::new((create(&path)?, None)));
                let shared = Rc::clone(&file);
                sinks.push(Box::new(move |e: &TraceEvent| {
                    let mut f = shared.borrow_mut();
                    if f.1.is_none() {
                        if let Err(err) = write_event(&mut f.0, e, json) {
                            f.1 = Some(err);
                        }
                    }
                }));
                trace_file = Some((path, file));
            }
        }
        let recorder = self.html.as_ref().map(|_| Recorder::default());
        if let Some(r) = &recorder {
            sinks.push(r.sink());
        }
        let history = match self.history {
            Some(path) => Some((path.clone(), create(&path)?)),
            None => None,
        };
        let html = match self.html {
            Some(path) => Some((path.clone(), create(&path)?)),
            None => None,
        };
        let sink: Option<TraceSink> = match sinks.len() {
            0 => None,
            1 => sinks.pop(),
            _ => Some(Box::new(move |e: &TraceEvent| {
                sinks.iter_mut().for_each(|s| s(e))
            })),
        };
        Ok(Opened {
            sink,
            trace_file,
            json,
            recorder,
            history,
            html,
        })
    }
}

impl Opened {
    /// Whether the trace goes to stdout as JSON: then stdout holds JSON lines only.
    fn json_stdout(&self) -> bool {
        self.json && self.trace_file.is_none()
    }

    /// Writes what is written once the run ended: the summary line after a trace file's
    /// events, the history, the diagram. `summary` is the `{"summary": …}` line.
    fn finish(
        self,
        sim: &Sim,
        result: &Result<RunReport, Box<Failure>>,
        title: String,
        summary: &Value,
    ) -> Result<(), Exit> {
        let cannot = |path: &Path, e: std::io::Error| {
            Exit::Input(format!("cannot write {}: {e}", shown(path)))
        };
        if let Some((path, file)) = self.trace_file {
            // The sink still holds the other reference: take the writer out through the cell.
            let mut f = file.borrow_mut();
            if let Some(e) = f.1.take() {
                return Err(cannot(&path, e));
            }
            if self.json {
                writeln!(f.0, "{summary}").map_err(|e| cannot(&path, e))?;
            }
            f.0.flush().map_err(|e| cannot(&path, e))?;
        }
        if let Some((path, mut w)) = self.history {
            sq_sim::export::write_history(sim.history(), &mut w).map_err(|e| cannot(&path, e))?;
        }
        if let (Some((path, mut w)), Some(recorder)) = (self.html, self.recorder) {
            let events = recorder.events();
            let shape = sim.config().shape;
            let run = diagram::Run {
                title,
                nodes: u32::from(shape.nodes),
                clients: sim.clients(),
                events: &events,
                history: sim.history(),
                failure: result.as_ref().err().map(|f| &**f),
                end: sim.now().nanos(),
            };
            w.write_all(diagram::html(&run).as_bytes())
                .and_then(|()| w.flush())
                .map_err(|e| cannot(&path, e))?;
        }
        Ok(())
    }
}

/// The last line of a run in JSON mode, `{"summary": {…}}`: `run`'s fields (which run; an
/// object) and its outcome. Simulated quantities only: wall time would make two runs of one seed
/// print different bytes.
fn summary(run: Value, result: &Result<RunReport, Box<Failure>>) -> Value {
    let mut fields = match run {
        Value::Object(fields) => fields,
        _ => Map::new(),
    };
    match result {
        Ok(r) => {
            fields.insert("verdict".into(), json!("ok"));
            fields.insert("events".into(), json!(r.events));
            fields.insert("sim_time_ns".into(), json!(r.sim_time.nanos()));
            fields.insert("trace_hash".into(), json!(format!("{:016x}", r.trace_hash)));
            fields.insert("probes".into(), json!(sweep::probe_map(&r.probes)));
        }
        Err(f) => {
            fields.insert("verdict".into(), json!("violation"));
            fields.insert("invariant".into(), json!(f.violation.invariant.to_string()));
            fields.insert("event".into(), json!(f.event));
            fields.insert("sim_time_ns".into(), json!(f.time.nanos()));
        }
    }
    json!({ "summary": fields })
}

/// The longest error line, in characters.
const MAX_LINE: usize = 400;

/// Makes `msg` one line fit to print: unsafe characters escaped, every quoted piece (between
/// backticks, as the parsers quote input, or single quotes, as clap does) cut to [`ECHO`]
/// characters as printed, and the whole line to [`MAX_LINE`]. Cuts end in `…`.
fn one_line(msg: &str) -> String {
    let chars: Vec<char> = msg.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let close = (c == '`' || c == '\'')
            .then(|| chars[i + 1..].iter().position(|&d| d == c))
            .flatten();
        match close {
            Some(len) => {
                out.push(c);
                push_escaped(&mut out, &chars[i + 1..i + 1 + len], ECHO);
                out.push(c);
                i += len + 2;
            }
            None => {
                push_escaped(&mut out, &[c], usize::MAX);
                i += 1;
            }
        }
    }
    let chars: Vec<char> = out.chars().collect();
    let mut line = String::new();
    push_escaped(&mut line, &chars, MAX_LINE);
    line
}

/// A path as an error names it: escaped, and if long, `…` and its last [`ECHO`] characters.
fn shown(path: &std::path::Path) -> String {
    let pieces: Vec<String> = path.display().to_string().chars().map(escaped).collect();
    let (mut start, mut room) = (pieces.len(), ECHO);
    while let Some(len) = start.checked_sub(1).map(|i| pieces[i].chars().count()) {
        if len > room {
            break;
        }
        room -= len;
        start -= 1;
    }
    let cut = if start > 0 { "…" } else { "" };
    std::iter::once(cut)
        .chain(pieces[start..].iter().map(String::as_str))
        .collect()
}

/// The largest seeds or script file `read` takes.
const MAX_INPUT: u64 = 16 << 20;

/// Reads a seeds or script file: a regular file of at most [`MAX_INPUT`] bytes of UTF-8. Anything
/// else is refused before it is opened: a FIFO would block the open, and a device such as
/// `/dev/zero` would never end.
fn read(path: &std::path::Path) -> Result<String, Exit> {
    use std::io::Read;
    let cannot = |e: std::io::Error| Exit::Input(format!("cannot read {}: {e}", shown(path)));
    let not_regular = || Exit::Input(format!("{} is not a regular file", shown(path)));
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(not_regular());
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    // Again on what was opened, in case the path changed in between.
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(not_regular());
    }
    let mut bytes = Vec::new();
    file.take(MAX_INPUT + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(Exit::Input(format!(
            "{} is larger than {} MiB",
            shown(path),
            MAX_INPUT >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        Exit::Input(format!(
            "{} is not UTF-8 text (byte {})",
            shown(path),
            e.utf8_error().valid_up_to()
        ))
    })
}

fn verdict(r: &Result<RunReport, Box<Failure>>) -> &'static str {
    if r.is_ok() {
        "ok"
    } else {
        "VIOLATION"
    }
}

fn run(
    scenario: Option<String>,
    seed: Option<u64>,
    seeds_file: Option<std::path::PathBuf>,
    outputs: Outputs,
) -> Result<(), Exit> {
    let chosen: Vec<&Scenario> = match &scenario {
        Some(id) => vec![scenarios::find(id).ok_or_else(|| {
            let ids: Vec<_> = scenarios::all().iter().map(|s| s.id).collect();
            Exit::Input(format!("no scenario `{id}`; there are {}", ids.join(", ")))
        })?],
        None => scenarios::all(),
    };
    if let (Some(s), Some(seed)) = (chosen.first(), seed) {
        let mut opened = outputs.open()?;
        let start = Instant::now();
        let (result, sim) = s.run_kept(seed, opened.sink.take());
        let wall = start.elapsed();
        let line = summary(json!({ "scenario": s.id, "seed": seed }), &result);
        let json_stdout = opened.json_stdout();
        let wrote = opened.finish(
            &sim,
            &result,
            format!("scenario {} · seed {seed}", s.id),
            &line,
        );
        if json_stdout {
            out!("{line}");
        }
        // A violation is the news; an output that could not be written is reported after it.
        if let Err(f) = result {
            if let Err(Exit::Input(msg)) = wrote {
                errln!("error: {}", one_line(&msg));
            }
            return Err(Exit::Violation(f));
        }
        wrote?;
        if json_stdout {
            return Ok(());
        }
        return match result {
            Ok(r) => {
                out!(
                    "{} seed {seed}: ok · {} events · {} simulated · {:.3}s wall",
                    s.id,
                    r.events,
                    r.sim_time,
                    wall.as_secs_f64()
                );
                out!("trace hash: {:016x}", r.trace_hash);
                print_probes(&r.probes);
                Ok(())
            }
            Err(f) => Err(Exit::Violation(f)),
        };
    }
    // Read every seeds file first, so bad input is refused before any run.
    let mut plan = Vec::new();
    for s in chosen {
        let (name, seeds) = match &seeds_file {
            Some(path) => (shown(path), scenarios::parse_seeds(&read(path)?)),
            None => (format!("seeds/{}.seeds", s.id), s.seeds()),
        };
        let seeds = seeds.map_err(|e| Exit::Input(format!("{name}: {e}")))?;
        // A file of nothing but comments would report "ok" over no run at all.
        if seeds.is_empty() {
            return Err(Exit::Input(format!("no seeds in {name}")));
        }
        plan.push((s, seeds));
    }
    out!(
        "{:<9} {:>5} {:>9} {:>12} {:>10}  {:<16}  verdict",
        "scenario",
        "seeds",
        "events",
        "sim time",
        "wall",
        "trace hash"
    );
    let mut first_failure = None;
    let mut probes = sq_core::Probes::default();
    for (s, seeds) in plan {
        let start = Instant::now();
        let (mut events, mut sim_ns, mut hash) = (0u64, 0u64, 0xcbf2_9ce4_8422_2325u64);
        let mut failed = None;
        for &seed in &seeds {
            let r = s.run(seed, None);
            if let Ok(r) = &r {
                events += r.events;
                sim_ns += r.sim_time.nanos();
                hash = (hash ^ r.trace_hash).wrapping_mul(0x0100_0000_01b3);
                probes.add(&r.probes);
            }
            if verdict(&r) != "ok" && failed.is_none() {
                failed = r.err();
            }
        }
        out!(
            "{:<9} {:>5} {:>9} {:>11.3}s {:>9.3}s  {:016x}  {}",
            s.id,
            seeds.len(),
            events,
            sim_ns as f64 / 1e9,
            start.elapsed().as_secs_f64(),
            hash,
            if failed.is_some() { "VIOLATION" } else { "ok" }
        );
        if first_failure.is_none() {
            first_failure = failed;
        }
    }
    print_probes(&probes);
    match first_failure {
        Some(f) => Err(Exit::Violation(f)),
        None => Ok(()),
    }
}

/// Prints the probe table: how often each rare path was reached.
fn print_probes(probes: &sq_core::Probes) {
    let table = sweep::probe_table(&sweep::probe_map(probes));
    let _ = write!(std::io::stdout().lock(), "\n{table}");
}

fn replay(path: &std::path::Path, seed: Option<u64>, outputs: Outputs) -> Result<(), Exit> {
    let file = scenarios::parse_script_file(&read(path)?)
        .map_err(|e| Exit::Input(format!("{}: {e}", shown(path))))?;
    let seed = seed.or(file.seed).unwrap_or(0);
    let shape = scenarios::script_shape(file.nodes);
    let mut model = sq_model::ClusterModel::new(shape, seed);
    if file.store {
        model = model.with_store();
    }
    if let Err(i) = model.check_script(&file.transitions) {
        return Err(Exit::Input(format!(
            "{}: transition {i} (`{}`) does not fit a cluster of {} node(s), {} partitions, {} producers, {} consumers",
            shown(path),
            file.transitions[i],
            shape.nodes,
            shape.partitions,
            shape.producers,
            shape.consumers
        )));
    }
    let mut cfg =
        scenarios::script_config(&path.display().to_string(), seed, file.nodes, file.store);
    cfg.atlas = file.atlas;
    let mut opened = outputs.open()?;
    let mut sim = Sim::new(cfg);
    if let Some(sink) = opened.sink.take() {
        sim.set_trace_sink(sink);
    }
    let result = sim.run_script(&file.transitions);
    let line = summary(
        json!({
            "script": path.display().to_string(),
            "seed": seed,
            "transitions": file.transitions.len(),
        }),
        &result,
    );
    let json_stdout = opened.json_stdout();
    let title = format!("script {} · seed {seed}", path.display());
    let wrote = opened.finish(&sim, &result, title, &line);
    if json_stdout {
        out!("{line}");
    }
    let report = match result {
        Ok(report) => report,
        Err(f) => {
            if let Err(Exit::Input(msg)) = wrote {
                errln!("error: {}", one_line(&msg));
            }
            return Err(Exit::Violation(f));
        }
    };
    wrote?;
    if json_stdout {
        return Ok(());
    }
    out!(
        "{}: ok · seed {seed} · {} transitions · {} events · {} simulated",
        path.display(),
        file.transitions.len(),
        report.events,
        report.sim_time
    );
    out!("trace hash: {:016x}", report.trace_hash);
    print_probes(&report.probes);
    Ok(())
}

/// The arguments of `swarm`.
struct SwarmArgs {
    seeds: u64,
    start: u64,
    length: usize,
    progress: u64,
    nodes: u8,
    jobs: Option<u64>,
    shard: Option<(u64, u64)>,
    summary: Option<PathBuf>,
    json: bool,
}

/// Shows how far a swarm got: a progress bar on a terminal, else a plain line on stderr every
/// `every` (stdout keeps the one summary).
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    every: std::time::Duration,
    noted: Instant,
    begin: Instant,
    total: u64,
    done: u64,
    violations: u64,
}

impl Progress {
    fn new(total: u64, every: u64) -> Progress {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} seeds · {per_sec} · {msg} · ETA {eta}",
            );
            if let Ok(style) = style {
                bar.set_style(style);
            }
            bar.set_message("0 violations");
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            every: std::time::Duration::from_secs(every),
            noted: now,
            begin: now,
            total,
            done: 0,
            violations: 0,
        }
    }

    fn seed_done(&mut self, o: &sweep::SeedOutcome) {
        self.done += 1;
        self.violations += u64::from(o.violation.is_some());
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("{} violations", self.violations));
        } else if self.noted.elapsed() >= self.every {
            self.noted = Instant::now();
            let secs = self.begin.elapsed().as_secs_f64();
            errln!(
                "swarm: {} of {} seeds done (last {}) · {} violations · {:.1} seeds/s · {:.1}s wall",
                self.done,
                self.total,
                o.seed,
                self.violations,
                self.done as f64 / secs.max(1e-9),
                secs
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Writes `summary` to `path` as pretty JSON.
fn write_summary(path: &Path, summary: &Summary) -> Result<(), Exit> {
    let text = serde_json::to_string_pretty(summary)
        .map_err(|e| Exit::Input(format!("cannot encode the summary: {e}")))?;
    std::fs::write(path, text + "\n")
        .map_err(|e| Exit::Input(format!("cannot write {}: {e}", shown(path))))
}

/// Prints a summary: as JSON, or as the closing line and the probe table.
fn print_summary(s: &Summary, json: bool, wall: f64) {
    if json {
        match serde_json::to_string(s) {
            Ok(line) => out!("{line}"),
            Err(e) => out!("{}", json!({ "error": e.to_string() })),
        }
        return;
    }
    out!(
        "swarm: {} seeds from {} ok · {} events · {:.3}s simulated · {:.3}s wall · combined hash {}",
        s.ok,
        s.start,
        s.events,
        s.sim_time_ns as f64 / 1e9,
        wall,
        s.combined_hash
    );
    let table = sweep::probe_table(&s.probes);
    let _ = write!(std::io::stdout().lock(), "{table}");
}

fn swarm(a: SwarmArgs) -> Result<(), Exit> {
    // Exactly the seeds asked for: a range that would pass u64::MAX is refused, not cut short.
    a.seeds
        .checked_sub(1)
        .and_then(|n| a.start.checked_add(n))
        .ok_or_else(|| {
            Exit::Input(format!(
                "--start {} --seeds {} would pass the last seed, {}",
                a.start,
                a.seeds,
                u64::MAX
            ))
        })?;
    let (first, count) = match a.shard {
        Some((i, n)) => sweep::shard_range(a.start, a.seeds, i, n),
        None => (a.start, a.seeds),
    };
    let jobs = a.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        |j| usize::try_from(j).unwrap_or(usize::MAX),
    );
    let begin = Instant::now();
    let mut progress = Progress::new(count, a.progress);
    let outcomes = sweep::run_seeds(first, count, jobs, a.nodes, a.length, |o| {
        progress.seed_done(o)
    });
    progress.finish();
    let summary = Summary::of(a.nodes, a.length, first, count, &outcomes);
    if let Some(path) = &a.summary {
        write_summary(path, &summary)?;
    }
    let Some(failed) = summary.first_failure.as_ref().map(|f| f.seed) else {
        print_summary(&summary, a.json, begin.elapsed().as_secs_f64());
        return Ok(());
    };
    if a.json {
        print_summary(&summary, true, 0.0);
    }
    // Cut the script to the smallest that breaks the same invariant, and keep that.
    let (mix, cfg, script) = sweep::seed_run(failed, a.nodes, a.length);
    let config = || cfg.clone();
    let Err(f) = Sim::new(config()).run_script(&script) else {
        return Err(Exit::Input(format!(
            "seed {failed} failed in a worker thread but passes again: the run is not deterministic"
        )));
    };
    let smallest = sq_sim::ddmin::minimize(&config, &script, f.violation.invariant);
    errln!(
        "swarm: seed {failed} failed; ddmin cut its script from {} to {} transitions",
        script.len(),
        smallest.len()
    );
    let f = Sim::new(config()).run_script(&smallest).err().unwrap_or(f);
    let path = format!("swarm-{failed}.script");
    let text: String = std::iter::once(mix.script_header(failed, a.nodes))
        .chain(smallest.iter().map(|t| format!("{t}\n")))
        .collect();
    // The violation is the news: a script that cannot be saved (a read-only directory, a full
    // disk) must not turn exit 1 and its diagnostic into exit 2.
    if let Err(e) = std::fs::write(&path, text) {
        errln!("warning: cannot save the failing script as {path}: {e}");
    }
    Err(Exit::Violation(f))
}

fn merge_cmd(files: &[PathBuf], out: Option<&Path>) -> Result<(), Exit> {
    let mut parts = Vec::new();
    for path in files {
        let part: Summary = serde_json::from_str(&read(path)?)
            .map_err(|e| Exit::Input(format!("{}: not a swarm summary: {e}", shown(path))))?;
        parts.push(part);
    }
    let merged = sweep::merge(parts).map_err(|e| Exit::Input(e.to_string()))?;
    if let Some(path) = out {
        write_summary(path, &merged)?;
    }
    print_summary(&merged, false, 0.0);
    match &merged.first_failure {
        Some(f) => {
            errln!(
                "swarm: seed {} failed: {} (replay it with `sq-sim swarm --start {} --seeds 1 --nodes {} --length {}`, which saves its script)",
                f.seed,
                f.invariant,
                f.seed,
                merged.nodes,
                merged.length
            );
            Err(Exit::Failed)
        }
        None => Ok(()),
    }
}

fn bench_cmd(rounds: u32, requests: u64, long: bool) -> Result<(), Exit> {
    out!(
        "{:<34} {:>10} {:>11} {:>9} {:>13} {:>14}",
        "workload",
        "events",
        "sim time",
        "wall",
        "events/s",
        "sim s/wall s"
    );
    let row = |name: &str, c: bench::Counts, wall: f64| {
        out!(
            "{:<34} {:>10} {:>10.3}s {:>8.3}s {:>13.0} {:>14.1}",
            name,
            c.events,
            c.sim_time.as_secs_f64(),
            wall,
            c.events as f64 / wall,
            c.sim_time.as_secs_f64() / wall
        );
    };
    let start = Instant::now();
    let steady = bench::steady(rounds, 1).map_err(Exit::Violation)?;
    row(
        &format!("steady produce/fetch ({rounds} rounds)"),
        steady,
        start.elapsed().as_secs_f64(),
    );
    if long {
        for size in [rounds / 10, rounds.saturating_mul(10)] {
            let start = Instant::now();
            let counts = bench::steady(size, 1).map_err(Exit::Violation)?;
            row(
                &format!("steady produce/fetch ({size} rounds)"),
                counts,
                start.elapsed().as_secs_f64(),
            );
        }
    }
    let start = Instant::now();
    let cluster = bench::steady_cluster(rounds, 1).map_err(Exit::Violation)?;
    row(
        &format!("3 nodes, steady ({rounds} rounds)"),
        cluster,
        start.elapsed().as_secs_f64(),
    );
    let start = Instant::now();
    let tiered = bench::steady_tiered(rounds, 1).map_err(Exit::Violation)?;
    row(
        &format!("3 nodes + store ({rounds} rounds)"),
        tiered,
        start.elapsed().as_secs_f64(),
    );
    let start = Instant::now();
    let ping = bench::ping_pong(2, requests, 1);
    row(
        &format!("ping-pong (2 clients × {requests})"),
        ping,
        start.elapsed().as_secs_f64(),
    );
    Ok(())
}

fn figures_cmd() -> Result<(), Exit> {
    use sq_sim::figures::{measure, quantile};
    let f = measure().map_err(Exit::Violation)?;
    let q = |v: &[f64], x: f64| quantile(v, x).map_or("-".to_string(), |ms| format!("{ms:.1} ms"));
    out!(
        "leader failover after a leader crash (S06, {} failovers): min {} · median {} · max {}",
        f.failover_ms.len(),
        q(&f.failover_ms, 0.0),
        q(&f.failover_ms, 0.5),
        q(&f.failover_ms, 1.0)
    );
    out!(
        "produce latency (S05, {} acks): p50 {} · p99 {}",
        f.produce_ms.len(),
        q(&f.produce_ms, 0.5),
        q(&f.produce_ms, 0.99)
    );
    let entries: u64 = f.catch_ups.iter().map(|c| c.0).sum();
    let secs: f64 = f.catch_ups.iter().map(|c| c.1).sum();
    let mut rates: Vec<f64> = f
        .catch_ups
        .iter()
        .map(|&(e, s)| e as f64 / s.max(f64::MIN_POSITIVE))
        .collect();
    rates.sort_by(f64::total_cmp);
    out!(
        "catch-up (S12, {} rejoins): {entries} entries in {secs:.3} simulated s in all; per rejoin \
         min {:.0} · median {:.0} · max {:.0} entries/s",
        f.catch_ups.len(),
        quantile(&rates, 0.0).unwrap_or(0.0),
        quantile(&rates, 0.5).unwrap_or(0.0),
        quantile(&rates, 1.0).unwrap_or(0.0)
    );
    let kib = |b: u64| b as f64 / 1024.0;
    for (k, &(before, during, after, budget)) in f.outages.iter().enumerate() {
        if k == 0 {
            out!("WAL around a store outage (S08, largest WAL of any node, KiB; budget; StorageFull answers):");
        }
        out!(
            "  seed {k:>2}: before {:>6.1} · peak in the outage {:>6.1} · after the restore {:>6.1} · budget {:>6.1} · {} StorageFull",
            kib(before),
            kib(during),
            kib(after),
            kib(budget),
            f.storage_full.get(k).copied().unwrap_or(0)
        );
    }
    let mut reads: Vec<f64> = f.store_reads.iter().map(|r| r.0).collect();
    reads.sort_by(f64::total_cmp);
    let gets: u64 = f.store_reads.iter().map(|r| r.1).sum();
    let records: u64 = f.store_reads.iter().map(|r| r.2).sum();
    out!(
        "store reads while a slow consumer catches up (S11, {} seeds): {gets} GETs for {records} records; per seed min {:.0} · median {:.0} · max {:.0} GETs per simulated s",
        f.store_reads.len(),
        quantile(&reads, 0.0).unwrap_or(0.0),
        quantile(&reads, 0.5).unwrap_or(0.0),
        quantile(&reads, 1.0).unwrap_or(0.0)
    );
    Ok(())
}

/// The one `error: …` line for a command line that clap refused, not clap's whole usage block.
fn usage_error(e: &clap::Error) -> String {
    use clap::error::ErrorKind;
    match e.kind() {
        // Without a subcommand clap prints the help text, which has no `error:` line at all.
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let names: Vec<String> = Cli::command()
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .filter(|n| n != "help")
                .collect();
            format!("error: no command given; use one of {}", names.join(", "))
        }
        _ => {
            let text = e.to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("bad arguments");
            if first.starts_with("error:") {
                first.to_string()
            } else {
                format!("error: {first}")
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            errln!("{} (see sq-sim --help)", one_line(&usage_error(&e)));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Run {
            scenario,
            seed,
            seeds_file,
            trace,
            json,
            history,
            html,
        } => {
            let outputs = Outputs {
                trace,
                json,
                history,
                html,
            };
            run(scenario, seed, seeds_file, outputs)
        }
        Command::Replay {
            script,
            seed,
            trace,
            json,
            history,
            html,
        } => {
            let outputs = Outputs {
                trace,
                json,
                history,
                html,
            };
            replay(&script, seed, outputs)
        }
        Command::Swarm {
            seeds,
            start,
            length,
            progress,
            nodes,
            jobs,
            shard,
            summary,
            json,
        } => swarm(SwarmArgs {
            seeds,
            start,
            length,
            progress,
            nodes,
            jobs,
            shard,
            summary,
            json,
        }),
        Command::Merge { files, summary } => merge_cmd(&files, summary.as_deref()),
        Command::Bench {
            rounds,
            requests,
            long,
        } => bench_cmd(rounds, requests, long),
        Command::Figures => figures_cmd(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Exit::Violation(f)) => {
            errln!("{f}");
            ExitCode::from(1)
        }
        Err(Exit::Input(msg)) => {
            errln!("error: {}", one_line(&msg));
            ExitCode::from(2)
        }
        Err(Exit::Failed) => ExitCode::from(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn an_error_is_one_line_with_its_input_escaped_and_cut() {
        assert_eq!(
            one_line("no scenario `S\n01\u{1b}[2J`; there are S01"),
            "no scenario `S\\n01\\u{1b}[2J`; there are S01"
        );
        let long = "x".repeat(1000);
        assert_eq!(
            one_line(&format!("line 2: `{long}` is not a seed; '{long}'")),
            format!(
                "line 2: `{}…` is not a seed; '{}…'",
                "x".repeat(ECHO),
                "x".repeat(ECHO)
            )
        );
        // An unmatched quote leaves only the cap on the whole line.
        let line = one_line(&format!("`{long}"));
        assert_eq!(line, format!("`{}…", "x".repeat(MAX_LINE - 1)));
        assert_eq!(one_line("bidi \u{202e}txt\r\t"), "bidi \\u{202e}txt\\r\\t");
        // Escaping is idempotent: an echoed piece already escaped stays as it is.
        let once = one_line("`a\u{7}b`");
        assert_eq!(one_line(&once), once);
    }

    #[test]
    fn a_violation_summary_names_the_invariant_and_when() {
        let failure = Failure {
            violation: sq_model::Violation::new(
                sq_model::Invariant::AckedDurable,
                "partition 0 offset 0",
                "synced",
                "not synced",
            ),
            run: "scenario S04 · seed 7".into(),
            transition: Some(3),
            event: 9,
            time: sq_core::Time(205_000),
            node: Some(0),
            last_events: vec![],
            replay: String::new(),
        };
        let run = json!({ "scenario": "S04", "seed": 7 });
        assert_eq!(
            summary(run, &Err(Box::new(failure))),
            json!({ "summary": {
                "scenario": "S04",
                "seed": 7,
                "verdict": "violation",
                "invariant": "invariant 1 violated: no acked record is ever lost",
                "event": 9,
                "sim_time_ns": 205_000,
            }})
        );
    }

    #[test]
    fn a_long_path_is_shown_by_its_end() {
        let path = format!("/{}/my\n.seeds", "d".repeat(200));
        let shown = shown(std::path::Path::new(&path));
        assert_eq!(shown, format!("…{}/my\\n.seeds", "d".repeat(ECHO - 11)));
        assert_eq!(
            super::shown(std::path::Path::new("seeds/S01.seeds")),
            "seeds/S01.seeds"
        );
    }
}
