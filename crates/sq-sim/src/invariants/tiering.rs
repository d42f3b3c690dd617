//! Invariant 6 and the manifest's promises, checked from outside: against the simulated store's
//! own record of which PUTs it confirmed and what it holds now.

use super::image::EntryId;
use crate::store::SimStore;
use sq_model::{Invariant, Violation};
use sq_storage::tier::decode_object;
use sq_storage::ObjectDesc;

/// An object's entries as the checks compare them: (index, term, identity).
type Decoded = Vec<(u64, u64, EntryId)>;

/// Invariant 6 at a trim of node `node`: every entry it trimmed (`trimmed`: index, term,
/// identity) is at or below its commit index (`commit`), lies in an object of its snapshot's
/// `manifest` that the store confirmed, and the object's bytes decode, CRC-checked, to exactly
/// that entry (an object the harness flipped since is excused from decoding: the fault, not the
/// trim, damaged it).
///
/// A replica that installs a leader's snapshot drops its whole log when it does not match: an
/// entry it drops that the object holds otherwise was a conflicting, uncommitted one. That is
/// allowed unless `committed` (the committed log as the checks saw it) says the dropped entry
/// was the committed one.
pub fn check_trimmed(
    node: u32,
    trimmed: &[(u64, u64, EntryId)],
    manifest: &[ObjectDesc],
    commit: u64,
    store: &SimStore,
    committed: &dyn Fn(u64) -> Option<(u64, EntryId)>,
) -> Result<(), Violation> {
    let mut decoded: Option<(String, Decoded)> = None;
    for &(index, term, id) in trimmed {
        let subject = || format!("n{node} trimmed entry {index} ({id}, term {term})");
        if index > commit {
            return Err(Violation::new(
                Invariant::TrimmedInStore,
                subject(),
                format!("trimmed at or below n{node}'s commit index {commit}"),
                "trimmed past it",
            ));
        }
        let k = manifest.partition_point(|d| d.last < index);
        let Some(desc) = manifest.get(k).filter(|d| d.first <= index) else {
            return Err(Violation::new(
                Invariant::TrimmedInStore,
                subject(),
                "an object of the manifest holds it",
                format!(
                    "no object of n{node}'s manifest ({} objects) does",
                    manifest.len()
                ),
            ));
        };
        let key = desc.key();
        if store.confirmed(&key).is_none() {
            return Err(Violation::new(
                Invariant::TrimmedInStore,
                subject(),
                format!("{key} confirmed by the store"),
                if store.object(&key).is_some() {
                    "the store holds it but never confirmed its PUT"
                } else {
                    "the store never confirmed it and does not hold it"
                },
            ));
        }
        if store.is_flipped(&key) {
            continue;
        }
        if decoded.as_ref().is_none_or(|(k, _)| *k != key) {
            let Some(data) = store.object(&key) else {
                return Err(Violation::new(
                    Invariant::TrimmedInStore,
                    subject(),
                    format!("{key} in the store"),
                    "it was deleted",
                ));
            };
            let entries = decode_object(data, desc).map_err(|e| {
                Violation::new(
                    Invariant::TrimmedInStore,
                    subject(),
                    format!("{key} decodes, CRC-checked"),
                    e.to_string(),
                )
            })?;
            let ids = entries
                .iter()
                .map(|(h, _)| (h.index, h.term, EntryId::of(h)))
                .collect();
            decoded = Some((key.clone(), ids));
        }
        let found = decoded
            .as_ref()
            .and_then(|(_, ids)| ids.iter().find(|e| e.0 == index).copied());
        let conflicting = found.is_some() && committed(index) != Some((term, id));
        if found != Some((index, term, id)) && !conflicting {
            return Err(Violation::new(
                Invariant::TrimmedInStore,
                subject(),
                format!("{key} holds the same entry"),
                match found {
                    Some((_, t, other)) => format!("it holds {other} of term {t}"),
                    None => "it does not hold the index".to_string(),
                },
            ));
        }
    }
    Ok(())
}

/// A manifest entry at `index` on node `node` names `desc`'s object: the store must have
/// confirmed that PUT before the entry existed.
pub fn check_manifest_confirmed(
    node: u32,
    index: u64,
    desc: &ObjectDesc,
    store: &SimStore,
) -> Result<(), Violation> {
    let key = desc.key();
    if store.confirmed(&key).is_some() {
        return Ok(());
    }
    Err(Violation::new(
        Invariant::ManifestAfterConfirm,
        format!("n{node}'s manifest entry {index} naming {key}"),
        "the store confirmed the object's PUT before the entry was written",
        if store.object(&key).is_some() {
            "the store holds it but has not confirmed it to its uploader"
        } else {
            "the store holds no such object"
        },
    ))
}

/// The store deleted `key`: no node's durable snapshot may name it.
pub fn check_delete<'a>(
    key: &str,
    manifests: impl IntoIterator<Item = (u32, &'a [ObjectDesc])>,
) -> Result<(), Violation> {
    for (node, manifest) in manifests {
        if manifest.iter().any(|d| d.key() == key) {
            return Err(Violation::new(
                Invariant::ManifestObjectKept,
                format!("object {key}"),
                "kept while a manifest names it",
                format!("deleted, and n{node}'s snapshot manifest names it"),
            ));
        }
    }
    Ok(())
}

/// A manifest (node `node`'s snapshot's) holds each entry in one object: its objects follow
/// each other from index 1 without a gap or an overlap.
pub fn check_manifest_chain(node: u32, manifest: &[ObjectDesc]) -> Result<(), Violation> {
    let mut next = 1;
    for d in manifest {
        if d.first != next || d.last < d.first {
            return Err(Violation::new(
                Invariant::ManifestChain,
                format!("n{node}'s manifest ({} objects)", manifest.len()),
                format!("an object starting at entry {next}"),
                format!("{} holds entries {}..={}", d.key(), d.first, d.last),
            ));
        }
        next = d.last + 1;
    }
    Ok(())
}
