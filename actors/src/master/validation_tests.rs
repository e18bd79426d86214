use super::*;
use meso::protocol::{CommandInfo, ExecutorInfo, Filters};
use meso::resources::Scalar;

fn res(text: &str) -> Resources {
    Resources::parse(text).unwrap()
}

fn fw() -> FrameworkId {
    FrameworkId::new("f1")
}

fn a1() -> AgentId {
    AgentId::new("a1")
}

fn task(id: &str, resources: &str) -> TaskInfo {
    TaskInfo::command(
        TaskId::new(id),
        a1(),
        res(resources),
        CommandInfo::shell("sleep 1"),
    )
}

fn accept(offer_ids: Vec<OfferId>, tasks: Vec<TaskInfo>) -> AcceptOffers {
    AcceptOffers {
        framework_id: fw(),
        offer_ids,
        operations: vec![Operation::Launch { tasks }],
        filters: Filters::default(),
    }
}

fn run(book: &mut OfferBook, accept: &AcceptOffers) -> AcceptDecision {
    validate_accept(book, &fw(), accept, |_| false, |_| false)
}

/// Asserts an `InvalidOffers` decision and returns (reason, lost task ids, recovered).
fn invalid(decision: AcceptDecision) -> (String, Vec<TaskId>, Vec<(AgentId, Resources)>) {
    match decision {
        AcceptDecision::InvalidOffers {
            reason,
            tasks_lost,
            offers_to_recover,
        } => {
            assert!(tasks_lost
                .iter()
                .all(|t| t.reason == TaskStatusReason::InvalidOffers));
            let ids = tasks_lost.into_iter().map(|t| t.task_id).collect();
            (reason, ids, offers_to_recover)
        }
        other => panic!("expected InvalidOffers, got {other:?}"),
    }
}

type Launch = (
    AgentId,
    Vec<TaskInfo>,
    Vec<(TaskId, TaskStatusReason, String)>,
    Resources,
);

fn launch(decision: AcceptDecision) -> Launch {
    match decision {
        AcceptDecision::Launch {
            agent_id,
            launched,
            errors,
            unused,
        } => (agent_id, launched, errors, unused),
        other => panic!("expected Launch, got {other:?}"),
    }
}

fn ids(tasks: &[TaskInfo]) -> Vec<&str> {
    tasks.iter().map(|t| t.task_id.as_str()).collect()
}

#[test]
fn unknown_offer_loses_every_task() {
    let mut book = OfferBook::new("M");
    let good = book.add_offer(fw(), a1(), res("cpus:2;mem:512"), 0);
    let decision = run(
        &mut book,
        &accept(
            vec![good.clone(), OfferId::new("M-O99")],
            vec![task("t1", "cpus:1"), task("t2", "cpus:1")],
        ),
    );
    let (reason, lost, recovered) = invalid(decision);
    assert!(reason.contains("M-O99"), "{reason}");
    assert_eq!(lost, vec![TaskId::new("t1"), TaskId::new("t2")]);
    assert_eq!(recovered, vec![(a1(), res("cpus:2;mem:512"))]);
    assert!(book.is_empty(), "the valid offer is consumed");
}

#[test]
fn removed_offer_is_invalid() {
    let mut book = OfferBook::new("M");
    let id = book.add_offer(fw(), a1(), res("cpus:2"), 0);
    assert!(book.remove_offer(&id).is_some()); // expired or rescinded
    let (reason, lost, recovered) = invalid(run(
        &mut book,
        &accept(vec![id.clone()], vec![task("t1", "cpus:1")]),
    ));
    assert!(reason.contains(id.as_str()), "{reason}");
    assert_eq!(lost, vec![TaskId::new("t1")]);
    assert!(recovered.is_empty());
}

#[test]
fn offer_of_another_framework_is_invalid_and_left_alone() {
    let mut book = OfferBook::new("M");
    let theirs = book.add_offer(FrameworkId::new("f2"), a1(), res("cpus:2"), 0);
    let (_, lost, recovered) = invalid(run(
        &mut book,
        &accept(vec![theirs.clone()], vec![task("t1", "cpus:1")]),
    ));
    assert_eq!(lost, vec![TaskId::new("t1")]);
    assert!(recovered.is_empty());
    assert!(
        book.contains(&theirs),
        "the other framework keeps its offer"
    );
}

#[test]
fn offers_from_two_agents_are_invalid() {
    let mut book = OfferBook::new("M");
    let x = book.add_offer(fw(), a1(), res("cpus:1"), 0);
    let y = book.add_offer(fw(), AgentId::new("a2"), res("cpus:3"), 0);
    let (reason, lost, mut recovered) = invalid(run(
        &mut book,
        &accept(vec![x, y], vec![task("t1", "cpus:1")]),
    ));
    assert!(reason.contains("more than one agent"), "{reason}");
    assert_eq!(lost, vec![TaskId::new("t1")]);
    recovered.sort_by(|l, r| l.0.cmp(&r.0));
    assert_eq!(
        recovered,
        vec![(a1(), res("cpus:1")), (AgentId::new("a2"), res("cpus:3"))]
    );
    assert!(book.is_empty());
}

