//! The client history as JSON lines, one operation event a line, for a checker outside this
//! repository (README, "History and trace files").
//!
//! Every line has `time_ns`, `client`, `op` (the operation's id, shared by its invocation and
//! its completion), `type` (`invoke`, `ok`, `fail` or `info`), `node` (the node whose reply
//! completed it; `null` for an invocation or a give-up) and `f` (what the operation is). The
//! rest depends on `f`; a completion repeats its invocation's fields, so each line stands alone.
//! The one place that knows the history's variants is [`HistoryExport::line`].

use serde_json::{json, Map, Value};
use sq_client::{HistoryEvent, Op, Outcome};
use sq_core::{GroupOk, GroupRequest};
use std::collections::BTreeMap;
use std::io::Write;

/// Turns history events into JSON lines, remembering each invocation for its completion.
#[derive(Default)]
pub struct HistoryExport {
    invoked: BTreeMap<(u32, u64), Op>,
}

/// A record value as text: the simulator's values are ASCII; anything else is replaced.
fn text(value: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(value).into_owned())
}

/// The fields that describe `op` itself.
fn op_fields(op: &Op, fields: &mut Map<String, Value>) {
    match op {
        Op::Produce {
            partition,
            producer,
            seq,
            records,
        } => {
            fields.insert("f".into(), json!("produce"));
            fields.insert("partition".into(), json!(partition.0));
            fields.insert("producer".into(), json!(producer.0));
            fields.insert("seq".into(), json!(seq));
            let values: Vec<Value> = records.iter().map(|r| text(r)).collect();
            fields.insert("values".into(), Value::Array(values));
        }
        Op::Fetch { partition, offset } => {
            fields.insert("f".into(), json!("fetch"));
            fields.insert("partition".into(), json!(partition.0));
            fields.insert("offset".into(), json!(offset));
        }
        Op::Group(request) => group_fields(request, fields),
    }
}

/// The fields of a group request: `f` is `join`, `heartbeat`, `leave`, `commit` or
/// `fetch_offset`; then `group`, and as the request has them `member`, `generation`,
/// `partition` and `offset`.
fn group_fields(request: &GroupRequest, fields: &mut Map<String, Value>) {
    let (f, group, member, generation, partition, offset) = match *request {
        GroupRequest::Join { group, member } => ("join", group, Some(member), None, None, None),
        GroupRequest::Heartbeat {
            group,
            member,
            generation,
        } => (
            "heartbeat",
            group,
            Some(member),
            Some(generation),
            None,
            None,
        ),
        GroupRequest::Leave { group, member } => ("leave", group, Some(member), None, None, None),
        GroupRequest::Commit {
            group,
            member,
            generation,
            partition,
            offset,
        } => (
            "commit",
            group,
            Some(member),
            Some(generation),
            Some(partition),
            Some(offset),
        ),
        GroupRequest::FetchOffset { group, partition } => {
            ("fetch_offset", group, None, None, Some(partition), None)
        }
    };
    fields.insert("f".into(), json!(f));
    fields.insert("group".into(), json!(group.0));
    if let Some(m) = member {
        fields.insert("member".into(), json!(m.0));
    }
    if let Some(g) = generation {
        fields.insert("generation".into(), json!(g));
    }
    if let Some(p) = partition {
        fields.insert("partition".into(), json!(p.0));
    }
    if let Some(o) = offset {
        fields.insert("offset".into(), json!(o));
    }
}

