//! Tests of the master's state machine, without actors or sockets: each test feeds events and
//! checks the messages that come out and the allocator's accounting.

use super::state::{MasterState, Outgoing, Sends};
use meso::allocator::AllocatorConfig;
use meso::process::Upid;
use meso::protocol::*;
use meso::resources::Resources;

pub(super) fn upid(name: &str) -> Upid {
    Upid::new(name, "127.0.0.1:5050".parse().unwrap()).unwrap()
}

pub(super) fn res(text: &str) -> Resources {
    Resources::parse(text).unwrap()
}

pub(super) fn master() -> MasterState {
    MasterState::new("m1", upid("master"), AllocatorConfig::default())
}

pub(super) fn agent_info(resources: &str) -> AgentInfo {
    AgentInfo {
        id: None,
        hostname: "host-1".to_string(),
        resources: res(resources),
        attributes: vec![("rack".to_string(), "r1".to_string())],
        port: 5051,
    }
}

pub(super) fn register_agent(m: &mut MasterState, name: &str, resources: &str) -> AgentId {
    let out = m.register_agent(
        &upid(name),
        RegisterAgent {
            agent: agent_info(resources),
            version: "test".to_string(),
        },
        0,
    );
    out.iter()
        .find_map(|(_, o)| match o {
            Outgoing::AgentRegistered(r) => Some(r.agent_id.clone()),
            _ => None,
        })
        .expect("AgentRegistered")
}

pub(super) fn register_framework(m: &mut MasterState, name: &str) -> FrameworkId {
    let out = m.register_framework(
        &upid(name),
        RegisterFramework {
            framework: FrameworkInfo::new(name, "user"),
        },
    );
    out.iter()
        .find_map(|(_, o)| match o {
            Outgoing::FrameworkRegistered(r) => Some(r.framework_id.clone()),
            _ => None,
        })
        .expect("FrameworkRegistered")
}

