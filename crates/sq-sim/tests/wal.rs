//! Property tests of the WAL on the simulated disk: crash recovery keeps every synced entry and
//! invents nothing, corruption never yields a wrong entry, and no bytes make recovery panic; and
//! one test per disk fault showing its effect (process crash, power loss, failed sync, a crash
//! between any two disk calls, misdirected write, misread).

use bytes::Bytes;
use pretty_assertions::assert_eq;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use sq_core::codec::{BatchMeta, EntryKind};
use sq_sim::disk::{CrashKind, IoFault, Misdirect, SimDisk};
use sq_sim::rng::SimRng;
use sq_storage::{Disk, Meta, MetaError, Wal, WalConfig, WalError};
use std::collections::BTreeSet;

#[derive(Clone, Debug)]
enum Step {
    Append(Vec<u8>),
    Sync,
    Crash(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..120).prop_map(Step::Append),
        3 => Just(Step::Sync),
        1 => any::<u64>().prop_map(Step::Crash),
    ]
}

fn meta(i: u64) -> BatchMeta {
    BatchMeta {
        partition: 0,
        base_offset: i,
        count: 1,
        producer: 1,
        epoch: 0,
        seq: i,
    }
}

/// Asks the WAL what to sync, syncs it, and reports it done, as the node does over time.
fn sync(wal: &mut Wal, disk: &mut SimDisk) -> Result<u64, sq_storage::DiskError> {
    if let Some(request) = wal.sync_request() {
        disk.sync(&request.file)?;
        wal.synced(request.upto);
    }
    Ok(wal.synced_index())
}

const CONFIG: WalConfig = WalConfig { segment_bytes: 512 };

fn open(disk: &mut SimDisk) -> Wal {
    Wal::open(disk, CONFIG)
        .expect("a WAL that only crashed recovers")
        .0
}

/// Every entry of the WAL, read back through its CRC checks.
fn read_all(wal: &mut Wal, disk: &mut SimDisk) -> Vec<Result<Bytes, WalError>> {
    (wal.first_index()..=wal.last_index())
        .map(|i| wal.read(disk, i).map(|(_, p)| p))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../proptest-regressions/wal.txt"
        )))),
        ..ProptestConfig::default()
    })]

    /// After any sequence of appends, syncs and crashes, the WAL holds every synced entry, then
    /// possibly some of the unsynced ones in order, and nothing else.
    #[test]
    fn crash_recovery_keeps_synced_and_invents_nothing(steps in proptest::collection::vec(step(), 1..60)) {
        let mut disk = SimDisk::new();
        let mut wal = open(&mut disk);
        let mut appended: Vec<Vec<u8>> = Vec::new();
        let mut synced = 0usize;
        for s in steps {
            match s {
                Step::Append(p) => {
                    let i = wal.next_index();
                    wal.append(&mut disk, 1, EntryKind::Batch, &meta(i), &p).expect("no quota");
                    appended.push(p);
                }
                Step::Sync => synced = sync(&mut wal, &mut disk).expect("sync") as usize,
                Step::Crash(seed) => {
                    disk.crash(&mut SimRng::new(seed));
                    wal = open(&mut disk);
                    let got = read_all(&mut wal, &mut disk);
                    prop_assert!(got.len() >= synced, "lost synced entries: {} < {synced}", got.len());
                    for (i, r) in got.iter().enumerate() {
                        let p = r.as_ref().expect("no corruption was injected");
                        prop_assert_eq!(&p[..], &appended[i][..], "entry {} differs", i + 1);
                    }
                    appended.truncate(got.len());
                    synced = got.len();
                }
            }
        }
    }

    /// Bit flips anywhere in synced segments: recovery either refuses with a typed error or
    /// yields a WAL whose every read is the exact entry written or a typed error.
    #[test]
    fn corruption_never_yields_a_wrong_entry(
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..80), 1..30),
        flips in proptest::collection::vec((any::<u64>(), 0u8..8), 1..4),
    ) {
        let mut disk = SimDisk::new();
        let mut wal = open(&mut disk);
        for p in &payloads {
            let i = wal.next_index();
            wal.append(&mut disk, 1, EntryKind::Batch, &meta(i), p).expect("no quota");
        }
        sync(&mut wal, &mut disk).expect("sync");
        let files: Vec<String> = disk.file_names().map(String::from).collect();
        for (at, bit) in flips {
            let file = &files[(at % files.len() as u64) as usize];
            let len = disk.durable(file).map_or(0, <[u8]>::len);
            if len > 0 {
                disk.flip_bit(file, ((at >> 8) % len as u64) as usize, bit);
            }
        }
        match Wal::open(&mut disk, CONFIG) {
            Err(e) => prop_assert!(matches!(e, WalError::Unrecoverable { .. }), "{e}"),
            Ok((mut wal, _)) => {
                for (i, r) in read_all(&mut wal, &mut disk).into_iter().enumerate() {
                    if let Ok(p) = r {
                        prop_assert_eq!(&p[..], &payloads[i][..], "entry {} is wrong", i + 1);
                    }
                }
            }
        }
    }

    /// No byte sequence in a segment file makes recovery or reading panic.
    #[test]
    fn arbitrary_segment_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut disk = SimDisk::new();
        disk.append("wal-00000000000000000001.log", &bytes).expect("no quota");
        disk.sync("wal-00000000000000000001.log").expect("sync");
        if let Ok((mut wal, _)) = Wal::open(&mut disk, CONFIG) {
            let _ = read_all(&mut wal, &mut disk);
        }
    }
}

