//! Pure tests of failures: agents that disconnect, go silent and come back; frameworks that fail
//! over or time out; a master that restarts from its registry.

use super::registry::{MemoryRegistry, RegisteredAgent, Registry, RegistryError};
use super::state::{MasterState, MasterTimeouts, Outgoing, Sends};
use super::state_tests::*;
use meso::allocator::AllocatorConfig;
use meso::protocol::*;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

fn agent_task(f: &FrameworkId, a: &AgentId, id: &str, cpus: &str, state: TaskState) -> AgentTask {
    AgentTask {
        framework_id: f.clone(),
        task: task(id, a, cpus),
        state,
        status: None,
    }
}

fn reregister(
    m: &mut MasterState,
    name: &str,
    a: &AgentId,
    resources: &str,
    tasks: Vec<AgentTask>,
    frameworks: Vec<FrameworkInfo>,
    now: u64,
) -> Sends {
    let mut info = agent_info(resources);
    info.id = Some(a.clone());
    m.reregister_agent(
        &upid(name),
        ReregisterAgent {
            agent: info,
            version: "test".to_string(),
            tasks,
            executors: Vec::new(),
            frameworks,
        },
        now,
    )
}

fn framework_info(f: &FrameworkId, failover_s: f64, partition_aware: bool) -> FrameworkInfo {
    let mut info = FrameworkInfo::new("sched", "user");
    info.id = Some(f.clone());
    info.failover_timeout_s = failover_s;
    info.partition_aware = partition_aware;
    info
}

fn rescinds(out: &Sends) -> Vec<OfferId> {
    out.iter()
        .filter_map(|(_, o)| match o {
            Outgoing::RescindOffer(r) => Some(r.offer_id.clone()),
            _ => None,
        })
        .collect()
}

fn agent_lost(out: &Sends) -> bool {
    out.iter().any(|(_, o)| matches!(o, Outgoing::AgentLost(_)))
}

/// The field case: two agents, an offer from each; one agent's link breaks.
#[test]
fn a_dropped_agent_loses_its_offer_at_once_and_is_offered_once_when_back() {
    let mut m = master();
    let a1 = register_agent(&mut m, "agent-1", "cpus:2;mem:512");
    let a2 = register_agent(&mut m, "agent-2", "cpus:2;mem:512");
    let f = register_framework(&mut m, "sched");
    let got = offers(&m.allocate(0));
    assert_eq!(got.len(), 2);
    let o1 = got
        .iter()
        .find(|(_, o)| o.agent_id == a1)
        .unwrap()
        .1
        .clone();
    let o2 = got
        .iter()
        .find(|(_, o)| o.agent_id == a2)
        .unwrap()
        .1
        .clone();

    // The connection drops: the offer is rescinded now, not after the ping timeout.
    let out = m.exited(&upid("agent-1"), 10);
    assert_eq!(rescinds(&out), vec![o1.id.clone()]);
    assert!(!agent_lost(&out));
    assert!(
        m.book().get(&o2.id).is_some(),
        "the other offer is untouched"
    );
    assert!(
        offers(&m.allocate(11)).is_empty(),
        "a disconnected agent is not offered"
    );

    // Accepting the rescinded offer: TASK_LOST, invalid offers.
    let out = m.accept_offers(
        &upid("sched"),
        accept(&f, &o1.id, vec![task("t1", &a1, "cpus:1")]),
        12,
    );
    let ups = updates(&out);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].1.state, TaskState::Lost);
    assert_eq!(ups[0].1.reason, Some(TaskStatusReason::InvalidOffers));
    assert!(run_tasks(&out).is_empty());
    assert!(m.book().get(&o2.id).is_some());
    assert_accounting(&m);

    // Back, twice (a retry): offered once, with exactly its resources.
    let out = reregister(&mut m, "agent-1", &a1, "cpus:2;mem:512", vec![], vec![], 13);
    assert!(matches!(
        out.last(),
        Some((_, Outgoing::AgentReregistered(_)))
    ));
    reregister(&mut m, "agent-1", &a1, "cpus:2;mem:512", vec![], vec![], 14);
    let again = offers(&m.allocate(15));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.agent_id, a1);
    assert_eq!(again[0].1.resources, res("cpus:2;mem:512"));
    assert_eq!(m.allocator().cluster_total(), res("cpus:4;mem:1024"));
    assert_accounting(&m);

    // The framework disconnects: both outstanding offers are rescinded and returned.
    let out = m.exited(&upid("sched"), 16);
    let mut gone = rescinds(&out);
    gone.sort();
    let mut expected = vec![o2.id.clone(), again[0].1.id.clone()];
    expected.sort();
    assert_eq!(gone, expected);
    assert!(m.book().is_empty());
    assert_eq!(m.allocator().available(a1.as_str()), res("cpus:2;mem:512"));
    assert_eq!(m.allocator().available(a2.as_str()), res("cpus:2;mem:512"));
    assert_accounting(&m);
}