pub(super) fn offers(out: &Sends) -> Vec<(Upid, Offer)> {
    out.iter()
        .flat_map(|(to, o)| match o {
            Outgoing::ResourceOffers(r) => r
                .offers
                .iter()
                .map(|offer| (to.clone(), offer.clone()))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

pub(super) fn updates(out: &Sends) -> Vec<(Upid, TaskStatus)> {
    out.iter()
        .filter_map(|(to, o)| match o {
            Outgoing::StatusUpdate(u) => Some((to.clone(), u.status.clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn run_tasks(out: &Sends) -> Vec<(Upid, TaskInfo)> {
    out.iter()
        .filter_map(|(to, o)| match o {
            Outgoing::RunTask(r) => Some((to.clone(), r.task.clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn task(id: &str, agent: &AgentId, resources: &str) -> TaskInfo {
    TaskInfo::command(
        TaskId::new(id),
        agent.clone(),
        res(resources),
        CommandInfo::shell("sleep 1"),
    )
}

pub(super) fn accept(
    framework: &FrameworkId,
    offer: &OfferId,
    tasks: Vec<TaskInfo>,
) -> AcceptOffers {
    AcceptOffers {
        framework_id: framework.clone(),
        offer_ids: vec![offer.clone()],
        operations: vec![Operation::Launch { tasks }],
        filters: Filters {
            refuse_seconds: 0.0,
        },
    }
}

/// One agent `agent` with `resources`, one framework `sched`, and the first offer.
pub(super) fn cluster(resources: &str) -> (MasterState, AgentId, FrameworkId, Offer) {
    let mut m = master();
    let a = register_agent(&mut m, "agent", resources);
    let f = register_framework(&mut m, "sched");
    let out = m.allocate(0);
    let offer = offers(&out).pop().expect("an offer").1;
    (m, a, f, offer)
}

pub(super) fn executor_update(f: &FrameworkId, task: &str, state: TaskState) -> StatusUpdate {
    StatusUpdate {
        framework_id: f.clone(),
        status: TaskStatus::new(TaskId::new(task), state, 1).reliable(),
        executor_id: Some(ExecutorId::new(task)),
        source: StatusSource::Executor,
    }
}

pub(super) fn assert_accounting(m: &MasterState) {
    assert_eq!(m.allocator().check_accounting(), Ok(()));
}

#[test]
pub(super) fn registration_retries_get_the_same_ids() {
    let mut m = master();
    let a1 = register_agent(&mut m, "agent", "cpus:1");
    let a2 = register_agent(&mut m, "agent", "cpus:1");
    assert_eq!(a1, a2);
    assert_eq!(a1.as_str(), "m1-1-A1");
    let other = register_agent(&mut m, "agent-2", "cpus:1");
    assert_eq!(other.as_str(), "m1-1-A2");
    let f1 = register_framework(&mut m, "sched");
    let retry = m.register_framework(
        &upid("sched"),
        RegisterFramework {
            framework: FrameworkInfo::new("sched", "user"),
        },
    );
    assert!(
        !retry.iter().any(|(_, o)| o == &Outgoing::Link),
        "a retry neither links again nor adds a framework"
    );
    assert_eq!(register_framework(&mut m, "sched"), f1);
    assert_eq!(f1.as_str(), "m1-1-F1");
    assert_eq!(m.allocator().framework_ids().count(), 1);
    assert_eq!(m.allocator().agent_ids().count(), 2);
}

#[test]
pub(super) fn offers_go_out_after_an_agent_and_a_framework_register() {
    let mut m = master();
    register_agent(&mut m, "agent", "cpus:2;mem:1024");
    assert!(m.take_allocation_wanted());
    assert!(offers(&m.allocate(0)).is_empty(), "no framework yet");
    let f = register_framework(&mut m, "sched");
    assert!(m.take_allocation_wanted());
    let out = m.allocate(1);
    let got = offers(&out);
    assert_eq!(got.len(), 1);
    let (to, offer) = &got[0];
    assert_eq!(to, &upid("sched"));
    assert_eq!(offer.framework_id, f);
    assert_eq!(offer.hostname, "host-1");
    assert_eq!(offer.agent_upid, upid("agent"));
    assert_eq!(offer.attributes, vec![("rack".into(), "r1".into())]);
    assert_eq!(offer.resources, res("cpus:2;mem:1024"));
    assert!(m.book().contains(&offer.id));
    assert_accounting(&m);
}

#[test]
pub(super) fn an_accept_runs_the_tasks_and_recovers_the_rest() {
    let (mut m, a, f, offer) = cluster("cpus:2;mem:1024");
    let out = m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:0.5;mem:128")]),
        10,
    );
    let runs = run_tasks(&out);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].0, upid("agent"));
    assert_eq!(runs[0].1.task_id.as_str(), "t1");
    assert!(updates(&out).is_empty());
    assert_eq!(
        m.tasks().get(&f, &TaskId::new("t1")).map(|t| t.state),
        Some(TaskState::Staging)
    );
    assert_eq!(m.allocator().allocated(f.as_str()), res("cpus:0.5;mem:128"));
    assert_eq!(m.allocator().available(a.as_str()), res("cpus:1.5;mem:896"));
    assert!(m.book().is_empty());
    assert_accounting(&m);
    // The rest is offered again (the accept's filter was 0 s).
    let again = offers(&m.allocate(20));
    assert_eq!(again[0].1.resources, res("cpus:1.5;mem:896"));
}

#[test]
pub(super) fn invalid_offers_lose_every_task_and_give_the_valid_offers_back() {
    let (mut m, a, f, offer) = cluster("cpus:2;mem:1024");
    let mut bad = accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]);
    bad.offer_ids.push(OfferId::new("m1-O999"));
    let out = m.accept_offers(&upid("sched"), bad, 10);
    assert!(run_tasks(&out).is_empty());
    let ups = updates(&out);
    assert_eq!(ups.len(), 1);
    let (to, status) = &ups[0];
    assert_eq!(to, &upid("sched"));
    assert_eq!(status.state, TaskState::Lost);
    assert_eq!(status.reason, Some(TaskStatusReason::InvalidOffers));
    assert_eq!(status.uuid, None);
    assert_eq!(status.agent_id.as_ref(), Some(&a));
    assert!(m.book().is_empty(), "the valid offer is used up");
    assert_eq!(m.allocator().allocated(f.as_str()), Resources::new());
    assert_eq!(m.allocator().available(a.as_str()), res("cpus:2;mem:1024"));
    assert_accounting(&m);
    // The same offer again: it is gone, nothing is allocated twice.
    let out = m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t2", &a, "cpus:1")]),
        11,
    );
    assert_eq!(updates(&out)[0].1.state, TaskState::Lost);
    assert_eq!(m.allocator().available(a.as_str()), res("cpus:2;mem:1024"));
    assert_accounting(&m);
}

#[test]
pub(super) fn invalid_tasks_get_task_error_and_use_nothing() {
    let (mut m, a, f, offer) = cluster("cpus:2;mem:1024");
    let first = m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("dup", &a, "cpus:0.5")]),
        10,
    );
    assert_eq!(run_tasks(&first).len(), 1);
    let offer = offers(&m.allocate(20)).pop().unwrap().1;
    let mut no_command = task("nocmd", &a, "cpus:0.1");
    no_command.command = None;
    let tasks = vec![
        task("dup", &a, "cpus:0.1"),
        task("big", &a, "cpus:5"),
        no_command,
        task("ok", &a, "cpus:0.5"),
    ];
    let out = m.accept_offers(&upid("sched"), accept(&f, &offer.id, tasks), 30);
    let reasons: Vec<(String, TaskState, Option<TaskStatusReason>)> = updates(&out)
        .into_iter()
        .map(|(_, s)| (s.task_id.to_string(), s.state, s.reason))
        .collect();
    use TaskStatusReason::*;
    assert_eq!(
        reasons,
        vec![
            ("dup".into(), TaskState::Error, Some(DuplicateTaskId)),
            ("big".into(), TaskState::Error, Some(InvalidResources)),
            ("nocmd".into(), TaskState::Error, Some(InvalidTask)),
        ]
    );
    let runs: Vec<String> = run_tasks(&out)
        .into_iter()
        .map(|(_, t)| t.task_id.to_string())
        .collect();
    assert_eq!(runs, vec!["ok".to_string()]);
    assert_eq!(m.allocator().allocated(f.as_str()), res("cpus:1"));
    assert_accounting(&m);
}

/// Ten tasks of 0.1 cpus fit on one cpu and the eleventh does not; when three finish, the next
/// offer holds exactly 0.3 cpus (fixed-point scalars, no drift).
#[test]
pub(super) fn ten_tenths_fit_and_three_finished_give_back_exactly_three_tenths() {
    let (mut m, a, f, offer) = cluster("cpus:1");
    let tasks = (1..=11)
        .map(|i| task(&format!("t{i}"), &a, "cpus:0.1"))
        .collect();
    let out = m.accept_offers(&upid("sched"), accept(&f, &offer.id, tasks), 10);
    assert_eq!(run_tasks(&out).len(), 10);
    let ups = updates(&out);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].1.task_id.as_str(), "t11");
    assert_eq!(ups[0].1.reason, Some(TaskStatusReason::InvalidResources));
    assert!(offers(&m.allocate(20)).is_empty(), "the agent is full");
    for i in 1..=3 {
        let id = format!("t{i}");
        m.status_update(&upid("agent"), executor_update(&f, &id, TaskState::Running));
        let fin = executor_update(&f, &id, TaskState::Finished);
        let out = m.status_update(&upid("agent"), fin.clone());
        assert_eq!(
            out,
            vec![(upid("sched"), Outgoing::StatusUpdate(fin.clone()))]
        );
        // A resend of the same terminal update is forwarded but recovers nothing again.
        m.status_update(&upid("agent"), fin);
    }
    assert!(m.take_allocation_wanted());
    let got = offers(&m.allocate(30));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.resources, res("cpus:0.3"));
    assert_accounting(&m);
}

#[test]
pub(super) fn a_disconnected_agent_has_its_offers_rescinded_at_once_and_its_tasks_lost_after_pings()
{
    let mut m = master();
    let a = register_agent(&mut m, "agent", "cpus:2");
    let f = register_framework(&mut m, "sched");
    let offer = offers(&m.allocate(0)).pop().unwrap().1;
    let out = m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        1,
    );
    assert_eq!(run_tasks(&out).len(), 1);
    let offer = offers(&m.allocate(2)).pop().unwrap().1;
    let out = m.exited(&upid("agent"), 3);
    assert!(out.contains(&(
        upid("sched"),
        Outgoing::RescindOffer(RescindOffer {
            offer_id: offer.id.clone()
        })
    )));
    assert!(updates(&out).is_empty(), "tasks stay while disconnected");
    assert!(m.book().is_empty());
    assert_eq!(m.allocator().agent_ids().count(), 0);
    assert!(!m.agent(&a).unwrap().connected);
    // Five pings (the default) go unanswered: unreachable.
    let mut out = Vec::new();
    for i in 0..6 {
        out = m.ping_agents(10 + i);
        if !updates(&out).is_empty() {
            break;
        }
    }
    let ups = updates(&out);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].1.state, TaskState::Lost);
    assert_eq!(ups[0].1.reason, Some(TaskStatusReason::AgentRemoved));
    assert!(out
        .iter()
        .any(|(_, o)| matches!(o, Outgoing::AgentLost(l) if l.agent_id == a)));
    assert!(m.agent(&a).is_none());
    assert!(m.unreachable_agent(&a).is_some());
    assert_accounting(&m);
}

