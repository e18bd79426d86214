//! `meso agent` killed with SIGKILL and started again on the same work directory and port, with
//! a fake master in the test: the agent takes its tasks back from its checkpoints.

use actix::{Actor, Context, Handler};
use meso::process::{Incoming, Node, NodeConfig, Process, Upid};
use meso::protocol::*;
use meso::resources::Resources;
use meso_actors::agent::launcher;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

const MESO: &str = env!("CARGO_BIN_EXE_meso");

#[derive(Debug)]
enum Event {
    Registered,
    Reregistered(ReregisterAgent),
    Update(StatusUpdate),
    ExecutorExited(ExecutorExited),
}

/// Registers the agent as `agent-1`, takes it back when it reregisters, records every update
/// and acknowledges it unless told to hold acknowledgements of RUNNING.
struct FakeMaster {
    process: Process,
    tx: UnboundedSender<Event>,
    hold_running_acks: Arc<AtomicBool>,
}

impl Actor for FakeMaster {
    type Context = Context<Self>;
}

impl FakeMaster {
    fn info(&self) -> MasterInfo {
        MasterInfo {
            id: "fake".into(),
            upid: self.process.me().clone(),
        }
    }
}

impl Handler<Incoming<RegisterAgent>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, m: Incoming<RegisterAgent>, _: &mut Context<Self>) {
        let reply = AgentRegistered {
            agent_id: AgentId::new("agent-1"),
            master_info: self.info(),
        };
        self.process.send(&m.from, reply);
        let _ = self.tx.send(Event::Registered);
    }
}

impl Handler<Incoming<ReregisterAgent>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, m: Incoming<ReregisterAgent>, _: &mut Context<Self>) {
        let reply = AgentReregistered {
            agent_id: AgentId::new("agent-1"),
            master_info: self.info(),
        };
        self.process.send(&m.from, reply);
        let _ = self.tx.send(Event::Reregistered(m.msg));
    }
}

