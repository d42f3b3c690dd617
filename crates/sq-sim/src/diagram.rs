//! The space-time diagram of a run: one self-contained HTML file (inline SVG, CSS and script,
//! nothing fetched) with a lane per node and per client along simulated time, messages as
//! arrows, faults as shaded spans or marks, acks and fetches marked, and the violation, if any,
//! highlighted with its diagnostic. The page zooms to a time window.
//!
//! The data is built here from the trace and the history and embedded as JSON; the page's
//! script only draws it. Faults are read from the trace's fault lines (the harness's own
//! words, see `runtime/faults.rs` and `runtime/partition.rs`).

use crate::failure::Failure;
use crate::network::Addr;
use crate::trace::{TraceEvent, TraceSink, What};
use serde_json::{json, Value};
use sq_client::{HistoryEvent, Outcome};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

/// The most trace events a diagram keeps: the last ones of the run (where a violation is).
pub const MAX_EVENTS: usize = 200_000;

/// Collects the trace events a diagram draws (messages, drops, faults, transitions), keeping
/// the last [`MAX_EVENTS`].
#[derive(Clone, Default)]
pub struct Recorder {
    events: Rc<RefCell<VecDeque<TraceEvent>>>,
}

impl Recorder {
    /// A sink that feeds this recorder.
    pub fn sink(&self) -> TraceSink {
        let events = Rc::clone(&self.events);
        Box::new(move |e: &TraceEvent| {
            let kept = matches!(
                e.what,
                What::Send { .. }
                    | What::Deliver { .. }
                    | What::Drop { .. }
                    | What::Fault { .. }
                    | What::Transition { .. }
            );
            if kept {
                let mut events = events.borrow_mut();
                if events.len() == MAX_EVENTS {
                    events.pop_front();
                }
                events.push_back(e.clone());
            }
        })
    }

    /// The events recorded, oldest first.
    pub fn events(&self) -> Vec<TraceEvent> {
        self.events.borrow().iter().cloned().collect()
    }
}

/// The lanes: nodes first, then clients, then the store.
struct Lanes {
    nodes: u32,
    clients: u32,
}

impl Lanes {
    fn of(&self, a: Addr) -> u32 {
        match a {
            Addr::Node(n) => n,
            Addr::Client(c) => self.nodes + c,
        }
    }
    fn store(&self) -> u32 {
        self.nodes + self.clients
    }
    fn names(&self) -> Vec<String> {
        (0..self.nodes)
            .map(|n| format!("n{n}"))
            .chain((0..self.clients).map(|c| format!("c{c}")))
            .chain(std::iter::once("store".to_string()))
            .collect()
    }
}

/// The node `nK` named right after `prefix` at the start of `text`.
fn node_after(text: &str, prefix: &str) -> Option<u32> {
    let rest = text.strip_prefix(prefix)?.strip_prefix('n')?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The node named last in `text`, as `… of nK` ends.
fn node_at_end(text: &str) -> Option<u32> {
    text.rsplit_once(" n")?.1.parse().ok()
}

/// Seconds as the trace prints a time (`0.123456s`), in ns.
fn parse_time(text: &str) -> Option<u64> {
    let s = text.trim().strip_suffix('s')?;
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<9}");
    Some(whole.parse::<u64>().ok()? * 1_000_000_000 + frac.get(..9)?.parse::<u64>().ok()?)
}

/// Open spans, by (lane, kind), waiting for what ends them.
#[derive(Default)]
struct Spans {
    open: BTreeMap<(i64, &'static str), (u64, String)>,
    done: Vec<Value>,
}

impl Spans {
    fn start(&mut self, lane: i64, kind: &'static str, t: u64, label: String) {
        self.open.entry((lane, kind)).or_insert((t, label));
    }
    fn end(&mut self, lane: i64, kind: &'static str, t: u64) {
        if let Some((t0, label)) = self.open.remove(&(lane, kind)) {
            self.done.push(json!([lane, t0, t, kind, label]));
        }
    }
    fn end_kind(&mut self, kind: &'static str, t: u64) {
        let lanes: Vec<i64> = self
            .open
            .keys()
            .filter(|k| k.1 == kind)
            .map(|k| k.0)
            .collect();
        for lane in lanes {
            self.end(lane, kind, t);
        }
    }
}

/// Sends still to be delivered, oldest first: the arrow's index and the copies to come.
type Arrivals = VecDeque<(usize, u8)>;

/// What the diagram shows of a run.
pub struct Run<'a> {
    /// The title: which run.
    pub title: String,
    /// Nodes in the cluster.
    pub nodes: u32,
    /// Clients (producers, consumers, group members and the harness's readers): ids
    /// `0..clients`.
    pub clients: u32,
    /// The trace events recorded.
    pub events: &'a [TraceEvent],
    /// The client history.
    pub history: &'a [HistoryEvent],
    /// The violation, if the run had one.
    pub failure: Option<&'a Failure>,
    /// Simulated time at the end of the run, ns.
    pub end: u64,
}

