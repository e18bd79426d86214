//! How tests and benches read the master's books: an actor that hands the master's answers to
//! `InspectMaster` to a channel.

use actix::{Actor, Context, Handler};
use meso::process::{Incoming, Node, Upid};
use meso::protocol::MasterInspection;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

struct Inspector(UnboundedSender<MasterInspection>);

impl Actor for Inspector {
    type Context = Context<Self>;
}

impl Handler<Incoming<MasterInspection>> for Inspector {
    type Result = ();
    fn handle(&mut self, m: Incoming<MasterInspection>, _: &mut Context<Self>) {
        let _ = self.0.send(m.msg);
    }
}

/// Starts the actor `inspector` on `node`: send `InspectMaster` from its Upid, and the answers
/// come on the receiver.
pub fn start_inspector(node: &Node) -> (Upid, UnboundedReceiver<MasterInspection>) {
    let (tx, rx) = unbounded_channel();
    let (me, _) = node
        .actor::<Inspector>("inspector")
        .handle::<MasterInspection>()
        .start(Inspector(tx))
        .expect("the inspector starts");
    (me, rx)
}
