//! A real agent and real `meso executor` processes, driven by a fake master over loopback TCP.

mod support;

use meso::protocol::*;
use meso_actors::agent::launcher;
use std::time::Duration;
use support::{
    assert_group_gone, command_task, custom_task, states, wait_pid, Cluster, ClusterOptions, Event,
};

async fn cluster() -> Cluster {
    Cluster::start(ClusterOptions::default()).await
}

impl Cluster {
    /// A custom executor `ex-{id}` running `executor_command`, for task `id`.
    fn run_custom(&self, id: &str, executor_command: &str) {
        self.run(custom_task(id, &format!("ex-{id}"), executor_command));
    }

    /// The states of task `id`, in order, up to and including its terminal one.
    async fn states_until_terminal(&mut self, id: &str) -> Vec<TaskStatus> {
        let mut seen = Vec::new();
        loop {
            if let Event::Update(u) = self.events.next(id).await {
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
            match self.events.next("executor exit").await {
                Event::ExecutorExited(e) if e.executor_id.as_str() == id => return e,
                Event::Update(u) => panic!("unexpected update after the end: {u:?}"),
                _ => {}
            }
        }
    }
}

/// Flows 5, 6 and 8: STARTING, RUNNING, FINISHED in order, each acknowledged; the command ran in
/// its sandbox; the executor exits 0 and no TASK_FAILED follows the FINISHED.
#[actix_rt::test]
async fn a_command_runs_to_completion_in_its_sandbox() {
    let mut c = cluster().await;
    c.run(command_task(
        "hello",
        "echo hello > out.txt; echo \"$MESOS_TASK_ID\"",
    ));
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
    c.events
        .assert_no_update_within(Duration::from_millis(300))
        .await;
}

/// A non-zero exit is TASK_FAILED with the exit status in the message.
#[actix_rt::test]
async fn a_failing_command_reports_its_status() {
    let mut c = cluster().await;
    c.run(command_task("three", "exit 3"));
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
    c.run(command_task("sleeper", "echo $$ > pgid; sleep 600"));
    c.events.wait_running().await;
    let pgid = wait_pid(&c.sandbox("sleeper").join("pgid")).await;
    assert!(launcher::group_alive(pgid));
    c.kill("sleeper", None);
    let seen = c.states_until_terminal("sleeper").await;
    assert_eq!(seen.last().unwrap().state, TaskState::Killed);
    c.executor_exit("sleeper").await;
    assert_group_gone(pgid).await;
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
        if c.runs_dir("ex-early").is_dir() {
            break wait_pid(&c.sandbox("ex-early").join("pgid")).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    c.kill("early", Some(200));
    let seen = c.states_until_terminal("early").await;
    assert_eq!(states(&seen), [TaskState::Killed]);
    assert_eq!(
        seen[0].reason,
        Some(TaskStatusReason::TaskKilledDuringLaunch)
    );
    c.executor_exit("ex-early").await;
    assert!(!launcher::group_alive(pgid));
}
