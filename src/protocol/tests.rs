use super::*;
use crate::codec::{decode, encode};
use crate::process::WireMessage;
use std::collections::BTreeSet;
use std::fmt::Debug;

fn upid() -> Upid {
    "master@127.0.0.1:5050".parse().unwrap()
}

fn fw() -> FrameworkId {
    FrameworkId::new("F-1")
}

fn agent() -> AgentId {
    AgentId::new("A-1")
}

fn status() -> TaskStatus {
    TaskStatus::new(TaskId::new("t1"), TaskState::Running, 1234)
        .with_reason(TaskStatusReason::Reconciliation)
        .with_message("all good")
        .with_agent(agent())
        .with_executor(ExecutorId::new("e1"))
        .reliable()
}

fn framework_info() -> FrameworkInfo {
    FrameworkInfo {
        id: Some(fw()),
        failover_timeout_s: 12.5,
        partition_aware: true,
        hostname: "h".into(),
        ..FrameworkInfo::new("fw", "root")
    }
}

fn executor_info() -> ExecutorInfo {
    ExecutorInfo {
        executor_id: ExecutorId::new("e1"),
        framework_id: fw(),
        command: CommandInfo {
            environment: vec![("A".into(), "b".into())],
            ..CommandInfo::exec("/bin/exec", vec!["exec".into(), "-v".into()])
        },
        resources: Resources::default(),
        name: "ex".into(),
    }
}

fn task() -> TaskInfo {
    TaskInfo {
        data: vec![1, 2, 3],
        kill_grace_period_ms: Some(3000),
        ..TaskInfo::command(
            TaskId::new("t1"),
            agent(),
            Resources::default(),
            CommandInfo::shell("echo hi"),
        )
    }
}

fn executor_task() -> TaskInfo {
    TaskInfo {
        command: None,
        executor: Some(executor_info()),
        ..task()
    }
}

fn agent_info() -> AgentInfo {
    AgentInfo {
        id: Some(agent()),
        hostname: "node1".into(),
        resources: Resources::default(),
        attributes: vec![("rack".into(), "r1".into())],
        port: 5051,
    }
}

fn master_info() -> MasterInfo {
    MasterInfo {
        id: "M-1".into(),
        upid: upid(),
    }
}

fn offer() -> Offer {
    Offer {
        id: OfferId::new("O-1"),
        framework_id: fw(),
        agent_id: agent(),
        hostname: "node1".into(),
        resources: Resources::default(),
        attributes: vec![("rack".into(), "r1".into())],
        agent_upid: "agent@127.0.0.1:5051".parse().unwrap(),
    }
}

/// Round-trips a message through the codec and returns its wire name.
fn rt<T: WireMessage + PartialEq + Debug>(message: T) -> &'static str {
    let bytes = encode(&message).unwrap();
    let back: T = decode(&bytes).unwrap();
    assert_eq!(back, message, "{}", T::NAME);
    T::NAME
}