#[test]
fn same_offer_twice_is_invalid_and_recovered_once() {
    let mut book = OfferBook::new("M");
    let x = book.add_offer(fw(), a1(), res("cpus:2"), 0);
    let (reason, lost, recovered) = invalid(run(
        &mut book,
        &accept(vec![x.clone(), x], vec![task("t1", "cpus:1")]),
    ));
    assert!(reason.contains("more than once"), "{reason}");
    assert_eq!(lost, vec![TaskId::new("t1")]);
    assert_eq!(recovered, vec![(a1(), res("cpus:2"))]);
    assert!(book.is_empty());
}

#[test]
fn an_offer_is_never_used_twice() {
    let mut book = OfferBook::new("M");
    let x = book.add_offer(fw(), a1(), res("cpus:2"), 0);
    let (_, launched, errors, _) = launch(run(
        &mut book,
        &accept(vec![x.clone()], vec![task("t1", "cpus:1")]),
    ));
    assert_eq!(ids(&launched), vec!["t1"]);
    assert!(errors.is_empty());
    let (_, lost, recovered) =
        invalid(run(&mut book, &accept(vec![x], vec![task("t2", "cpus:1")])));
    assert_eq!(lost, vec![TaskId::new("t2")]);
    assert!(recovered.is_empty(), "nothing is handed out twice");
}

#[test]
fn framework_mismatch_changes_nothing() {
    let mut book = OfferBook::new("M");
    let x = book.add_offer(fw(), a1(), res("cpus:2"), 0);
    let mut message = accept(vec![x.clone()], vec![task("t1", "cpus:1")]);
    message.framework_id = FrameworkId::new("f2");
    let (_, lost, recovered) = invalid(run(&mut book, &message));
    assert_eq!(lost, vec![TaskId::new("t1")]);
    assert!(recovered.is_empty());
    assert!(book.contains(&x));
}

#[test]
fn no_offers_is_invalid() {
    let mut book = OfferBook::new("M");
    let (_, lost, recovered) = invalid(run(&mut book, &accept(vec![], vec![task("t1", "cpus:1")])));
    assert_eq!(lost, vec![TaskId::new("t1")]);
    assert!(recovered.is_empty());
}

#[test]
fn task_beyond_the_offer_errors_with_its_numbers() {
    let mut book = OfferBook::new("M");
    let x = book.add_offer(fw(), a1(), res("cpus:2"), 0);
    let (agent, launched, errors, unused) = launch(run(
        &mut book,
        &accept(vec![x], vec![task("t1", "cpus:2.01")]),
    ));
    assert_eq!(agent, a1());
    assert!(launched.is_empty());
    assert_eq!(errors.len(), 1);
    let (id, reason, message) = &errors[0];
    assert_eq!(id, &TaskId::new("t1"));
    assert_eq!(*reason, TaskStatusReason::InvalidResources);
    assert!(message.contains("t1"), "{message}");
    assert!(message.contains("cpus:2.01"), "{message}");
    assert!(message.contains("cpus:2 "), "{message}");
    assert_eq!(unused, res("cpus:2"));
    assert!(book.is_empty());
}

#[test]
fn duplicate_id_within_an_accept_runs_the_first_only() {
    let mut book = OfferBook::new("M");
    let x = book.add_offer(fw(), a1(), res("cpus:4"), 0);
    let (_, launched, errors, unused) = launch(run(
        &mut book,
        &accept(vec![x], vec![task("t1", "cpus:1"), task("t1", "cpus:1")]),
    ));
    assert_eq!(ids(&launched), vec!["t1"]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, TaskId::new("t1"));
    assert_eq!(errors[0].1, TaskStatusReason::DuplicateTaskId);
    assert_eq!(unused, res("cpus:3"));
}

#[test]
fn duplicate_id_of_a_known_task_errors() {
    let mut book = OfferBook::new("M");
    let x = book.add_offer(fw(), a1(), res("cpus:4"), 0);
    let known: HashSet<TaskId> = [TaskId::new("t1")].into_iter().collect();
    let decision = validate_accept(
        &mut book,
        &fw(),
        &accept(vec![x], vec![task("t1", "cpus:1"), task("t2", "cpus:1")]),
        |id| known.contains(id),
        |_| false,
    );
    let (_, launched, errors, unused) = launch(decision);
    assert_eq!(ids(&launched), vec!["t2"]);
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (&errors[0].0, errors[0].1),
        (&TaskId::new("t1"), TaskStatusReason::DuplicateTaskId)
    );
    assert_eq!(unused, res("cpus:3"));
}