/// A full disk rolls the append back: nothing partial stays, and appends work once space returns.
#[test]
fn no_space_rolls_back_and_recovers() {
    let mut disk = SimDisk::new();
    let mut wal = open(&mut disk);
    wal.append(&mut disk, 1, EntryKind::Batch, &meta(1), b"first")
        .expect("room");
    sync(&mut wal, &mut disk).expect("sync");
    let used = disk.used();
    disk.set_quota(Some(used + 10));
    assert_eq!(
        wal.append(&mut disk, 1, EntryKind::Batch, &meta(2), b"second"),
        Err(WalError::NoSpace)
    );
    assert_eq!(disk.used(), used, "the partial frame was rolled back");
    disk.set_quota(None);
    assert_eq!(
        wal.append(&mut disk, 1, EntryKind::Batch, &meta(2), b"second"),
        Ok(2)
    );
    sync(&mut wal, &mut disk).expect("sync");
    let mut reopened = open(&mut disk);
    let got: Vec<_> = read_all(&mut reopened, &mut disk)
        .into_iter()
        .map(|r| r.expect("intact"))
        .collect();
    assert_eq!(
        got,
        vec![Bytes::from_static(b"first"), Bytes::from_static(b"second")]
    );
}

/// A disk holding three synced entries of 20 bytes, and where entry 2 lies.
fn three_synced_entries() -> (SimDisk, sq_storage::FrameLocation) {
    let mut disk = SimDisk::new();
    let mut wal = open(&mut disk);
    for i in 1..=3u64 {
        wal.append(&mut disk, 1, EntryKind::Batch, &meta(i), &[i as u8; 20])
            .expect("room");
    }
    sync(&mut wal, &mut disk).expect("sync");
    let loc = wal.locate(2).expect("entry 2");
    (disk, loc)
}

/// A payload flip is a known hole: the entry reads as corrupt, the ones after it survive.
#[test]
fn a_damaged_entry_is_kept_in_place_and_never_served() {
    let (mut disk, loc) = three_synced_entries();
    disk.flip_bit(&loc.file, (loc.pos + loc.len - 3) as usize, 0);
    let (mut wal, report) = Wal::open(&mut disk, CONFIG).expect("recoverable");
    assert_eq!(report.damaged, vec![2]);
    assert!(matches!(
        wal.read(&mut disk, 2),
        Err(WalError::Corrupt { index: 2, .. })
    ));
    assert_eq!(
        wal.read(&mut disk, 3).expect("intact").1,
        Bytes::from(vec![3u8; 20])
    );
}

/// A header flip before later synced frames is corruption, not a torn tail: recovery refuses
/// with a typed error instead of cutting off the acked entries after it.
#[test]
fn a_damaged_header_before_valid_frames_is_refused_not_truncated() {
    let (mut disk, loc) = three_synced_entries();
    disk.flip_bit(&loc.file, loc.pos as usize + 10, 3);
    match Wal::open(&mut disk, CONFIG) {
        Err(WalError::Unrecoverable { pos, .. }) => assert_eq!(pos, loc.pos),
        other => panic!("expected Unrecoverable, got {other:?}"),
    }
}