fn all_round_trips() -> Vec<&'static str> {
    vec![
        rt(RegisterFramework {
            framework: FrameworkInfo::new("a", "b"),
        }),
        rt(ReregisterFramework {
            framework: framework_info(),
            failover: true,
        }),
        rt(FrameworkRegistered {
            framework_id: fw(),
            master_info: master_info(),
        }),
        rt(FrameworkReregistered {
            framework_id: fw(),
            master_info: master_info(),
        }),
        rt(UnregisterFramework { framework_id: fw() }),
        rt(DeactivateFramework { framework_id: fw() }),
        rt(ResourceOffers {
            offers: vec![offer(), offer()],
        }),
        rt(RescindOffer {
            offer_id: OfferId::new("O-9"),
        }),
        rt(AcceptOffers {
            framework_id: fw(),
            offer_ids: vec![OfferId::new("O-1"), OfferId::new("O-2")],
            operations: vec![Operation::Launch {
                tasks: vec![task(), executor_task()],
            }],
            filters: Filters::default(),
        }),
        rt(DeclineOffers {
            framework_id: fw(),
            offer_ids: vec![OfferId::new("O-1")],
            filters: Filters {
                refuse_seconds: 0.25,
            },
        }),
        rt(ReviveOffers { framework_id: fw() }),
        rt(SuppressOffers { framework_id: fw() }),
        rt(KillTask {
            framework_id: fw(),
            task_id: TaskId::new("t1"),
            agent_id: Some(agent()),
        }),
        rt(ReconcileTasks {
            framework_id: fw(),
            statuses: vec![
                (TaskId::new("t1"), None),
                (TaskId::new("t2"), Some(agent())),
            ],
        }),
        rt(StatusUpdate {
            framework_id: fw(),
            status: status(),
            executor_id: Some(ExecutorId::new("e1")),
            source: StatusSource::Executor,
        }),
        rt(StatusUpdateAcknowledgement {
            agent_id: agent(),
            framework_id: fw(),
            task_id: TaskId::new("t1"),
            uuid: new_uuid(),
        }),
        rt(FrameworkError {
            message: "no".into(),
        }),
        rt(AgentLost { agent_id: agent() }),
        rt(ExecutorExited {
            agent_id: agent(),
            framework_id: fw(),
            executor_id: ExecutorId::new("e1"),
            status: -9,
        }),
        rt(ExecutorToFramework {
            framework_id: fw(),
            executor_id: ExecutorId::new("e1"),
            agent_id: agent(),
            data: vec![0, 255],
        }),
        rt(FrameworkToExecutor {
            framework_id: fw(),
            executor_id: ExecutorId::new("e1"),
            agent_id: agent(),
            data: vec![],
        }),
        rt(Heartbeat {}),
        rt(RegisterAgent {
            agent: AgentInfo {
                id: None,
                ..agent_info()
            },
            version: "0.1.0".into(),
        }),
        rt(ReregisterAgent {
            agent: agent_info(),
            version: "0.1.0".into(),
            tasks: vec![AgentTask {
                framework_id: fw(),
                task: task(),
                state: TaskState::Running,
                status: Some(status()),
            }],
            executors: vec![executor_info()],
            frameworks: vec![framework_info()],
        }),
        rt(AgentRegistered {
            agent_id: agent(),
            master_info: master_info(),
        }),
        rt(AgentReregistered {
            agent_id: agent(),
            master_info: master_info(),
        }),
        rt(UnregisterAgent { agent_id: agent() }),
        rt(Ping { connected: true }),
        rt(Pong {}),
        rt(RunTask {
            framework: framework_info(),
            framework_id: fw(),
            scheduler: "scheduler-1@10.0.0.1:40000".parse().unwrap(),
            task: task(),
        }),
        rt(KillTaskOnAgent {
            framework_id: fw(),
            task_id: TaskId::new("t1"),
            kill_grace_period_ms: None,
        }),
        rt(ShutdownFramework { framework_id: fw() }),
        rt(ShutdownExecutor {
            framework_id: fw(),
            executor_id: ExecutorId::new("e1"),
        }),
        rt(ShutdownAgent {
            message: "removed".into(),
        }),
        rt(UpdateFramework {
            framework_id: fw(),
            scheduler: upid(),
        }),
        rt(RegisterExecutor {
            framework_id: fw(),
            executor_id: ExecutorId::new("e1"),
        }),
        rt(ExecutorRegistered {
            executor_info: executor_info(),
            framework_id: fw(),
            framework_info: framework_info(),
            agent_id: agent(),
            agent_info: agent_info(),
        }),
        rt(ReconnectExecutor { agent_id: agent() }),
        rt(ReregisterExecutor {
            framework_id: fw(),
            executor_id: ExecutorId::new("e1"),
            tasks: vec![task()],
            updates: vec![status()],
        }),
        rt(ExecutorReregistered {
            agent_id: agent(),
            agent_info: agent_info(),
        }),
        rt(LaunchTask {
            framework_id: fw(),
            task: executor_task(),
        }),
        rt(KillTaskInExecutor {
            framework_id: fw(),
            task_id: TaskId::new("t1"),
            kill_grace_period_ms: Some(1),
        }),
        rt(ExecutorStatusUpdate {
            framework_id: fw(),
            executor_id: ExecutorId::new("e1"),
            status: status(),
        }),
        rt(ExecutorStatusAck {
            framework_id: fw(),
            task_id: TaskId::new("t1"),
            uuid: [7; 16],
        }),
        rt(InspectMaster::all()),
        rt(MasterInspection {
            agents: vec![AgentAccount {
                agent_id: AgentId::new("a1"),
                total: Resources::parse("cpus:2;mem:64").unwrap(),
                used: Resources::parse("cpus:1").unwrap(),
                offered: Resources::parse("mem:32").unwrap(),
                free: Resources::parse("cpus:1;mem:32").unwrap(),
            }],
            agents_total: 1,
            problems: vec!["none".into()],
        }),
    ]
}

