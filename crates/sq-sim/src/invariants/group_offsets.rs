//! Invariant 4 as the replicas hold it: the committed offset a fetch-offset answers is one a
//! commit entry durable on a majority of replicas carries. A commit still in flight (appended
//! by the leader, not yet on a majority) may yet be lost; an answer that shows it could be
//! contradicted by the next answer, after a failover.

use super::majority::Replica;
use sq_core::codec::EntryKind;
use sq_core::GroupOp;
use sq_model::{Invariant, Violation};

/// What may excuse a replica's image for lacking an entry.
#[derive(Clone, Copy, Debug, Default)]
pub struct Excuses {
    /// The replica whose storage the harness made lie, if any: counted as holding anything.
    pub faulty_disk: Option<u32>,
    /// Whether a stored object was ever flipped: entries that live only in the store may be
    /// missing from every image, so an answer with no entry behind it is not judged.
    pub store_flipped: bool,
}

/// Node `server` answered `client`'s fetch-offset of `group`'s `partition` with `offset`: some
/// commit entry carrying it must be durable on a majority of `replicas`.
pub fn check_offset_committed(
    replicas: &[Replica<'_>],
    excuses: Excuses,
    server: u32,
    client: u32,
    (group, partition): (u32, u32),
    offset: u64,
) -> Result<(), Violation> {
    let majority = replicas.len() / 2 + 1;
    // A replica whose storage was damaged may have lost its copy from its image, not its disk.
    let excused = |r: &Replica<'_>| {
        r.stray || r.damaged.is_some_and(|d| !d.is_empty()) || excuses.faulty_disk == Some(r.n)
    };
    let carries = |kind: EntryKind, batch: &sq_core::BatchMeta| {
        kind == EntryKind::Group
            && matches!(
                GroupOp::from_meta(batch),
                Ok(GroupOp::Commit { group: g, partition: p, offset: o, .. })
                    if g.0 == group && p.0 == partition && o == offset
            )
    };
    // Newest first: the answer is usually the last commit of the partition.
    let mut judged = Vec::new();
    let mut seen = Vec::new();
    for r in replicas {
        for (index, term, id) in r.image.entries().rev() {
            if !carries(id.kind, &id.batch) || judged.contains(&(index, term, id)) {
                continue;
            }
            judged.push((index, term, id));
            let holders: Vec<u32> = replicas
                .iter()
                .filter(|r| excused(r) || r.image.entry(index) == Some((term, id)))
                .map(|r| r.n)
                .collect();
            if holders.len() >= majority {
                return Ok(());
            }
            let held = if holders.is_empty() {
                "no replica".to_string()
            } else {
                let names: Vec<String> = holders.iter().map(|n| format!("n{n}")).collect();
                names.join(", ")
            };
            seen.push(format!("entry {index} (term {term}) durable on {held}"));
        }
    }
    if seen.is_empty()
        && (excuses.store_flipped || replicas.iter().filter(|r| excused(r)).count() >= majority)
    {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::GroupOffsets,
        format!(
            "c{client}'s fetch-offset of g{group} partition {partition}, answered by n{server}"
        ),
        format!("an offset a commit entry durable on {majority} replicas carries (committed)"),
        if seen.is_empty() {
            format!("{offset}, which no durable commit entry carries")
        } else {
            format!("{offset}, carried only by {}", seen.join("; "))
        },
    ))
}
