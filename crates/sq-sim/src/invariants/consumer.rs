//! What a consumer sees: its fetches run on from where the last one ended (invariant 2), and a
//! batch is reported corrupt only where a fault was injected (invariant 3).

use sq_core::{ClientId, PartitionId};
use sq_model::{Invariant, Violation};
use std::collections::BTreeSet;

/// A consumer's fetch from `offset` follows on from `expected`, where its last fetch ended.
pub fn check_next_fetch(
    client: ClientId,
    partition: PartitionId,
    expected: u64,
    offset: u64,
) -> Result<(), Violation> {
    if offset == expected {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::Contiguous,
        format!("{client} fetching {partition}"),
        format!("the next fetch starts at offset {expected}, where the last ended"),
        format!("it starts at offset {offset}"),
    ))
}

/// A node reported `offset..next` of `partition` corrupt: allowed only if an injected fault hit
/// every one of those offsets on every copy (`excused`).
pub fn check_corrupt_excused(
    partition: u32,
    offset: u64,
    next: u64,
    excused: Option<&BTreeSet<u64>>,
) -> Result<(), Violation> {
    if excused.is_some_and(|e| (offset..next).all(|o| e.contains(&o))) {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::CrcIntegrity,
        format!("partition {partition} offsets {offset}..{next}"),
        "readable records: no fault was injected into them",
        "the node reports them corrupt",
    ))
}

/// A group member's fetch from `offset` starts at `expected`: the group's committed offset it
/// was told after joining, or where its last fetch ended. Starting anywhere else skips records
/// (or, behind, re-reads what no rejoin asked it to).
pub fn check_member_resumes(
    client: ClientId,
    partition: PartitionId,
    expected: u64,
    offset: u64,
) -> Result<(), Violation> {
    if offset == expected {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::GroupNoSkip,
        format!("{client}'s fetch of {partition}"),
        format!("from {expected}: where the group's committed offset or its last fetch left it"),
        format!("from {offset}"),
    ))
}
