//! The transition vocabulary, its one-line text form, and the script parser.
//!
//! Every transition carries a small seed for the randomness it consumes (network latencies, where
//! a write tears, which bit flips), so that deleting one transition while shrinking leaves the
//! behaviour of the others alone.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// An operation or a fault, applied to the cluster.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transition {
    /// Producer `producer` sends a batch of `records` records to `partition` (if it is idle).
    Produce {
        /// Which producer client.
        producer: u8,
        /// Which partition.
        partition: u8,
        /// How many records.
        records: u8,
        /// Randomness for this transition.
        seed: u16,
    },
    /// Consumer `consumer` fetches `partition` from its position (if it is idle).
    Fetch {
        /// Which consumer client.
        consumer: u8,
        /// Which partition.
        partition: u8,
        /// Randomness for this transition.
        seed: u16,
    },
    /// Let simulated time pass.
    Run {
        /// How long, in milliseconds.
        ms: u16,
        /// Randomness for this transition.
        seed: u16,
    },
    /// The node's process dies: memory lost. The page cache survives, so its restart reads back
    /// every byte it wrote, synced or not (unsynced bytes are still not durable). With an odd
    /// seed it dies once it has a sync in flight (within 5 ms), between a write and its sync.
    Crash {
        /// Which node.
        node: u8,
        /// Randomness for this transition; odd: wait for a sync in flight.
        seed: u16,
    },
    /// The node's machine loses power: the process dies, and per file the unsynced bytes are
    /// lost, kept or torn. The node is down until restarted, as after a crash. With an odd seed
    /// it happens once the node has a sync in flight (within 5 ms).
    PowerLoss {
        /// Which node.
        node: u8,
        /// Randomness for this transition: how much of each file's unsynced tail survives.
        seed: u16,
    },
    /// Arms a crash that lands inside an operation: the node's disk dies at its `calls`-th next
    /// call (that call and later ones fail), and the process then dies (a power loss if `power`
    /// is 1). An up node is restarted by its supervisor; a down node dies in its next restart,
    /// in the middle of recovery, and is then started again.
    CrashDuring {
        /// Which node.
        node: u8,
        /// How many disk calls from now, 1..=8.
        calls: u8,
        /// 1: a power loss; 0: a process crash.
        power: u8,
        /// Randomness for this transition.
        seed: u16,
    },
    /// The node's next append lands in the wrong place: elsewhere in the file or in another
    /// segment, and the intended place reads as zeros.
    Misdirect {
        /// Which node.
        node: u8,
        /// Randomness for this transition: where the write lands.
        seed: u16,
    },
    /// The node's next disk read returns the bytes of another place of the same file, once.
    Misread {
        /// Which node.
        node: u8,
        /// Randomness for this transition: how far off the read lands.
        seed: u16,
    },
    /// A crashed node starts again and recovers from its disk.
    Restart {
        /// Which node.
        node: u8,
        /// Randomness for this transition.
        seed: u16,
    },
    /// The node's disk has no more room.
    DiskFull {
        /// Which node.
        node: u8,
        /// Randomness for this transition.
        seed: u16,
    },
    /// The node's disk has room again.
    DiskFree {
        /// Which node.
        node: u8,
        /// Randomness for this transition.
        seed: u16,
    },
    /// The node's disk fails its next write (even seed) or sync (odd seed) with an I/O error.
    DiskError {
        /// Which node.
        node: u8,
        /// Randomness for this transition; its parity picks the call that fails.
        seed: u16,
    },
    /// A latent bit flip in a synced record on the node's disk: in its payload, or (an eighth of
    /// the seeds: see [`Transition::corrupts_header`]) in its header.
    Corrupt {
        /// Which node.
        node: u8,
        /// Randomness for this transition: header or payload, which frame, which bit.
        seed: u16,
    },
    /// The network between clients and nodes loses and duplicates messages.
    Network {
        /// Percent of messages lost.
        loss: u8,
        /// Percent of messages delivered twice.
        dup: u8,
        /// Randomness for this transition.
        seed: u16,
    },
    /// The network between nodes splits as `cut` says, replacing the partition in force (so one
    /// `heal-net` undoes it). Clients keep reaching every node: a client talking to a minority
    /// node hears refusals or times out, it is not cut off.
    Partition {
        /// Which node-to-node links are cut.
        cut: Cut,
        /// Randomness for this transition.
        seed: u16,
    },
    /// The link from node `from` to node `to` turns slow: each message on it takes `ms` more,
    /// until healed. A new clog of the same link replaces the old one.
    Clog {
        /// The sending node.
        from: u8,
        /// The receiving node.
        to: u8,
        /// Extra latency per message, milliseconds.
        ms: u16,
        /// Randomness for this transition.
        seed: u16,
    },
    /// Heals the partition and every clog. Loss and duplication stay as `network` set them:
    /// they are a property of the whole network, reset by `network loss=0 dup=0`.
    HealNet {
        /// Randomness for this transition.
        seed: u16,
    },
    /// The node's process stops for `ms` (a GC pause, a stopped VM): it handles nothing, then
    /// resumes with its stale state and handles what arrived meanwhile, in order. A crash ends
    /// the pause.
    Pause {
        /// Which node.
        node: u8,
        /// How long, in milliseconds.
        ms: u16,
        /// Randomness for this transition.
        seed: u16,
    },
    /// The object store becomes unreachable: every call completing fails, until restored.
    StoreOutage {
        /// Randomness for this transition.
        seed: u16,
    },
    /// The object store is reachable again.
    StoreRestore {
        /// Randomness for this transition.
        seed: u16,
    },
    /// The object store answers `rate` per mille of calls with a server error, as many with
    /// throttling, and half as many with a timeout (0: none).
    StoreErrors {
        /// Per mille of calls, for each kind of error.
        rate: u16,
        /// Randomness for this transition.
        seed: u16,
    },
    /// The next PUT the store completes happens, but its caller sees a timeout.
    StoreLostReply {
        /// Randomness for this transition.
        seed: u16,
    },
    /// A latent bit flip in an object the store holds.
    StoreCorrupt {
        /// Randomness for this transition: which object, which bit.
        seed: u16,
    },
    /// Group consumer `member` does `action` (an operation starts only if it is idle).
    Group {
        /// Which member of the consumer group.
        member: u8,
        /// What it does.
        action: GroupAction,
        /// Randomness for this transition.
        seed: u16,
    },
}

