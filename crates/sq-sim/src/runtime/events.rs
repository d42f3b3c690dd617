//! The world's events: a message delivered to a node or a client, a node's wake-up, a sync
//! completing, a client's timer, a supervisor's restart; and what a node asks for in return.

use super::*;

/// How many times a node may be woken at one instant before it counts as spinning.
const MAX_WAKES_AT_ONE_INSTANT: u32 = 1000;

impl Sim {
    pub(super) fn dispatch(&mut self, event: Event) -> Result<(), Box<Failure>> {
        // A paused node's process handles nothing until its pause ends.
        let Some(event) = self.defer_if_paused(event) else {
            return Ok(());
        };
        match event {
            Event::Deliver {
                from,
                to,
                epoch,
                envelope,
            } => match to {
                Addr::Node(n) => self.deliver_to_node(from, n, epoch, &envelope),
                Addr::Client(c) => self.deliver_to_client(from, c, epoch, &envelope),
            },
            Event::NodeWake { node, incarnation } => {
                let sn = &mut self.nodes[node as usize];
                if sn.incarnation != incarnation || sn.node.is_none() || sn.wake != Some(self.now) {
                    return Ok(());
                }
                sn.wake = None;
                // A node that wants to be woken again and again without time passing would
                // spin the simulator forever: that is a stuck node, reported, not a hang.
                sn.spin = match sn.spin {
                    (at, k) if at == self.now => (at, k + 1),
                    _ => (self.now, 1),
                };
                let spins = sn.spin.1;
                if spins > MAX_WAKES_AT_ONE_INSTANT {
                    return Err(self.fail(
                        Violation::new(
                            Invariant::Liveness,
                            format!("n{node}'s deadlines"),
                            "time passes between the wake-ups a node asks for",
                            format!("{spins} wake-ups at {} with nothing to do", self.now),
                        ),
                        Some(node),
                    ));
                }
                self.trace.record(
                    self.now,
                    What::Timer {
                        at: Addr::Node(node),
                        name: "wake",
                    },
                );
                let now = self.now;
                self.node_step(node, |n, disk, out| n.handle_timeout(now, disk, out))
            }
            Event::SyncDone {
                node,
                incarnation,
                token,
                file,
                upto,
            } => {
                let sn = &mut self.nodes[node as usize];
                if sn.incarnation != incarnation || sn.node.is_none() {
                    return Ok(());
                }
                sn.syncs_in_flight = sn.syncs_in_flight.saturating_sub(1);
                let result = sn.disk.sync_upto(&file, upto);
                self.flush_disk_calls(node);
                self.node_input(node, Input::Synced { token, result })
            }
            Event::ClientTimer { client } => {
                let mut out = std::mem::take(&mut self.client_out);
                let p = u32::from(self.cfg.shape.producers);
                if client < p {
                    self.work.producers[client as usize].on_timer(self.now, &mut out);
                } else if let Some(k) = self.member_of(client) {
                    self.work.members[k].on_timer(self.now, &mut out);
                } else {
                    self.work.consumers[(client - p) as usize].on_timer(self.now, &mut out);
                }
                self.route_client(client, &mut out);
                self.client_out = out;
                self.after_client(client)
            }
            Event::StoreDone {
                node,
                incarnation,
                token,
                op,
                fate,
            } => self.store_done(node, incarnation, token, op, fate),
            Event::Supervise { node, incarnation } => {
                let sn = &self.nodes[node as usize];
                if sn.incarnation != incarnation || sn.node.is_some() || sn.exited.is_none() {
                    return Ok(());
                }
                self.stats.supervised_restarts += 1;
                self.restart(node)?;
                self.disturbed();
                Ok(())
            }
        }
    }

