//! A real agent and real `meso executor` processes under faults: frames delivered twice, frames
//! lost, an executor killed with SIGKILL, the agent shut down by the master.

mod support;

use meso::process::{FaultConfig, Node};
use meso::protocol::*;
use meso_actors::agent::launcher;
use std::time::Duration;
use support::{command_task, poll, session_gone, states, wait_pid, Cluster, ClusterOptions, Event};

async fn cluster() -> Cluster {
    Cluster::start(ClusterOptions::default()).await
}

/// Every frame the node sends goes twice.
fn duplicate_everything(node: &Node) {
    node.set_faults(Some(FaultConfig {
        duplicate: 1.0,
        ..FaultConfig::seeded(7)
    }));
}

impl Cluster {
    /// The next update not seen before (by uuid).
    async fn next_update(&mut self, what: &str) -> TaskStatus {
        loop {
            if let Event::Update(u) = self.events.next(what).await {
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
        while let Some(e) = self.events.next_before(deadline).await {
            if let Event::Update(u) = e {
                let uuid = u.status.uuid.unwrap_or_default();
                assert!(self.seen.contains(&uuid), "unexpected new update {u:?}");
            }
        }
    }

    fn run_count(&self, executor: &str) -> usize {
        std::fs::read_dir(self.runs_dir(executor)).map_or(0, |d| d.count())
    }

    /// The pid of the (only) run of executor `id`, from its checkpoint.
    async fn executor_pid(&self, id: &str) -> i32 {
        let dir = self.meta_runs_dir(id);
        let pid = poll(200, Duration::from_millis(50), || {
            std::fs::read_dir(&dir).ok().and_then(|runs| {
                runs.flatten().find_map(|run| {
                    let text = std::fs::read_to_string(run.path().join("forked.pid")).ok()?;
                    text.trim().parse().ok()
                })
            })
        });
        pid.await
            .unwrap_or_else(|| panic!("no forked.pid under {}", dir.display()))
    }
}

/// Every frame the agent sends arrives twice (ExecutorRegistered, LaunchTask, ExecutorStatusAck,
/// KillTaskInExecutor, StatusUpdate): the executor runs its task once and the task ends as it
/// really did, never TASK_FAILED for a second launch of the same task.
#[actix_rt::test]
async fn frames_from_the_agent_delivered_twice_change_nothing() {
    let mut c = cluster().await;
    duplicate_everything(&c.agent_node);
    c.run(command_task("twice", "sleep 0.3"));
    let seen = c.states_until_terminal("twice").await;
    assert_eq!(
        states(&seen),
        [TaskState::Starting, TaskState::Running, TaskState::Finished],
        "{seen:?}"
    );
    c.run(command_task("killed", "sleep 600"));
    c.until_running("killed").await;
    c.kill("killed", None);
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
    c.run(command_task("once", "sleep 0.3"));
    let seen = c.states_until_terminal("once").await;
    assert_eq!(
        states(&seen),
        [TaskState::Starting, TaskState::Running, TaskState::Finished],
        "{seen:?}"
    );
    assert_eq!(c.run_count("once"), 1, "one executor run");
    c.run(command_task("killed", "sleep 600"));
    c.until_running("killed").await;
    c.kill("killed", None);
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
    c.kill("ghost", None);
    let status = c.next_update("TASK_LOST").await;
    assert_eq!(status.task_id.as_str(), "ghost");
    assert_eq!(status.state, TaskState::Lost);
    assert_eq!(status.reason, Some(TaskStatusReason::TaskUnknown));
    assert!(status.uuid.is_some());
    // Acknowledged: no resend comes (the first retry would be after 1 s).
    c.no_new_update(Duration::from_millis(1500)).await;
    c.run(command_task("ghost", "echo started > started"));
    c.kill("ghost", None);
    c.no_new_update(Duration::from_millis(1500)).await;
    assert_eq!(c.run_count("ghost"), 0, "the late task never started");
}

/// A tester's report: SIGKILL of the `meso executor` process left its task (`sleep 600`,
/// in a process group of its own) running while the task was reported FAILED. Now the whole
/// session of the executor goes with it.
#[actix_rt::test]
async fn a_dead_executor_takes_its_task_with_it() {
    let mut c = cluster().await;
    c.run(command_task("orphan", "echo $$ > task.pid; sleep 600"));
    c.until_running("orphan").await;
    let sid = c.executor_pid("orphan").await;
    let runs = c.runs_dir("orphan");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let task_pid = wait_pid(&run.join("task.pid")).await;
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
    if session_gone(sid, 100).await {
        return;
    }
    let left = launcher::session_members(sid);
    panic!("processes of the executor's session survived: {left:?}");
}

/// `ShutdownAgent` from the master stops the agent, which kills its executors and then tells
/// whoever started it (so that `meso agent` can exit).
#[actix_rt::test]
async fn shutdown_by_the_master_is_told_to_the_starter() {
    let mut c = cluster().await;
    c.run(command_task("long", "sleep 600"));
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
