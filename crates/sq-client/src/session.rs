//! What the producer and the consumer share: one operation in flight at a time, sent to the node
//! believed to lead, redirected when a node names another leader, resent to the next node when
//! its deadline passes, until a budget runs out; and the history.
//!
//! Two budgets bound an operation. `max_attempts` counts sends that ended without a definite
//! answer (a timeout, or an indeterminate reply): those may have taken effect. `max_redirects`
//! counts answers that only said "not here" or "not yet" (`NotLeader`, `NotReady`): those took
//! no effect, so spending the first budget on them would give up on a healthy cluster during an
//! election; but they are bounded too, so that a cluster with no leader cannot keep an operation
//! alive forever.

use crate::history::{HistoryEvent, Op, Outcome};
use crate::{ClientError, ClientOutput, History};
use sq_core::{ClientId, NodeId, Request, Time};

/// The operation in flight.
#[derive(Clone, Debug)]
pub(crate) struct InFlight {
    /// Its id in the history; also the request id on the wire, the same for every attempt and
    /// every node, so that any node's reply to any attempt is recognised.
    pub op: u64,
    /// What is sent on every attempt: the same bytes, so idempotence holds across leaders.
    pub request: Request,
    started: Time,
    /// Sends that ended without a definite answer.
    attempts: u32,
    /// Answers that sent the request elsewhere or asked it to come back later.
    redirects: u32,
    deadline: Time,
    /// What the deadline is for.
    due: Due,
}

/// What happens when the deadline of the operation in flight passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    /// A send is out: no answer by then is a timeout.
    Answer,
    /// A resend is scheduled (after a redirect or a retryable answer): send it then.
    Resend,
}

/// What became of the operation after an answer that did not end it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The answer was not acted on (stale, or the client waits for its timeout): still waiting.
    Waiting,
    /// A resend is scheduled.
    Resending,
    /// The budget the answer draws on is spent: the caller must end the operation.
    Spent {
        /// How many of that budget's sends were made.
        used: u32,
    },
}

/// How a client sends and retries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub retry_after: u64,
    pub max_attempts: u32,
    pub max_redirects: u32,
    pub nodes: u32,
}

/// One client's operations and history.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    client: ClientId,
    limits: Limits,
    /// The node the next send goes to: the believed leader. Kept across operations, so a
    /// discovered leader serves every later one.
    target: NodeId,
    next_op: u64,
    in_flight: Option<InFlight>,
    history: History,
    /// Coverage probes: how often the client's rare paths ran.
    pub probes: sq_core::Probes,
}

impl Session {
    pub fn new(client: ClientId, limits: Limits) -> Session {
        Session::starting_at(client, limits, 0)
    }

    /// A session whose operation ids start at `first_op`: a restarted client process numbers
    /// its requests past its predecessor's, so that a late reply to one of those is not taken
    /// for an answer to one of its own.
    pub fn starting_at(client: ClientId, limits: Limits, first_op: u64) -> Session {
        // A cluster has at least one node; a zero would only make `%` panic.
        let limits = Limits {
            nodes: limits.nodes.max(1),
            ..limits
        };
        Session {
            client,
            limits,
            // Clients start on different nodes so that, before any leader is known, they do
            // not all knock on the same door.
            target: NodeId(client.0 % limits.nodes),
            next_op: first_op,
            in_flight: None,
            history: Vec::new(),
            probes: sq_core::Probes::default(),
        }
    }

    pub fn client(&self) -> ClientId {
        self.client
    }

    /// The node requests go to: the believed leader.
    pub fn target(&self) -> NodeId {
        self.target
    }

    /// Sends later requests to `node` (a hint learnt outside an operation, such as from a
    /// heartbeat's answer).
    pub fn set_target(&mut self, node: NodeId) {
        self.target = NodeId(node.0 % self.limits.nodes);
    }

    /// Whether a send of the operation in flight ended without a definite answer: it may have
    /// taken effect, so giving up on it is indeterminate.
    pub fn uncertain(&self) -> bool {
        self.in_flight.as_ref().is_some_and(|f| f.attempts > 0)
    }

    pub fn is_idle(&self) -> bool {
        self.in_flight.is_none()
    }

    /// When the operation in flight was invoked.
    pub fn in_flight_since(&self) -> Option<Time> {
        self.in_flight.as_ref().map(|f| f.started)
    }

    /// Starts an operation: records its invocation and sends the first attempt.
    pub fn start(
        &mut self,
        now: Time,
        invoke: Op,
        request: Request,
        out: &mut Vec<ClientOutput>,
    ) -> Result<u64, ClientError> {
        if let Some(f) = &self.in_flight {
            return Err(ClientError::Busy(f.op));
        }
        let op = self.next_op;
        self.next_op += 1;
        self.record(now, op, Outcome::Invoke(invoke), None);
        self.in_flight = Some(InFlight {
            op,
            request,
            started: now,
            attempts: 0,
            redirects: 0,
            deadline: now,
            due: Due::Answer,
        });
        self.send(now, out);
        Ok(op)
    }