/// Files that merely look like segments (unpadded, zero, out of range) are not the WAL's.
#[test]
fn odd_segment_names_are_ignored() {
    let mut disk = SimDisk::new();
    for name in [
        "wal-0.log",
        "wal-00000000000000000000.log",
        "wal-+1.log",
        "wal-18446744073709551615.log",
    ] {
        disk.append(name, b"not a frame").expect("no quota");
        disk.sync(name).expect("sync");
    }
    let (wal, report) = Wal::open(&mut disk, CONFIG).expect("opens");
    assert_eq!(
        (wal.first_index(), wal.last_index(), report.entries),
        (1, 0, 0)
    );
}

/// A disk whose WAL holds entry 1 synced and entry 2 written but not synced.
fn one_synced_one_not() -> SimDisk {
    let mut disk = SimDisk::new();
    let mut wal = open(&mut disk);
    wal.append(&mut disk, 1, EntryKind::Batch, &meta(1), b"synced")
        .expect("room");
    sync(&mut wal, &mut disk).expect("sync");
    wal.append(&mut disk, 1, EntryKind::Batch, &meta(2), b"unsynced")
        .expect("room");
    disk
}

fn payloads(disk: &mut SimDisk) -> Vec<Vec<u8>> {
    let mut wal = open(disk);
    read_all(&mut wal, disk)
        .into_iter()
        .map(|r| r.expect("intact").to_vec())
        .collect()
}

/// A process crash keeps the page cache: the restarted WAL reads back its unsynced entry. It is
/// still not durable until recovery syncs it; a power loss before that may drop it.
#[test]
fn a_process_crash_keeps_unsynced_bytes_readable_but_not_durable() {
    let mut disk = one_synced_one_not();
    let file = "wal-00000000000000000001.log";
    let durable_before = disk.durable(file).expect("segment").len();
    disk.process_crash();
    assert!(disk.cached(file).expect("segment").len() > durable_before);
    assert_eq!(
        disk.durable(file).expect("segment").len(),
        durable_before,
        "a process crash makes nothing durable"
    );
    // Recovery reads the cache, so both entries are back; opening syncs them.
    assert_eq!(
        payloads(&mut disk),
        vec![b"synced".to_vec(), b"unsynced".to_vec()]
    );
    assert_eq!(disk.durable(file), disk.cached(file));
}

/// A power loss after a process crash (before anything synced the cache) drops what the crash
/// had kept: over seeds, the unsynced entry is lost, kept or torn, and the synced one stays.
#[test]
fn a_power_loss_after_a_process_crash_drops_the_kept_bytes() {
    let mut outcomes = BTreeSet::new();
    for seed in 0..30 {
        let mut disk = one_synced_one_not();
        disk.process_crash();
        let lost = disk.power_loss(&mut SimRng::new(seed));
        let got = payloads(&mut disk);
        assert_eq!(got[0], b"synced".to_vec());
        assert!(got.len() <= 2);
        outcomes.insert((got.len(), lost > 0));
    }
    assert!(outcomes.contains(&(1, true)), "never lost: {outcomes:?}");
    assert!(outcomes.contains(&(2, false)), "never kept: {outcomes:?}");
}

/// A failed sync drops the dirty pages: reads no longer see them, they never become durable,
/// and the next sync succeeds for what is left only.
#[test]
fn a_failed_sync_drops_unsynced_bytes_and_a_later_sync_succeeds() {
    let file = "wal-00000000000000000001.log";
    for keep_per_mille in [0u16, 500, 1000] {
        let mut disk = one_synced_one_not();
        let synced = disk.durable(file).expect("segment").to_vec();
        let cached = disk.cached(file).expect("segment").to_vec();
        let pending = cached.len() - synced.len();
        disk.fail_next(IoFault::Sync { keep_per_mille });
        assert!(disk.sync(file).is_err(), "the injected sync fails");
        let keep = pending * usize::from(keep_per_mille) / 1000;
        assert_eq!(
            disk.cached(file).expect("segment"),
            &cached[..synced.len() + keep],
            "reads see the dropped state at once"
        );
        assert_eq!(disk.durable(file).expect("segment"), &synced[..]);
        disk.sync(file).expect("a later sync succeeds");
        assert_eq!(
            disk.durable(file).expect("segment"),
            &cached[..synced.len() + keep],
            "what was dropped never becomes durable"
        );
        // Recovery keeps entry 1 and, only if every byte survived, entry 2.
        let got = payloads(&mut disk);
        assert_eq!(got.len(), if keep == pending { 2 } else { 1 });
    }
}

