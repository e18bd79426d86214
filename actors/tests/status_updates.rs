//! Status updates and kills through a real agent actor, with a fake master and (where the case
//! allows) a fake executor on another node over loopback TCP.

mod support;

use actix::{Actor, Context, Handler};
use meso::process::{FaultConfig, Incoming, Node, NodeConfig, Process, Upid};
use meso::protocol::*;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{
    assert_group_gone, command_task, start_fake_master, wait_file_every, Cluster, ClusterOptions,
    Event, Events, MasterBehaviour,
};
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

const TIMEOUT: Duration = Duration::from_secs(12);

/// Stands in for executor `ex` of framework `fw`: registers, and for each task it is given
/// reports RUNNING and FINISHED back to back (when `finish`), or only records it.
struct FakeExecutor {
    process: Process,
    agent: Upid,
    tx: UnboundedSender<Event>,
    finish: bool,
}

impl Actor for FakeExecutor {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        let msg = RegisterExecutor {
            framework_id: FrameworkId::new("fw"),
            executor_id: ExecutorId::new("ex"),
        };
        self.process.send(&self.agent, msg);
    }
}

impl Handler<Incoming<ExecutorRegistered>> for FakeExecutor {
    type Result = ();
    fn handle(&mut self, _: Incoming<ExecutorRegistered>, _: &mut Context<Self>) {}
}

impl Handler<Incoming<ExecutorStatusAck>> for FakeExecutor {
    type Result = ();
    fn handle(&mut self, _: Incoming<ExecutorStatusAck>, _: &mut Context<Self>) {}
}

impl Handler<Incoming<LaunchTask>> for FakeExecutor {
    type Result = ();
    fn handle(&mut self, m: Incoming<LaunchTask>, _: &mut Context<Self>) {
        let task_id = m.msg.task.task_id.clone();
        let _ = self.tx.send(Event::Launched(m.msg.task));
        if !self.finish {
            return;
        }
        for state in [TaskState::Running, TaskState::Finished] {
            let msg = ExecutorStatusUpdate {
                framework_id: FrameworkId::new("fw"),
                executor_id: ExecutorId::new("ex"),
                status: TaskStatus::new(task_id.clone(), state, 1).reliable(),
            };
            self.process.send(&self.agent, msg);
        }
    }
}

fn start_fake_executor(node: &Node, agent: Upid, tx: UnboundedSender<Event>, finish: bool) {
    let process = node.process("executor").unwrap();
    let fake = FakeExecutor {
        process,
        agent,
        tx,
        finish,
    };
    node.actor::<FakeExecutor>("executor")
        .handle::<ExecutorRegistered>()
        .handle::<ExecutorStatusAck>()
        .handle::<LaunchTask>()
        .start(fake)
        .unwrap();
}

async fn setup_on(master_node: NodeConfig) -> Cluster {
    Cluster::start(ClusterOptions {
        master_node,
        kill_grace_ms: 500,
        work_dir_in_memory: true,
        timeout: TIMEOUT,
        registration_first: false,
        ..ClusterOptions::default()
    })
    .await
}

async fn setup() -> Cluster {
    setup_on(NodeConfig::default()).await
}

/// A task for the custom executor `ex`, whose process only sleeps (a fake stands in for it).
fn custom_task(id: &str) -> TaskInfo {
    support::custom_task(id, "ex", "exec sleep 20")
}

impl Cluster {
    async fn wait_sandbox(&self, executor: &str) -> PathBuf {
        let every = Duration::from_millis(25);
        let found = support::poll(200, every, || {
            let mut entries = std::fs::read_dir(self.runs_dir(executor)).ok()?;
            entries
                .find_map(|entry| entry.ok())
                .map(|entry| entry.path())
        });
        found
            .await
            .unwrap_or_else(|| panic!("executor {executor} never got a sandbox"))
    }
}