impl HistoryExport {
    /// The JSON line of `e`.
    pub fn line(&mut self, e: &HistoryEvent) -> Value {
        let mut fields = Map::new();
        fields.insert("time_ns".into(), json!(e.time.nanos()));
        fields.insert("client".into(), json!(e.client.0));
        fields.insert("op".into(), json!(e.op));
        fields.insert("node".into(), json!(e.node.map(|n| n.0)));
        let key = (e.client.0, e.op);
        let kind = match &e.outcome {
            Outcome::Invoke(op) => {
                op_fields(op, &mut fields);
                self.invoked.insert(key, op.clone());
                "invoke"
            }
            Outcome::Produced { base_offset } => {
                let count = match self.invoked.get(&key) {
                    Some(Op::Produce { records, .. }) => records.len() as u64,
                    _ => 0,
                };
                let offsets: Vec<u64> = (0..count).map(|i| base_offset + i).collect();
                fields.insert("base_offset".into(), json!(base_offset));
                fields.insert("offsets".into(), json!(offsets));
                "ok"
            }
            Outcome::Fetched {
                records,
                high_watermark,
            } => {
                let read: Vec<Value> = records
                    .iter()
                    .map(|r| json!({ "offset": r.offset, "value": text(&r.value) }))
                    .collect();
                fields.insert("records".into(), Value::Array(read));
                fields.insert("high_watermark".into(), json!(high_watermark));
                "ok"
            }
            Outcome::Group(ok) => {
                match ok {
                    GroupOk::Joined {
                        generation,
                        partitions,
                    } => {
                        let ps: Vec<u32> = partitions.iter().map(|p| p.0).collect();
                        fields.insert("joined_generation".into(), json!(generation));
                        fields.insert("assigned".into(), json!(ps));
                    }
                    // `null`: the group never committed this partition.
                    GroupOk::Offset { offset } => {
                        fields.insert("committed".into(), json!(offset));
                    }
                    GroupOk::Alive | GroupOk::Left | GroupOk::Committed => {}
                }
                "ok"
            }
            Outcome::Fail(why) => {
                fields.insert("error".into(), json!(why));
                "fail"
            }
            Outcome::Info(why) => {
                fields.insert("error".into(), json!(why));
                "info"
            }
        };
        fields.insert("type".into(), json!(kind));
        if kind != "invoke" {
            // A completion stands alone: it repeats what was asked.
            if let Some(op) = self.invoked.remove(&key) {
                let mut asked = Map::new();
                op_fields(&op, &mut asked);
                for (k, v) in asked {
                    fields.entry(k).or_insert(v);
                }
            }
        }
        Value::Object(fields)
    }
}

/// Writes `history` to `out` as JSON lines.
pub fn write_history(history: &[HistoryEvent], out: &mut dyn Write) -> std::io::Result<()> {
    let mut export = HistoryExport::default();
    for e in history {
        writeln!(out, "{}", export.line(e))?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use pretty_assertions::assert_eq;
    use sq_core::{ClientId, FetchedRecord, NodeId, PartitionId, ProducerId, Time};

    fn event(op: u64, node: Option<u32>, outcome: Outcome) -> HistoryEvent {
        HistoryEvent {
            time: Time(1_500),
            client: ClientId(2),
            op,
            node: node.map(NodeId),
            outcome,
        }
    }

    #[test]
    fn a_produce_and_a_fetch_export_every_field() {
        let mut x = HistoryExport::default();
        let produce = Op::Produce {
            partition: PartitionId(1),
            producer: ProducerId(7),
            seq: 3,
            records: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        };
        assert_eq!(
            x.line(&event(0, None, Outcome::Invoke(produce))),
            json!({"time_ns": 1500, "client": 2, "op": 0, "node": null, "type": "invoke",
                   "f": "produce", "partition": 1, "producer": 7, "seq": 3, "values": ["a", "b"]})
        );
        let acked = Outcome::Produced { base_offset: 40 };
        assert_eq!(
            x.line(&event(0, Some(1), acked)),
            json!({"time_ns": 1500, "client": 2, "op": 0, "node": 1, "type": "ok",
                   "f": "produce", "partition": 1, "producer": 7, "seq": 3, "values": ["a", "b"],
                   "base_offset": 40, "offsets": [40, 41]})
        );
        let fetch = Op::Fetch {
            partition: PartitionId(0),
            offset: 5,
        };
        x.line(&event(1, None, Outcome::Invoke(fetch)));
        let fetched = Outcome::Fetched {
            records: vec![FetchedRecord {
                offset: 5,
                value: Bytes::from_static(b"v"),
            }],
            high_watermark: 9,
        };
        assert_eq!(
            x.line(&event(1, Some(0), fetched)),
            json!({"time_ns": 1500, "client": 2, "op": 1, "node": 0, "type": "ok",
                   "f": "fetch", "partition": 0, "offset": 5,
                   "records": [{"offset": 5, "value": "v"}], "high_watermark": 9})
        );
        assert_eq!(
            x.line(&event(2, None, Outcome::Info("no answer".into()))),
            json!({"time_ns": 1500, "client": 2, "op": 2, "node": null, "type": "info",
                   "error": "no answer"})
        );
    }
}