/// The append that rolls to a new segment (sync the old one, create the new one) and the sync
/// after it, with the disk dying at every one of its calls, then either kind of crash; then a
/// second death at every call of the recovery that follows, and a power loss: the next recovery
/// succeeds, keeps every synced entry and invents nothing.
#[test]
fn a_crash_between_any_two_calls_of_a_roll_or_a_recovery_leaves_a_recoverable_disk() {
    const SMALL: WalConfig = WalConfig { segment_bytes: 64 };
    let mut deaths = 0;
    for kind in [CrashKind::Process, CrashKind::Power] {
        for k in 1..=4 {
            for k2 in 1..=8 {
                for seed in 0..3 {
                    let mut disk = SimDisk::new();
                    let mut wal = Wal::open(&mut disk, SMALL).expect("empty disk").0;
                    // Entry 1 fills the segment; once it is synced, entry 2 rolls to a new one.
                    wal.append(&mut disk, 1, EntryKind::Batch, &meta(1), &[1; 40])
                        .expect("room");
                    sync(&mut wal, &mut disk).expect("sync");
                    disk.crash_after(k, kind);
                    let _ = wal
                        .append(&mut disk, 1, EntryKind::Batch, &meta(2), &[2; 40])
                        .map_err(|e| e.to_string())
                        .and_then(|_| sync(&mut wal, &mut disk).map_err(|e| e.to_string()))
                        .and_then(|_| {
                            wal.append(&mut disk, 1, EntryKind::Batch, &meta(3), &[3; 40])
                                .map_err(|e| e.to_string())
                        })
                        .and_then(|_| sync(&mut wal, &mut disk).map_err(|e| e.to_string()));
                    let Some(died) = disk.take_death() else {
                        continue;
                    };
                    deaths += 1;
                    // Calls: append 2 (creating the new segment), its sync, append 3, its sync.
                    let synced_before = if k <= 2 { 1 } else { 2 };
                    let mut rng = SimRng::new(seed);
                    match died {
                        CrashKind::Power => drop(disk.power_loss(&mut rng)),
                        CrashKind::Process => disk.process_crash(),
                    }
                    // The recovery dies too, at its call k2 (if it has that many).
                    disk.crash_after(k2, CrashKind::Power);
                    let first = Wal::open(&mut disk, SMALL);
                    let mut wal = match (first, disk.take_death()) {
                        (Ok((wal, _)), None) => {
                            disk.disarm();
                            wal
                        }
                        (_, Some(_)) => {
                            disk.power_loss(&mut rng);
                            Wal::open(&mut disk, SMALL)
                                .unwrap_or_else(|e| panic!("{kind:?} k={k} k2={k2}: {e}"))
                                .0
                        }
                        (Err(e), None) => panic!("{kind:?} k={k} k2={k2}: {e}"),
                    };
                    let got = read_all(&mut wal, &mut disk);
                    assert!(
                        got.len() >= synced_before,
                        "{kind:?} k={k} k2={k2}: lost synced entries"
                    );
                    for (i, r) in got.iter().enumerate() {
                        let p = r.as_ref().expect("no corruption was injected");
                        assert_eq!(&p[..], &[i as u8 + 1; 40][..], "{kind:?} k={k}: entry {i}");
                    }
                }
            }
        }
    }
    assert!(deaths > 100, "the countdown fired in only {deaths} cases");
}

