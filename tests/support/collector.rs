//! An actor that reports everything it receives to the test through a channel, and answers pings.
#![allow(dead_code)]

use super::echo::{Ping, Pong};
use actix::{Actor, ActorContext, Addr, Context, Handler};
use meso::process::{Exited, Incoming, Node, Process, Upid};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Ping { from: Upid, seq: u64 },
    Pong { from: Upid, seq: u64 },
    Exited(Upid),
}

pub struct Collector {
    process: Process,
    tx: UnboundedSender<Event>,
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<Incoming<Ping>> for Collector {
    type Result = ();
    fn handle(&mut self, m: Incoming<Ping>, _: &mut Context<Self>) {
        let _ = self.tx.send(Event::Ping {
            from: m.from.clone(),
            seq: m.msg.seq,
        });
        self.process.send(&m.from, Pong { seq: m.msg.seq });
    }
}

impl Handler<Incoming<Pong>> for Collector {
    type Result = ();
    fn handle(&mut self, m: Incoming<Pong>, _: &mut Context<Self>) {
        let _ = self.tx.send(Event::Pong {
            from: m.from,
            seq: m.msg.seq,
        });
    }
}

impl Handler<Exited> for Collector {
    type Result = ();
    fn handle(&mut self, m: Exited, _: &mut Context<Self>) {
        let _ = self.tx.send(Event::Exited(m.0));
    }
}

/// Stops the collector (its mailbox closes; the node still has it registered).
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct StopCollector;

impl Handler<StopCollector> for Collector {
    type Result = ();
    fn handle(&mut self, _: StopCollector, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

pub struct Probe {
    pub upid: Upid,
    pub process: Process,
    pub rx: UnboundedReceiver<Event>,
    pub addr: Addr<Collector>,
}

impl Probe {
    pub fn start(node: &Node, name: &str) -> Probe {
        let (tx, rx) = unbounded_channel();
        let process = node.process(name).unwrap();
        let collector = Collector {
            process: process.clone(),
            tx,
        };
        let (upid, addr) = node
            .actor::<Collector>(name)
            .handle::<Ping>()
            .handle::<Pong>()
            .exited()
            .start(collector)
            .unwrap();
        Probe {
            upid,
            process,
            rx,
            addr,
        }
    }

    /// The next event, or a panic naming what was awaited after 10 s.
    pub async fn next(&mut self, what: &str) -> Event {
        match tokio::time::timeout(Duration::from_secs(10), self.rx.recv()).await {
            Ok(Some(e)) => e,
            _ => panic!("no event while waiting for {what}"),
        }
    }

    /// Whatever arrives within `wait`.
    pub async fn drain(&mut self, wait: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            out.push(e);
        }
        out
    }

    pub fn ping(&self, to: &Upid, seq: u64) {
        self.process.send(
            to,
            Ping {
                seq,
                body: format!("ping {seq}"),
            },
        );
    }
}
