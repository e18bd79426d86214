//! Tests of the agent's bookkeeping.

use super::*;

fn fw() -> FrameworkId {
    FrameworkId::new("fw")
}

fn upid(name: &str) -> Upid {
    Upid::new(name, "127.0.0.1:5050".parse().unwrap()).unwrap()
}

fn command_task(id: &str) -> TaskInfo {
    TaskInfo::command(
        TaskId::new(id),
        AgentId::new("a"),
        Resources::new(),
        CommandInfo::shell("true"),
    )
}

fn run(state: &mut AgentState, task: TaskInfo) -> RunOutcome {
    state
        .run_task(
            FrameworkInfo::new("f", "u"),
            fw(),
            upid("scheduler"),
            task,
            Path::new("/bin/meso"),
            "r1",
        )
        .unwrap()
}

fn update(state: TaskState, task: &str) -> TaskStatus {
    TaskStatus::new(TaskId::new(task), state, 1).reliable()
}

fn ex_key(id: &str) -> ExecutorKey {
    (fw(), ExecutorId::new(id))
}

fn task_key(id: &str) -> TaskKey {
    (fw(), TaskId::new(id))
}

#[test]
fn a_command_task_gets_its_own_executor_named_after_it() {
    let mut s = AgentState::new();
    let RunOutcome::Launch(info) = run(&mut s, command_task("t1")) else {
        panic!("a new executor is launched")
    };
    assert_eq!(info.executor_id, ExecutorId::new("t1"));
    assert_eq!(info.command.arguments, ["/bin/meso", "executor"]);
    assert!(matches!(
        s.run_task(
            FrameworkInfo::new("f", "u"),
            fw(),
            upid("scheduler"),
            command_task("t1"),
            Path::new("/bin/meso"),
            "r2",
        ),
        Err(StateError::DuplicateTask(..))
    ));
    s.launched(&ex_key("t1"), 4242, PathBuf::from("/tmp/x"));
    let tasks = s
        .register_executor(&ex_key("t1"), upid("executor"))
        .unwrap();
    assert_eq!(tasks, vec![command_task("t1")]);
    // The answer was lost and the executor asks again: nothing is sent twice.
    assert!(s
        .register_executor(&ex_key("t1"), upid("executor"))
        .unwrap()
        .is_empty());
    assert!(matches!(
        s.register_executor(&ex_key("t1"), upid("impostor")),
        Err(StateError::AlreadyRegistered(..))
    ));
}

#[test]
fn tasks_of_a_custom_executor_queue_until_it_registers() {
    let mut s = AgentState::new();
    let custom = |id: &str| {
        let mut t = command_task(id);
        t.command = None;
        t.executor = Some(ExecutorInfo {
            executor_id: ExecutorId::new("ex"),
            framework_id: fw(),
            command: CommandInfo::shell("./my-executor"),
            resources: Resources::new(),
            name: "mine".into(),
        });
        t
    };
    assert!(matches!(run(&mut s, custom("a")), RunOutcome::Launch(_)));
    assert_eq!(run(&mut s, custom("b")), RunOutcome::Queued);
    let sent = s.register_executor(&ex_key("ex"), upid("ex")).unwrap();
    assert_eq!(sent.len(), 2);
    assert_eq!(run(&mut s, custom("c")), RunOutcome::Send(upid("ex")));
}

/// Mesos: a kill before the executor registered is answered TASK_KILLED by the agent, and the
/// task is never handed to the executor; an executor left with nothing is killed.
#[test]
fn kill_before_registration() {
    let mut s = AgentState::new();
    run(&mut s, command_task("t1"));
    s.launched(&ex_key("t1"), 4242, PathBuf::from("/tmp/x"));
    let KillOutcome::KilledBeforeLaunch {
        status, kill_group, ..
    } = s.kill_task(&task_key("t1"), 5)
    else {
        panic!("killed by the agent")
    };
    assert_eq!(status.state, TaskState::Killed);
    assert!(status.uuid.is_some());
    assert_eq!(kill_group, Some(4242));
    assert!(s
        .register_executor(&ex_key("t1"), upid("late"))
        .unwrap()
        .is_empty());
    assert_eq!(
        s.kill_task(&task_key("t1"), 6),
        KillOutcome::AlreadyTerminal
    );
    // Its executor dies afterwards: no second terminal update.
    let (_, statuses) = s.executor_exited(&ex_key("t1"), "was killed", 7).unwrap();
    assert!(statuses.is_empty());
    assert!(matches!(
        s.kill_task(&task_key("nope"), 8),
        KillOutcome::UnknownTask { .. }
    ));
}

