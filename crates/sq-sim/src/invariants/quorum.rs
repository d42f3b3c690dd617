//! The cluster's rules about what may leave a node, and when: a granted vote only once it is
//! durable, an acknowledgement of entries only once they are durable, no ack from a node cut off
//! from every majority for what was produced after it was cut off, and no term inflation by a
//! node cut off (PreVote). Each is a pure function of what the harness observed, so that a
//! doctored case shows it fires.

use sq_core::Time;
use sq_model::{Invariant, Violation};
use sq_storage::Meta;

/// Node `n` grants `to` its vote in `term`; `durable` is the latest copy of its metadata in
/// its disk's durable bytes.
pub fn check_vote_durable(
    n: u32,
    to: u32,
    term: u64,
    durable: Option<Meta>,
) -> Result<(), Violation> {
    if durable.is_some_and(|m| m.term == term && m.voted_for == u64::from(to) + 1) {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::VoteDurable,
        format!("n{n}'s vote for n{to} in term {term}"),
        format!("term {term} and a vote for n{to} durable in its metadata"),
        match durable {
            Some(m) => format!(
                "durable: term {}, vote {}",
                m.term,
                m.voted_for
                    .checked_sub(1)
                    .map_or("none".into(), |c| format!("n{c}"))
            ),
            None => "no durable metadata".into(),
        },
    ))
}

/// Node `n` acknowledges entries up to `index` to `to`; `durable` says whether entry `index`
/// is durable in its WAL.
pub fn check_replica_ack(n: u32, to: u32, index: u64, durable: bool) -> Result<(), Violation> {
    if durable {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::ReplicaAckDurable,
        format!("n{n}'s acknowledgement of index {index} to n{to}"),
        format!("entry {index} durable in n{n}'s WAL"),
        "not durable (written, not yet synced, or not written)",
    ))
}

/// Node `n` acks (`producer`, `seq`), invoked at `invoked`; `isolated_since` is when the
/// partition in force cut it off from every majority, if it did. What it appended before may
/// still commit, with its acks late, so only produces invoked after count.
pub fn check_not_isolated(
    n: u32,
    producer: u64,
    seq: u64,
    invoked: Time,
    isolated_since: Option<Time>,
) -> Result<(), Violation> {
    match isolated_since {
        Some(since) if since <= invoked => Err(Violation::new(
            Invariant::AckedDurable,
            format!("p{producer} seq {seq}, invoked at {invoked}, acked by n{n}"),
            format!("no ack from n{n}: no majority has reached it since {since}"),
            "an ack",
        )),
        _ => Ok(()),
    }
}

/// Node `n`, cut off from every majority with a cap of `cap` (the cluster's highest term when it
/// was cut off, plus one), reports `term`.
pub fn check_term_cap(n: u32, cap: Option<u64>, term: u64) -> Result<(), Violation> {
    match cap {
        Some(cap) if term > cap => Err(Violation::new(
            Invariant::NoTermInflation,
            format!("n{n}, cut off from every majority"),
            format!(
                "a term of at most {cap} (the cluster's highest when it was cut off, plus one)"
            ),
            format!("term {term}"),
        )),
        _ => Ok(()),
    }
}

/// Node `n` leads at `now`, cut off from every majority since `since` (or running again since,
/// after a pause): with CheckQuorum it steps down within `bound` (one election timeout to notice,
/// one more for the check that notices, and a message on its way).
pub fn check_stranded_leader(
    n: u32,
    now: Time,
    since: Option<Time>,
    bound: u64,
) -> Result<(), Violation> {
    match since {
        Some(since) if now.nanos() > since.nanos() + bound => Err(Violation::new(
            Invariant::StrandedLeaderStepsDown,
            format!("n{n}, leading while cut off from every majority since {since}"),
            format!("a step down by {}", Time(since.nanos() + bound)),
            format!("still leading at {now}"),
        )),
        _ => Ok(()),
    }
}

/// Node `new` has just become leader of `term`, while `working` (node, its term, since when it
/// led) was, as the harness judged it, a working leader: healthy, heard by a healthy, fully
/// connected majority on a network that loses nothing, undisturbed for a while. Nodes that
/// hear a leader refuse to vote (leader stickiness), so such a leader is never deposed.
pub fn check_leader_kept(
    new: u32,
    term: u64,
    working: Option<(u32, u64, Time)>,
) -> Result<(), Violation> {
    match working {
        Some((old, t, since)) if old != new && t < term => Err(Violation::new(
            Invariant::WorkingLeaderKept,
            format!("n{old}, leader of term {t}, working since {since}"),
            "no election while it works (its majority hears it)",
            format!("n{new} elected leader of term {term}"),
        )),
        _ => Ok(()),
    }
}

/// Node `n` grants a vote (or pre-vote) to `to` at `now`, having last taken an append from
/// leader `heard` (node, term, when): within `timeout` of that it must refuse (leader
/// stickiness), or a node cut off from the leader could depose it through it.
pub fn check_vote_while_led(
    n: u32,
    to: u32,
    now: Time,
    heard: Option<(u32, u64, Time)>,
    timeout: u64,
) -> Result<(), Violation> {
    match heard {
        Some((l, t, at)) if now.nanos() < at.nanos() + timeout => Err(Violation::new(
            Invariant::WorkingLeaderKept,
            format!("n{n}'s vote for n{to}"),
            format!(
                "no vote within {} of hearing leader n{l} of term {t} (at {at})",
                Time(timeout)
            ),
            format!("a vote granted at {now}"),
        )),
        _ => Ok(()),
    }
}
