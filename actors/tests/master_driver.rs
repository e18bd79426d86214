//! The scheduler driver against an in-process master: what it hears when the master is not there
//! yet, and when the master it registered with goes away.

use actix::{Actor, Context, Handler};
use meso::process::{Node, NodeConfig, Upid};
use meso::protocol::FrameworkInfo;
use meso_actors::master::{start_master, MasterConfig};
use meso_actors::scheduler::{start_scheduler, SchedulerEvent};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

struct Forward(UnboundedSender<SchedulerEvent>);

impl Actor for Forward {
    type Context = Context<Self>;
}

impl Handler<SchedulerEvent> for Forward {
    type Result = ();
    fn handle(&mut self, event: SchedulerEvent, _: &mut Context<Self>) {
        let _ = self.0.send(event);
    }
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// The next event that `pick` accepts, within `limit`.
async fn wait_for(
    rx: &mut UnboundedReceiver<SchedulerEvent>,
    limit: Duration,
    what: &str,
    pick: impl Fn(&SchedulerEvent) -> bool,
) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(event)) if pick(&event) => return,
            Ok(Some(_)) => {}
            _ => panic!("no {what} within {limit:?}"),
        }
    }
}

/// The first dial to a master that is not listening yet fails and fires the driver's link; the
/// registration frame stays queued and reaches the master once it listens. The answer then finds
/// no link in place: the driver must link again, or it never hears that this master went away
/// and never registers with the next one (it went on believing it was registered).
#[actix_rt::test]
async fn a_driver_registered_after_a_failed_dial_still_hears_the_master_go() {
    let addr = free_addr();
    let master = Upid::new("master", addr).unwrap();
    let node = Node::start(NodeConfig::default()).await.unwrap();
    let (tx, mut rx) = unbounded_channel();
    let events = Forward(tx).start().recipient();
    let _driver =
        start_scheduler(&node, master, FrameworkInfo::new("link", "test"), events).expect("driver");
    // Nothing listens: the framework hears it once.
    wait_for(&mut rx, Duration::from_secs(5), "Disconnected", |e| {
        matches!(e, SchedulerEvent::Disconnected)
    })
    .await;

    let master_node = Node::start(NodeConfig {
        listen: addr,
        ..NodeConfig::default()
    })
    .await
    .expect("the master's node");
    start_master(&master_node, MasterConfig::default()).expect("master");
    wait_for(&mut rx, Duration::from_secs(15), "Registered", |e| {
        matches!(e, SchedulerEvent::Registered { .. })
    })
    .await;

    master_node.shutdown();
    wait_for(&mut rx, Duration::from_secs(10), "Disconnected", |e| {
        matches!(e, SchedulerEvent::Disconnected)
    })
    .await;
}
