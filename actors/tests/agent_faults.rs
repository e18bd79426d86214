//! A real agent and real `meso executor` processes under faults: frames delivered twice, frames
//! lost, an executor killed with SIGKILL, the agent shut down by the master.

use actix::{Actor, Context, Handler};
use meso::process::{FaultConfig, Incoming, Node, NodeConfig, Process, Upid};
use meso::protocol::*;
use meso::resources::Resources;
use meso_actors::agent::launcher;
use meso_actors::agent::{start_agent_with_stop, AgentConfig};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;

#[derive(Debug)]
enum Event {
    Registered(Upid),
    Update(StatusUpdate),
    ExecutorExited,
}

/// Registers the agent as `agent-1`, records updates and acknowledges each one.
struct FakeMaster {
    process: Process,
    tx: UnboundedSender<Event>,
}

impl Actor for FakeMaster {
    type Context = Context<Self>;
}

impl Handler<Incoming<RegisterAgent>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, m: Incoming<RegisterAgent>, _: &mut Context<Self>) {
        let reply = AgentRegistered {
            agent_id: AgentId::new("agent-1"),
            master_info: MasterInfo {
                id: "fake".into(),
                upid: self.process.me().clone(),
            },
        };
        self.process.send(&m.from, reply);
        let _ = self.tx.send(Event::Registered(m.from));
    }
}

impl Handler<Incoming<StatusUpdate>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, m: Incoming<StatusUpdate>, _: &mut Context<Self>) {
        if let Some(uuid) = m.msg.status.uuid {
            let ack = StatusUpdateAcknowledgement {
                agent_id: AgentId::new("agent-1"),
                framework_id: m.msg.framework_id.clone(),
                task_id: m.msg.status.task_id.clone(),
                uuid,
            };
            self.process.send(&m.from, ack);
        }
        let _ = self.tx.send(Event::Update(m.msg));
    }
}

impl Handler<Incoming<ExecutorExited>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, _: Incoming<ExecutorExited>, _: &mut Context<Self>) {
        let _ = self.tx.send(Event::ExecutorExited);
    }
}

struct Cluster {
    master: Process,
    master_node: Node,
    agent_node: Node,
    agent: Upid,
    rx: UnboundedReceiver<Event>,
    stopped: Option<oneshot::Receiver<()>>,
    work_dir: tempfile::TempDir,
    /// Uuids of the updates seen so far (a duplicated frame is not new).
    seen: HashSet<[u8; 16]>,
}

async fn cluster() -> Cluster {
    let master_node = Node::start(NodeConfig::default()).await.unwrap();
    let agent_node = Node::start(NodeConfig::default()).await.unwrap();
    let (tx, mut rx) = unbounded_channel();
    let master = master_node.process("master").unwrap();
    let fake = FakeMaster {
        process: master.clone(),
        tx,
    };
    let (master_upid, _) = master_node
        .actor::<FakeMaster>("master")
        .handle::<RegisterAgent>()
        .handle::<StatusUpdate>()
        .handle::<ExecutorExited>()
        .start(fake)
        .unwrap();
    let work_dir = tempfile::tempdir().unwrap();
    let mut config = AgentConfig::new(
        master_upid,
        work_dir.path().to_path_buf(),
        Resources::parse("cpus:2;mem:512").unwrap(),
        PathBuf::from(env!("CARGO_BIN_EXE_meso")),
    );
    config.kill_grace_ms = 1_000;
    let (agent, stopped) = start_agent_with_stop(&agent_node, config).unwrap();
    match next(&mut rx, "registration").await {
        Event::Registered(from) => assert_eq!(from, agent),
        other => panic!("expected a registration, got {other:?}"),
    }
    Cluster {
        master,
        master_node,
        agent_node,
        agent,
        rx,
        stopped: Some(stopped),
        work_dir,
        seen: HashSet::new(),
    }
}

/// Every frame the node sends goes twice.
fn duplicate_everything(node: &Node) {
    node.set_faults(Some(FaultConfig {
        duplicate: 1.0,
        ..FaultConfig::seeded(7)
    }));
}

async fn next(rx: &mut UnboundedReceiver<Event>, what: &str) -> Event {
    match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
        Ok(Some(e)) => e,
        _ => panic!("nothing arrived while waiting for {what}"),
    }
}

