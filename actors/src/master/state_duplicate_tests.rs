//! Pure tests of frames that arrive twice or late: the fault-injecting transport duplicates and
//! delays frames, and a repeated message must not make the master say something false.

use super::state::{MasterState, Outgoing, Sends};
use super::state_tests::*;
use meso::protocol::*;

fn errors(out: &Sends) -> Vec<(meso::process::Upid, String)> {
    out.iter()
        .filter_map(|(to, o)| match o {
            Outgoing::FrameworkError(e) => Some((to.clone(), e.message.clone())),
            _ => None,
        })
        .collect()
}

/// Runs task `id` to FINISHED and acknowledges it: the master then counts it as completed.
fn finish_and_ack(m: &mut MasterState, f: &FrameworkId, a: &AgentId, id: &str) {
    m.status_update(&upid("agent"), executor_update(f, id, TaskState::Running));
    let fin = executor_update(f, id, TaskState::Finished);
    let uuid = fin.status.uuid.expect("a reliable update");
    m.status_update(&upid("agent"), fin);
    let ack = StatusUpdateAcknowledgement {
        agent_id: a.clone(),
        framework_id: f.clone(),
        task_id: TaskId::new(id),
        uuid,
    };
    m.acknowledge(&upid("sched"), ack);
    assert!(m.tasks().get(f, &TaskId::new(id)).is_none(), "completed");
}

/// The seeded fault test found it: the second copy of an accept finds its offer used by the
/// first copy. Its tasks were launched by that copy, so they get no TASK_LOST; a task the first
/// copy did not launch still does (Mesos: an accept naming an offer already used launches
/// nothing and gives each task TASK_LOST).
#[test]
fn a_repeated_accept_reports_nothing_lost_for_the_tasks_it_launched() {
    let (mut m, a, f, offer) = cluster("cpus:2;mem:256");
    let first = accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]);
    let out = m.accept_offers(&upid("sched"), first.clone(), 10);
    assert_eq!(run_tasks(&out).len(), 1);

    let out = m.accept_offers(&upid("sched"), first.clone(), 11);
    assert!(updates(&out).is_empty(), "{out:?}");
    assert!(run_tasks(&out).is_empty());

    // Still so once it runs.
    m.status_update(
        &upid("agent"),
        executor_update(&f, "t1", TaskState::Running),
    );
    let out = m.accept_offers(&upid("sched"), first, 12);
    assert!(updates(&out).is_empty(), "{out:?}");

    // A new task on the used offer, or the same id with another description, is lost.
    let other = accept(
        &f,
        &offer.id,
        vec![task("t2", &a, "cpus:1"), task("t1", &a, "cpus:0.5")],
    );
    let out = m.accept_offers(&upid("sched"), other, 13);
    let lost: Vec<_> = updates(&out)
        .into_iter()
        .map(|(_, s)| (s.task_id.as_str().to_string(), s.state, s.reason))
        .collect();
    let invalid = Some(TaskStatusReason::InvalidOffers);
    assert_eq!(
        lost,
        vec![
            ("t2".to_string(), TaskState::Lost, invalid),
            ("t1".to_string(), TaskState::Lost, invalid)
        ]
    );
    assert_accounting(&m);
}

/// A copy delayed past the end of the task (its terminal update acknowledged) is recognised too.
#[test]
fn a_late_copy_of_an_accept_after_the_task_completed_reports_nothing() {
    let (mut m, a, f, offer) = cluster("cpus:2;mem:256");
    let first = accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]);
    m.accept_offers(&upid("sched"), first.clone(), 10);
    finish_and_ack(&mut m, &f, &a, "t1");
    let out = m.accept_offers(&upid("sched"), first, 20);
    assert!(updates(&out).is_empty(), "{out:?}");
    assert_accounting(&m);
}

/// A kill that arrives twice, or after the task ended, changes nothing: no TASK_LOST after
/// FINISHED. Reconciliation of a completed task answers how it ended.
#[test]
fn a_repeated_kill_or_reconcile_of_a_completed_task_tells_how_it_ended() {
    let (mut m, a, f, offer) = cluster("cpus:2;mem:256");
    m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1")]),
        10,
    );
    finish_and_ack(&mut m, &f, &a, "t1");
    let kill = KillTask {
        framework_id: f.clone(),
        task_id: TaskId::new("t1"),
        agent_id: Some(a.clone()),
    };
    assert!(m.kill_task(&upid("sched"), kill.clone(), 20).is_empty());
    assert!(m.kill_task(&upid("sched"), kill, 21).is_empty());

    let reconcile = ReconcileTasks {
        framework_id: f.clone(),
        statuses: vec![(TaskId::new("t1"), Some(a.clone()))],
    };
    let answers = updates(&m.reconcile_tasks(&upid("sched"), reconcile, 22));
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].1.state, TaskState::Finished);
    assert_eq!(answers[0].1.reason, Some(TaskStatusReason::Reconciliation));
    assert_eq!(answers[0].1.uuid, None);
    // An implicit reconciliation covers only the live tasks.
    let implicit = ReconcileTasks {
        framework_id: f.clone(),
        statuses: Vec::new(),
    };
    assert!(updates(&m.reconcile_tasks(&upid("sched"), implicit, 23)).is_empty());
}