/// `truncate_from` across segments (a follower cutting a conflicting suffix, a node dropping
/// what a failed sync may have lost) with the disk dying at each of its calls, then a power
/// loss: recovery succeeds and holds a prefix of the log, at least what was to be kept.
#[test]
fn a_crash_between_any_two_calls_of_truncate_from_leaves_a_prefix() {
    const SMALL: WalConfig = WalConfig { segment_bytes: 64 };
    let mut deaths = 0;
    for cut in 2..=5u64 {
        for k in 1..=5 {
            for seed in 0..4 {
                let mut disk = SimDisk::new();
                let mut wal = Wal::open(&mut disk, SMALL).expect("empty disk").0;
                // Six entries, one per segment (each fills one), all synced.
                for i in 1..=6u64 {
                    wal.append(&mut disk, 1, EntryKind::Batch, &meta(i), &[i as u8; 40])
                        .expect("room");
                    sync(&mut wal, &mut disk).expect("sync");
                }
                disk.crash_after(k, CrashKind::Power);
                let truncated = wal.truncate_from(&mut disk, cut);
                if disk.take_death().is_none() {
                    assert_eq!(truncated, Ok(()));
                    disk.disarm();
                } else {
                    deaths += 1;
                    disk.power_loss(&mut SimRng::new(seed));
                }
                let (mut wal, _) = Wal::open(&mut disk, SMALL)
                    .unwrap_or_else(|e| panic!("cut={cut} k={k} seed={seed}: {e}"));
                let got = read_all(&mut wal, &mut disk);
                assert!(
                    got.len() as u64 >= cut - 1,
                    "cut={cut} k={k}: entries below the cut were lost"
                );
                for (i, r) in got.iter().enumerate() {
                    let p = r.as_ref().expect("no corruption was injected");
                    assert_eq!(&p[..], &[i as u8 + 1; 40][..], "cut={cut} k={k}: entry {i}");
                }
            }
        }
    }
    assert!(deaths > 40, "the countdown fired in only {deaths} cases");
}

/// The metadata store (delete the temp file, write it, sync it, rename it) with the disk dying
/// at every one of its calls, then a power loss: the old or the new value survives, never
/// anything else.
#[test]
fn a_crash_between_any_two_calls_of_the_meta_store_keeps_old_or_new() {
    let first = Meta {
        term: 3,
        voted_for: 1,
        repair_term: 0,
        repair_index: 0,
        version: 0,
    };
    let second = Meta {
        term: 4,
        voted_for: 2,
        repair_term: 3,
        repair_index: 9,
        version: 1,
    };
    for k in 1..=9 {
        for seed in 0..8 {
            let mut disk = SimDisk::new();
            let mut old = first;
            old.store(&mut disk).expect("first store");
            let mut new = second;
            disk.crash_after(k, CrashKind::Power);
            let stored = new.store(&mut disk);
            if disk.take_death().is_none() {
                // The store took fewer calls than k.
                assert_eq!(stored, Ok(()));
                continue;
            }
            assert!(stored.is_err(), "k={k}: a dead disk reports an error");
            disk.power_loss(&mut SimRng::new(seed));
            let got = Meta::load(&mut disk).expect("metadata loads");
            assert!(got == old || got == new, "k={k} seed={seed}: {got:?}");
        }
    }
}

/// Either copy of the metadata may be destroyed: the other still says the latest.
#[test]
fn a_destroyed_copy_of_the_metadata_leaves_the_other() {
    let mut meta = Meta {
        term: 7,
        voted_for: 2,
        ..Meta::default()
    };
    for victim in ["meta", "meta.2"] {
        let mut disk = SimDisk::new();
        meta.store(&mut disk).expect("stores");
        meta.store(&mut disk).expect("stores again");
        disk.flip_bit(victim, 6, 1);
        assert_eq!(Meta::load(&mut disk), Ok(meta), "{victim} destroyed");
        disk.flip_bit(if victim == "meta" { "meta.2" } else { "meta" }, 9, 0);
        assert!(matches!(Meta::load(&mut disk), Err(MetaError::Corrupt(_))));
    }
}

/// A misdirected append: the intended place reads as zeros, the bytes land elsewhere, and the
/// disk reports where for the harness to excuse.
#[test]
fn a_misdirected_append_leaves_zeros_and_lands_elsewhere() {
    let (mut disk, _) = three_synced_entries();
    let file = "wal-00000000000000000001.log";
    let before = disk.cached(file).expect("segment").to_vec();
    disk.misdirect_next(Misdirect {
        other_file: false,
        pick: 5 << 8,
    });
    disk.append(file, b"stray bytes")
        .expect("the disk does not know");
    let after = disk.cached(file).expect("segment");
    assert_eq!(&after[before.len()..], &[0u8; 11][..]);
    assert_eq!(&after[5..16], b"stray bytes");
    let w = disk.take_misdirected();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].at, before.len() as u64);
    assert_eq!(w[0].landed, Some((file.to_string(), 5, 11)));
}