/// The diagram's data: lanes, messages, spans, marks and the violation.
pub fn data(run: &Run) -> Value {
    let lanes = Lanes {
        nodes: run.nodes,
        clients: run.clients,
    };
    let mut msgs: Vec<Value> = Vec::new();
    // Sends waiting for their deliveries, by (from, to, text): the index of the arrow and the
    // copies still to arrive.
    let mut pending: BTreeMap<(u32, u32, &str), Arrivals> = BTreeMap::new();
    let mut spans = Spans::default();
    let mut marks: Vec<Value> = Vec::new();
    let store = i64::from(lanes.store());
    for e in run.events {
        let t = e.time;
        match &e.what {
            What::Send {
                from,
                to,
                msg,
                copies,
            } => {
                let (f, d) = (lanes.of(*from), lanes.of(*to));
                msgs.push(json!([f, d, t, null, msg.0.as_ref(), *copies == 0]));
                if *copies > 0 {
                    pending
                        .entry((f, d, msg.0.as_ref()))
                        .or_default()
                        .push_back((msgs.len() - 1, *copies));
                }
            }
            What::Deliver { from, to, msg } => {
                let key = (lanes.of(*from), lanes.of(*to), msg.0.as_ref());
                let Some(queue) = pending.get_mut(&key) else {
                    continue;
                };
                if let Some(front) = queue.front_mut() {
                    let i = front.0;
                    front.1 -= 1;
                    if front.1 == 0 {
                        queue.pop_front();
                    }
                    if msgs[i][3].is_null() {
                        msgs[i][3] = json!(t);
                    } else {
                        // A duplicate: a second arrow.
                        let mut copy = msgs[i].clone();
                        copy[3] = json!(t);
                        msgs.push(copy);
                    }
                }
            }
            What::Drop { to, why } => {
                marks.push(json!([lanes.of(*to), t, "drop", format!("dropped: {why}")]));
            }
            What::Transition { index, text } => {
                marks.push(json!([-1, t, "transition", format!("{index}: {text}")]));
            }
            What::Fault { what } => fault(what, t, &mut spans, &mut marks, store),
            _ => {}
        }
    }
    for e in run.history {
        let lane = lanes.of(Addr::Client(e.client.0));
        let (kind, label) = match &e.outcome {
            Outcome::Invoke(_) => continue,
            Outcome::Produced { base_offset } => {
                ("ack", format!("op {} acked at {base_offset}", e.op))
            }
            Outcome::Fetched { records, .. } => (
                "fetch",
                format!("op {} fetched {} records", e.op, records.len()),
            ),
            Outcome::Group(ok) => ("group", format!("op {} {ok}", e.op)),
            Outcome::Fail(why) => ("fail", format!("op {} failed: {why}", e.op)),
            Outcome::Info(why) => ("info", format!("op {} indeterminate: {why}", e.op)),
        };
        marks.push(json!([lane, e.time.nanos(), kind, label]));
    }
    let end = run.end.max(run.failure.map_or(0, |f| f.time.nanos()));
    for ((lane, kind), (t0, label)) in std::mem::take(&mut spans.open) {
        spans.done.push(json!([lane, t0, end, kind, label]));
    }
    let start = run.events.first().map_or(0, |e| e.time);
    let violation = run.failure.map(|f| {
        json!({
            "t": f.time.nanos(),
            "lane": f.node.map(i64::from).unwrap_or(-1),
            "title": f.violation.invariant.to_string(),
            "text": f.to_string(),
        })
    });
    json!({
        "title": run.title,
        "start": start,
        "end": end,
        "lanes": lanes.names(),
        "nodes": lanes.nodes,
        "msgs": msgs,
        "spans": spans.done,
        "marks": marks,
        "violation": violation,
    })
}

