//! Declaring and starting actors on a node, and the handle an actor talks through.

use super::node::{Deliver, Entry, Node, ProcessError};
use super::{Exited, Incoming, Upid, WireMessage};
use crate::codec;
use actix::{Actor, Addr, Context, Handler, Recipient};
use std::any::TypeId;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

type Installer<A> = Box<dyn FnOnce(&Addr<A>, &mut Entry)>;

/// Declares the messages an actor takes, then starts and registers it: the one visible table of a
/// role's handlers.
pub struct Spawn<A: Actor<Context = Context<A>>> {
    node: Node,
    name: String,
    installers: Vec<Installer<A>>,
}

impl<A: Actor<Context = Context<A>>> Spawn<A> {
    pub(crate) fn new(node: Node, name: &str) -> Spawn<A> {
        Spawn {
            node,
            name: name.to_string(),
            installers: Vec::new(),
        }
    }

    /// The actor takes `M`, locally as a value and remotely by `M::NAME`.
    pub fn handle<M: WireMessage>(mut self) -> Self
    where
        A: Handler<Incoming<M>>,
    {
        self.installers
            .push(Box::new(|addr: &Addr<A>, entry: &mut Entry| {
                let recipient: Recipient<Incoming<M>> = addr.clone().recipient();
                entry
                    .local
                    .push((TypeId::of::<M>(), Box::new(recipient.clone())));
                let deliver: Deliver = Arc::new(move |from, payload, limit| {
                    // An actor that stopped (its mailbox closed) takes nothing: say so, so that
                    // the frame is counted as dropped rather than delivered (and not decoded).
                    if !recipient.connected() {
                        return Ok(false);
                    }
                    let msg: M = codec::decode_within_limit(payload, limit)?;
                    recipient.do_send(Incoming { from, msg });
                    Ok(true)
                });
                entry.remote.insert(M::NAME, deliver);
            }));
        self
    }

    /// The actor takes `Exited`, so it can link.
    pub fn exited(mut self) -> Self
    where
        A: Handler<Exited>,
    {
        self.installers
            .push(Box::new(|addr: &Addr<A>, entry: &mut Entry| {
                entry.exited = Some(addr.clone().recipient());
            }));
        self
    }

    /// Starts the actor on the current arbiter and registers it under its name.
    pub fn start(self, actor: A) -> Result<(Upid, Addr<A>), ProcessError> {
        self.start_with(|_| actor)
    }

    /// Like `start`, with the actor's context at hand when building it.
    pub fn start_with(
        self,
        f: impl FnOnce(&mut Context<A>) -> A,
    ) -> Result<(Upid, Addr<A>), ProcessError> {
        let upid = self.node.upid(&self.name)?;
        let actors = &self.node.inner.actors;
        if actors.contains_key(self.name.as_str()) {
            return Err(ProcessError::NameTaken(self.name));
        }
        // No registry guard is held while the actor is built: building it may send.
        let addr = A::create(f);
        let mut entry = Entry::default();
        for install in self.installers {
            install(&addr, &mut entry);
        }
        match actors.entry(Arc::from(self.name.as_str())) {
            dashmap::Entry::Vacant(slot) => {
                slot.insert(entry);
                self.node.inner.generation.fetch_add(1, Ordering::Release);
            }
            // Lost a race for the name: the new actor stops once `addr` is dropped.
            dashmap::Entry::Occupied(_) => return Err(ProcessError::NameTaken(self.name)),
        };
        Ok((upid, addr))
    }
}

/// What an actor holds to talk: its own Upid and the node. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Process {
    node: Node,
    me: Upid,
}

impl Process {
    pub(crate) fn new(node: Node, me: Upid) -> Process {
        Process { node, me }
    }

    pub fn me(&self) -> &Upid {
        &self.me
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    pub fn send<M: WireMessage>(&self, to: &Upid, msg: M) {
        self.node.send_from(&self.me, to, msg)
    }

    pub fn delay<M: WireMessage>(&self, delay: Duration, to: &Upid, msg: M) {
        self.node.delay(delay, &self.me, to, msg)
    }

    pub fn link(&self, to: &Upid) {
        self.node.link(&self.me, to)
    }

    pub fn unlink(&self, to: &Upid) {
        self.node.unlink(&self.me, to)
    }
}