/// A misread is one-shot: the next read returns another place's bytes, the one after is right.
#[test]
fn a_misread_returns_other_bytes_once() {
    let (mut disk, loc) = three_synced_entries();
    let mut good = vec![0u8; loc.len as usize];
    disk.read(&loc.file, loc.pos, &mut good).expect("read");
    disk.misread_next(7);
    let mut bad = vec![0u8; loc.len as usize];
    disk.read(&loc.file, loc.pos, &mut bad).expect("read");
    assert_ne!(bad, good);
    disk.read(&loc.file, loc.pos, &mut bad).expect("read");
    assert_eq!(bad, good);
}

/// A sync makes durable what was written before it was issued; what was written while it ran
/// waits for the next one.
#[test]
fn a_sync_covers_what_was_written_before_it_was_issued() {
    let mut disk = SimDisk::new();
    disk.append("f", b"abc").expect("room");
    let issued = disk.cached("f").expect("file").len();
    disk.append("f", b"def").expect("room");
    disk.sync_upto("f", issued).expect("sync");
    assert_eq!(disk.durable("f"), Some(&b"abc"[..]));
    assert_eq!(disk.cached("f"), Some(&b"abcdef"[..]));
    disk.sync("f").expect("sync");
    assert_eq!(disk.durable("f"), Some(&b"abcdef"[..]));
}

/// A misread during recovery costs nothing: recovery reads the segment again before it cuts,
/// marks or refuses anything, and a read of an entry reads it again before it reports damage.
#[test]
fn a_misread_during_recovery_or_a_read_costs_nothing() {
    for shift in [1, 7, 40, 100, 333] {
        let (mut disk, _) = three_synced_entries();
        disk.misread_next(shift);
        let (mut wal, report) =
            Wal::open(&mut disk, CONFIG).unwrap_or_else(|e| panic!("shift {shift}: {e}"));
        assert_eq!(
            (report.entries, report.truncated_bytes, report.damaged.len()),
            (3, 0, 0),
            "shift {shift}"
        );
        disk.misread_next(shift);
        assert_eq!(
            wal.read(&mut disk, 2).map(|(_, p)| p),
            Ok(Bytes::from(vec![2u8; 20])),
            "shift {shift}"
        );
    }
}

/// Damage to a header followed only by a header-sized frame (a refusal record has no payload)
/// at the very end is still damage before a valid frame: recovery refuses, it does not cut a
/// durable refusal away as a torn tail.
#[test]
fn a_damaged_header_before_a_last_empty_frame_is_refused() {
    let mut disk = SimDisk::new();
    let mut wal = open(&mut disk);
    wal.append(&mut disk, 1, EntryKind::Batch, &meta(1), &[1; 20])
        .expect("room");
    wal.append(&mut disk, 1, EntryKind::Refusal, &meta(2), &[])
        .expect("room");
    sync(&mut wal, &mut disk).expect("sync");
    disk.flip_bit("wal-00000000000000000001.log", 10, 3);
    assert!(matches!(
        Wal::open(&mut disk, CONFIG),
        Err(WalError::Unrecoverable { pos: 0, .. })
    ));
}

#[test]
fn only_canonical_segment_names_are_segments() {
    use sq_storage::wal::is_segment_file;
    assert!(is_segment_file("wal-00000000000000000001.log"));
    for name in [
        "meta",
        "meta.2",
        "meta.tmp",
        "wal-1.log",
        "wal-00000000000000000000.log",
    ] {
        assert!(!is_segment_file(name), "{name}");
    }
}

/// A torn tail that happens to hold the frame magic (but no valid header after it) is still a
/// torn tail: recovery cuts it; it refuses only where a whole valid header follows.
#[test]
fn a_torn_tail_holding_the_frame_magic_is_cut() {
    let (mut disk, _) = three_synced_entries();
    let file = "wal-00000000000000000001.log";
    let mut garbage = vec![0xAB; 7];
    garbage.extend_from_slice(&sq_core::codec::FRAME_MAGIC.to_le_bytes());
    garbage.extend_from_slice(&[0xCD; 90]);
    disk.append(file, &garbage).expect("room");
    let (wal, report) = Wal::open(&mut disk, CONFIG).expect("a torn tail is recoverable");
    assert_eq!(
        (wal.last_index(), report.truncated_bytes),
        (3, garbage.len() as u64)
    );
}
