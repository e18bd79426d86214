//! The master actor over real loopback TCP, with a fake agent and a fake scheduler on other nodes
//! that report what they receive through a channel.

use super::*;
use meso::process::{FaultConfig, NodeConfig};
use meso::resources::Resources;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Event {
    AgentRegistered(AgentRegistered),
    RunTask(RunTask),
    FrameworkRegistered(FrameworkRegistered),
    Offers(ResourceOffers),
    Status(StatusUpdate),
    Rescind(RescindOffer),
    AgentLost(AgentLost),
    AgentReregistered(AgentReregistered),
}

struct Fake {
    tx: UnboundedSender<Event>,
    /// Under injected duplication: what was already reported, so a repeated frame is not
    /// reported again (a duplicate is exactly what the transport made of one message).
    seen: Option<std::collections::HashSet<String>>,
}

impl Fake {
    fn report(&mut self, event: Event) {
        if let Some(seen) = &mut self.seen {
            if !seen.insert(format!("{event:?}")) {
                return;
            }
        }
        let _ = self.tx.send(event);
    }
}

impl Actor for Fake {
    type Context = Context<Self>;
}

macro_rules! report {
    ($msg:ident, $variant:ident) => {
        impl Handler<Incoming<$msg>> for Fake {
            type Result = ();
            fn handle(&mut self, m: Incoming<$msg>, _: &mut Context<Self>) {
                self.report(Event::$variant(m.msg));
            }
        }
    };
}

report!(AgentRegistered, AgentRegistered);
report!(RunTask, RunTask);
report!(FrameworkRegistered, FrameworkRegistered);
report!(ResourceOffers, Offers);
report!(StatusUpdate, Status);
report!(RescindOffer, Rescind);
report!(AgentLost, AgentLost);
report!(AgentReregistered, AgentReregistered);

fn start_fake(node: &Node, name: &str) -> (Process, UnboundedReceiver<Event>) {
    start_fake_dedup(node, name, false)
}

/// A fake that reports each distinct message once, for nodes whose peers duplicate frames.
fn start_fake_dedup(node: &Node, name: &str, dedup: bool) -> (Process, UnboundedReceiver<Event>) {
    let (tx, rx) = unbounded_channel();
    let seen = dedup.then(Default::default);
    node.actor::<Fake>(name)
        .handle::<AgentRegistered>()
        .handle::<RunTask>()
        .handle::<FrameworkRegistered>()
        .handle::<ResourceOffers>()
        .handle::<StatusUpdate>()
        .handle::<RescindOffer>()
        .handle::<AgentLost>()
        .handle::<AgentReregistered>()
        .start(Fake { tx, seen })
        .unwrap();
    (node.process(name).unwrap(), rx)
}

async fn next(rx: &mut UnboundedReceiver<Event>, what: &str) -> Event {
    match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
        Ok(Some(e)) => e,
        _ => panic!("nothing received while waiting for {what}"),
    }
}