/// What a group consumer does in a [`Transition::Group`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum GroupAction {
    /// The consumer loop's next step: join, ask for a committed offset, commit, or read,
    /// whichever it needs next.
    Poll,
    /// Joins (or rejoins) the group.
    Join,
    /// Reads its next assigned partition from its position (asking for the committed offset
    /// first if it does not know it; joining first if it is in no generation).
    Fetch,
    /// Commits how far it has read, where that is past the committed offset.
    Commit,
    /// Asks for the committed offset of its next assigned partition.
    FetchOffset,
    /// Asks for the committed offset of any partition, assigned to it or not, as a lag monitor
    /// would: a read that may race another member's commit, or reach a deposed leader.
    Peek,
    /// Commits an offset before the one it last learnt was committed (it wants to read again
    /// from earlier): the node must refuse it.
    Rewind,
    /// Leaves the group.
    Leave,
    /// The consumer's process dies and restarts at once with nothing in memory: its operation
    /// in flight is left unknown, and it rejoins at its next operation.
    Crash,
    /// The consumer's process stalls: no heartbeat until its next operation, so its session
    /// expires if the stall outlasts the session timeout.
    Stall,
}

impl GroupAction {
    /// Every action, in the order of their names.
    pub const ALL: [GroupAction; 10] = [
        GroupAction::Poll,
        GroupAction::Join,
        GroupAction::Fetch,
        GroupAction::Commit,
        GroupAction::FetchOffset,
        GroupAction::Peek,
        GroupAction::Rewind,
        GroupAction::Leave,
        GroupAction::Crash,
        GroupAction::Stall,
    ];

    /// The action's name in a script.
    pub fn name(self) -> &'static str {
        match self {
            GroupAction::Poll => "poll",
            GroupAction::Join => "join",
            GroupAction::Fetch => "fetch",
            GroupAction::Commit => "commit",
            GroupAction::FetchOffset => "fetch-offset",
            GroupAction::Peek => "peek",
            GroupAction::Rewind => "rewind",
            GroupAction::Leave => "leave",
            GroupAction::Crash => "crash",
            GroupAction::Stall => "stall",
        }
    }
}