fn command_task(id: &str, command: &str) -> TaskInfo {
    TaskInfo::command(
        TaskId::new(id),
        AgentId::new("agent-1"),
        Resources::parse("cpus:0.1;mem:32").unwrap(),
        CommandInfo::shell(command),
    )
}

impl Cluster {
    fn run(&self, id: &str, command: &str) {
        let msg = RunTask {
            framework: FrameworkInfo::new("test", "tester"),
            framework_id: FrameworkId::new("fw"),
            scheduler: self.master.me().clone(),
            task: command_task(id, command),
        };
        self.master.send(&self.agent, msg);
    }

    fn kill(&self, id: &str) {
        let kill = KillTaskOnAgent {
            framework_id: FrameworkId::new("fw"),
            task_id: TaskId::new(id),
            kill_grace_period_ms: None,
        };
        self.master.send(&self.agent, kill);
    }

    /// The next update not seen before (by uuid).
    async fn next_update(&mut self, what: &str) -> TaskStatus {
        loop {
            if let Event::Update(u) = next(&mut self.rx, what).await {
                let uuid = u.status.uuid.expect("agent updates carry a uuid");
                if self.seen.insert(uuid) {
                    return u.status;
                }
            }
        }
    }

    /// The new states of task `id`, in order, up to and including its terminal one.
    async fn states_until_terminal(&mut self, id: &str) -> Vec<TaskStatus> {
        let mut seen = Vec::new();
        loop {
            let status = self.next_update(id).await;
            assert_eq!(status.task_id.as_str(), id, "{status:?}");
            let terminal = status.state.is_terminal();
            seen.push(status);
            if terminal {
                return seen;
            }
        }
    }

    async fn until_running(&mut self, id: &str) {
        loop {
            let status = self.next_update(id).await;
            assert_eq!(status.task_id.as_str(), id);
            assert!(!status.state.is_terminal(), "{status:?}");
            if status.state == TaskState::Running {
                return;
            }
        }
    }