/// Field case: an executor sends RUNNING then FINISHED back to back, with random delays (and a
/// few duplicates) injected into what the agent sends, 500 times: the framework (which drops
/// duplicate uuids, as the scheduler driver does) always sees RUNNING before FINISHED.
#[actix_rt::test]
async fn running_always_comes_before_finished_under_delays() {
    const ROUNDS: usize = 500;
    let seed = 4;
    let mut s = setup().await;
    s.agent_node.set_faults(Some(FaultConfig {
        delay: 0.5,
        max_delay_ms: 15,
        duplicate: 0.05,
        ..FaultConfig::seeded(seed)
    }));
    s.run(custom_task("t0"));
    s.wait_sandbox("ex").await;
    start_fake_executor(&s.master_node, s.agent.clone(), s.tx.clone(), true);
    for i in 1..ROUNDS {
        s.run(custom_task(&format!("t{i}")));
    }
    let mut seen: HashMap<TaskId, Vec<TaskState>> = HashMap::new();
    let mut uuids = HashSet::new();
    let mut finished = 0;
    while finished < ROUNDS {
        let Event::Update(u) = s.events.next("updates").await else {
            continue;
        };
        if !uuids.insert(u.status.uuid) {
            continue;
        }
        let states = seen.entry(u.status.task_id.clone()).or_default();
        states.push(u.status.state);
        if u.status.state == TaskState::Finished {
            finished += 1;
            assert_eq!(
                *states,
                [TaskState::Running, TaskState::Finished],
                "task {} with seed {seed}",
                u.status.task_id
            );
        }
    }
    assert_eq!(seen.len(), ROUNDS);
    s.agent_node.set_faults(None);
    s.shutdown_framework();
}

/// Field case: a command `exit 0`, whose executor sends FINISHED and exits at once: exactly one
/// terminal update, FINISHED; the agent makes up no FAILED or LOST.
#[actix_rt::test]
async fn exit_zero_gives_exactly_one_terminal_update() {
    let mut s = setup().await;
    s.run(command_task("zero", "exit 0"));
    let seen = s.events.until_terminal("zero").await;
    assert_eq!(seen.last().unwrap().status.state, TaskState::Finished);
    loop {
        match s.events.next("the executor's end").await {
            Event::ExecutorExited(e) => {
                assert_eq!(e.executor_id.as_str(), "zero");
                break;
            }
            Event::Update(u) => panic!("an update after FINISHED: {u:?}"),
            _ => {}
        }
    }
    // Anything the agent would make up comes right after the executor's end.
    s.events
        .assert_no_update_within(Duration::from_millis(500))
        .await;
}

/// Field case: one executor with two tasks, both killed before the executor registered: two
/// TASK_KILLED, and the executor, registering afterwards, never receives either task.
#[actix_rt::test]
async fn two_tasks_killed_before_their_executor_registers() {
    let mut s = setup().await;
    s.run(custom_task("a"));
    s.run(custom_task("b"));
    s.wait_sandbox("ex").await;
    s.kill("a", Some(500));
    s.kill("b", Some(500));
    let mut killed = HashSet::new();
    while killed.len() < 2 {
        if let Event::Update(u) = s.events.next("two kills").await {
            assert_eq!(u.status.state, TaskState::Killed, "{u:?}");
            assert_eq!(
                u.status.reason,
                Some(TaskStatusReason::TaskKilledDuringLaunch)
            );
            assert!(killed.insert(u.status.task_id));
        }
    }
    start_fake_executor(&s.master_node, s.agent.clone(), s.tx.clone(), false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(e) = s.events.try_recv() {
        match e {
            Event::Launched(t) => panic!("the executor received {}", t.task_id),
            Event::Update(u) => panic!("an update after the kills: {u:?}"),
            _ => {}
        }
    }
}

/// Item 6: a running task that traps SIGTERM gets it, then SIGKILL after the grace period;
/// TASK_KILLED, and no process of its group is left.
#[actix_rt::test]
async fn a_task_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let mut s = setup().await;
    let command = "trap 'echo term >> got_term' TERM; echo $$ > pgid; \
                   while true; do sleep 0.1; done";
    s.run(command_task("stubborn", command));
    s.events.wait_running().await;
    let sandbox = s.wait_sandbox("stubborn").await;
    let pgid = wait_line(&sandbox.join("pgid")).await.parse().unwrap();
    // Let the shell install its trap.
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.kill("stubborn", Some(500));
    let seen = s.events.until_terminal("stubborn").await;
    assert_eq!(seen.last().unwrap().status.state, TaskState::Killed);
    assert!(
        wait_line(&sandbox.join("got_term"))
            .await
            .starts_with("term"),
        "the task got SIGTERM first"
    );
    assert_group_gone(pgid).await;
}