#[test]
pub(super) fn a_disconnected_framework_has_its_offers_rescinded_and_recovered() {
    let (mut m, a, f, offer) = cluster("cpus:2");
    let g = register_framework(&mut m, "other");
    let out = m.exited(&upid("sched"), 5);
    assert_eq!(
        out,
        vec![(
            upid("sched"),
            Outgoing::RescindOffer(RescindOffer { offer_id: offer.id })
        )]
    );
    assert_eq!(m.allocator().available(a.as_str()), res("cpus:2"));
    assert!(!m.framework(&f).unwrap().connected);
    let next = offers(&m.allocate(6));
    assert_eq!(next.len(), 1);
    assert_eq!(
        next[0].1.framework_id, g,
        "offers go to the connected framework only"
    );
    assert_accounting(&m);
}

#[test]
pub(super) fn a_kill_of_an_unknown_task_is_answered_lost() {
    let (mut m, a, f, offer) = cluster("cpus:2");
    let out = m.kill_task(
        &upid("sched"),
        KillTask {
            framework_id: f.clone(),
            task_id: TaskId::new("nope"),
            agent_id: None,
        },
        5,
    );
    let ups = updates(&out);
    assert_eq!(ups.len(), 1);
    assert_eq!((ups[0].1.state, ups[0].1.uuid), (TaskState::Lost, None));
    // A known task: the kill goes to its agent.
    m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        6,
    );
    let out = m.kill_task(
        &upid("sched"),
        KillTask {
            framework_id: f.clone(),
            task_id: TaskId::new("t1"),
            agent_id: Some(a),
        },
        7,
    );
    assert!(matches!(&out[..], [(to, Outgoing::KillTaskOnAgent(k))]
        if to == &upid("agent") && k.task_id.as_str() == "t1"));
}

