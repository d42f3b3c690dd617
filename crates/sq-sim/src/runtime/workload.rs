//! The workload: the clients, what the harness knows of their operations, and their history.

use super::*;

/// The clients and what they did.
pub(super) struct Workload {
    pub producers: Vec<Producer>,
    /// Consumers; the last one is the harness's own reader for the final read-back.
    pub consumers: Vec<Consumer>,
    /// The consumer group's members, then one more client that only reads the group's
    /// committed offsets at the end of a run.
    pub members: Vec<GroupConsumer>,
    /// How many times each member's process was started.
    pub incarnations: Vec<u32>,
    /// The group consumers' config, for their restarts.
    pub member_config: GroupConsumerConfig,
    /// What the group consumers' crashed processes counted at their rare paths.
    pub crashed_member_probes: sq_core::Probes,
    /// What each client's latest operations were, by (client, op): late replies are checked
    /// against them.
    pub ops: BTreeMap<(u32, u64), OpInfo>,
    /// The whole history, when the run keeps it ([`SimConfig::keep_history`]).
    pub history: Vec<HistoryEvent>,
    /// Each client's last outcome (not invocation), by client id.
    pub last_outcome: BTreeMap<u32, Outcome>,
}

impl Workload {
    /// Idle clients for `cfg`'s shape: producers first, then consumers and the reader.
    pub fn new(cfg: &SimConfig) -> Workload {
        let p = u32::from(cfg.shape.producers);
        // The clients talk to the cluster that is simulated, whatever the configs say.
        let nodes = u32::from(cfg.shape.nodes);
        let producer = ProducerConfig {
            nodes,
            ..cfg.producer
        };
        let consumer = ConsumerConfig {
            nodes,
            ..cfg.consumer
        };
        let member_config = GroupConsumerConfig {
            nodes,
            ..cfg.member
        };
        let first_member = p + u32::from(cfg.shape.consumers) + 1;
        let members = (0..=u32::from(cfg.shape.members))
            .map(|k| {
                GroupConsumer::new(
                    ClientId(first_member + k),
                    GROUP,
                    MemberId(k),
                    0,
                    member_config,
                )
            })
            .collect();
        Workload {
            members,
            incarnations: vec![0; usize::from(cfg.shape.members) + 1],
            member_config,
            crashed_member_probes: sq_core::Probes::default(),
            producers: (0..p)
                .map(|i| Producer::new(ClientId(i), ProducerId(u64::from(i)), producer))
                .collect(),
            consumers: (0..=u32::from(cfg.shape.consumers))
                .map(|j| Consumer::new(ClientId(p + j), consumer))
                .collect(),
            ops: BTreeMap::new(),
            history: Vec::new(),
            last_outcome: BTreeMap::new(),
        }
    }
}

/// The one consumer group the simulated clients form.
pub(super) const GROUP: GroupId = GroupId(0);