#[test]
fn every_message_round_trips() {
    let names: BTreeSet<&str> = all_round_trips().into_iter().collect();
    let declared: BTreeSet<&str> = MESSAGE_NAMES.iter().copied().collect();
    assert_eq!(names, declared, "every declared message is round-tripped");
}

#[test]
fn message_names_are_unique_and_prefixed() {
    let unique: BTreeSet<&str> = MESSAGE_NAMES.iter().copied().collect();
    assert_eq!(unique.len(), MESSAGE_NAMES.len());
    for name in MESSAGE_NAMES {
        assert!(name.starts_with("meso.") && name.len() > 5, "{name}");
        assert!(name.len() <= 255, "{name}");
    }
    assert_eq!(RegisterFramework::NAME, "meso.RegisterFramework");
}

#[test]
fn terminal_states_match_mesos() {
    let terminal: Vec<TaskState> = TaskState::ALL
        .into_iter()
        .filter(|s| s.is_terminal())
        .collect();
    assert_eq!(
        terminal,
        vec![
            TaskState::Finished,
            TaskState::Failed,
            TaskState::Killed,
            TaskState::Error,
            TaskState::Lost,
            TaskState::Dropped,
            TaskState::Gone,
        ]
    );
    for state in [
        TaskState::Staging,
        TaskState::Starting,
        TaskState::Running,
        TaskState::Killing,
        TaskState::Unreachable,
        TaskState::Unknown,
    ] {
        assert!(!state.is_terminal(), "{state}");
    }
}

#[test]
fn states_print_like_mesos() {
    assert_eq!(TaskState::Running.to_string(), "TASK_RUNNING");
    assert_eq!(TaskState::Unreachable.to_string(), "TASK_UNREACHABLE");
    let printed: BTreeSet<String> = TaskState::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(printed.len(), TaskState::ALL.len());
    assert!(printed.iter().all(|s| s.starts_with("TASK_")));
}

#[test]
fn ids_print_and_compare_as_their_text() {
    let a = TaskId::new("b");
    assert_eq!(a.to_string(), "b");
    assert_eq!(a.as_str(), "b");
    assert!(TaskId::new("a") < a);
    assert_eq!(AgentId::from("x"), AgentId::new(String::from("x")));
}

#[test]
fn defaults_follow_mesos() {
    let info = FrameworkInfo::new("n", "u");
    assert_eq!(info.role, "*");
    assert!(info.checkpoint);
    assert!(!info.partition_aware);
    assert_eq!(Filters::default().refuse_seconds, 5.0);
    assert!(CommandInfo::default().shell);
}

#[test]
fn uuids_are_fresh() {
    assert_ne!(new_uuid(), new_uuid());
    assert!(TaskStatus::new(TaskId::new("t"), TaskState::Lost, 0)
        .uuid
        .is_none());
    assert!(status().uuid.is_some());
}

#[test]
fn a_cut_message_is_an_error_not_a_panic() {
    let bytes = encode(&ReregisterExecutor {
        framework_id: fw(),
        executor_id: ExecutorId::new("e1"),
        tasks: vec![task()],
        updates: vec![status()],
    })
    .unwrap();
    for cut in 0..bytes.len() {
        assert!(decode::<ReregisterExecutor>(&bytes[..cut]).is_err());
    }
}