#[test]
pub(super) fn reconciliation_explicit_and_implicit() {
    let (mut m, a, f, offer) = cluster("cpus:2");
    m.accept_offers(
        &upid("sched"),
        accept(
            &f,
            &offer.id,
            vec![task("t1", &a, "cpus:1"), task("t2", &a, "cpus:0.5")],
        ),
        1,
    );
    m.status_update(
        &upid("agent"),
        executor_update(&f, "t1", TaskState::Running),
    );
    let implicit = m.reconcile_tasks(
        &upid("sched"),
        ReconcileTasks {
            framework_id: f.clone(),
            statuses: Vec::new(),
        },
        10,
    );
    let got: Vec<(String, TaskState)> = updates(&implicit)
        .into_iter()
        .map(|(_, s)| {
            assert_eq!(s.reason, Some(TaskStatusReason::Reconciliation));
            assert_eq!(s.uuid, None);
            (s.task_id.to_string(), s.state)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("t1".to_string(), TaskState::Running),
            ("t2".to_string(), TaskState::Staging)
        ]
    );
    let explicit = m.reconcile_tasks(
        &upid("sched"),
        ReconcileTasks {
            framework_id: f.clone(),
            statuses: vec![
                (TaskId::new("t2"), Some(a.clone())),
                (TaskId::new("x"), None),
            ],
        },
        11,
    );
    let got: Vec<(String, TaskState)> = updates(&explicit)
        .into_iter()
        .map(|(_, s)| (s.task_id.to_string(), s.state))
        .collect();
    assert_eq!(
        got,
        vec![
            ("t2".to_string(), TaskState::Staging),
            ("x".to_string(), TaskState::Lost)
        ]
    );
}

