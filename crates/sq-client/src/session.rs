//! What the producer and the consumer share: one operation in flight at a time, resent when its
//! deadline passes until the attempts run out (then it is indeterminate), and the history.

use crate::history::{HistoryEvent, Op, Outcome};
use crate::{ClientError, ClientOutput, History};
use sq_core::{ClientId, NodeId, Request, Time};

/// The operation in flight.
#[derive(Clone, Debug)]
pub(crate) struct InFlight {
    /// Its id in the history; also the request id on the wire, the same for every attempt.
    pub op: u64,
    /// What is sent on every attempt.
    pub request: Request,
    started: Time,
    attempts: u32,
    deadline: Time,
}

/// One client's operations and history.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    client: ClientId,
    retry_after: u64,
    max_attempts: u32,
    next_op: u64,
    in_flight: Option<InFlight>,
    history: History,
}

impl Session {
    pub fn new(client: ClientId, retry_after: u64, max_attempts: u32) -> Session {
        Session {
            client,
            retry_after,
            max_attempts,
            next_op: 0,
            in_flight: None,
            history: Vec::new(),
        }
    }

    pub fn client(&self) -> ClientId {
        self.client
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
        self.record(now, op, Outcome::Invoke(invoke));
        self.in_flight = Some(InFlight {
            op,
            request,
            started: now,
            attempts: 0,
            deadline: now,
        });
        self.send(now, out);
        Ok(op)
    }

    fn send(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        let Some(f) = self.in_flight.as_mut() else {
            return;
        };
        f.attempts += 1;
        f.deadline = now + self.retry_after;
        out.push(ClientOutput::Send {
            to: NodeId(0),
            req: f.op,
            request: f.request.clone(),
        });
        out.push(ClientOutput::SetTimer { at: f.deadline });
    }

    /// The operation in flight, if `req` is its request id (replies to older ones are stale).
    pub fn answering(&self, req: u64) -> Option<&InFlight> {
        self.in_flight.as_ref().filter(|f| f.op == req)
    }

    /// Ends the operation in flight with `outcome`.
    pub fn finish(&mut self, now: Time, outcome: Outcome) {
        if let Some(f) = self.in_flight.take() {
            self.record(now, f.op, outcome);
        }
    }

    /// A timer fired: resend if the deadline passed, or give up once the attempts are spent.
    pub fn on_timer(&mut self, now: Time, out: &mut Vec<ClientOutput>) {
        let Some(f) = &self.in_flight else { return };
        if now < f.deadline {
            return;
        }
        if f.attempts >= self.max_attempts {
            let attempts = f.attempts;
            self.finish(
                now,
                Outcome::Info(format!("no answer after {attempts} attempts")),
            );
            return;
        }
        self.send(now, out);
    }

    fn record(&mut self, time: Time, op: u64, outcome: Outcome) {
        self.history.push(HistoryEvent {
            time,
            client: self.client,
            op,
            outcome,
        });
    }

    pub fn drain_history(&mut self) -> History {
        std::mem::take(&mut self.history)
    }
}
