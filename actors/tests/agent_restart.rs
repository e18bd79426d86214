//! `meso agent` killed with SIGKILL and started again on the same work directory and port, with
//! a fake master in the test: the agent takes its tasks back from its checkpoints.

mod support;

use meso::process::{Node, NodeConfig, Process, Upid};
use meso::protocol::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::{
    command_task as task, free_port, group_gone, kill_group, meta_runs_dir, only_dir, poll,
    run_task, runs_dir, spawn_meso, start_fake_master, wait_file, wait_pid, ChildGuard, Event,
    Events, MasterBehaviour,
};
use tokio::sync::mpsc::unbounded_channel;

struct Setup {
    /// Declared first, so that the agent is killed before the work directory goes.
    agent: Option<ChildGuard>,
    master: Process,
    events: Events,
    /// While set, the fake master holds acknowledgements of RUNNING.
    hold_running_acks: Arc<AtomicBool>,
    /// While set, the fake master does not answer a reregistration.
    hold_reregistration: Arc<AtomicBool>,
    work_dir: tempfile::TempDir,
    port: u16,
    _node: Node,
}

async fn setup() -> Setup {
    let node = Node::start(NodeConfig::default()).await.unwrap();
    let (tx, rx) = unbounded_channel();
    let behaviour = MasterBehaviour::default();
    let hold_running_acks = behaviour.hold_running_acks.clone();
    let hold_reregistration = behaviour.hold_reregistration.clone();
    let master = start_fake_master(&node, tx, behaviour);
    Setup {
        master,
        events: Events::new(rx, Duration::from_secs(12)),
        hold_running_acks,
        hold_reregistration,
        work_dir: tempfile::tempdir().unwrap(),
        port: free_port(),
        agent: None,
        _node: node,
    }
}

impl Setup {
    fn agent_upid(&self) -> Upid {
        format!("agent@127.0.0.1:{}", self.port).parse().unwrap()
    }

    fn start_agent(&mut self) {
        let master = self.master.me().to_string();
        let port = self.port.to_string();
        let mut args: Vec<OsString> = [
            "agent",
            "--master",
            &master,
            "--ip",
            "127.0.0.1",
            "--port",
            &port,
            "--work-dir",
        ]
        .map(OsString::from)
        .into();
        args.push(self.work_dir.path().into());
        args.extend(["--resources", "cpus:2;mem:512"].map(OsString::from));
        self.agent = Some(spawn_meso(args));
    }

    fn kill_agent(&mut self) {
        drop(self.agent.take());
    }

    fn run(&self, task: TaskInfo, checkpoint: bool) {
        let msg = run_task(&self.master, task, checkpoint);
        self.master.send(&self.agent_upid(), msg);
    }

    fn executor_runs(&self, executor: &str) -> PathBuf {
        runs_dir(self.work_dir.path(), executor)
    }

    fn meta_run(&self, executor: &str) -> PathBuf {
        only_dir(&meta_runs_dir(self.work_dir.path(), executor))
    }

    /// Starts the agent and runs task `id`, which writes its process group to `pgid` and
    /// sleeps; once it is RUNNING, returns that process group.
    async fn start_sleeping_task(&mut self, id: &str, checkpoint: bool) -> i32 {
        self.start_agent();
        self.events.wait_registered().await;
        self.run(task(id, "echo $$ > pgid; sleep 30"), checkpoint);
        self.events.wait_state(id, TaskState::Running).await;
        let sandbox = only_dir(&self.executor_runs(id));
        wait_pid(&sandbox.join("pgid")).await
    }

    /// The process group of the executor of task `id`, from its checkpoint.
    async fn executor_group(&self, id: &str) -> i32 {
        wait_file_no_newline(&self.meta_run(id).join("forked.pid"))
            .await
            .parse()
            .unwrap()
    }
}

async fn wait_group_gone(pgid: i32) {
    if !group_gone(pgid, 200).await {
        panic!("process group {pgid} is still alive");
    }
}

async fn wait_file_no_newline(path: &Path) -> String {
    let found = poll(200, Duration::from_millis(50), || {
        let text = std::fs::read_to_string(path).ok()?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    });
    found
        .await
        .unwrap_or_else(|| panic!("{} never appeared", path.display()))
}