/// Reads one fault line of the trace into spans and marks.
fn fault(what: &str, t: u64, spans: &mut Spans, marks: &mut Vec<Value>, store: i64) {
    let label = what.to_string();
    let node = |n: u32| i64::from(n);
    if what.starts_with("process crash") || what.starts_with("power loss") {
        if let Some(n) = node_at_end(what) {
            spans.start(node(n), "down", t, label);
        }
    } else if let Some(n) = node_after(what, "").filter(|_| what.contains(" died (")) {
        spans.start(node(n), "down", t, label);
    } else if let Some(n) = node_after(what, "restart ") {
        if what.contains(": recovered") {
            spans.end(node(n), "down", t);
        }
        marks.push(json!([node(n), t, "fault", label]));
    } else if let Some(n) = node_after(what, "pause ") {
        let until = what
            .split_once("until ")
            .and_then(|(_, u)| parse_time(u))
            .unwrap_or(t);
        spans.done.push(json!([node(n), t, until, "pause", label]));
    } else if what.starts_with("partition ") || what.starts_with("clog ") {
        let kind = if what.starts_with("clog") {
            "clog"
        } else {
            "partition"
        };
        spans.end(-1, "partition", t);
        spans.start(-1, kind, t, label);
    } else if what.starts_with("heal-net") {
        spans.end_kind("partition", t);
        spans.end_kind("clog", t);
    } else if what.starts_with("heal:") {
        if what.contains("restart every node") {
            for kind in ["partition", "clog", "network", "disk full", "store outage"] {
                spans.end_kind(kind, t);
            }
        }
        marks.push(json!([-1, t, "fault", label]));
    } else if what.starts_with("network loss") {
        spans.end(-1, "network", t);
        if what != "network loss 0% dup 0%" {
            spans.start(-1, "network", t, label);
        }
    } else if let Some(n) = node_after(what, "disk of ") {
        if what.contains(" full at ") {
            spans.start(node(n), "disk full", t, label);
        } else if what.ends_with("has room again") {
            spans.end(node(n), "disk full", t);
        } else {
            marks.push(json!([node(n), t, "fault", label]));
        }
    } else if what.starts_with("store outage") {
        spans.start(store, "store outage", t, label);
    } else if what.starts_with("store restored") {
        spans.end(store, "store outage", t);
    } else if what.starts_with("store") {
        marks.push(json!([store, t, "fault", label]));
    } else {
        let lane = node_after(what, "corrupt ")
            .or_else(|| node_after(what, ""))
            .map_or(-1, node);
        marks.push(json!([lane, t, "fault", label]));
    }
}

/// The page: [`data`] embedded in an HTML file that draws it.
pub fn html(run: &Run) -> String {
    // `</` inside a script element would end it: JSON escapes the slash there.
    let json = data(run).to_string().replace("</", "<\\/");
    let title = escape(&run.title);
    PAGE.replace("{{TITLE}}", &title).replace("{{DATA}}", &json)
}

/// `text` safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const PAGE: &str = include_str!("diagram.html");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Msg;
    use pretty_assertions::assert_eq;

    fn ev(seq: u64, time: u64, what: What) -> TraceEvent {
        TraceEvent { seq, time, what }
    }

    #[test]
    fn messages_pair_with_their_deliveries_and_faults_make_spans() {
        let msg = Msg("hello".into());
        let events = vec![
            ev(
                0,
                10,
                What::Send {
                    from: Addr::Client(0),
                    to: Addr::Node(1),
                    msg: msg.clone(),
                    copies: 1,
                },
            ),
            ev(
                1,
                20,
                What::Fault {
                    what: "process crash (page cache kept) of n1".into(),
                },
            ),
            ev(
                2,
                25,
                What::Deliver {
                    from: Addr::Client(0),
                    to: Addr::Node(1),
                    msg,
                },
            ),
            ev(
                3,
                30,
                What::Fault {
                    what: "restart n1: recovered 3 entries, cut a torn tail of 0 bytes, damaged []"
                        .into(),
                },
            ),
            ev(
                4,
                40,
                What::Fault {
                    what: "pause n0: it handles nothing until 0.000000050s".into(),
                },
            ),
        ];
        let run = Run {
            title: "t".into(),
            nodes: 2,
            clients: 1,
            events: &events,
            history: &[],
            failure: None,
            end: 60,
        };
        let d = data(&run);
        assert_eq!(d["lanes"], json!(["n0", "n1", "c0", "store"]));
        assert_eq!(d["msgs"], json!([[2, 1, 10, 25, "hello", false]]));
        assert_eq!(
            d["spans"],
            json!([
                [1, 20, 30, "down", "process crash (page cache kept) of n1"],
                [
                    0,
                    40,
                    50,
                    "pause",
                    "pause n0: it handles nothing until 0.000000050s"
                ]
            ])
        );
    }
}
