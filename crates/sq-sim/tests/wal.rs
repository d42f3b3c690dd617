//! Property tests of the WAL on the simulated disk: crash recovery keeps every synced entry and
//! invents nothing, corruption never yields a wrong entry, and no bytes make recovery panic.

use bytes::Bytes;
use pretty_assertions::assert_eq;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use sq_core::codec::{BatchMeta, EntryKind};
use sq_sim::disk::SimDisk;
use sq_sim::rng::SimRng;
use sq_storage::{Disk, Wal, WalConfig, WalError};

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
