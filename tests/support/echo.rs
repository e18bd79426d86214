//! Messages and an echo actor shared by the process-layer tests and the `echo_node` example.
#![allow(dead_code)]

use actix::{Actor, Context, Handler};
use meso::process::{Incoming, Process, WireMessage};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ping {
    pub seq: u64,
    pub body: String,
}

impl WireMessage for Ping {
    const NAME: &'static str = "test.Ping";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    pub seq: u64,
}

impl WireMessage for Pong {
    const NAME: &'static str = "test.Pong";
}

/// Answers every `Ping` with a `Pong` of the same sequence number, to whoever sent it.
pub struct Echo {
    pub process: Process,
}

impl Actor for Echo {
    type Context = Context<Self>;
}

impl Handler<Incoming<Ping>> for Echo {
    type Result = ();
    fn handle(&mut self, m: Incoming<Ping>, _: &mut Context<Self>) {
        self.process.send(&m.from, Pong { seq: m.msg.seq });
    }
}