/// Which node-to-node links a [`Transition::Partition`] cuts. Written as in a script:
/// `split node=2`, `isolate-leader`, `all-apart`, `one-way from=0 to=1`, `partial a=0 b=2`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Cut {
    /// Node `node` alone on one side, every other node on the other (the 2+1 split of three).
    Split {
        /// The node cut off.
        node: u8,
    },
    /// Like `split`, of the node that leads when the partition is applied. Only the harness can
    /// tell which that is (the model never sees who leads): see [`Cut::links`].
    IsolateLeader,
    /// No node reaches another (1+1+1).
    AllApart,
    /// `from`'s messages to `to` are lost; `to`'s messages to `from` are delivered.
    OneWay {
        /// The node whose messages are lost.
        from: u8,
        /// The node that does not hear it.
        to: u8,
    },
    /// `a` and `b` cannot reach each other either way, and both reach every other node: the
    /// case where PreVote alone does not stop the two from taking turns to disrupt the leader.
    Partial {
        /// One end.
        a: u8,
        /// The other end.
        b: u8,
    },
}

impl Cut {
    /// The directed links `(from, to)` this cut blocks among `nodes` nodes; `leader` is the node
    /// that `isolate-leader` cuts off (ignored by the other kinds).
    pub fn links(&self, nodes: u8, leader: u8) -> BTreeSet<(u8, u8)> {
        let alone = |k: u8| {
            (0..nodes)
                .filter(|&m| m != k)
                .flat_map(|m| [(k, m), (m, k)])
                .collect()
        };
        match *self {
            Cut::Split { node } => alone(node),
            Cut::IsolateLeader => alone(leader),
            Cut::AllApart => (0..nodes)
                .flat_map(|a| (0..nodes).filter(move |&b| b != a).map(move |b| (a, b)))
                .collect(),
            Cut::OneWay { from, to } => BTreeSet::from([(from, to)]),
            Cut::Partial { a, b } => BTreeSet::from([(a, b), (b, a)]),
        }
    }

    /// Whether the node ids are below `nodes` and the two ends of a link differ.
    pub fn valid(&self, nodes: u8) -> bool {
        match *self {
            Cut::Split { node } => node < nodes,
            Cut::IsolateLeader | Cut::AllApart => true,
            Cut::OneWay { from: a, to: b } | Cut::Partial { a, b } => {
                a < nodes && b < nodes && a != b
            }
        }
    }
}

impl fmt::Display for Cut {
    /// The words after `partition` in a script line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cut::Split { node } => write!(f, "split node={node}"),
            Cut::IsolateLeader => write!(f, "isolate-leader"),
            Cut::AllApart => write!(f, "all-apart"),
            Cut::OneWay { from, to } => write!(f, "one-way from={from} to={to}"),
            Cut::Partial { a, b } => write!(f, "partial a={a} b={b}"),
        }
    }
}

impl Transition {
    /// Whether this is a `corrupt` whose seed picks a frame header rather than a payload
    /// (`seed % 8 == 7`). Rarer than payload flips: with one node, a damaged header makes the
    /// next restart refuse, which ends what the rest of a run can check.
    pub fn corrupts_header(&self) -> bool {
        matches!(self, Transition::Corrupt { seed, .. } if seed % 8 == 7)
    }

    /// The transition's own seed.
    pub fn seed(&self) -> u16 {
        match *self {
            Transition::Produce { seed, .. }
            | Transition::Fetch { seed, .. }
            | Transition::Run { seed, .. }
            | Transition::Crash { seed, .. }
            | Transition::PowerLoss { seed, .. }
            | Transition::CrashDuring { seed, .. }
            | Transition::Misdirect { seed, .. }
            | Transition::Misread { seed, .. }
            | Transition::Restart { seed, .. }
            | Transition::DiskFull { seed, .. }
            | Transition::DiskFree { seed, .. }
            | Transition::DiskError { seed, .. }
            | Transition::Corrupt { seed, .. }
            | Transition::Network { seed, .. }
            | Transition::Partition { seed, .. }
            | Transition::Clog { seed, .. }
            | Transition::HealNet { seed }
            | Transition::Pause { seed, .. }
            | Transition::StoreOutage { seed }
            | Transition::StoreRestore { seed }
            | Transition::StoreErrors { seed, .. }
            | Transition::StoreLostReply { seed }
            | Transition::StoreCorrupt { seed }
            | Transition::Group { seed, .. } => seed,
        }
    }
}