    /// No new update arrives for `wait`.
    async fn no_new_update(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            if let Event::Update(u) = e {
                let uuid = u.status.uuid.unwrap_or_default();
                assert!(self.seen.contains(&uuid), "unexpected new update {u:?}");
            }
        }
    }

    fn runs_dir(&self, executor: &str) -> PathBuf {
        self.work_dir
            .path()
            .join("agents/agent-1/frameworks/fw/executors")
            .join(executor)
            .join("runs")
    }

    fn run_count(&self, executor: &str) -> usize {
        std::fs::read_dir(self.runs_dir(executor)).map_or(0, |d| d.count())
    }

    /// The pid of the (only) run of executor `id`, from its checkpoint.
    async fn executor_pid(&self, id: &str) -> i32 {
        let dir = self
            .work_dir
            .path()
            .join("meta/agents/agent-1/frameworks/fw/executors")
            .join(id)
            .join("runs");
        for _ in 0..200 {
            let pid = std::fs::read_dir(&dir).ok().and_then(|runs| {
                runs.flatten().find_map(|run| {
                    let text = std::fs::read_to_string(run.path().join("forked.pid")).ok()?;
                    text.trim().parse().ok()
                })
            });
            if let Some(pid) = pid {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no forked.pid under {}", dir.display());
    }
}

fn states(seen: &[TaskStatus]) -> Vec<TaskState> {
    seen.iter().map(|s| s.state).collect()
}

async fn wait_file(path: &Path) -> String {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never appeared", path.display());
}

/// Every frame the agent sends arrives twice (ExecutorRegistered, LaunchTask, ExecutorStatusAck,
/// KillTaskInExecutor, StatusUpdate): the executor runs its task once and the task ends as it
/// really did, never TASK_FAILED for a second launch of the same task.
#[actix_rt::test]
async fn frames_from_the_agent_delivered_twice_change_nothing() {
    let mut c = cluster().await;
    duplicate_everything(&c.agent_node);
    c.run("twice", "sleep 0.3");
    let seen = c.states_until_terminal("twice").await;
    assert_eq!(
        states(&seen),
        [TaskState::Starting, TaskState::Running, TaskState::Finished],
        "{seen:?}"
    );
    c.run("killed", "sleep 600");
    c.until_running("killed").await;
    c.kill("killed");
    let seen = c.states_until_terminal("killed").await;
    assert_eq!(states(&seen), [TaskState::Killed], "{seen:?}");
    c.no_new_update(Duration::from_millis(1500)).await;
}

/// Every frame the master sends arrives twice (AgentRegistered, RunTask, KillTaskOnAgent,
/// StatusUpdateAcknowledgement): one executor per task, each state reported once, one kill.
#[actix_rt::test]
async fn frames_from_the_master_delivered_twice_change_nothing() {
    let mut c = cluster().await;
    duplicate_everything(&c.master_node);
    c.run("once", "sleep 0.3");
    let seen = c.states_until_terminal("once").await;
    assert_eq!(
        states(&seen),
        [TaskState::Starting, TaskState::Running, TaskState::Finished],
        "{seen:?}"
    );
    assert_eq!(c.run_count("once"), 1, "one executor run");
    c.run("killed", "sleep 600");
    c.until_running("killed").await;
    c.kill("killed");
    let seen = c.states_until_terminal("killed").await;
    assert_eq!(states(&seen), [TaskState::Killed], "{seen:?}");
    assert_eq!(c.run_count("killed"), 1, "one executor run");
    c.no_new_update(Duration::from_millis(1500)).await;
}

/// Mesos: a kill of a task whose RunTask never arrived is answered TASK_LOST (reason
/// TaskUnknown), reliably (with a uuid, so acknowledged); the RunTask arriving late afterwards
/// starts nothing.
#[actix_rt::test]
async fn a_kill_of_an_unknown_task_ends_it_and_a_late_run_starts_nothing() {
    let mut c = cluster().await;
    c.kill("ghost");
    let status = c.next_update("TASK_LOST").await;
    assert_eq!(status.task_id.as_str(), "ghost");
    assert_eq!(status.state, TaskState::Lost);
    assert_eq!(status.reason, Some(TaskStatusReason::TaskUnknown));
    assert!(status.uuid.is_some());
    // Acknowledged: no resend comes (the first retry would be after 1 s).
    c.no_new_update(Duration::from_millis(1500)).await;
    c.run("ghost", "echo started > started");
    c.kill("ghost");
    c.no_new_update(Duration::from_millis(1500)).await;
    assert_eq!(c.run_count("ghost"), 0, "the late task never started");
}

/// A tester's report: SIGKILL of the `meso executor` process left its task (`sleep 600`,
/// in a process group of its own) running while the task was reported FAILED. Now the whole
/// session of the executor goes with it.
#[actix_rt::test]
async fn a_dead_executor_takes_its_task_with_it() {
    let mut c = cluster().await;
    c.run("orphan", "echo $$ > task.pid; sleep 600");
    c.until_running("orphan").await;
    let sid = c.executor_pid("orphan").await;
    let runs = c.runs_dir("orphan");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let task_pid: i32 = wait_file(&run.join("task.pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    // SAFETY: getsid and getpgid have no memory effects.
    let (task_sid, task_pgid) = unsafe { (libc::getsid(task_pid), libc::getpgid(task_pid)) };
    assert_eq!(task_sid, sid, "the task is in the executor's session");
    assert_ne!(task_pgid, sid, "the task has a process group of its own");
    // SAFETY: kill has no memory effects; `sid` is the executor's pid.
    assert_eq!(unsafe { libc::kill(sid, libc::SIGKILL) }, 0);
    let seen = c.states_until_terminal("orphan").await;
    let last = seen.last().unwrap();
    assert_eq!(last.state, TaskState::Failed, "{seen:?}");
    assert_eq!(last.reason, Some(TaskStatusReason::ExecutorTerminated));
    for _ in 0..100 {
        if !launcher::session_alive(sid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = launcher::session_members(sid);
    panic!("processes of the executor's session survived: {left:?}");
}

/// `ShutdownAgent` from the master stops the agent, which kills its executors and then tells
/// whoever started it (so that `meso agent` can exit).
#[actix_rt::test]
async fn shutdown_by_the_master_is_told_to_the_starter() {
    let mut c = cluster().await;
    c.run("long", "sleep 600");
    c.until_running("long").await;
    let sid = c.executor_pid("long").await;
    let shutdown = ShutdownAgent {
        message: "test".into(),
    };
    c.master.send(&c.agent, shutdown);
    let stopped = c.stopped.take().unwrap();
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the agent said it stopped")
        .expect("the agent said it stopped");
    assert!(!launcher::session_alive(sid), "its executor was killed");
}
