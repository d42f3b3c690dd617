//! What travels between clients and nodes, and how it is summarised for the trace and history.

use super::*;

/// A unique, self-describing record value: the producer, the harness's batch number (not the
/// producer's sequence), the record's place in the batch, then random padding.
pub(super) fn record_value(rng: &mut SimRng, producer: u64, batch: u64, index: usize) -> Bytes {
    let mut v = format!("p{producer}/b{batch}/r{index}|").into_bytes();
    let pad = rng.below(48) as usize;
    v.extend((0..pad).map(|_| b'a' + rng.below(26) as u8));
    Bytes::from(v)
}

/// The trace's description of a message: the protocol type's own.
pub(super) fn msg_of(payload: &Payload) -> Msg {
    Msg(match payload {
        Payload::Request { request, .. } => request.to_string().into(),
        Payload::Reply { reply, .. } => reply.to_string().into(),
        Payload::Peer(msg) => msg.to_string().into(),
    })
}

pub(super) fn history_line(e: &HistoryEvent) -> String {
    let what = match &e.outcome {
        Outcome::Invoke(Op::Produce {
            partition,
            producer,
            seq,
            records,
        }) => format!(
            "invoke produce {producer} seq {seq} → {partition} ×{}",
            records.len()
        ),
        Outcome::Invoke(Op::Fetch { partition, offset }) => {
            format!("invoke fetch {partition} from {offset}")
        }
        Outcome::Invoke(Op::Group(request)) => format!("invoke {request}"),
        Outcome::Group(ok) => format!("ok {ok}"),
        Outcome::Produced { base_offset } => format!("ok base_offset={base_offset}"),
        Outcome::Fetched {
            records,
            high_watermark,
        } => format!("ok {} records, hw={high_watermark}", records.len()),
        Outcome::Fail(m) => format!("fail {m}"),
        Outcome::Info(m) => format!("info {m}"),
    };
    match e.node {
        Some(node) => format!("{} op {} {what} (from {node})", e.client, e.op),
        None => format!("{} op {} {what}", e.client, e.op),
    }
}