impl Handler<Incoming<StatusUpdate>> for FakeMaster {
    type Result = ();
    fn handle(&mut self, m: Incoming<StatusUpdate>, _: &mut Context<Self>) {
        let hold = self.hold_running_acks.load(Ordering::SeqCst)
            && m.msg.status.state == TaskState::Running;
        if let (Some(uuid), false) = (m.msg.status.uuid, hold) {
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

struct Setup {
    master: Process,
    rx: UnboundedReceiver<Event>,
    hold_running_acks: Arc<AtomicBool>,
    work_dir: tempfile::TempDir,
    port: u16,
    agent: Option<Child>,
    _node: Node,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn setup() -> Setup {
    let node = Node::start(NodeConfig::default()).await.unwrap();
    let (tx, rx) = unbounded_channel();
    let master = node.process("master").unwrap();
    let hold_running_acks = Arc::new(AtomicBool::new(false));
    let fake = FakeMaster {
        process: master.clone(),
        tx,
        hold_running_acks: hold_running_acks.clone(),
    };
    node.actor::<FakeMaster>("master")
        .handle::<RegisterAgent>()
        .handle::<ReregisterAgent>()
        .handle::<StatusUpdate>()
        .handle::<ExecutorExited>()
        .start(fake)
        .unwrap();
    Setup {
        master,
        rx,
        hold_running_acks,
        work_dir: tempfile::tempdir().unwrap(),
        port: free_port(),
        agent: None,
        _node: node,
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.kill_agent();
    }
}

async fn next(rx: &mut UnboundedReceiver<Event>, what: &str) -> Event {
    match tokio::time::timeout(Duration::from_secs(12), rx.recv()).await {
        Ok(Some(e)) => e,
        _ => panic!("nothing arrived while waiting for {what}"),
    }
}

fn task(id: &str, command: &str) -> TaskInfo {
    TaskInfo::command(
        TaskId::new(id),
        AgentId::new("agent-1"),
        Resources::parse("cpus:0.1;mem:32").unwrap(),
        CommandInfo::shell(command),
    )
}

impl Setup {
    fn agent_upid(&self) -> Upid {
        format!("agent@127.0.0.1:{}", self.port).parse().unwrap()
    }

    fn start_agent(&mut self) {
        let master = self.master.me().to_string();
        let port = self.port.to_string();
        let child = Command::new(MESO)
            .args([
                "agent",
                "--master",
                &master,
                "--ip",
                "127.0.0.1",
                "--port",
                &port,
            ])
            .arg("--work-dir")
            .arg(self.work_dir.path())
            .args(["--resources", "cpus:2;mem:512"])
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_string()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn meso agent");
        self.agent = Some(child);
    }

    fn kill_agent(&mut self) {
        if let Some(mut child) = self.agent.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn run(&self, task: TaskInfo, checkpoint: bool) {
        let mut framework = FrameworkInfo::new("test", "tester");
        framework.checkpoint = checkpoint;
        let msg = RunTask {
            framework,
            framework_id: FrameworkId::new("fw"),
            scheduler: self.master.me().clone(),
            task,
        };
        self.master.send(&self.agent_upid(), msg);
    }

    async fn wait_registered(&mut self) {
        loop {
            if let Event::Registered = next(&mut self.rx, "registration").await {
                return;
            }
        }
    }

    async fn wait_reregistered(&mut self) -> ReregisterAgent {
        loop {
            if let Event::Reregistered(r) = next(&mut self.rx, "reregistration").await {
                return r;
            }
        }
    }

    /// Waits for an update of `task` in `state`; returns it.
    async fn wait_state(&mut self, task: &str, state: TaskState) -> StatusUpdate {
        loop {
            if let Event::Update(u) = next(&mut self.rx, &format!("{task} {state}")).await {
                if u.status.task_id.as_str() == task && u.status.state == state {
                    return u;
                }
            }
        }
    }

    /// Every update of `task` until its terminal one.
    async fn until_terminal(&mut self, task: &str) -> Vec<StatusUpdate> {
        let mut seen = Vec::new();
        loop {
            if let Event::Update(u) = next(&mut self.rx, &format!("{task} to end")).await {
                if u.status.task_id.as_str() == task {
                    let end = u.status.state.is_terminal();
                    seen.push(u);
                    if end {
                        return seen;
                    }
                }
            }
        }
    }

    fn executor_runs(&self, executor: &str) -> PathBuf {
        self.work_dir
            .path()
            .join("agents/agent-1/frameworks/fw/executors")
            .join(executor)
            .join("runs")
    }

    fn meta_run(&self, executor: &str) -> PathBuf {
        let runs = self
            .work_dir
            .path()
            .join("meta/agents/agent-1/frameworks/fw/executors")
            .join(executor)
            .join("runs");
        only_dir(&runs)
    }
}

fn only_dir(dir: &Path) -> PathBuf {
    let mut dirs: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one run in {}", dir.display());
    dirs.remove(0)
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

async fn wait_group_gone(pgid: i32) {
    for _ in 0..200 {
        if !launcher::group_alive(pgid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("process group {pgid} is still alive");
}

fn kill_group(pgid: i32) {
    // SAFETY: signalling a process group this test started has no memory effects.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// The agent dies while its task runs and RUNNING is unacknowledged; started again, it
/// reregisters with the task, resends RUNNING, reconnects to the executor, and the task
/// finishes normally.
#[actix_rt::test]
async fn a_restarted_agent_takes_its_running_task_back() {
    let mut s = setup().await;
    s.start_agent();
    s.wait_registered().await;
    s.hold_running_acks.store(true, Ordering::SeqCst);
    s.run(task("t1", "sleep 2; echo done > out.txt"), true);
    let running = s.wait_state("t1", TaskState::Running).await;
    s.kill_agent();
    s.hold_running_acks.store(false, Ordering::SeqCst);
    s.start_agent();
    let rereg = s.wait_reregistered().await;
    assert_eq!(rereg.agent.id, Some(AgentId::new("agent-1")));
    let t1 = rereg
        .tasks
        .iter()
        .find(|t| t.task.task_id.as_str() == "t1")
        .expect("the task is reported");
    assert_eq!(t1.state, TaskState::Running);
    let rest = s.until_terminal("t1").await;
    assert_eq!(
        rest[0].status.uuid, running.status.uuid,
        "the unacknowledged RUNNING is sent again"
    );
    let last = rest.last().unwrap();
    assert_eq!(last.status.state, TaskState::Finished, "{last:?}");
    let finals = rest.iter().filter(|u| u.status.state.is_terminal()).count();
    assert_eq!(finals, 1);
    let sandbox = only_dir(&s.executor_runs("t1"));
    assert_eq!(wait_file(&sandbox.join("out.txt")).await, "done\n");
}

/// The executor is killed while the agent is down: after the restart its task is TASK_FAILED
/// with a reason, and the master hears the executor exited.
#[actix_rt::test]
async fn an_executor_that_died_while_the_agent_was_down_fails_its_task() {
    let mut s = setup().await;
    s.start_agent();
    s.wait_registered().await;
    s.run(task("t2", "echo $$ > pgid; sleep 30"), true);
    s.wait_state("t2", TaskState::Running).await;
    let sandbox = only_dir(&s.executor_runs("t2"));
    let task_group: i32 = wait_file(&sandbox.join("pgid"))
        .await
        .trim()
        .parse()
        .unwrap();
    let executor_group: i32 = wait_file_no_newline(&s.meta_run("t2").join("forked.pid"))
        .await
        .parse()
        .unwrap();
    s.kill_agent();
    kill_group(executor_group);
    kill_group(task_group);
    wait_group_gone(executor_group).await;
    s.start_agent();
    let rereg = s.wait_reregistered().await;
    assert!(rereg.tasks.iter().any(|t| t.task.task_id.as_str() == "t2"));
    // The FAILED and the executor's end come in either order (the FAILED may queue behind a
    // resent RUNNING).
    let (mut failed, mut exited) = (None, None);
    while failed.is_none() || exited.is_none() {
        match next(&mut s.rx, "FAILED and the executor's end").await {
            Event::Update(u) if u.status.state.is_terminal() => failed = Some(u),
            Event::ExecutorExited(e) => exited = Some(e),
            _ => {}
        }
    }
    let failed = failed.unwrap();
    assert_eq!(failed.status.state, TaskState::Failed);
    assert_eq!(
        failed.status.reason,
        Some(TaskStatusReason::ExecutorTerminated)
    );
    assert!(
        failed.status.message.contains("agent was down"),
        "{}",
        failed.status.message
    );
    assert_eq!(exited.unwrap().executor_id.as_str(), "t2");
}

async fn wait_file_no_newline(path: &Path) -> String {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.trim().is_empty() {
                return text.trim().to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never appeared", path.display());
}

/// A framework that does not checkpoint: its tasks do not survive an agent restart; they are
/// reported TASK_LOST (AgentRestarted) and their processes are gone.
#[actix_rt::test]
async fn tasks_of_a_framework_without_checkpointing_are_killed_on_restart() {
    let mut s = setup().await;
    s.start_agent();
    s.wait_registered().await;
    s.run(task("t3", "echo $$ > pgid; sleep 30"), false);
    s.wait_state("t3", TaskState::Running).await;
    let sandbox = only_dir(&s.executor_runs("t3"));
    let task_group: i32 = wait_file(&sandbox.join("pgid"))
        .await
        .trim()
        .parse()
        .unwrap();
    s.kill_agent();
    s.start_agent();
    s.wait_reregistered().await;
    let lost = s.wait_state("t3", TaskState::Lost).await;
    assert_eq!(lost.status.reason, Some(TaskStatusReason::AgentRestarted));
    wait_group_gone(task_group).await;
}

/// Checkpoints cut off by a crash (a truncated stream, an empty pid file, a half-written task)
/// do not keep the agent from starting and reregistering.
#[actix_rt::test]
async fn cut_off_checkpoints_do_not_stop_the_agent() {
    let mut s = setup().await;
    s.start_agent();
    s.wait_registered().await;
    s.run(task("t4", "echo $$ > pgid; sleep 30"), true);
    s.wait_state("t4", TaskState::Running).await;
    let sandbox = only_dir(&s.executor_runs("t4"));
    let task_group: i32 = wait_file(&sandbox.join("pgid"))
        .await
        .trim()
        .parse()
        .unwrap();
    let meta = s.meta_run("t4");
    let executor_group: i32 = wait_file_no_newline(&meta.join("forked.pid"))
        .await
        .parse()
        .unwrap();
    s.kill_agent();
    kill_group(executor_group);
    kill_group(task_group);
    let updates = meta.join("tasks/t4/task.updates");
    let bytes = std::fs::read(&updates).unwrap();
    std::fs::write(&updates, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(meta.join("forked.pid"), b"").unwrap();
    let info = meta.join("tasks/t4/task.info");
    let bytes = std::fs::read(&info).unwrap();
    std::fs::write(&info, &bytes[..bytes.len() / 3]).unwrap();
    s.start_agent();
    let rereg = s.wait_reregistered().await;
    assert_eq!(rereg.agent.id, Some(AgentId::new("agent-1")));
    assert!(
        rereg.tasks.iter().all(|t| t.task.task_id.as_str() != "t4"),
        "a task whose checkpoint is unreadable is not reported"
    );
    // The agent works: a new task runs to its end.
    s.run(task("t5", "true"), true);
    let end = s.until_terminal("t5").await;
    assert_eq!(end.last().unwrap().status.state, TaskState::Finished);
}