#[test]
fn empty_command_and_malformed_tasks_are_invalid() {
    let mut book = OfferBook::new("M");
    let x = book.add_offer(fw(), a1(), res("cpus:4;mem:100"), 0);
    let mut empty = task("empty", "cpus:1");
    empty.command = Some(CommandInfo::shell("  "));
    let mut neither = task("neither", "cpus:1");
    neither.command = None;
    let mut both = task("both", "cpus:1");
    both.executor = Some(ExecutorInfo {
        executor_id: ExecutorId::new("e"),
        framework_id: fw(),
        command: CommandInfo::shell("run-executor"),
        resources: res("cpus:0.1"),
        name: "e".into(),
    });
    let mut nothing = task("nothing", "cpus:1");
    nothing.resources = Resources::default();
    let mut elsewhere = task("elsewhere", "cpus:1");
    elsewhere.agent_id = AgentId::new("a9");
    let (_, launched, errors, unused) = launch(run(
        &mut book,
        &accept(
            vec![x],
            vec![
                empty,
                neither,
                both,
                nothing,
                elsewhere,
                task("ok", "cpus:1"),
            ],
        ),
    ));
    assert_eq!(ids(&launched), vec!["ok"]);
    let failed: Vec<(&str, TaskStatusReason)> = errors
        .iter()
        .map(|(id, reason, _)| (id.as_str(), *reason))
        .collect();
    let invalid = TaskStatusReason::InvalidTask;
    assert_eq!(
        failed,
        vec![
            ("empty", invalid),
            ("neither", invalid),
            ("both", invalid),
            ("nothing", invalid),
            ("elsewhere", invalid),
        ]
    );
    assert_eq!(unused, res("cpus:3;mem:100"));
}

#[test]
fn valid_accept_returns_the_remainder() {
    let mut book = OfferBook::new("M");
    let x = book.add_offer(fw(), a1(), res("cpus:3;mem:1024"), 0);
    let y = book.add_offer(fw(), a1(), res("cpus:1;disk:100"), 5);
    let other = book.add_offer(fw(), AgentId::new("a2"), res("cpus:8"), 5);
    let (agent, launched, errors, unused) = launch(run(
        &mut book,
        &accept(
            vec![x, y],
            vec![task("t1", "cpus:1;mem:256"), task("t2", "cpus:2;disk:100")],
        ),
    ));
    assert_eq!(agent, a1());
    assert_eq!(ids(&launched), vec!["t1", "t2"]);
    assert!(errors.is_empty());
    assert_eq!(unused.cpus(), Scalar::from_millis(1000));
    assert_eq!(unused.mem(), Scalar::from_millis(768_000));
    assert_eq!(unused.disk(), Scalar::from_millis(0));
    assert_eq!(book.offers_for_agent(&AgentId::new("a2")), vec![other]);
    assert_eq!(book.len(), 1);
}

#[test]
fn ten_tenths_of_a_cpu_fit_and_the_eleventh_does_not() {
    let mut book = OfferBook::new("M");
    let x = book.add_offer(fw(), a1(), res("cpus:1"), 0);
    let tasks = (0..11)
        .map(|i| task(&format!("t{i}"), "cpus:0.1"))
        .collect();
    let (_, launched, errors, unused) = launch(run(&mut book, &accept(vec![x], tasks)));
    assert_eq!(launched.len(), 10);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, TaskId::new("t10"));
    assert_eq!(errors[0].1, TaskStatusReason::InvalidResources);
    assert_eq!(unused.cpus(), Scalar::from_millis(0));
}

#[test]
fn executor_resources_are_asked_once_per_new_executor() {
    let mut book = OfferBook::new("M");
    let x = book.add_offer(fw(), a1(), res("cpus:2"), 0);
    let executor = ExecutorInfo {
        executor_id: ExecutorId::new("e1"),
        framework_id: fw(),
        command: CommandInfo::shell("run-executor"),
        resources: res("cpus:0.5"),
        name: "e1".into(),
    };
    let with_executor = |id: &str| TaskInfo {
        command: None,
        executor: Some(executor.clone()),
        ..task(id, "cpus:0.5")
    };
    let (_, launched, errors, unused) = launch(run(
        &mut book,
        &accept(vec![x], vec![with_executor("t1"), with_executor("t2")]),
    ));
    assert_eq!(ids(&launched), vec!["t1", "t2"]);
    assert!(errors.is_empty());
    assert_eq!(unused.cpus(), Scalar::from_millis(500));

    // Running already: only the task's own resources are asked.
    let y = book.add_offer(fw(), a1(), res("cpus:0.5"), 0);
    let running: HashSet<(AgentId, ExecutorId)> =
        [(a1(), ExecutorId::new("e1"))].into_iter().collect();
    let decision = validate_accept(
        &mut book,
        &fw(),
        &accept(vec![y], vec![with_executor("t3")]),
        |_| false,
        |key| running.contains(key),
    );
    let (_, launched, errors, _) = launch(decision);
    assert_eq!(ids(&launched), vec!["t3"]);
    assert!(errors.is_empty());
}