/// A second kill of a task whose kill went to its executor changes nothing.
#[test]
fn a_duplicate_kill_is_not_passed_on_twice() {
    let mut s = AgentState::new();
    run(&mut s, command_task("t1"));
    s.register_executor(&ex_key("t1"), upid("ex")).unwrap();
    assert!(matches!(
        s.kill_task(&task_key("t1"), 5),
        KillOutcome::AskExecutor { .. }
    ));
    assert_eq!(s.kill_task(&task_key("t1"), 6), KillOutcome::AlreadyKilling);
}

/// Mesos: a kill of a task the agent never had (its RunTask was lost or is late) is answered
/// TASK_LOST (TASK_DROPPED for a partition-aware framework), reliably, once; the late RunTask
/// then starts nothing.
#[test]
fn a_kill_of_an_unknown_task_ends_it_and_a_late_run_is_refused() {
    let mut s = AgentState::new();
    s.agent_id = Some(AgentId::new("a"));
    let KillOutcome::UnknownTask { status } = s.kill_task(&task_key("lost"), 5) else {
        panic!("answered")
    };
    assert_eq!(status.state, TaskState::Lost);
    assert_eq!(status.reason, Some(TaskStatusReason::TaskUnknown));
    assert!(status.uuid.is_some(), "sent reliably");
    assert_eq!(status.agent_id, Some(AgentId::new("a")));
    assert_eq!(
        s.kill_task(&task_key("lost"), 6),
        KillOutcome::AlreadyTerminal
    );
    let late = s.run_task(
        FrameworkInfo::new("f", "u"),
        fw(),
        upid("scheduler"),
        command_task("lost"),
        Path::new("/bin/meso"),
        "r1",
    );
    assert!(matches!(late, Err(StateError::KilledBeforeArrival(..))));
    assert!(s.executor(&ex_key("lost")).is_none());

    // A partition-aware framework the agent knows hears TASK_DROPPED.
    let mut info = FrameworkInfo::new("f", "u");
    info.partition_aware = true;
    s.run_task(
        info,
        fw(),
        upid("scheduler"),
        command_task("t1"),
        Path::new("/bin/meso"),
        "r1",
    )
    .unwrap();
    let KillOutcome::UnknownTask { status } = s.kill_task(&task_key("t2"), 7) else {
        panic!("answered")
    };
    assert_eq!(status.state, TaskState::Dropped);
}

/// A RunTask delivered again after its task ended and was forgotten starts nothing.
#[test]
fn a_late_duplicate_run_of_an_ended_task_is_refused() {
    let mut s = AgentState::new();
    run(&mut s, command_task("t1"));
    s.register_executor(&ex_key("t1"), upid("ex")).unwrap();
    s.record_update(&fw(), None, &update(TaskState::Finished, "t1"))
        .unwrap();
    assert!(s.forget_task(&task_key("t1")));
    s.executor_exited(&ex_key("t1"), "exited", 3);
    let again = s.run_task(
        FrameworkInfo::new("f", "u"),
        fw(),
        upid("scheduler"),
        command_task("t1"),
        Path::new("/bin/meso"),
        "r2",
    );
    assert!(matches!(again, Err(StateError::Ended(..))));
    assert_eq!(
        s.kill_task(&task_key("t1"), 4),
        KillOutcome::AlreadyTerminal,
        "no TASK_LOST for a task that ended here"
    );
}

#[test]
fn kill_of_a_launched_task_asks_the_executor() {
    let mut s = AgentState::new();
    run(&mut s, command_task("t1"));
    s.register_executor(&ex_key("t1"), upid("ex")).unwrap();
    assert_eq!(
        s.kill_task(&task_key("t1"), 5),
        KillOutcome::AskExecutor {
            executor: ex_key("t1"),
            upid: upid("ex")
        }
    );
    s.launched(&ex_key("t1"), 77, PathBuf::from("/x"));
    let (status, pgid) = s.kill_timed_out(&task_key("t1"), 9).unwrap();
    assert_eq!((status.state, pgid), (TaskState::Killed, 77));
    assert!(s.kill_timed_out(&task_key("t1"), 10).is_none());
}

