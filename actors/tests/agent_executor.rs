//! A real agent and real `meso executor` processes, driven by a fake master over loopback TCP.

use actix::{Actor, Context, Handler};
use meso::process::{Incoming, Node, NodeConfig, Process, Upid};
use meso::protocol::*;
use meso::resources::Resources;
use meso_actors::agent::launcher;
use meso_actors::agent::{start_agent, AgentConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

#[derive(Debug)]
enum Event {
    Registered(Upid),
    Update(StatusUpdate),
    ExecutorExited(ExecutorExited),
}

/// Registers every agent as `agent-1`, records updates and acknowledges each one.
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
    fn handle(&mut self, m: Incoming<ExecutorExited>, _: &mut Context<Self>) {
        let _ = self.tx.send(Event::ExecutorExited(m.msg));
    }
}

struct Cluster {
    master: Process,
    agent: Upid,
    rx: UnboundedReceiver<Event>,
    work_dir: tempfile::TempDir,
    _nodes: (Node, Node),
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
    let agent = start_agent(&agent_node, config).unwrap();
    match next(&mut rx, "registration").await {
        Event::Registered(from) => assert_eq!(from, agent),
        other => panic!("expected a registration, got {other:?}"),
    }
    Cluster {
        master,
        agent,
        rx,
        work_dir,
        _nodes: (master_node, agent_node),
    }
}

async fn next(rx: &mut UnboundedReceiver<Event>, what: &str) -> Event {
    match tokio::time::timeout(Duration::from_secs(20), rx.recv()).await {
        Ok(Some(e)) => e,
        _ => panic!("nothing arrived while waiting for {what}"),
    }
}

impl Cluster {
    fn run(&self, id: &str, command: &str) {
        let task = TaskInfo::command(
            TaskId::new(id),
            AgentId::new("agent-1"),
            Resources::parse("cpus:0.1;mem:32").unwrap(),
            CommandInfo::shell(command),
        );
        let msg = RunTask {
            framework: FrameworkInfo::new("test", "tester"),
            framework_id: FrameworkId::new("fw"),
            scheduler: self.master.me().clone(),
            task,
        };
        self.master.send(&self.agent, msg);
    }

    fn run_custom(&self, id: &str, executor_command: &str) {
        let mut task = TaskInfo::command(
            TaskId::new(id),
            AgentId::new("agent-1"),
            Resources::parse("cpus:0.1;mem:32").unwrap(),
            CommandInfo::shell("unused"),
        );
        task.command = None;
        task.executor = Some(ExecutorInfo {
            executor_id: ExecutorId::new(format!("ex-{id}")),
            framework_id: FrameworkId::new("fw"),
            command: CommandInfo::shell(executor_command),
            resources: Resources::new(),
            name: "custom".into(),
        });
        let msg = RunTask {
            framework: FrameworkInfo::new("test", "tester"),
            framework_id: FrameworkId::new("fw"),
            scheduler: self.master.me().clone(),
            task,
        };
        self.master.send(&self.agent, msg);
    }

    /// The states of task `id`, in order, up to and including its terminal one.
    async fn states_until_terminal(&mut self, id: &str) -> Vec<TaskStatus> {
        let mut seen = Vec::new();
        loop {
            if let Event::Update(u) = next(&mut self.rx, id).await {
                assert_eq!(u.status.task_id.as_str(), id);
                assert_eq!(u.framework_id.as_str(), "fw");
                let terminal = u.status.state.is_terminal();
                seen.push(u.status);
                if terminal {
                    return seen;
                }
            }
        }
    }

    async fn executor_exit(&mut self, id: &str) -> ExecutorExited {
        loop {
            match next(&mut self.rx, "executor exit").await {
                Event::ExecutorExited(e) if e.executor_id.as_str() == id => return e,
                Event::Update(u) => panic!("unexpected update after the end: {u:?}"),
                _ => {}
            }
        }
    }