/// Registration, an offer, an accept, `RunTask` at the agent, a status update forwarded to the
/// scheduler; then the agent's node goes away and the scheduler hears its task is lost.
#[actix_rt::test]
async fn register_offer_accept_run_and_lose_the_agent() {
    let master_node = Node::start(NodeConfig::default()).await.unwrap();
    let agent_node = Node::start(NodeConfig::default()).await.unwrap();
    let sched_node = Node::start(NodeConfig::default()).await.unwrap();
    let config = MasterConfig {
        allocation_interval_ms: 50,
        agent_ping_timeout_ms: 100,
        max_agent_ping_timeouts: 2,
        ..MasterConfig::default()
    };
    let master = start_master(&master_node, config).unwrap();
    let (agent, mut agent_rx) = start_fake(&agent_node, "agent-1");
    let (sched, mut sched_rx) = start_fake(&sched_node, "sched");

    agent.send(
        &master,
        RegisterAgent {
            agent: AgentInfo {
                id: None,
                hostname: "host-1".to_string(),
                resources: Resources::parse("cpus:1;mem:256").unwrap(),
                attributes: Vec::new(),
                port: agent_node.addr().port(),
            },
            version: "test".to_string(),
        },
    );
    let Event::AgentRegistered(registered) = next(&mut agent_rx, "AgentRegistered").await else {
        panic!("expected AgentRegistered");
    };
    let agent_id = registered.agent_id;

    sched.send(
        &master,
        RegisterFramework {
            framework: FrameworkInfo::new("test", "user"),
        },
    );
    let Event::FrameworkRegistered(registered) = next(&mut sched_rx, "FrameworkRegistered").await
    else {
        panic!("expected FrameworkRegistered");
    };
    assert_eq!(registered.master_info.upid, master);
    let registered_prefix = registered.master_info.id.clone();
    let framework_id = registered.framework_id;

    let Event::Offers(offers) = next(&mut sched_rx, "ResourceOffers").await else {
        panic!("expected ResourceOffers");
    };
    let offer = &offers.offers[0];
    assert_eq!(offer.agent_upid, *agent.me());
    assert_eq!(offer.agent_id, agent_id);

    let task = TaskInfo::command(
        TaskId::new("t1"),
        agent_id.clone(),
        Resources::parse("cpus:0.5;mem:64").unwrap(),
        CommandInfo::shell("true"),
    );
    sched.send(
        &master,
        AcceptOffers {
            framework_id: framework_id.clone(),
            offer_ids: vec![offer.id.clone()],
            operations: vec![Operation::Launch { tasks: vec![task] }],
            filters: Filters::default(),
        },
    );
    let Event::RunTask(run) = next(&mut agent_rx, "RunTask").await else {
        panic!("expected RunTask");
    };
    assert_eq!(run.task.task_id.as_str(), "t1");
    assert_eq!(run.framework_id, framework_id);
    assert_eq!(run.scheduler, *sched.me());

    let running = StatusUpdate {
        framework_id: framework_id.clone(),
        status: TaskStatus::new(TaskId::new("t1"), TaskState::Running, 0)
            .with_agent(agent_id.clone())
            .reliable(),
        executor_id: Some(ExecutorId::new("t1")),
        source: StatusSource::Executor,
    };
    agent.send(&master, running.clone());
    let Event::Status(forwarded) = next(&mut sched_rx, "StatusUpdate").await else {
        panic!("expected StatusUpdate");
    };
    assert_eq!(forwarded, running);

    // The agent's node goes: its offers go at once; after two missed pings its task is lost,
    // and the scheduler hears of the agent.
    agent_node.shutdown();
    let mut lost = false;
    let mut agent_lost = false;
    while !(lost && agent_lost) {
        match next(&mut sched_rx, "TASK_LOST and AgentLost").await {
            Event::Status(u) => {
                assert_eq!(u.status.state, TaskState::Lost);
                assert_eq!(u.status.reason, Some(TaskStatusReason::AgentRemoved));
                lost = true;
            }
            Event::AgentLost(l) => {
                assert_eq!(l.agent_id, agent_id);
                agent_lost = true;
            }
            Event::Rescind(r) => assert!(r.offer_id.as_str().starts_with(&registered_prefix)),
            Event::Offers(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn agent_info(port: u16, id: Option<AgentId>) -> AgentInfo {
    AgentInfo {
        id,
        hostname: "host".to_string(),
        resources: Resources::parse("cpus:1;mem:256").unwrap(),
        attributes: Vec::new(),
        port,
    }
}

/// The field case over loopback: two agents, an offer from each; one agent's node goes. Its
/// offer is rescinded at once (long before the ping timeout), accepting it gives TASK_LOST, the
/// other offer stays; the agent comes back and is offered once; the framework goes and its
/// offers come back to another framework.
#[actix_rt::test]
async fn a_dropped_agent_is_rescinded_at_once_and_offered_once_when_back() {
    dropped_agent_field_case(None).await;
}

/// The same, with every node duplicating and delaying its frames (from a seed). No drops: the
/// fakes do not retry as an agent and a scheduler driver do (the seeded fault test has drops).
#[actix_rt::test]
async fn the_dropped_agent_field_case_holds_under_duplicates_and_delays() {
    for seed in 1..=3 {
        dropped_agent_field_case(Some(FaultConfig {
            duplicate: 0.3,
            delay: 0.3,
            max_delay_ms: 20,
            ..FaultConfig::seeded(seed)
        }))
        .await;
    }
}

async fn dropped_agent_field_case(faults: Option<FaultConfig>) {
    let dedup = faults.is_some();
    let mut seeds = 0u64;
    let mut start_node = || {
        seeds += 1;
        let faults = faults.map(|f| FaultConfig {
            seed: f.seed * 100 + seeds,
            ..f
        });
        async move {
            let node = Node::start(NodeConfig::default()).await.unwrap();
            node.set_faults(faults);
            node
        }
    };
    let master_node = start_node().await;
    let a1_node = start_node().await;
    let a2_node = start_node().await;
    let sched_node = start_node().await;
    let config = MasterConfig {
        allocation_interval_ms: 50,
        ..MasterConfig::default()
    };
    let master = start_master(&master_node, config).unwrap();
    let mut ids = Vec::new();
    let mut agents = Vec::new();
    for node in [&a1_node, &a2_node] {
        let (agent, mut rx) = start_fake_dedup(node, "agent", dedup);
        let info = agent_info(node.addr().port(), None);
        agent.send(
            &master,
            RegisterAgent {
                agent: info,
                version: "test".to_string(),
            },
        );
        let Event::AgentRegistered(r) = next(&mut rx, "AgentRegistered").await else {
            panic!("expected AgentRegistered");
        };
        ids.push(r.agent_id);
        agents.push((agent, rx));
    }
    let (sched, mut sched_rx) = start_fake_dedup(&sched_node, "sched", dedup);
    sched.send(
        &master,
        RegisterFramework {
            framework: FrameworkInfo::new("one", "user"),
        },
    );
    let Event::FrameworkRegistered(r) = next(&mut sched_rx, "FrameworkRegistered").await else {
        panic!("expected FrameworkRegistered");
    };
    let framework_id = r.framework_id;
    let mut held: Vec<Offer> = Vec::new();
    while held.len() < 2 {
        if let Event::Offers(o) = next(&mut sched_rx, "two offers").await {
            held.extend(o.offers);
        }
    }
    let o1 = held.iter().find(|o| o.agent_id == ids[0]).unwrap().clone();
    let o2 = held.iter().find(|o| o.agent_id == ids[1]).unwrap().clone();

    a1_node.shutdown();
    let rescinded = match next(&mut sched_rx, "the rescind").await {
        Event::Rescind(r) => r.offer_id,
        other => panic!("expected a rescind, got {other:?}"),
    };
    assert_eq!(
        rescinded, o1.id,
        "only the dropped agent's offer is rescinded"
    );
    let task = TaskInfo::command(
        TaskId::new("t1"),
        ids[0].clone(),
        Resources::parse("cpus:0.5").unwrap(),
        CommandInfo::shell("true"),
    );
    sched.send(
        &master,
        AcceptOffers {
            framework_id: framework_id.clone(),
            offer_ids: vec![o1.id.clone()],
            operations: vec![Operation::Launch { tasks: vec![task] }],
            filters: Filters::default(),
        },
    );
    match next(&mut sched_rx, "TASK_LOST").await {
        Event::Status(u) => {
            assert_eq!(u.status.state, TaskState::Lost);
            assert_eq!(u.status.reason, Some(TaskStatusReason::InvalidOffers));
        }
        other => panic!("expected TASK_LOST, got {other:?}"),
    }

    // The agent comes back (a new node, the same id): offered once, whole.
    let back_node = start_node().await;
    let (back, mut back_rx) = start_fake_dedup(&back_node, "agent", dedup);
    let reregister = ReregisterAgent {
        agent: agent_info(back_node.addr().port(), Some(ids[0].clone())),
        version: "test".to_string(),
        tasks: Vec::new(),
        executors: Vec::new(),
        frameworks: Vec::new(),
    };
    back.send(&master, reregister.clone());
    back.send(&master, reregister);
    match next(&mut back_rx, "AgentReregistered").await {
        Event::AgentReregistered(r) => assert_eq!(r.agent_id, ids[0]),
        _ => panic!("expected AgentReregistered"),
    }
    // (A duplicated accept is answered TASK_LOST again: that is no new information.)
    let offered = loop {
        match next(&mut sched_rx, "the returning agent's offer").await {
            Event::Offers(o) => break o.offers,
            Event::Status(u) if dedup && u.status.task_id.as_str() == "t1" => continue,
            other => panic!("expected offers, got {other:?}"),
        }
    };
    assert_eq!(offered.len(), 1);
    assert_eq!(offered[0].agent_id, ids[0]);
    assert_eq!(
        offered[0].resources,
        Resources::parse("cpus:1;mem:256").unwrap()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(e) = sched_rx.try_recv() {
        assert!(
            !matches!(e, Event::Offers(_) | Event::Rescind(_)),
            "unexpected {e:?}"
        );
    }

    // Another framework waits; when the first one goes, its two offers come back to it.
    let other_node = start_node().await;
    let (other, mut other_rx) = start_fake_dedup(&other_node, "sched", dedup);
    other.send(
        &master,
        RegisterFramework {
            framework: FrameworkInfo::new("two", "user"),
        },
    );
    assert!(matches!(
        next(&mut other_rx, "FrameworkRegistered").await,
        Event::FrameworkRegistered(_)
    ));
    sched_node.shutdown();
    let mut got = Vec::new();
    while got.len() < 2 {
        if let Event::Offers(o) = next(&mut other_rx, "the returned offers").await {
            got.extend(o.offers);
        }
    }
    let mut agents_offered: Vec<AgentId> = got.iter().map(|o| o.agent_id.clone()).collect();
    agents_offered.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(agents_offered, expected);
    assert!(got
        .iter()
        .all(|o| o.resources == Resources::parse("cpus:1;mem:256").unwrap()));
    let _ = o2;
    if faults.is_some() {
        let stats = master_node.stats();
        assert!(
            stats.duplicated_fault > 0 && stats.delayed_fault > 0,
            "the master's frames were not faulted: {stats:?}"
        );
    }
}