impl fmt::Display for Transition {
    /// One line, the same form [`parse_script`] reads: `produce producer=0 partition=1 records=3 seed=7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Transition::Produce {
                producer,
                partition,
                records,
                seed,
            } => write!(
                f,
                "produce producer={producer} partition={partition} records={records} seed={seed}"
            ),
            Transition::Fetch {
                consumer,
                partition,
                seed,
            } => write!(
                f,
                "fetch consumer={consumer} partition={partition} seed={seed}"
            ),
            Transition::Run { ms, seed } => write!(f, "run ms={ms} seed={seed}"),
            Transition::Crash { node, seed } => write!(f, "crash node={node} seed={seed}"),
            Transition::PowerLoss { node, seed } => {
                write!(f, "power-loss node={node} seed={seed}")
            }
            Transition::CrashDuring {
                node,
                calls,
                power,
                seed,
            } => write!(
                f,
                "crash-during node={node} calls={calls} power={power} seed={seed}"
            ),
            Transition::Misdirect { node, seed } => write!(f, "misdirect node={node} seed={seed}"),
            Transition::Misread { node, seed } => write!(f, "misread node={node} seed={seed}"),
            Transition::Restart { node, seed } => write!(f, "restart node={node} seed={seed}"),
            Transition::DiskFull { node, seed } => write!(f, "disk-full node={node} seed={seed}"),
            Transition::DiskFree { node, seed } => write!(f, "disk-free node={node} seed={seed}"),
            Transition::DiskError { node, seed } => {
                write!(f, "disk-error node={node} seed={seed}")
            }
            Transition::Corrupt { node, seed } => write!(f, "corrupt node={node} seed={seed}"),
            Transition::Network { loss, dup, seed } => {
                write!(f, "network loss={loss} dup={dup} seed={seed}")
            }
            Transition::Partition { cut, seed } => write!(f, "partition {cut} seed={seed}"),
            Transition::Clog { from, to, ms, seed } => {
                write!(f, "clog from={from} to={to} ms={ms} seed={seed}")
            }
            Transition::HealNet { seed } => write!(f, "heal-net seed={seed}"),
            Transition::Pause { node, ms, seed } => {
                write!(f, "pause node={node} ms={ms} seed={seed}")
            }
            Transition::StoreOutage { seed } => write!(f, "store-outage seed={seed}"),
            Transition::StoreRestore { seed } => write!(f, "store-restore seed={seed}"),
            Transition::StoreErrors { rate, seed } => {
                write!(f, "store-errors rate={rate} seed={seed}")
            }
            Transition::StoreLostReply { seed } => write!(f, "store-lost-reply seed={seed}"),
            Transition::StoreCorrupt { seed } => write!(f, "store-corrupt seed={seed}"),
            Transition::Group {
                member,
                action,
                seed,
            } => write!(f, "group {} member={member} seed={seed}", action.name()),
        }
    }
}

impl fmt::Debug for Transition {
    /// The same compact line as `Display`, so a shrunk case reads like a scenario.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a script line could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

struct Fields<'a> {
    kind: &'a str,
    map: BTreeMap<&'a str, &'a str>,
}

impl<'a> Fields<'a> {
    fn num<T: FromStr>(&mut self, key: &str) -> Result<T, String> {
        let raw = self
            .map
            .remove(key)
            .ok_or_else(|| format!("`{}` needs `{key}=`", self.kind))?;
        raw.parse()
            .map_err(|_| format!("`{key}={raw}` is not a number in range"))
    }

    fn done(self, t: Transition) -> Result<Transition, String> {
        match self.map.keys().next() {
            Some(k) => Err(format!("`{}` has no field `{k}`", self.kind)),
            None => Ok(t),
        }
    }
}

impl FromStr for Transition {
    type Err = String;

