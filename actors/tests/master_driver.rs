//! The scheduler driver against an in-process master: what it hears when the master is not there
//! yet, and when the master it registered with goes away.

use meso::process::{Node, NodeConfig, Upid};
use meso::protocol::FrameworkInfo;
use meso_actors::master::{start_master, MasterConfig};
use meso_actors::scheduler::SchedulerEvent;
use std::net::SocketAddr;
use std::time::Duration;

mod support;
use support::framework::framework;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// The first dial to a master that is not listening yet fails and fires the driver's link; the
/// registration frame stays queued and reaches the master once it listens. The answer then finds
/// no link in place: the driver must link again, or it never hears that this master went away
/// and never registers with the next one (it went on believing it was registered).
#[actix_rt::test]
async fn a_driver_registered_after_a_failed_dial_still_hears_the_master_go() {
    let addr = free_addr();
    let master = Upid::new("master", addr).unwrap();
    let mut f = framework(&master, FrameworkInfo::new("link", "test")).await;
    // Nothing listens: the framework hears it once.
    f.wait(Duration::from_secs(5), "Disconnected", |e| {
        matches!(e, SchedulerEvent::Disconnected).then_some(())
    })
    .await;

    let master_node = Node::start(NodeConfig {
        listen: addr,
        ..NodeConfig::default()
    })
    .await
    .expect("the master's node");
    start_master(&master_node, MasterConfig::default()).expect("master");
    f.wait(Duration::from_secs(15), "Registered", |e| {
        matches!(e, SchedulerEvent::Registered { .. }).then_some(())
    })
    .await;

    master_node.shutdown();
    f.wait(Duration::from_secs(10), "Disconnected", |e| {
        matches!(e, SchedulerEvent::Disconnected).then_some(())
    })
    .await;
}