#[test]
fn a_silent_agent_is_unreachable_after_its_pings_and_comes_back_with_its_tasks() {
    let mut m = master();
    let a = register_agent(&mut m, "agent", "cpus:2");
    let mut info = FrameworkInfo::new("pa", "user");
    info.partition_aware = true;
    m.register_framework(&upid("pa"), RegisterFramework { framework: info });
    let f = m.framework_by_upid[&upid("pa")].clone();
    let offer = offers(&m.allocate(0)).pop().unwrap().1;
    m.accept_offers(
        &upid("pa"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        1,
    );
    m.status_update(
        &upid("agent"),
        executor_update(&f, "t1", TaskState::Running),
    );

    // Answered pings keep it; five unanswered in a row (the default) make it unreachable.
    for i in 0..10 {
        let out = m.ping_agents(10 + i);
        assert!(out
            .iter()
            .any(|(_, o)| matches!(o, Outgoing::Ping(p) if p.connected)));
        m.pong(&upid("agent"));
    }
    let mut out = Vec::new();
    for i in 0..5 {
        out = m.ping_agents(100 + i);
        assert!(updates(&out).is_empty(), "ping {i}");
    }
    let out2 = m.ping_agents(200);
    out.extend(out2);
    let ups = updates(&out);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].1.state, TaskState::Unreachable);
    assert!(agent_lost(&out));
    assert!(out
        .iter()
        .any(|(to, o)| to == &upid("agent") && matches!(o, Outgoing::Ping(p) if !p.connected)));
    assert_eq!(m.allocator().agent_ids().count(), 0);

    // Reconciliation answers what the master knows.
    let rec = m.reconcile_tasks(
        &upid("pa"),
        ReconcileTasks {
            framework_id: f.clone(),
            statuses: vec![
                (TaskId::new("t1"), Some(a.clone())),
                (TaskId::new("nope"), Some(a.clone())),
            ],
        },
        201,
    );
    let states: Vec<TaskState> = updates(&rec).iter().map(|(_, s)| s.state).collect();
    assert_eq!(states, vec![TaskState::Unreachable, TaskState::Unreachable]);

    // It comes back with the task: running again and counted as used, the rest offered.
    let tasks = vec![agent_task(&f, &a, "t1", "cpus:1", TaskState::Running)];
    reregister(&mut m, "agent", &a, "cpus:2", tasks, vec![], 300);
    assert_eq!(
        m.tasks().get(&f, &TaskId::new("t1")).unwrap().state,
        TaskState::Running
    );
    assert_eq!(
        m.allocator().allocated_on(a.as_str(), f.as_str()),
        res("cpus:1")
    );
    assert_eq!(offers(&m.allocate(301))[0].1.resources, res("cpus:1"));
    assert_accounting(&m);
}

#[test]
fn ordinary_frameworks_get_task_lost_and_unreported_tasks_are_lost_on_return() {
    let (mut m, a, f, offer) = cluster("cpus:2");
    m.accept_offers(
        &upid("sched"),
        accept(
            &f,
            &offer.id,
            vec![task("t1", &a, "cpus:0.5"), task("t2", &a, "cpus:0.5")],
        ),
        1,
    );
    m.exited(&upid("agent"), 2);
    let mut out = Vec::new();
    for i in 0..6 {
        out.extend(m.ping_agents(10 + i));
    }
    let ups = updates(&out);
    assert_eq!(ups.len(), 2);
    assert!(ups.iter().all(
        |(_, s)| s.state == TaskState::Lost && s.reason == Some(TaskStatusReason::AgentRemoved)
    ));
    // Back with t1 only: t1 runs again; t2 stays lost.
    let tasks = vec![agent_task(&f, &a, "t1", "cpus:0.5", TaskState::Running)];
    reregister(&mut m, "agent", &a, "cpus:2", tasks, vec![], 20);
    assert_eq!(
        m.tasks().get(&f, &TaskId::new("t1")).unwrap().state,
        TaskState::Running
    );
    assert_eq!(
        m.tasks().get(&f, &TaskId::new("t2")).unwrap().state,
        TaskState::Lost
    );
    assert_eq!(m.allocator().available(a.as_str()), res("cpus:1.5"));
    assert_accounting(&m);
}