/// Flow 8: only tasks without a terminal update get TASK_FAILED when their executor dies.
#[test]
fn executor_death_fails_only_unfinished_tasks() {
    let mut s = AgentState::new();
    let custom = |id: &str| {
        let mut t = command_task(id);
        t.command = None;
        t.executor = Some(ExecutorInfo {
            executor_id: ExecutorId::new("ex"),
            framework_id: fw(),
            command: CommandInfo::shell("./x"),
            resources: Resources::new(),
            name: String::new(),
        });
        t
    };
    run(&mut s, custom("done"));
    run(&mut s, custom("busy"));
    s.register_executor(&ex_key("ex"), upid("ex")).unwrap();
    let ex = ExecutorId::new("ex");
    s.record_update(&fw(), Some(&ex), &update(TaskState::Running, "busy"))
        .unwrap();
    s.record_update(&fw(), Some(&ex), &update(TaskState::Finished, "done"))
        .unwrap();
    let (_, statuses) = s
        .executor_exited(&ex_key("ex"), "terminated by signal 9", 3)
        .unwrap();
    assert_eq!(statuses.len(), 1);
    let failed = &statuses[0];
    assert_eq!(failed.task_id, TaskId::new("busy"));
    assert_eq!(failed.state, TaskState::Failed);
    assert_eq!(failed.reason, Some(TaskStatusReason::ExecutorTerminated));
    assert!(failed.message.contains("signal 9"));
    assert!(s.executor_exited(&ex_key("ex"), "again", 4).is_none());
}

/// A command executor that exits 0 after TASK_FINISHED: exactly one terminal update.
#[test]
fn exit_after_finished_makes_no_failure() {
    let mut s = AgentState::new();
    run(&mut s, command_task("t1"));
    s.register_executor(&ex_key("t1"), upid("ex")).unwrap();
    let ex = ExecutorId::new("t1");
    let finished = update(TaskState::Finished, "t1");
    s.record_update(&fw(), Some(&ex), &update(TaskState::Running, "t1"))
        .unwrap();
    s.record_update(&fw(), Some(&ex), &finished).unwrap();
    // The same update again (a resend) is fine; another terminal one is refused.
    s.record_update(&fw(), Some(&ex), &finished).unwrap();
    assert_eq!(
        s.record_update(&fw(), Some(&ex), &update(TaskState::Failed, "t1")),
        Err(StateError::AlreadyTerminal(TaskId::new("t1")))
    );
    let (_, statuses) = s
        .executor_exited(&ex_key("t1"), "exited with status 0", 3)
        .unwrap();
    assert!(statuses.is_empty());
    assert_eq!(s.task(&task_key("t1")).unwrap().state, TaskState::Finished);
    assert!(s.forget_task(&task_key("t1")));
    assert!(s.task(&task_key("t1")).is_none());
}

#[test]
fn updates_from_the_wrong_executor_or_for_unknown_tasks_are_refused() {
    let mut s = AgentState::new();
    run(&mut s, command_task("t1"));
    assert!(matches!(
        s.record_update(
            &fw(),
            Some(&ExecutorId::new("other")),
            &update(TaskState::Running, "t1")
        ),
        Err(StateError::WrongExecutor(..))
    ));
    assert!(matches!(
        s.record_update(&fw(), None, &update(TaskState::Running, "zzz")),
        Err(StateError::UnknownTask(..))
    ));
    assert!(!s.forget_task(&task_key("t1")), "not terminal");
    let mut bad = command_task("t2");
    bad.command = None;
    assert!(matches!(
        s.run_task(
            FrameworkInfo::new("f", "u"),
            fw(),
            upid("s"),
            bad,
            Path::new("/m"),
            "r1"
        ),
        Err(StateError::InvalidTask(_))
    ));
}

/// After a framework fails over, the master tells the agent where its scheduler is now (Mesos's
/// UpdateFrameworkMessage); an unknown framework changes nothing.
#[test]
fn a_framework_update_points_at_the_new_scheduler() {
    let mut s = AgentState::new();
    run(&mut s, command_task("t1"));
    let info = s.update_scheduler(&fw(), upid("scheduler-2"));
    assert!(info.is_some());
    assert_eq!(s.framework(&fw()).unwrap().scheduler, upid("scheduler-2"));
    assert!(s
        .update_scheduler(&FrameworkId::new("other"), upid("x"))
        .is_none());
}