    fn send(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        f.deadline = now + self.limits.retry_after;
        f.due = Due::Answer;
        out.push(ClientOutput::Send {
            to: self.target,
            req: f.op,
            request: f.request.clone(),
        });
        out.push(ClientOutput::SetTimer { at: f.deadline });
    }

    /// Schedules a resend of the operation in flight to the current target after a short
    /// delay: soon, since the answer said where or when to ask, but never at once, so that a
    /// cluster without a leader does not make clients spin without simulated time passing.
    fn resend_soon(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        let delay = (self.limits.retry_after / 8).max(1);
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        f.deadline = now + delay;
        f.due = Due::Resend;
        out.push(ClientOutput::SetTimer { at: f.deadline });
    }

    /// The node after `node`, round the cluster.
    pub fn after(&self, node: NodeId) -> NodeId {
        NodeId(node.0.wrapping_add(1) % self.limits.nodes)
    }

    /// The operation in flight, if `req` is its request id (replies to older ones are stale).
    pub fn answering(&self, req: u64) -> Option<&InFlight> {
        self.in_flight.as_ref().filter(|f| f.op == req)
    }

    /// Whether an answer from `from` that does not end the operation should steer it: only the
    /// current target's, while a send to it is out. Any other is a late answer to an earlier
    /// send (or a duplicate), and acting on it would undo a newer decision.
    fn steers(&self, from: NodeId) -> bool {
        self.in_flight
            .as_ref()
            .is_some_and(|f| f.due == Due::Answer && from == self.target)
    }

    /// `from` is not the leader and believes `leader` is: send there (or, not knowing one, to
    /// the next node) shortly, drawing on the redirect budget.
    pub fn redirect(
        &mut self,
        now: Time,
        from: NodeId,
        leader: Option<NodeId>,
        out: &mut Vec<ClientOutput>,
    ) -> Next {
        // A hint outside the cluster (or naming the node that disowns the office) is no help.
        let to = leader
            .filter(|&n| n.0 < self.limits.nodes && n != from)
            .unwrap_or_else(|| self.after(from));
        self.probes.hit(sq_core::Probe::ClientRedirected);
        self.retry(now, from, to, out)
    }

    /// `from` asks for the request again shortly: send it there again, drawing on the redirect
    /// budget.
    pub fn again(&mut self, now: Time, from: NodeId, out: &mut Vec<ClientOutput>) -> Next {
        self.retry(now, from, from, out)
    }

    fn retry(&mut self, now: Time, from: NodeId, to: NodeId, out: &mut Vec<ClientOutput>) -> Next {
        if !self.steers(from) {
            return Next::Waiting;
        }
        let Some(f) = self.in_flight.as_mut() else {
            return Next::Waiting;
        };
        if f.redirects >= self.limits.max_redirects {
            return Next::Spent { used: f.redirects };
        }
        f.redirects += 1;
        self.target = to;
        self.resend_soon(now, out);
        Next::Resending
    }

    /// `from` answered without saying whether the request took effect (it may still): resend
    /// it to the next node shortly, drawing on the attempts budget like a timeout. With a
    /// single node there is nowhere else to ask, so the client waits for its timeout as before.
    pub fn indeterminate(&mut self, now: Time, from: NodeId, out: &mut Vec<ClientOutput>) -> Next {
        if self.limits.nodes == 1 || !self.steers(from) {
            return Next::Waiting;
        }
        let Some(f) = self.in_flight.as_mut() else {
            return Next::Waiting;
        };
        f.attempts += 1;
        if f.attempts >= self.limits.max_attempts {
            return Next::Spent { used: f.attempts };
        }
        self.target = self.after(from);
        self.resend_soon(now, out);
        Next::Resending
    }

    /// Ends the operation in flight with `outcome`; `node` answered it (None: the client gave
    /// up).
    pub fn finish(&mut self, now: Time, outcome: Outcome, node: Option<NodeId>) {
        if let Some(f) = self.in_flight.take() {
            self.record(now, f.op, outcome, node);
        }
    }

    /// A timer fired: send a scheduled resend; or, if the send out timed out, resend it to the
    /// next node (the target may be down or cut off) or give up once the attempts are spent.
    pub fn on_timer(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        if now < f.deadline {
            return;
        }
        if f.due == Due::Resend {
            self.send(now, out);
            return;
        }
        f.attempts += 1;
        if f.attempts >= self.limits.max_attempts {
            let attempts = f.attempts;
            self.finish(
                now,
                Outcome::Info(format!("no answer after {attempts} attempts")),
                None,
            );
            return;
        }
        self.probes.hit(sq_core::Probe::ClientResentAfterTimeout);
        self.target = self.after(self.target);
        self.send(now, out);
    }

    fn record(&mut self, time: Time, op: u64, outcome: Outcome, node: Option<NodeId>) {
        self.history.push(HistoryEvent {
            time,
            client: self.client,
            op,
            node,
            outcome,
        });
    }

    pub fn drain_history(&mut self) -> History {
        std::mem::take(&mut self.history)
    }
}