    fn from_str(line: &str) -> Result<Transition, String> {
        let mut words = line.split_whitespace();
        let kind = words.next().ok_or("empty line")?;
        // A partition names its kind next, before the fields: `partition split node=2 seed=1`;
        // a group transition its action: `group commit member=1 seed=4`.
        let cut = match kind {
            "partition" => Some(words.next().ok_or(
                "`partition` needs a kind: split, isolate-leader, all-apart, one-way or partial",
            )?),
            "group" => Some(words.next().ok_or(
                "`group` needs an action: poll, join, fetch, commit, fetch-offset, rewind, leave, crash or stall",
            )?),
            _ => None,
        };
        let mut map = BTreeMap::new();
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("`{w}` is not key=value"))?;
            if map.insert(k, v).is_some() {
                return Err(format!("`{k}` given twice"));
            }
        }
        let mut f = Fields { kind, map };
        let seed = f.num("seed")?;
        let t = match kind {
            "produce" => Transition::Produce {
                producer: f.num("producer")?,
                partition: f.num("partition")?,
                records: f.num("records")?,
                seed,
            },
            "fetch" => Transition::Fetch {
                consumer: f.num("consumer")?,
                partition: f.num("partition")?,
                seed,
            },
            "run" => Transition::Run {
                ms: f.num("ms")?,
                seed,
            },
            "crash" => Transition::Crash {
                node: f.num("node")?,
                seed,
            },
            "power-loss" => Transition::PowerLoss {
                node: f.num("node")?,
                seed,
            },
            "crash-during" => Transition::CrashDuring {
                node: f.num("node")?,
                calls: f.num("calls")?,
                power: f.num("power")?,
                seed,
            },
            "misdirect" => Transition::Misdirect {
                node: f.num("node")?,
                seed,
            },
            "misread" => Transition::Misread {
                node: f.num("node")?,
                seed,
            },
            "restart" => Transition::Restart {
                node: f.num("node")?,
                seed,
            },
            "disk-full" => Transition::DiskFull {
                node: f.num("node")?,
                seed,
            },
            "disk-free" => Transition::DiskFree {
                node: f.num("node")?,
                seed,
            },
            "disk-error" => Transition::DiskError {
                node: f.num("node")?,
                seed,
            },
            "corrupt" => Transition::Corrupt {
                node: f.num("node")?,
                seed,
            },
            "network" => Transition::Network {
                loss: f.num("loss")?,
                dup: f.num("dup")?,
                seed,
            },
            "partition" => Transition::Partition {
                cut: match cut.unwrap_or_default() {
                    "split" => Cut::Split {
                        node: f.num("node")?,
                    },
                    "isolate-leader" => Cut::IsolateLeader,
                    "all-apart" => Cut::AllApart,
                    "one-way" => Cut::OneWay {
                        from: f.num("from")?,
                        to: f.num("to")?,
                    },
                    "partial" => Cut::Partial {
                        a: f.num("a")?,
                        b: f.num("b")?,
                    },
                    other => return Err(format!("unknown partition kind `{other}`")),
                },
                seed,
            },
            "clog" => Transition::Clog {
                from: f.num("from")?,
                to: f.num("to")?,
                ms: f.num("ms")?,
                seed,
            },
            "heal-net" => Transition::HealNet { seed },
            "pause" => Transition::Pause {
                node: f.num("node")?,
                ms: f.num("ms")?,
                seed,
            },
            "store-outage" => Transition::StoreOutage { seed },
            "store-restore" => Transition::StoreRestore { seed },
            "store-errors" => Transition::StoreErrors {
                rate: f.num("rate")?,
                seed,
            },
            "store-lost-reply" => Transition::StoreLostReply { seed },
            "store-corrupt" => Transition::StoreCorrupt { seed },
            "group" => {
                let name = cut.unwrap_or_default();
                Transition::Group {
                    member: f.num("member")?,
                    action: GroupAction::ALL
                        .into_iter()
                        .find(|a| a.name() == name)
                        .ok_or_else(|| format!("unknown group action `{name}`"))?,
                    seed,
                }
            }
            other => return Err(format!("unknown transition `{other}`")),
        };
        f.done(t)
    }
}

