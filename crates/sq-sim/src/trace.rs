//! The trace: every event of a run with its simulated time, hashed as it is recorded (so two
//! runs can be compared byte for byte) and kept in a bounded ring (dumped on failure).

use crate::disk::DiskCall;
use crate::network::Addr;
use serde::Serialize;
use sq_core::Time;
use std::collections::VecDeque;
use std::fmt;
use std::hash::{Hash, Hasher};

/// What a message said: the one-line description the protocol type gives of itself
/// (`Display` of `sq_core::Request` and `sq_core::Reply`), so there is one description of each.
/// Shared by the send and every delivery of one message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Msg(pub std::rc::Rc<str>);

impl Serialize for Msg {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum What {
    /// A message left `from`.
    Send {
        /// Sender.
        from: Addr,
        /// Receiver.
        to: Addr,
        /// What it said.
        msg: Msg,
        /// Copies the network will deliver (0: lost; 2: duplicated).
        copies: u8,
    },
    /// A message arrived.
    Deliver {
        /// Sender.
        from: Addr,
        /// Receiver.
        to: Addr,
        /// What it said.
        msg: Msg,
    },
    /// A message was dropped on arrival (its receiver is down).
    Drop {
        /// Receiver.
        to: Addr,
        /// Why.
        why: &'static str,
    },
    /// A node called its disk.
    Disk {
        /// Whose disk.
        node: u32,
        /// The call.
        #[serde(flatten)]
        call: DiskCall,
    },
    /// A timer fired.
    Timer {
        /// Whose.
        at: Addr,
        /// Which.
        name: &'static str,
    },
    /// A client's history event.
    History {
        /// The line, as the history prints it.
        line: String,
    },
    /// A fault was injected.
    Fault {
        /// What.
        what: String,
    },
    /// A transition of the script began.
    Transition {
        /// Its index in the script.
        index: usize,
        /// Its text.
        text: String,
    },
    /// A node's call to the object store was issued or completed.
    Store {
        /// The node.
        node: u32,
        /// The call and, once complete, its outcome.
        call: String,
    },
}

/// A recorded event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct TraceEvent {
    /// Its number in the run, from 0.
    pub seq: u64,
    /// Simulated time, ns.
    pub time: u64,
    /// What happened.
    #[serde(flatten)]
    pub what: What,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={} ", Time(self.time))?;
        match &self.what {
            What::Send {
                from,
                to,
                msg,
                copies,
            } => {
                let note = match copies {
                    0 => " (lost)",
                    2 => " (duplicated)",
                    _ => "",
                };
                write!(f, "{from:<3} -> {to} {msg}{note}")
            }
            What::Deliver { from, to, msg } => write!(f, "{to:<3} <- {from} {msg}"),
            What::Drop { to, why } => write!(f, "{to:<3} dropped: {why}"),
            What::Disk { node, call: c } => {
                write!(
                    f,
                    "n{node:<2} disk {} {}@{} len={}",
                    c.op, c.file, c.at, c.len
                )?;
                match c.error {
                    Some(e) => write!(f, " -> {e}"),
                    None => Ok(()),
                }
            }
            What::Timer { at, name } => write!(f, "{at:<3} timer {name}"),
            What::History { line } => write!(f, "history {line}"),
            What::Fault { what } => write!(f, "FAULT {what}"),
            What::Store { node, call } => write!(f, "n{node:<2} store {call}"),
            What::Transition { index, text } => write!(f, "--- transition {index}: {text}"),
        }
    }
}

/// FNV-1a, 64-bit: a tiny, fixed hash function, so trace hashes do not depend on std's hasher.
struct Fnv64(u64);

impl Hasher for Fnv64 {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A sink that sees every event as it is recorded (the CLI's `--trace`).
pub type TraceSink = Box<dyn FnMut(&TraceEvent)>;

/// The run's trace.
pub struct Trace {
    ring: VecDeque<TraceEvent>,
    capacity: usize,
    hasher: Fnv64,
    count: u64,
    sink: Option<TraceSink>,
}

impl Trace {
    /// A trace that keeps the last `capacity` events.
    pub fn new(capacity: usize) -> Trace {
        Trace {
            ring: VecDeque::with_capacity(capacity.min(4096)),
            capacity,
            hasher: Fnv64(0xcbf2_9ce4_8422_2325),
            count: 0,
            sink: None,
        }
    }

    /// Sends every event to `sink` as well: at once those recorded so far (when the ring still
    /// holds them all), then each later one as it is recorded.
    pub fn set_sink(&mut self, mut sink: TraceSink) {
        if self.ring.len() as u64 == self.count {
            self.ring.iter().for_each(&mut sink);
        }
        self.sink = Some(sink);
    }

    /// Records an event at `time`.
    pub fn record(&mut self, time: Time, what: What) {
        let event = TraceEvent {
            seq: self.count,
            time: time.nanos(),
            what,
        };
        event.hash(&mut self.hasher);
        self.count += 1;
        if let Some(sink) = self.sink.as_mut() {
            sink(&event);
        }
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(event);
    }

    /// The hash of every event recorded so far, in order.
    pub fn hash(&self) -> u64 {
        self.hasher.finish()
    }

    /// How many events were recorded.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The last `n` events kept.
    pub fn last(&self, n: usize) -> impl Iterator<Item = &TraceEvent> {
        self.ring.iter().skip(self.ring.len().saturating_sub(n))
    }
}
