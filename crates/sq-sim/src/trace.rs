//! The trace: every event of a run with its simulated time, hashed as it is recorded (so two
//! runs can be compared byte for byte) and kept in a bounded ring (dumped on failure).

use crate::disk::DiskCall;
use crate::network::Addr;
use serde::Serialize;
use sq_core::Time;
use std::collections::VecDeque;
use std::fmt;

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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Copy, Debug)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    /// Hashes `bytes` in.
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// Hashes a `u64` in, 8 bytes little-endian.
    pub fn u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    /// Hashes a string in: its length (8 bytes little-endian), then its UTF-8 bytes.
    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.write(s.as_bytes());
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }
}

impl TraceEvent {
    /// Hashes the event's canonical encoding into `h`: every integer as 8 bytes little-endian,
    /// every string length-prefixed, each variant and optional field behind a tag byte. It is
    /// written out here rather than taken from Rust's derived `Hash`, whose bytes may differ
    /// between builds and platforms, so a hash compares across them.
    pub fn encode(&self, h: &mut Fnv64) {
        let addr = |h: &mut Fnv64, a: &Addr| match a {
            Addr::Node(n) => {
                h.write(b"n");
                h.u64(u64::from(*n));
            }
            Addr::Client(c) => {
                h.write(b"c");
                h.u64(u64::from(*c));
            }
        };
        h.u64(self.seq);
        h.u64(self.time);
        match &self.what {
            What::Send {
                from,
                to,
                msg,
                copies,
            } => {
                h.write(&[0]);
                addr(h, from);
                addr(h, to);
                h.str(&msg.0);
                h.u64(u64::from(*copies));
            }
            What::Deliver { from, to, msg } => {
                h.write(&[1]);
                addr(h, from);
                addr(h, to);
                h.str(&msg.0);
            }
            What::Drop { to, why } => {
                h.write(&[2]);
                addr(h, to);
                h.str(why);
            }
            What::Disk { node, call } => {
                h.write(&[3]);
                h.u64(u64::from(*node));
                h.str(call.op);
                h.str(&call.file);
                h.u64(call.at);
                h.u64(call.len);
                match call.error {
                    Some(e) => {
                        h.write(&[1]);
                        h.str(e);
                    }
                    None => h.write(&[0]),
                }
            }
            What::Timer { at, name } => {
                h.write(&[4]);
                addr(h, at);
                h.str(name);
            }
            What::History { line } => {
                h.write(&[5]);
                h.str(line);
            }
            What::Fault { what } => {
                h.write(&[6]);
                h.str(what);
            }
            What::Transition { index, text } => {
                h.write(&[7]);
                h.u64(*index as u64);
                h.str(text);
            }
            What::Store { node, call } => {
                h.write(&[8]);
                h.u64(u64::from(*node));
                h.str(call);
            }
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
            hasher: Fnv64::default(),
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
        event.encode(&mut self.hasher);
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