async fn wait_line(path: &Path) -> String {
    let text = wait_file_every(path, Duration::from_millis(25)).await;
    text.trim().to_string()
}

/// Item 1, the agent's side: the master goes away and comes back on the same address; the agent
/// reregisters with its id and the tasks it still runs.
#[actix_rt::test]
async fn the_agent_reregisters_when_the_master_comes_back() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = setup_on(NodeConfig::listen(addr)).await;
    s.run(custom_task("staged"));
    s.wait_sandbox("ex").await;
    s.master_node.shutdown();
    s.master_node.unregister("master");
    // The old listener closes once its task has been cancelled.
    let mut tries = 0;
    let master_node = loop {
        match Node::start(NodeConfig::listen(addr)).await {
            Ok(node) => break node,
            Err(e) if tries < 100 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("cannot listen on {addr} again: {e}"),
        }
    };
    let (tx, rx) = unbounded_channel();
    let _master = start_fake_master(&master_node, tx, MasterBehaviour::default());
    let rereg = Events::new(rx, TIMEOUT).wait_reregistered().await;
    assert_eq!(rereg.agent.id, Some(AgentId::new("agent-1")));
    let task = rereg
        .tasks
        .iter()
        .find(|t| t.task.task_id.as_str() == "staged")
        .expect("the task is reported");
    assert_eq!(task.state, TaskState::Staging);
    assert!(rereg
        .frameworks
        .iter()
        .any(|f| f.id == Some(FrameworkId::new("fw"))));
    s.master = master_node.process("master").unwrap();
    s.shutdown_framework();
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Mesos: when a framework fails over, the agent hears of its new scheduler (UpdateFramework)
/// and resends the framework's unacknowledged updates at once, rather than at their next retry,
/// which may be up to 30 s away: the new scheduler gets what the old one missed now.
#[actix_rt::test]
async fn a_framework_that_failed_over_gets_its_unacknowledged_updates_at_once() {
    let mut s = Cluster::start(ClusterOptions {
        master: MasterBehaviour {
            ack: false,
            ..MasterBehaviour::default()
        },
        kill_grace_ms: 500,
        work_dir_in_memory: true,
        timeout: TIMEOUT,
        registration_first: false,
        ..ClusterOptions::default()
    })
    .await;
    s.run(command_task("unacked", "sleep 30"));
    // Unacknowledged, the first update goes again 1, 2 and 4 s apart: after its third resend the
    // next one is 8 s away.
    let mut uuid = None;
    let mut sent = 0;
    while sent < 4 {
        if let Event::Update(u) = s.events.next("the update and its resends").await {
            if u.status.task_id.as_str() == "unacked" {
                assert_eq!(*uuid.get_or_insert(u.status.uuid), u.status.uuid, "{u:?}");
                sent += 1;
            }
        }
    }
    let update = UpdateFramework {
        framework_id: FrameworkId::new("fw"),
        scheduler: s.master.me().clone(),
    };
    s.master.send(&s.agent, update);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let again = loop {
        match s.events.next_before(deadline).await {
            Some(Event::Update(u)) if u.status.task_id.as_str() == "unacked" => break u,
            Some(_) => {}
            None => panic!("the update in flight did not go again at once"),
        }
    };
    assert_eq!(again.status.uuid, uuid.unwrap());
    s.shutdown_framework();
}