    pub(super) fn deliver_to_node(
        &mut self,
        from: Addr,
        n: u32,
        epoch: u64,
        envelope: &Envelope,
    ) -> Result<(), Box<Failure>> {
        let sn = &self.nodes[n as usize];
        let dropped = if sn.node.is_none() {
            Some("node down")
        } else if sn.incarnation != epoch {
            Some("connection reset: the node restarted since this was sent")
        } else {
            None
        };
        if let Some(why) = dropped {
            self.trace.record(
                self.now,
                What::Drop {
                    to: Addr::Node(n),
                    why,
                },
            );
            return Ok(());
        }
        self.trace.record(
            self.now,
            What::Deliver {
                from,
                to: Addr::Node(n),
                msg: envelope.msg.clone(),
            },
        );
        let input = match (from, &envelope.payload) {
            (Addr::Client(c), Payload::Request { req, request }) => Input::Request {
                from: ClientId(c),
                req: *req,
                request: request.clone(),
            },
            (Addr::Node(m), Payload::Peer(msg)) => Input::Peer {
                from: NodeId(m),
                msg: msg.clone(),
            },
            _ => return Ok(()),
        };
        let append = match (from, &envelope.payload) {
            (Addr::Node(l), Payload::Peer(PeerMsg::Append(m))) => Some((l, m.term)),
            (Addr::Node(f), Payload::Peer(PeerMsg::AppendReply(r))) => {
                self.check.snapshots_unanswered.remove(&(n, r.term, f));
                None
            }
            _ => None,
        };
        self.node_input(n, input)?;
        // Whether it took that leader's append: it has heard a live leader (stickiness).
        if let Some((l, term)) = append {
            let took = self
                .node(n)
                .map(Node::status)
                .is_some_and(|s| s.leader == Some(NodeId(l)) && s.term == term);
            if took {
                self.check.heard_leader[n as usize] = Some((l, term, self.now));
            }
        }
        Ok(())
    }

    pub(super) fn node_input(&mut self, n: u32, input: Input) -> Result<(), Box<Failure>> {
        let now = self.now;
        self.node_step(n, |node, disk, out| node.handle(now, input, disk, out))
    }

    /// Lets node `n` act on its disk (an input or a deadline), then carries out what it asked
    /// for, unless its disk died in the middle.
    pub(super) fn node_step(
        &mut self,
        n: u32,
        act: impl FnOnce(&mut Node, &mut SimDisk, &mut Vec<Output>),
    ) -> Result<(), Box<Failure>> {
        let mut out = std::mem::take(&mut self.node_out);
        let sn = &mut self.nodes[n as usize];
        if let Some(node) = sn.node.as_mut() {
            act(node, &mut sn.disk, &mut out);
        }
        self.flush_disk_calls(n);
        self.excuse_misdirected(n);
        if let Some(kind) = self.nodes[n as usize].disk.take_death() {
            // The process died at a disk call inside this input: nothing it did after that call
            // happened. The node sends its replies only after its disk calls, so dropping this
            // input's outputs drops nothing sent before the death.
            out.clear();
            self.node_out = out;
            return self.died_on_its_own(n, kind, "its disk died mid-operation".into());
        }
        self.check_raft(n)?;
        self.node_outputs(n, out)
    }

    /// Carries out what node `n` asked for, checking every reply before it leaves, then queues
    /// a wake-up for the node's next deadline.
    pub(super) fn node_outputs(
        &mut self,
        n: u32,
        mut out: Vec<Output>,
    ) -> Result<(), Box<Failure>> {
        let mut result = Ok(());
        for o in out.drain(..) {
            match o {
                Output::Sync { token, file } => {
                    let (min, max) = self.cfg.sync_latency;
                    let at = self.now + self.rng.between(min, max);
                    let sn = &mut self.nodes[n as usize];
                    sn.syncs_in_flight += 1;
                    let incarnation = sn.incarnation;
                    let upto = sn.disk.cached(&file).map_or(0, <[u8]>::len);
                    self.queue.push(
                        at,
                        Event::SyncDone {
                            node: n,
                            incarnation,
                            token,
                            file,
                            upto,
                        },
                    );
                }
                Output::Store { token, op } => {
                    let (delay, fate) = self.store.issue(&mut self.rng, &op);
                    let incarnation = self.nodes[n as usize].incarnation;
                    let call = format!("{} {} (#{token})", op.name(), op.key());
                    self.trace.record(self.now, What::Store { node: n, call });
                    self.queue.push(
                        self.now + delay,
                        Event::StoreDone {
                            node: n,
                            incarnation,
                            token,
                            op,
                            fate,
                        },
                    );
                }
                Output::Send { to, msg } => {
                    if let PeerMsg::Snapshot(m) = &msg {
                        self.stats.snapshots_sent += 1;
                        if !self.check.snapshots_unanswered.insert((n, m.term, to.0)) {
                            self.stats.snapshots_unanswered += 1;
                        }
                    }
                    if result.is_ok() {
                        result = self.check_peer_send(n, to.0, &msg);
                    }
                    self.send(Addr::Node(n), Addr::Node(to.0), Payload::Peer(msg));
                }
                Output::Reply { to, req, reply } => {
                    if result.is_ok() {
                        result = self.check_reply(n, to.0, req, &reply);
                    }
                    if let (Ok(()), Reply::Fetch(Ok(ok)), Some(OpInfo::Fetch { partition, .. })) =
                        (&result, &reply, self.work.ops.get(&(to.0, req)))
                    {
                        result = self
                            .check
                            .watermarks
                            .observe(n, *partition, ok.high_watermark)
                            .map_err(|v| self.fail(v, Some(n)));
                    }
                    let payload = Payload::Reply { req, reply };
                    self.send(Addr::Node(n), Addr::Client(to.0), payload);
                }
            }
        }
        self.node_out = out;
        self.schedule_wake(n);
        result?;
        self.supervise(n)
    }