    /// The sandbox of the (only) run of executor `id`.
    fn sandbox(&self, id: &str) -> PathBuf {
        let runs = self
            .work_dir
            .path()
            .join("agents/agent-1/frameworks/fw/executors")
            .join(id)
            .join("runs");
        let mut dirs: Vec<_> = std::fs::read_dir(&runs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(dirs.len(), 1, "one run in {}", runs.display());
        dirs.remove(0)
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

/// Flows 5, 6 and 8: STARTING, RUNNING, FINISHED in order, each acknowledged; the command ran in
/// its sandbox; the executor exits 0 and no TASK_FAILED follows the FINISHED.
#[actix_rt::test]
async fn a_command_runs_to_completion_in_its_sandbox() {
    let mut c = cluster().await;
    c.run("hello", "echo hello > out.txt; echo \"$MESOS_TASK_ID\"");
    let seen = c.states_until_terminal("hello").await;
    assert_eq!(
        states(&seen),
        [TaskState::Starting, TaskState::Running, TaskState::Finished]
    );
    for s in &seen {
        assert!(s.uuid.is_some());
        assert_eq!(s.agent_id, Some(AgentId::new("agent-1")));
        assert_eq!(s.executor_id, Some(ExecutorId::new("hello")));
    }
    let exited = c.executor_exit("hello").await;
    assert_eq!(exited.status, 0, "the executor exits 0");
    let sandbox = c.sandbox("hello");
    assert_eq!(
        std::fs::read_to_string(sandbox.join("out.txt")).unwrap(),
        "hello\n"
    );
    assert!(sandbox.join("stdout").is_file());
    assert!(sandbox.join("stderr").is_file());
    assert!(std::fs::read_to_string(sandbox.join("stdout"))
        .unwrap()
        .contains("hello"));
    // Nothing else comes: exactly one terminal update.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(e) = c.rx.try_recv() {
        assert!(!matches!(e, Event::Update(_)), "unexpected {e:?}");
    }
}

/// A non-zero exit is TASK_FAILED with the exit status in the message.
#[actix_rt::test]
async fn a_failing_command_reports_its_status() {
    let mut c = cluster().await;
    c.run("three", "exit 3");
    let seen = c.states_until_terminal("three").await;
    let last = seen.last().unwrap();
    assert_eq!(last.state, TaskState::Failed);
    assert!(last.message.contains('3'), "message: {}", last.message);
    assert_eq!(
        states(&seen)[..2],
        [TaskState::Starting, TaskState::Running]
    );
    c.executor_exit("three").await;
}

/// Flow 7: a kill reaches the executor, which kills the task's process group; TASK_KILLED.
#[actix_rt::test]
async fn a_killed_task_leaves_no_process_behind() {
    let mut c = cluster().await;
    c.run("sleeper", "echo $$ > pgid; sleep 600");
    loop {
        if let Event::Update(u) = next(&mut c.rx, "RUNNING").await {
            if u.status.state == TaskState::Running {
                break;
            }
        }
    }
    let pgid: i32 = wait_file(&c.sandbox("sleeper").join("pgid"))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(launcher::group_alive(pgid));
    let kill = KillTaskOnAgent {
        framework_id: FrameworkId::new("fw"),
        task_id: TaskId::new("sleeper"),
        kill_grace_period_ms: None,
    };
    c.master.send(&c.agent, kill);
    let seen = c.states_until_terminal("sleeper").await;
    assert_eq!(seen.last().unwrap().state, TaskState::Killed);
    c.executor_exit("sleeper").await;
    for _ in 0..100 {
        if !launcher::group_alive(pgid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("a process of group {pgid} survived the kill");
}

/// Flow 8 with a custom executor that dies before registering: its task fails with the exit
/// status in the message, and the master hears that the executor exited.
#[actix_rt::test]
async fn a_custom_executor_that_dies_fails_its_task() {
    let mut c = cluster().await;
    c.run_custom("doomed", "exit 7");
    let seen = c.states_until_terminal("doomed").await;
    assert_eq!(seen.len(), 1);
    let failed = &seen[0];
    assert_eq!(failed.state, TaskState::Failed);
    assert_eq!(failed.reason, Some(TaskStatusReason::ExecutorTerminated));
    assert!(
        failed.message.contains("status 7"),
        "message: {}",
        failed.message
    );
    let exited = c.executor_exit("ex-doomed").await;
    assert_eq!(exited.status, 7 << 8, "a wait status");
}

/// Flow 5/7: a kill before the executor registered is answered TASK_KILLED by the agent; the
/// executor, left with nothing, is killed, and no TASK_FAILED follows.
#[actix_rt::test]
async fn a_kill_before_the_executor_registers() {
    let mut c = cluster().await;
    c.run_custom("early", "echo $$ > pgid; sleep 600");
    let pgid: i32 = loop {
        let runs = c
            .work_dir
            .path()
            .join("agents/agent-1/frameworks/fw/executors/ex-early/runs");
        if runs.is_dir() {
            break wait_file(&c.sandbox("ex-early").join("pgid"))
                .await
                .trim()
                .parse()
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let kill = KillTaskOnAgent {
        framework_id: FrameworkId::new("fw"),
        task_id: TaskId::new("early"),
        kill_grace_period_ms: Some(200),
    };
    c.master.send(&c.agent, kill);
    let seen = c.states_until_terminal("early").await;
    assert_eq!(states(&seen), [TaskState::Killed]);
    assert_eq!(
        seen[0].reason,
        Some(TaskStatusReason::TaskKilledDuringLaunch)
    );
    c.executor_exit("ex-early").await;
    assert!(!launcher::group_alive(pgid));
}