#[test]
fn a_disconnected_agent_that_comes_back_without_a_task_has_it_lost() {
    let (mut m, a, f, offer) = cluster("cpus:2");
    m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        1,
    );
    m.exited(&upid("agent"), 2);
    let out = reregister(&mut m, "agent", &a, "cpus:2", vec![], vec![], 3);
    let ups = updates(&out);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].1.state, TaskState::Lost);
    assert_eq!(m.allocator().available(a.as_str()), res("cpus:2"));
    assert_accounting(&m);
}

#[test]
fn a_framework_fails_over_to_a_new_scheduler_within_its_timeout() {
    let mut m = master();
    let a = register_agent(&mut m, "agent", "cpus:2");
    let mut info = FrameworkInfo::new("sched", "user");
    info.failover_timeout_s = 10.0;
    m.register_framework(&upid("sched"), RegisterFramework { framework: info });
    let f = m.framework_by_upid[&upid("sched")].clone();
    let offer = offers(&m.allocate(0)).pop().unwrap().1;
    m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        1,
    );
    m.exited(&upid("sched"), 100);
    assert!(m.expire_frameworks(10_099).is_empty());
    // Not connected: the agent's update waits for the new scheduler (the agent resends it).
    let finished = executor_update(&f, "t1", TaskState::Finished);
    assert!(m.status_update(&upid("agent"), finished.clone()).is_empty());
    let out = m.register_framework(
        &upid("sched-2"),
        RegisterFramework {
            framework: framework_info(&f, 10.0, false),
        },
    );
    assert!(out.iter().any(|(to, o)| to == &upid("sched-2")
        && matches!(o, Outgoing::FrameworkReregistered(r) if r.framework_id == f)));
    assert!(out.iter().any(|(to, o)| to == &upid("agent")
        && matches!(o, Outgoing::UpdateFramework(u) if u.scheduler == upid("sched-2"))));
    assert!(m.expire_frameworks(20_000).is_empty(), "its timer stopped");
    let resent = m.status_update(&upid("agent"), finished.clone());
    assert_eq!(
        resent,
        vec![(upid("sched-2"), Outgoing::StatusUpdate(finished))]
    );
    assert_accounting(&m);
}

#[test]
fn a_framework_that_does_not_fail_over_in_time_is_removed_and_refused() {
    let (mut m, a, f, offer) = cluster("cpus:2");
    m.frameworks.get_mut(&f).unwrap().info.failover_timeout_s = 1.0;
    m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        1,
    );
    m.exited(&upid("sched"), 100);
    assert!(m.expire_frameworks(1_099).is_empty());
    let out = m.expire_frameworks(1_100);
    assert!(matches!(&out[..], [(to, Outgoing::ShutdownFramework(s))]
        if to == &upid("agent") && s.framework_id == f));
    assert!(m.framework(&f).is_none());
    assert!(m.tasks().is_empty());
    assert_eq!(m.allocator().available(a.as_str()), res("cpus:2"));
    for out in [
        m.reregister_framework(
            &upid("sched-2"),
            ReregisterFramework {
                framework: framework_info(&f, 1.0, false),
                failover: true,
            },
        ),
        m.register_framework(
            &upid("sched-3"),
            RegisterFramework {
                framework: framework_info(&f, 1.0, false),
            },
        ),
    ] {
        let expected = format!("framework {f} was removed");
        assert!(matches!(&out[..], [(_, Outgoing::FrameworkError(e))] if e.message == expected));
    }
    // The agent coming back with the task is told to shut the framework down.
    let tasks = vec![agent_task(&f, &a, "t1", "cpus:1", TaskState::Running)];
    let out = reregister(&mut m, "agent", &a, "cpus:2", tasks, vec![], 2_000);
    assert!(out
        .iter()
        .any(|(_, o)| matches!(o, Outgoing::ShutdownFramework(s) if s.framework_id == f)));
    assert_accounting(&m);
}

/// A registry shared between two "runs" of the master in one test.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<MemoryRegistry>>);