#[test]
pub(super) fn updates_of_unknown_tasks_are_forwarded_and_acks_go_to_the_agent() {
    let (mut m, a, f, offer) = cluster("cpus:2");
    let unknown = executor_update(&f, "ghost", TaskState::Running);
    let out = m.status_update(&upid("agent"), unknown.clone());
    assert_eq!(out, vec![(upid("sched"), Outgoing::StatusUpdate(unknown))]);
    m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        1,
    );
    let fin = executor_update(&f, "t1", TaskState::Failed);
    m.status_update(&upid("agent"), fin.clone());
    let ack = StatusUpdateAcknowledgement {
        agent_id: a.clone(),
        framework_id: f.clone(),
        task_id: TaskId::new("t1"),
        uuid: fin.status.uuid.unwrap(),
    };
    let out = m.acknowledge(&upid("sched"), ack.clone());
    assert_eq!(
        out,
        vec![(upid("agent"), Outgoing::StatusUpdateAcknowledgement(ack))]
    );
    assert!(
        !m.tasks().contains(&f, &TaskId::new("t1")),
        "an acknowledged terminal task is forgotten"
    );
    assert_accounting(&m);
}

#[test]
pub(super) fn unregistering_kills_the_tasks_and_frees_everything() {
    let (mut m, a, f, offer) = cluster("cpus:2");
    m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        1,
    );
    let out = m.unregister_framework(
        &upid("sched"),
        UnregisterFramework {
            framework_id: f.clone(),
        },
    );
    assert!(matches!(&out[..], [(to, Outgoing::ShutdownFramework(k))]
        if to == &upid("agent") && k.framework_id == f));
    assert_eq!(m.allocator().available(a.as_str()), res("cpus:2"));
    assert!(m.framework(&f).is_none());
    // The agent's late update is acknowledged by the master itself.
    let late = executor_update(&f, "t1", TaskState::Killed);
    let out = m.status_update(&upid("agent"), late);
    assert!(
        matches!(&out[..], [(to, Outgoing::StatusUpdateAcknowledgement(_))]
        if to == &upid("agent"))
    );
    assert_accounting(&m);
}

#[test]
pub(super) fn declined_resources_are_filtered_for_the_refusal_time() {
    let (mut m, a, f, offer) = cluster("cpus:2");
    m.decline_offers(
        &upid("sched"),
        DeclineOffers {
            framework_id: f.clone(),
            offer_ids: vec![offer.id],
            filters: Filters {
                refuse_seconds: 1.0,
            },
        },
        100,
    );
    assert_eq!(m.allocator().available(a.as_str()), res("cpus:2"));
    assert!(offers(&m.allocate(500)).is_empty());
    assert_eq!(offers(&m.allocate(1100)).len(), 1);
    assert_accounting(&m);
}