    /// Queues a wake-up at node `n`'s next deadline unless one is queued for then already.
    pub(super) fn schedule_wake(&mut self, n: u32) {
        let sn = &mut self.nodes[n as usize];
        let next = sn.node.as_ref().and_then(Node::poll_timeout);
        if next != sn.wake {
            sn.wake = next;
            if let Some(at) = next {
                let at = at.max(self.now);
                sn.wake = Some(at);
                let incarnation = sn.incarnation;
                self.queue.push(
                    at,
                    Event::NodeWake {
                        node: n,
                        incarnation,
                    },
                );
            }
        }
    }

    pub(super) fn deliver_to_client(
        &mut self,
        from: Addr,
        c: u32,
        _epoch: u64,
        envelope: &Envelope,
    ) -> Result<(), Box<Failure>> {
        // A reply already sent arrives even if its sender died since: it was on the wire. (Only
        // what is sent to a dead incarnation is lost; a dead one sends nothing.) So `_epoch`,
        // the sender's incarnation, does not matter here.
        self.trace.record(
            self.now,
            What::Deliver {
                from,
                to: Addr::Client(c),
                msg: envelope.msg.clone(),
            },
        );
        let Payload::Reply { req, reply } = &envelope.payload else {
            return Ok(());
        };
        let Addr::Node(node) = from else {
            return Ok(());
        };
        let from = NodeId(node);
        let mut out = std::mem::take(&mut self.client_out);
        let p = u32::from(self.cfg.shape.producers);
        let corrupt = if c < p {
            match reply {
                Reply::Produce(Err(ProduceError::StorageFull)) => self.stats.storage_full += 1,
                Reply::Produce(Err(ProduceError::DiskFull)) => self.stats.disk_full += 1,
                _ => {}
            }
            self.work.producers[c as usize].on_reply(self.now, from, *req, reply.clone(), &mut out);
            None
        } else if let Some(k) = self.member_of(c) {
            self.work.members[k].on_reply(self.now, from, *req, reply.clone(), &mut out)
        } else {
            self.work.consumers[(c - p) as usize].on_reply(
                self.now,
                from,
                *req,
                reply.clone(),
                &mut out,
            )
        };
        self.route_client(c, &mut out);
        self.client_out = out;
        if let Some(FetchError::Corrupt { offset, next }) = corrupt {
            self.skip_corrupt(c, *req, offset, next)?;
        }
        self.after_client(c)
    }

    pub(super) fn route_client(&mut self, client: u32, out: &mut Vec<ClientOutput>) {
        for o in out.drain(..) {
            match o {
                ClientOutput::Send { to, req, request } => self.send(
                    Addr::Client(client),
                    Addr::Node(to.0),
                    Payload::Request { req, request },
                ),
                ClientOutput::SetTimer { at } => self.queue.push(at, Event::ClientTimer { client }),
            }
        }
    }

    pub(super) fn send(&mut self, from: Addr, to: Addr, payload: Payload) {
        let fate = self.net.transmit(&mut self.rng, self.now, from, to);
        let copies = match fate {
            Fate::Delivered(_, Some(_)) => 2,
            Fate::Delivered(_, None) => 1,
            Fate::Lost | Fate::Blocked => 0,
        };
        let msg = msg_of(&payload);
        self.trace.record(
            self.now,
            What::Send {
                from,
                to,
                msg: msg.clone(),
                copies,
            },
        );
        if let Fate::Delivered(first, second) = fate {
            // A connection lives as long as the node's process: tag each message with the
            // incarnation of the node at either end.
            let epoch = match (from, to) {
                (_, Addr::Node(n)) | (Addr::Node(n), _) => self.nodes[n as usize].incarnation,
                (Addr::Client(_), Addr::Client(_)) => 0,
            };
            let envelope = std::rc::Rc::new(Envelope { payload, msg });
            if let Some(at) = second {
                self.queue.push(
                    at,
                    Event::Deliver {
                        from,
                        to,
                        epoch,
                        envelope: envelope.clone(),
                    },
                );
            }
            self.queue.push(
                first,
                Event::Deliver {
                    from,
                    to,
                    epoch,
                    envelope,
                },
            );
        }
    }
}
