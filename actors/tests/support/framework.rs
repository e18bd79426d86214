//! Scaffolding shared by the end-to-end tests that run the real `meso` binary for the master and
//! the agents and a framework in the test: spawning masters and agents, a framework whose events
//! the test reads (with timeouts), and reading the master's books.
//!
//! Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use super::{free_port, poll, Children};
#[path = "../../../benches/support/inspector.rs"]
mod inspector;
use actix::{Actor, Context, Handler};
pub use inspector::start_inspector;
use meso::process::{Node, NodeConfig, Upid};
use meso::protocol::*;
use meso::resources::Resources;
use meso_actors::scheduler::{start_scheduler, SchedulerDriver, SchedulerEvent};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;

/// The master (`meso master`) listening on `port` of the loopback.
pub fn master_upid(port: u16) -> Upid {
    Upid::new("master", format!("127.0.0.1:{port}").parse().unwrap()).unwrap()
}

/// `meso master` on `port` with its work dir, and `extra` flags.
pub fn spawn_master(children: &mut Children, port: u16, work_dir: &Path, extra: &[&str]) -> usize {
    let port = port.to_string();
    let mut args = vec![
        "master",
        "--port",
        &port,
        "--work-dir",
        work_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    children.spawn(&args)
}

/// `meso agent` of `resources` on a free port, for the master on `master`.
pub fn spawn_agent(
    children: &mut Children,
    master: u16,
    work_dir: &Path,
    resources: &str,
) -> usize {
    spawn_agent_on(children, master, free_port(), work_dir, resources)
}

/// An agent on a given port: restarted on the same port and work dir, it is the same agent.
pub fn spawn_agent_on(
    children: &mut Children,
    master: u16,
    port: u16,
    work_dir: &Path,
    resources: &str,
) -> usize {
    spawn_agent_with(children, master, port, work_dir, resources, &[])
}

/// An agent on a given port, with `extra` flags.
pub fn spawn_agent_with(
    children: &mut Children,
    master: u16,
    port: u16,
    work_dir: &Path,
    resources: &str,
    extra: &[&str],
) -> usize {
    let master = format!("127.0.0.1:{master}");
    let port = port.to_string();
    let mut args = vec![
        "agent",
        "--master",
        &master,
        "--port",
        &port,
        "--work-dir",
        work_dir.to_str().unwrap(),
        "--resources",
        resources,
    ];
    args.extend_from_slice(extra);
    children.spawn(&args)
}

/// A master (work directory `<dir>/master`) and one agent of `resources` (work directory
/// `<dir>/agent`), as separate `meso` processes; returns the master's address.
pub fn cluster(children: &mut Children, dir: &Path, resources: &str) -> Upid {
    let port = free_port();
    spawn_master(children, port, &dir.join("master"), &[]);
    spawn_agent(children, port, &dir.join("agent"), resources);
    master_upid(port)
}

/// Waits (`tries` looks, `every` apart) for the agent of `work_dir` to have checkpointed `id` as
/// its own; panics when it has not. An agent killed before it has checkpointed its id comes back
/// as a new agent (as in Mesos): a test kills it only once its id is on disk, so that it returns
/// as the same agent.
pub async fn wait_id_checkpointed(work_dir: &Path, id: &AgentId, tries: usize, every: Duration) {
    let latest = work_dir.join("meta").join("agents").join("latest");
    poll(tries, every, || {
        std::fs::read_to_string(&latest)
            .ok()
            .filter(|s| s == id.as_str())
    })
    .await
    .unwrap_or_else(|| panic!("the agent of {} checkpoints its id", work_dir.display()));
}

/// Panics unless `status` is the agent's update from `agent` (with a uuid to acknowledge), not
/// an answer to a reconciliation.
pub fn assert_agents_update(status: &TaskStatus, agent: &AgentId) {
    assert!(
        status.uuid.is_some() && status.reason != Some(TaskStatusReason::Reconciliation),
        "the agent's update, not a reconciliation answer: {status:?}"
    );
    assert_eq!(status.agent_id.as_ref(), Some(agent), "{status:?}");
}

/// Forwards the scheduler driver's events to the test.
pub struct Forward(pub UnboundedSender<SchedulerEvent>);

impl Actor for Forward {
    type Context = Context<Self>;
}

impl Handler<SchedulerEvent> for Forward {
    type Result = ();
    fn handle(&mut self, event: SchedulerEvent, _: &mut Context<Self>) {
        let _ = self.0.send(event);
    }
}

/// Reads the master's books (from a node of its own, no framework's) until `done` holds of them;
/// returns them, or panics with the last ones when that does not happen within `limit`.
pub async fn wait_books(
    master: &Upid,
    limit: Duration,
    what: &str,
    done: impl Fn(&MasterInspection) -> bool,
) -> MasterInspection {
    let node = Node::start(NodeConfig::default()).await.unwrap();
    let (me, mut rx) = start_inspector(&node);
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        node.send_from(&me, master, InspectMaster::all());
        if let Ok(Some(books)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            if done(&books) {
                node.shutdown();
                return books;
            }
            last = Some(books);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.shutdown();
    panic!("no {what} within {limit:?}; the master's last books: {last:?}");
}

/// Reads the master's books until its account of `agent` shows nothing used; returns them.
pub async fn wait_agent_free(
    master: &Upid,
    agent: &AgentId,
    limit: Duration,
    what: &str,
) -> MasterInspection {
    wait_books(master, limit, what, |books| {
        books
            .agents
            .iter()
            .any(|a| &a.agent_id == agent && a.used.is_empty())
    })
    .await
}

/// A framework in the test: its driver, the events it hears, and the node it runs on.
pub struct Framework {
    pub driver: SchedulerDriver,
    pub rx: UnboundedReceiver<SchedulerEvent>,
    pub node: Node,
    /// Every status update received, of any task, in order.
    pub statuses: Vec<TaskStatus>,
}

/// A framework of `info` for `master`, on a node of its own (not waiting for it to register).
pub async fn framework(master: &Upid, info: FrameworkInfo) -> Framework {
    let node = Node::start(NodeConfig::default()).await.unwrap();
    let (tx, rx) = unbounded_channel();
    let events = Forward(tx).start().recipient();
    let driver = start_scheduler(&node, master.clone(), info, events).unwrap();
    Framework {
        driver,
        rx,
        node,
        statuses: Vec::new(),
    }
}

impl Framework {
    /// The next event before `deadline`, or `None` once it has passed (or the driver has gone).
    /// A status update is kept in `statuses` too.
    pub async fn next_before(&mut self, deadline: Instant) -> Option<SchedulerEvent> {
        let event = tokio::time::timeout_at(deadline, self.rx.recv())
            .await
            .ok()
            .flatten()?;
        if let SchedulerEvent::StatusUpdate(s) = &event {
            self.statuses.push(s.clone());
        }
        Some(event)
    }

    /// The next event, before `deadline`.
    pub async fn next(&mut self, deadline: Instant, what: &str) -> SchedulerEvent {
        match self.next_before(deadline).await {
            Some(event) => event,
            None => panic!(
                "no {what} in time (or the driver went away); statuses so far: {:?}",
                self.statuses
            ),
        }
    }

    /// The next event that `pick` maps to something, within `limit`. Every status update on the
    /// way is kept in `statuses`.
    pub async fn wait<T>(
        &mut self,
        limit: Duration,
        what: &str,
        mut pick: impl FnMut(&SchedulerEvent) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            match self.next_before(deadline).await {
                Some(event) => {
                    if let Some(t) = pick(&event) {
                        return t;
                    }
                }
                None => panic!(
                    "no {what} within {limit:?}; statuses so far: {:?}",
                    self.statuses
                ),
            }
        }
    }

    /// Every event that arrives within `quiet` (status updates kept in `statuses` too).
    pub async fn drain(&mut self, quiet: Duration) -> Vec<SchedulerEvent> {
        let deadline = Instant::now() + quiet;
        let mut events = Vec::new();
        while let Some(event) = self.next_before(deadline).await {
            events.push(event);
        }
        events
    }

    /// The next offers, within `limit`.
    pub async fn offers(&mut self, limit: Duration, what: &str) -> Vec<Offer> {
        self.wait(limit, what, |e| match e {
            SchedulerEvent::ResourceOffers(o) => Some(o.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for the master to register the framework; returns the id it was given, and panics
    /// on an error.
    pub async fn registered(&mut self, limit: Duration) -> FrameworkId {
        self.wait(limit, "registration", |e| match e {
            SchedulerEvent::Registered { framework_id, .. } => Some(framework_id.clone()),
            SchedulerEvent::Error(e) => panic!("registration refused: {e}"),
            _ => None,
        })
        .await
    }

    /// Waits for the master to take the framework back under `id`; panics on an error.
    pub async fn reregistered(&mut self, id: &FrameworkId, limit: Duration) {
        self.wait(limit, "reregistration", |e| match e {
            SchedulerEvent::Reregistered { framework_id, .. } => {
                assert_eq!(framework_id, id);
                Some(())
            }
            SchedulerEvent::Error(e) => panic!("refused: {e}"),
            _ => None,
        })
        .await
    }

    /// Launches `command` as task `id` on the first offer, declining the others.
    pub async fn launch(&mut self, id: &str, resources: &str, command: &str) -> AgentId {
        let offers = self.offers(Duration::from_secs(10), "offers").await;
        let offer = &offers[0];
        let task = TaskInfo::command(
            TaskId::new(id),
            offer.agent_id.clone(),
            Resources::parse(resources).unwrap(),
            CommandInfo::shell(command),
        );
        self.driver.launch(
            std::slice::from_ref(&offer.id),
            vec![task],
            Filters::default(),
        );
        for other in &offers[1..] {
            self.driver.decline(other.id.clone(), Filters::default());
        }
        offer.agent_id.clone()
    }

    /// Waits for a status of `task` in `state`, failing on any terminal state that is not it.
    pub async fn state(&mut self, task: &str, state: TaskState, limit: Duration) -> TaskStatus {
        let task = TaskId::new(task);
        self.wait(limit, &format!("{state} of {task}"), |e| match e {
            SchedulerEvent::StatusUpdate(s) if s.task_id == task => {
                assert!(
                    s.state == state || !s.state.is_terminal(),
                    "task {task} ended {} ({:?}: {:?})",
                    s.state,
                    s.reason,
                    s.message
                );
                (s.state == state).then(|| s.clone())
            }
            _ => None,
        })
        .await
    }

    /// Asks for the task's state until the master answers, and returns that answer.
    pub async fn reconcile(&mut self, task: &str, agent: &AgentId) -> TaskStatus {
        let named = vec![(TaskId::new(task), Some(agent.clone()))];
        self.reconcile_until(task, named).await
    }

    /// Reconciles `statuses` (none: every task of the framework, implicitly) again and again
    /// until the master answers about `task`, and returns that answer.
    pub async fn reconcile_until(
        &mut self,
        task: &str,
        statuses: Vec<(TaskId, Option<AgentId>)>,
    ) -> TaskStatus {
        let task = TaskId::new(task);
        for _ in 0..60 {
            self.driver.reconcile(statuses.clone());
            let deadline = Instant::now() + Duration::from_millis(500);
            while let Some(event) = self.next_before(deadline).await {
                if let SchedulerEvent::StatusUpdate(s) = event {
                    if s.task_id == task && s.reason == Some(TaskStatusReason::Reconciliation) {
                        return s;
                    }
                }
            }
        }
        panic!("no reconciliation answer for {task}");
    }

    /// The scheduler dies: its driver stops without unregistering and its node goes away.
    pub fn die(self) {
        self.driver.abort();
        self.node.shutdown();
    }
}