#[test]
pub(super) fn messages_from_strangers_are_ignored() {
    let (mut m, a, f, offer) = cluster("cpus:2");
    let out = m.accept_offers(
        &upid("intruder"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        1,
    );
    assert!(out.is_empty());
    assert!(m.book().contains(&offer.id));
    let out = m.kill_task(
        &upid("intruder"),
        KillTask {
            framework_id: f,
            task_id: TaskId::new("t1"),
            agent_id: None,
        },
        2,
    );
    assert!(out.is_empty());
}

#[test]
pub(super) fn offers_outstanding_too_long_are_rescinded_and_recovered() {
    let (mut m, a, _f, offer) = cluster("cpus:2");
    assert!(m.expire_offers(999, 1000).is_empty());
    let out = m.expire_offers(1000, 1000);
    assert_eq!(
        out,
        vec![(
            upid("sched"),
            Outgoing::RescindOffer(RescindOffer { offer_id: offer.id })
        )]
    );
    assert_eq!(m.allocator().available(a.as_str()), res("cpus:2"));
    assert_accounting(&m);
}

#[test]
pub(super) fn a_scheduler_retrying_after_its_link_broke_is_connected_again() {
    let (mut m, _a, f, _offer) = cluster("cpus:2");
    m.exited(&upid("sched"), 1);
    assert!(offers(&m.allocate(2)).is_empty());
    let out = m.register_framework(
        &upid("sched"),
        RegisterFramework {
            framework: FrameworkInfo::new("sched", "user"),
        },
    );
    assert_eq!(out[0], (upid("sched"), Outgoing::Link));
    assert!(m.framework(&f).unwrap().connected);
    assert_eq!(offers(&m.allocate(3)).len(), 1);
}

#[test]
pub(super) fn a_framework_reregistering_from_a_new_address_is_announced_to_its_agents() {
    let (mut m, a, f, offer) = cluster("cpus:2");
    m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        1,
    );
    m.exited(&upid("sched"), 2);
    let mut info = FrameworkInfo::new("sched", "user");
    info.id = Some(f.clone());
    let out = m.reregister_framework(
        &upid("sched-2"),
        ReregisterFramework {
            framework: info,
            failover: true,
        },
    );
    assert!(out.contains(&(
        upid("agent"),
        Outgoing::UpdateFramework(UpdateFramework {
            framework_id: f.clone(),
            scheduler: upid("sched-2"),
        })
    )));
    assert!(
        matches!(out.last(), Some((to, Outgoing::FrameworkReregistered(r)))
        if to == &upid("sched-2") && r.framework_id == f)
    );
    // Updates now go to the new scheduler.
    let up = executor_update(&f, "t1", TaskState::Running);
    assert_eq!(m.status_update(&upid("agent"), up)[0].0, upid("sched-2"));
}

#[test]
pub(super) fn an_agent_coming_back_with_its_tasks_counts_them_as_used() {
    let (mut m, a, f, offer) = cluster("cpus:2");
    m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        1,
    );
    m.exited(&upid("agent"), 2);
    assert_eq!(
        m.tasks().get(&f, &TaskId::new("t1")).map(|t| t.state),
        Some(TaskState::Staging),
        "a disconnection keeps the tasks"
    );
    let mut info = agent_info("cpus:2");
    info.id = Some(a.clone());
    let mut framework = FrameworkInfo::new("sched", "user");
    framework.id = Some(f.clone());
    let out = m.reregister_agent(
        &upid("agent"),
        ReregisterAgent {
            agent: info,
            version: "test".to_string(),
            tasks: vec![AgentTask {
                framework_id: f.clone(),
                task: task("t1", &a, "cpus:1"),
                state: TaskState::Running,
                status: None,
            }],
            executors: Vec::new(),
            frameworks: vec![framework],
        },
        3,
    );
    assert!(matches!(out.last(), Some((_, Outgoing::AgentReregistered(r))) if r.agent_id == a));
    assert_eq!(
        m.allocator().allocated_on(a.as_str(), f.as_str()),
        res("cpus:1")
    );
    assert_eq!(m.allocator().available(a.as_str()), res("cpus:1"));
    assert_eq!(
        m.tasks().get(&f, &TaskId::new("t1")).map(|t| t.state),
        Some(TaskState::Running)
    );
    assert_accounting(&m);
}