/// A ReregisterAgent delayed past a task's end (or repeated) reports the task still running: the
/// master keeps it ended and does not count its resources as used again.
#[test]
fn a_stale_reregistration_does_not_bring_back_an_ended_task() {
    let (mut m, a, f, offer) = cluster("cpus:2;mem:256");
    let launched = task("t1", &a, "cpus:1");
    m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![launched.clone()]),
        10,
    );
    let mut info = agent_info("cpus:2;mem:256");
    info.id = Some(a.clone());
    let mut framework = FrameworkInfo::new("sched", "user");
    framework.id = Some(f.clone());
    let stale = ReregisterAgent {
        agent: info,
        version: "test".to_string(),
        tasks: vec![AgentTask {
            framework_id: f.clone(),
            task: launched,
            state: TaskState::Running,
            status: None,
        }],
        executors: Vec::new(),
        frameworks: vec![framework],
    };
    m.reregister_agent(&upid("agent"), stale.clone(), 15);
    finish_and_ack(&mut m, &f, &a, "t1");

    m.reregister_agent(&upid("agent"), stale, 30);
    assert!(m.tasks().get(&f, &TaskId::new("t1")).is_none());
    assert_accounting(&m);
    let out = m.allocate(40);
    let offered = offers(&out);
    assert_eq!(offered.len(), 1);
    assert_eq!(offered[0].1.resources, res("cpus:2;mem:256"));
}

/// Mesos: a scheduler replaced by a failover is told "framework failed over", and its own later
/// (non-failover) reregistration is refused the same way instead of taking the framework back.
#[test]
fn a_replaced_scheduler_is_told_it_failed_over_and_cannot_take_the_framework_back() {
    let (mut m, _, f, _) = cluster("cpus:2;mem:256");
    let mut framework = FrameworkInfo::new("sched", "user");
    framework.id = Some(f.clone());
    let takeover = ReregisterFramework {
        framework: framework.clone(),
        failover: true,
    };
    let out = m.reregister_framework(&upid("sched-2"), takeover);
    assert_eq!(
        errors(&out),
        vec![(upid("sched"), "framework failed over".to_string())]
    );
    assert!(out
        .iter()
        .any(|(to, o)| to == &upid("sched-2") && matches!(o, Outgoing::FrameworkReregistered(_))));

    let retry = ReregisterFramework {
        framework,
        failover: false,
    };
    let out = m.reregister_framework(&upid("sched"), retry.clone());
    assert_eq!(
        errors(&out),
        vec![(upid("sched"), "framework failed over".to_string())]
    );
    assert_eq!(
        m.framework(&f).and_then(|e| e.upid.clone()),
        Some(upid("sched-2"))
    );
    // The current scheduler retrying is answered as before.
    let out = m.reregister_framework(&upid("sched-2"), retry);
    assert!(errors(&out).is_empty());
}

/// Registration, declines and acknowledgements that arrive twice change nothing the second time.
#[test]
fn repeated_registrations_declines_and_acknowledgements_are_harmless() {
    let (mut m, a, f, offer) = cluster("cpus:2;mem:256");
    assert_eq!(register_framework(&mut m, "sched"), f);
    assert_eq!(register_agent(&mut m, "agent", "cpus:2;mem:256"), a);
    let decline = DeclineOffers {
        framework_id: f.clone(),
        offer_ids: vec![offer.id.clone()],
        filters: Filters {
            refuse_seconds: 0.0,
        },
    };
    m.decline_offers(&upid("sched"), decline.clone(), 10);
    m.decline_offers(&upid("sched"), decline, 11);
    assert_accounting(&m);
    let out = m.allocate(20);
    let offered = offers(&out);
    assert_eq!(offered.len(), 1);
    assert_eq!(offered[0].1.resources, res("cpus:2;mem:256"));
    m.accept_offers(
        &upid("sched"),
        accept(&f, &offered[0].1.id, vec![task("t1", &a, "cpus:1")]),
        21,
    );
    finish_and_ack(&mut m, &f, &a, "t1");
    // A second acknowledgement goes to the agent (which ignores a stray one) and nothing else.
    let ack = StatusUpdateAcknowledgement {
        agent_id: a.clone(),
        framework_id: f.clone(),
        task_id: TaskId::new("t1"),
        uuid: [0; 16],
    };
    let out = m.acknowledge(&upid("sched"), ack);
    assert_eq!(out.len(), 1);
    assert!(matches!(out[0].1, Outgoing::StatusUpdateAcknowledgement(_)));
    assert_accounting(&m);
}