/// The agent dies while its task runs and RUNNING is unacknowledged; started again, it
/// reregisters with the task, resends RUNNING, reconnects to the executor, and the task
/// finishes normally.
#[actix_rt::test]
async fn a_restarted_agent_takes_its_running_task_back() {
    let mut s = setup().await;
    s.start_agent();
    s.events.wait_registered().await;
    s.hold_running_acks.store(true, Ordering::SeqCst);
    s.run(task("t1", "sleep 2; echo done > out.txt"), true);
    let running = s.events.wait_state("t1", TaskState::Running).await;
    s.kill_agent();
    s.hold_running_acks.store(false, Ordering::SeqCst);
    s.start_agent();
    let rereg = s.events.wait_reregistered().await;
    assert_eq!(rereg.agent.id, Some(AgentId::new("agent-1")));
    let t1 = rereg
        .tasks
        .iter()
        .find(|t| t.task.task_id.as_str() == "t1")
        .expect("the task is reported");
    assert_eq!(t1.state, TaskState::Running);
    let rest = s.events.until_terminal("t1").await;
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
    let task_group = s.start_sleeping_task("t2", true).await;
    let executor_group = s.executor_group("t2").await;
    s.kill_agent();
    kill_group(executor_group);
    kill_group(task_group);
    wait_group_gone(executor_group).await;
    s.start_agent();
    let rereg = s.events.wait_reregistered().await;
    assert!(rereg.tasks.iter().any(|t| t.task.task_id.as_str() == "t2"));
    // The FAILED and the executor's end come in either order (the FAILED may queue behind a
    // resent RUNNING).
    let (mut failed, mut exited) = (None, None);
    while failed.is_none() || exited.is_none() {
        match s.events.next("FAILED and the executor's end").await {
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

/// A framework that does not checkpoint: its tasks do not survive an agent restart; they are
/// reported TASK_LOST (AgentRestarted) and their processes are gone.
#[actix_rt::test]
async fn tasks_of_a_framework_without_checkpointing_are_killed_on_restart() {
    let mut s = setup().await;
    let task_group = s.start_sleeping_task("t3", false).await;
    s.kill_agent();
    s.start_agent();
    s.events.wait_reregistered().await;
    let lost = s.events.wait_state("t3", TaskState::Lost).await;
    assert_eq!(lost.status.reason, Some(TaskStatusReason::AgentRestarted));
    wait_group_gone(task_group).await;
}

/// Checkpoints cut off by a crash (a truncated stream, an empty pid file, a half-written task)
/// do not keep the agent from starting and reregistering.
#[actix_rt::test]
async fn cut_off_checkpoints_do_not_stop_the_agent() {
    let mut s = setup().await;
    let task_group = s.start_sleeping_task("t4", true).await;
    let meta = s.meta_run("t4");
    let executor_group = s.executor_group("t4").await;
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
    let rereg = s.events.wait_reregistered().await;
    assert_eq!(rereg.agent.id, Some(AgentId::new("agent-1")));
    assert!(
        rereg.tasks.iter().all(|t| t.task.task_id.as_str() != "t4"),
        "a task whose checkpoint is unreadable is not reported"
    );
    // The agent works: a new task runs to its end.
    s.run(task("t5", "true"), true);
    let end = s.events.until_terminal("t5").await;
    assert_eq!(end.last().unwrap().status.state, TaskState::Finished);
}

/// A restarted agent takes no RunTask until its reregistration is answered (Mesos's agent takes
/// RunTask only when RUNNING): the master that sent it does not know yet what the agent runs, and
/// holds the task lost once the agent's report leaves it out, so launching it would run a task
/// told lost. Once reregistered, the agent takes RunTask again.
#[actix_rt::test]
async fn a_restarted_agent_takes_no_task_before_it_is_reregistered() {
    let mut s = setup().await;
    s.start_agent();
    s.events.wait_registered().await;
    // The agent's id is checkpointed once it is registered; kill it only then.
    let latest = s.work_dir.path().join("meta").join("agents").join("latest");
    poll(200, Duration::from_millis(25), || {
        std::fs::read_to_string(&latest)
            .ok()
            .filter(|t| !t.is_empty())
    })
    .await
    .expect("the agent checkpoints its id");
    s.kill_agent();
    s.hold_reregistration.store(true, Ordering::SeqCst);
    s.start_agent();
    loop {
        if let Event::Reregistered(_) = s.events.next("the reregistration").await {
            break;
        }
    }
    s.run(task("early", "echo ran > out.txt"), true);
    let quiet = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Some(event) = s.events.next_before(quiet).await {
        if let Event::Update(u) = event {
            panic!("a task launched before the reregistration: {:?}", u.status);
        }
    }
    assert!(
        !s.executor_runs("early").exists(),
        "a sandbox was made for the early task"
    );
    s.hold_reregistration.store(false, Ordering::SeqCst);
    // The agent asks again (with backoff, 8 s at most) and is answered. Until then a RunTask is
    // still ignored, so it is sent again until the task is heard of (a repeat of one taken is
    // ignored as a duplicate); then it runs to its end.
    let mut heard = false;
    for _ in 0..10 {
        s.run(task("later", "true"), true);
        let wait = tokio::time::Instant::now() + Duration::from_secs(3);
        while let Some(event) = s.events.next_before(wait).await {
            if matches!(&event, Event::Update(u) if u.status.task_id.as_str() == "later") {
                heard = true;
                break;
            }
        }
        if heard {
            break;
        }
    }
    assert!(heard, "the reregistered agent never took the task");
    s.events.wait_state("later", TaskState::Finished).await;
}