impl Registry for Shared {
    fn master_id(&self) -> Option<String> {
        self.0.lock().master_id()
    }
    fn set_master_id(&mut self, id: &str) -> Result<(), RegistryError> {
        self.0.lock().set_master_id(id)
    }
    fn next_run(&mut self) -> Result<u64, RegistryError> {
        self.0.lock().next_run()
    }
    fn agents(&self) -> BTreeMap<AgentId, RegisteredAgent> {
        self.0.lock().agents()
    }
    fn admit(&mut self, id: &AgentId, agent: &RegisteredAgent) -> Result<(), RegistryError> {
        self.0.lock().admit(id, agent)
    }
    fn remove(&mut self, id: &AgentId) -> Result<(), RegistryError> {
        self.0.lock().remove(id)
    }
}

fn run(registry: &Shared, fresh_id: &str) -> MasterState {
    let timeouts = MasterTimeouts {
        max_agent_ping_timeouts: 5,
        agent_reregister_timeout_ms: 1_000,
    };
    let allocator = AllocatorConfig::default();
    MasterState::from_registry(
        Box::new(registry.clone()),
        fresh_id,
        upid("master"),
        allocator,
        timeouts,
        0,
    )
    .unwrap()
}

#[test]
fn a_restarted_master_takes_back_agents_frameworks_and_tasks() {
    let registry = Shared::default();
    let mut m = run(&registry, "first");
    let a = register_agent(&mut m, "agent", "cpus:2");
    let b = register_agent(&mut m, "agent-b", "cpus:2");
    let mut info = FrameworkInfo::new("sched", "user");
    info.failover_timeout_s = 60.0;
    m.register_framework(&upid("sched"), RegisterFramework { framework: info });
    let f = m.framework_by_upid[&upid("sched")].clone();
    let offer = offers(&m.allocate(0))
        .into_iter()
        .find(|(_, o)| o.agent_id == a)
        .unwrap()
        .1;
    m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        1,
    );
    m.status_update(
        &upid("agent"),
        executor_update(&f, "t1", TaskState::Running),
    );
    drop(m);

    // Restarted (a fresh id is offered but the recorded one is kept).
    let mut m = run(&registry, "second");
    assert_eq!(m.master_info().id, "first");
    let mut recovered: Vec<&AgentId> = m.recovered_agents().collect();
    recovered.sort();
    assert_eq!(recovered, vec![&a, &b]);
    // The agent reregisters first, then the framework: nothing is lost or killed.
    let tasks = vec![agent_task(&f, &a, "t1", "cpus:1", TaskState::Running)];
    let out = reregister(
        &mut m,
        "agent",
        &a,
        "cpus:2",
        tasks,
        vec![framework_info(&f, 60.0, false)],
        10,
    );
    assert!(updates(&out).is_empty());
    assert!(!out.iter().any(|(_, o)| matches!(
        o,
        Outgoing::ShutdownFramework(_) | Outgoing::KillTaskOnAgent(_)
    )));
    let out = m.reregister_framework(
        &upid("sched"),
        ReregisterFramework {
            framework: framework_info(&f, 60.0, false),
            failover: false,
        },
    );
    assert!(out
        .iter()
        .any(|(_, o)| matches!(o, Outgoing::FrameworkReregistered(_))));
    let rec = m.reconcile_tasks(
        &upid("sched"),
        ReconcileTasks {
            framework_id: f.clone(),
            statuses: vec![],
        },
        11,
    );
    let ups = updates(&rec);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].1.state, TaskState::Running);
    assert_eq!(ups[0].1.reason, Some(TaskStatusReason::Reconciliation));
    assert_eq!(
        m.allocator().allocated_on(a.as_str(), f.as_str()),
        res("cpus:1")
    );
    // New ids do not collide with the first run's.
    let g = register_framework(&mut m, "other");
    assert_ne!(g, f);
    let c = register_agent(&mut m, "agent-c", "cpus:1");
    assert!(c != a && c != b);
    assert_accounting(&m);

    // The agent that never comes back is unreachable after the reregistration timeout.
    assert!(m.expire_recovered_agents(999).is_empty());
    let out = m.expire_recovered_agents(1_000);
    assert!(out
        .iter()
        .any(|(to, o)| to == &upid("sched")
            && matches!(o, Outgoing::AgentLost(l) if l.agent_id == b)));
    assert!(m.unreachable_agent(&b).is_some());
    assert!(
        m.expire_frameworks(100_000).is_empty(),
        "the framework is connected"
    );
}
