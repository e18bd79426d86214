//! The field cases of accepts, each through the master's state machine (the pure validation
//! has its own tests in `validation_tests.rs`): what the framework is told, what is launched,
//! and that the allocator's books come out whole.

use super::state_tests::*;
use meso::protocol::*;

/// An accept naming the same offer twice launches nothing: each task is TASK_LOST (invalid
/// offers), and the offer's whole resources are offered again.
#[test]
fn an_offer_named_twice_in_one_accept_loses_every_task_and_is_offered_again_whole() {
    let (mut m, a, f, offer) = cluster("cpus:2;mem:1024");
    let mut twice = accept(
        &f,
        &offer.id,
        vec![task("t1", &a, "cpus:0.5"), task("t2", &a, "cpus:0.5")],
    );
    twice.offer_ids.push(offer.id.clone());
    let out = m.accept_offers(&upid("sched"), twice, 10);
    assert!(run_tasks(&out).is_empty());
    let ups: Vec<(String, TaskState, Option<TaskStatusReason>)> = updates(&out)
        .into_iter()
        .map(|(_, s)| (s.task_id.to_string(), s.state, s.reason))
        .collect();
    let lost = |id: &str| {
        (
            id.to_string(),
            TaskState::Lost,
            Some(TaskStatusReason::InvalidOffers),
        )
    };
    assert_eq!(ups, vec![lost("t1"), lost("t2")]);
    assert_eq!(
        m.allocator().allocated(f.as_str()),
        meso::resources::Resources::new()
    );
    assert_accounting(&m);
    let again = offers(&m.allocate(20));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1.resources, res("cpus:2;mem:1024"));
}

/// An offer already used by an accept is gone: a second accept of it launches nothing, its task
/// is TASK_LOST (invalid offers), and nothing is allocated twice.
#[test]
fn an_offer_already_used_loses_the_task_and_allocates_nothing_twice() {
    let (mut m, a, f, offer) = cluster("cpus:2;mem:1024");
    let first = m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t1", &a, "cpus:1;mem:64")]),
        10,
    );
    assert_eq!(run_tasks(&first).len(), 1);
    let out = m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("t2", &a, "cpus:1;mem:64")]),
        11,
    );
    assert!(run_tasks(&out).is_empty());
    let (_, status) = &updates(&out)[0];
    assert_eq!(
        (status.state, status.reason),
        (TaskState::Lost, Some(TaskStatusReason::InvalidOffers))
    );
    assert_eq!(m.allocator().allocated(f.as_str()), res("cpus:1;mem:64"));
    assert_accounting(&m);
}

/// A task asking 2.01 cpus of a 2-cpu offer is TASK_ERROR (invalid resources); nothing leaks: the
/// whole offer is offered again.
#[test]
fn a_task_asking_more_than_the_offer_is_task_error_and_nothing_leaks() {
    let (mut m, a, f, offer) = cluster("cpus:2;mem:1024");
    let out = m.accept_offers(
        &upid("sched"),
        accept(&f, &offer.id, vec![task("big", &a, "cpus:2.01")]),
        10,
    );
    assert!(run_tasks(&out).is_empty());
    let (_, status) = &updates(&out)[0];
    assert_eq!(
        (status.state, status.reason),
        (TaskState::Error, Some(TaskStatusReason::InvalidResources))
    );
    assert_eq!(
        m.allocator().allocated(f.as_str()),
        meso::resources::Resources::new()
    );
    assert_accounting(&m);
    let again = offers(&m.allocate(20));
    assert_eq!(again[0].1.resources, res("cpus:2;mem:1024"));
}

/// Two tasks with the same id in one accept: the first runs, the second is TASK_ERROR
/// (duplicate id), and only the first's resources are used.
#[test]
fn the_second_of_two_tasks_with_one_id_in_one_accept_is_task_error() {
    let (mut m, a, f, offer) = cluster("cpus:2;mem:1024");
    let tasks = vec![task("same", &a, "cpus:0.5"), task("same", &a, "cpus:0.7")];
    let out = m.accept_offers(&upid("sched"), accept(&f, &offer.id, tasks), 10);
    let runs = run_tasks(&out);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1.resources, res("cpus:0.5"));
    let (_, status) = &updates(&out)[0];
    assert_eq!(
        (status.state, status.reason),
        (TaskState::Error, Some(TaskStatusReason::DuplicateTaskId))
    );
    assert_eq!(m.allocator().allocated(f.as_str()), res("cpus:0.5"));
    assert_accounting(&m);
}