/// Reads a script: one transition per line; blank lines and `#` comments are skipped.
pub fn parse_script(text: &str) -> Result<Vec<Transition>, ParseError> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty())
        .map(|(line, l)| l.parse().map_err(|message| ParseError { line, message }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn display_and_parse_round_trip() {
        let ts = vec![
            Transition::Produce {
                producer: 1,
                partition: 0,
                records: 3,
                seed: 9,
            },
            Transition::Run { ms: 20, seed: 1 },
            Transition::Crash { node: 0, seed: 4 },
            Transition::PowerLoss { node: 0, seed: 5 },
            Transition::CrashDuring {
                node: 0,
                calls: 3,
                power: 1,
                seed: 6,
            },
            Transition::Misdirect { node: 0, seed: 7 },
            Transition::Misread { node: 0, seed: 9 },
            Transition::Network {
                loss: 10,
                dup: 5,
                seed: 0,
            },
        ];
        let ts: Vec<Transition> = ts
            .into_iter()
            .chain(GroupAction::ALL.iter().map(|&action| Transition::Group {
                member: 1,
                action,
                seed: 3,
            }))
            .collect();
        let text: String = ts.iter().map(|t| format!("{t}\n")).collect();
        assert_eq!(parse_script(&text), Ok(ts));
    }

    #[test]
    fn bad_lines_say_where_and_why() {
        let err = parse_script("run ms=5 seed=1\n# ok\ncrash node=x seed=1\n").unwrap_err();
        assert_eq!(
            err,
            ParseError {
                line: 3,
                message: "`node=x` is not a number in range".into()
            }
        );
        assert!(parse_script("fly seed=1").is_err());
        assert!(parse_script("run ms=5 seed=1 extra=2").is_err());
        assert!(parse_script("run ms=99999999 seed=1").is_err());
    }

    #[test]
    fn network_faults_round_trip() {
        let ts = vec![
            Transition::Partition {
                cut: Cut::Split { node: 2 },
                seed: 1,
            },
            Transition::Partition {
                cut: Cut::IsolateLeader,
                seed: 2,
            },
            Transition::Partition {
                cut: Cut::AllApart,
                seed: 3,
            },
            Transition::Partition {
                cut: Cut::OneWay { from: 0, to: 1 },
                seed: 4,
            },
            Transition::Partition {
                cut: Cut::Partial { a: 0, b: 2 },
                seed: 5,
            },
            Transition::Clog {
                from: 1,
                to: 0,
                ms: 40,
                seed: 6,
            },
            Transition::HealNet { seed: 7 },
            Transition::Pause {
                node: 1,
                ms: 120,
                seed: 8,
            },
        ];
        let text: String = ts.iter().map(|t| format!("{t}\n")).collect();
        assert_eq!(
            text,
            "partition split node=2 seed=1\n\
             partition isolate-leader seed=2\n\
             partition all-apart seed=3\n\
             partition one-way from=0 to=1 seed=4\n\
             partition partial a=0 b=2 seed=5\n\
             clog from=1 to=0 ms=40 seed=6\n\
             heal-net seed=7\n\
             pause node=1 ms=120 seed=8\n"
        );
        assert_eq!(parse_script(&text), Ok(ts.clone()));
        let seeds: Vec<u16> = ts.iter().map(Transition::seed).collect();
        assert_eq!(seeds, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn store_faults_round_trip() {
        let ts = vec![
            Transition::StoreOutage { seed: 1 },
            Transition::StoreRestore { seed: 2 },
            Transition::StoreErrors { rate: 50, seed: 3 },
            Transition::StoreLostReply { seed: 4 },
            Transition::StoreCorrupt { seed: 5 },
        ];
        let text: String = ts.iter().map(|t| format!("{t}\n")).collect();
        assert_eq!(
            text,
            "store-outage seed=1\nstore-restore seed=2\nstore-errors rate=50 seed=3\n\
             store-lost-reply seed=4\nstore-corrupt seed=5\n"
        );
        assert_eq!(parse_script(&text), Ok(ts));
    }

    #[test]
    fn bad_partitions_say_why() {
        let err = |line: &str| parse_script(line).unwrap_err().message;
        assert_eq!(
            err("partition"),
            "`partition` needs a kind: split, isolate-leader, all-apart, one-way or partial"
        );
        assert_eq!(
            err("partition diagonal seed=1"),
            "unknown partition kind `diagonal`"
        );
        assert_eq!(err("partition split seed=1"), "`partition` needs `node=`");
        assert_eq!(
            err("partition all-apart node=1 seed=1"),
            "`partition` has no field `node`"
        );
        assert_eq!(err("pause node=1 seed=1"), "`pause` needs `ms=`");
    }

    #[test]
    fn each_cut_blocks_its_links() {
        let links = |c: Cut| Vec::from_iter(c.links(3, 1));
        assert_eq!(
            links(Cut::Split { node: 2 }),
            vec![(0, 2), (1, 2), (2, 0), (2, 1)]
        );
        assert_eq!(
            links(Cut::IsolateLeader),
            vec![(0, 1), (1, 0), (1, 2), (2, 1)]
        );
        assert_eq!(
            links(Cut::AllApart),
            vec![(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
        );
        assert_eq!(links(Cut::OneWay { from: 0, to: 1 }), vec![(0, 1)]);
        assert_eq!(links(Cut::Partial { a: 0, b: 2 }), vec![(0, 2), (2, 0)]);
        assert!(!Cut::Partial { a: 1, b: 1 }.valid(3));
        assert!(Cut::Partial { a: 0, b: 2 }.valid(3));
        assert!(!Cut::OneWay { from: 0, to: 3 }.valid(3));
        assert!(!Cut::Split { node: 3 }.valid(3));
    }
}
