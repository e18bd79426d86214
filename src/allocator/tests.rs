//! Behaviour of the allocator, after the DRF paper and the Mesos hierarchical allocator.

use super::*;
use crate::resources::Scalar;

fn r(text: &str) -> Resources {
    Resources::parse(text).unwrap()
}

fn allocator() -> Allocator {
    Allocator::new(AllocatorConfig::default())
}

/// One agent, frameworks `a` and `b` in the default role.
fn one_agent(total: &str) -> Allocator {
    let mut al = allocator();
    al.add_agent("agent1", r(total)).unwrap();
    al.add_framework("a", "*").unwrap();
    al.add_framework("b", "*").unwrap();
    al
}

fn offered_to(allocations: &[Allocation]) -> Vec<&str> {
    allocations
        .iter()
        .map(|a| a.framework_id.as_str())
        .collect()
}

/// A scheduler that launches one task of `task` per offer when it fits and returns the rest, and
/// declines offers it cannot use for a long time, as the example schedulers in Mesos do.
fn run_task_schedulers(al: &mut Allocator, tasks: &[(&str, Resources)], now_ms: u64) -> usize {
    let mut launched = 0;
    for _ in 0..100 {
        let allocations = al.allocate(now_ms);
        if allocations.is_empty() {
            break;
        }
        for offer in allocations {
            let (_, task) = tasks
                .iter()
                .find(|(f, _)| *f == offer.framework_id)
                .unwrap();
            match offer.resources.checked_sub(task) {
                Ok(unused) => {
                    al.recover(&offer.agent_id, &offer.framework_id, &unused)
                        .unwrap();
                    launched += 1;
                }
                Err(_) => al
                    .decline(
                        &offer.framework_id,
                        &offer.agent_id,
                        &offer.resources,
                        3600.0,
                        now_ms,
                    )
                    .unwrap(),
            }
            al.check_accounting().unwrap();
        }
    }
    launched
}

// DRF paper (Ghodsi et al. 2011), section 4: 9 CPUs and 18 GB; user A runs tasks of <1 CPU, 4 GB>,
// user B tasks of <3 CPUs, 1 GB>. DRF gives A three tasks and B two, equalizing the dominant
// shares (memory for A, CPU for B) at 2/3.
#[test]
fn drf_paper_example_equalizes_dominant_shares_at_two_thirds() {
    let mut al = one_agent("cpus:9;mem:18432");
    let tasks = [("a", r("cpus:1;mem:4096")), ("b", r("cpus:3;mem:1024"))];
    let launched = run_task_schedulers(&mut al, &tasks, 0);
    assert_eq!(launched, 5);
    assert_eq!(al.allocated("a"), r("cpus:3;mem:12288"));
    assert_eq!(al.allocated("b"), r("cpus:6;mem:2048"));
    assert!((al.dominant_share("a") - 2.0 / 3.0).abs() < 1e-9);
    assert!((al.dominant_share("b") - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!(al.available("agent1"), r("mem:4096"));
}

// The same cluster split into agents of <3 CPUs, 12 GB> and <6 CPUs, 6 GB>: offers of whole
// agents, partial use and recovery still converge to the DRF allocation of 2/3 each.
#[test]
fn drf_paper_example_over_two_agents() {
    let mut al = allocator();
    al.add_agent("agent1", r("cpus:3;mem:12288")).unwrap();
    al.add_agent("agent2", r("cpus:6;mem:6144")).unwrap();
    al.add_framework("a", "*").unwrap();
    al.add_framework("b", "*").unwrap();
    let tasks = [("a", r("cpus:1;mem:4096")), ("b", r("cpus:3;mem:1024"))];
    assert_eq!(run_task_schedulers(&mut al, &tasks, 0), 5);
    assert_eq!(al.allocated("a"), r("cpus:3;mem:12288"));
    assert_eq!(al.allocated("b"), r("cpus:6;mem:2048"));
    assert!((al.dominant_share("a") - 2.0 / 3.0).abs() < 1e-9);
    assert!((al.dominant_share("b") - 2.0 / 3.0).abs() < 1e-9);
}

#[test]
fn lowest_dominant_share_is_offered_first_and_ties_go_by_id() {
    let mut al = allocator();
    al.add_agent("agent1", r("cpus:10;mem:100")).unwrap();
    al.add_framework("b", "*").unwrap();
    al.add_framework("a", "*").unwrap();
    let first = al.allocate(0);
    assert_eq!(offered_to(&first), ["a"]);
    // `a` keeps 1 cpu (share 0.1) and returns the rest; `b` (share 0) is next.
    al.recover("agent1", "a", &r("cpus:9;mem:100")).unwrap();
    assert!((al.dominant_share("a") - 0.1).abs() < 1e-9);
    assert_eq!(offered_to(&al.allocate(1)), ["b"]);
}

// Within one pass shares update at once: two agents go to two different frameworks.
#[test]
fn shares_update_within_a_pass() {
    let mut al = allocator();
    al.add_agent("agent1", r("cpus:4;mem:400")).unwrap();
    al.add_agent("agent2", r("cpus:4;mem:400")).unwrap();
    al.add_framework("a", "*").unwrap();
    al.add_framework("b", "*").unwrap();
    let pass = al.allocate(0);
    assert_eq!(pass.len(), 2);
    assert_eq!(offered_to(&pass), ["a", "b"]);
    assert_eq!(pass[0].resources, r("cpus:4;mem:400"));
    assert!(al.allocate(1).is_empty());
    al.check_accounting().unwrap();
}

#[test]
fn agents_with_nothing_available_are_skipped() {
    let mut al = one_agent("cpus:1;mem:1");
    assert_eq!(al.allocate(0).len(), 1);
    assert!(al.allocate(1).is_empty());
}

// Mesos: `refuse_seconds: 0` declines without installing a filter.
#[test]
fn refuse_zero_sets_no_filter() {
    let mut al = one_agent("cpus:2;mem:64");
    al.remove_framework("b").unwrap();
    let offer = al.allocate(0).remove(0);
    al.decline("a", "agent1", &offer.resources, 0.0, 0).unwrap();
    assert_eq!(al.active_filters("a", 0), 0);
    assert_eq!(offered_to(&al.allocate(1)), ["a"]);
}

// Mesos: a negative `refuse_seconds` (or a NaN) uses the default of 5 seconds.
#[test]
fn negative_refuse_uses_the_default_five_seconds() {
    assert_eq!(refuse_ms(-1.0, 5000), Some(5000));
    assert_eq!(refuse_ms(f64::NAN, 5000), Some(5000));
    let mut al = one_agent("cpus:2;mem:64");
    al.remove_framework("b").unwrap();
    let offer = al.allocate(0).remove(0);
    al.decline("a", "agent1", &offer.resources, -1.0, 1000)
        .unwrap();
    assert!(al.allocate(5999).is_empty());
    assert_eq!(offered_to(&al.allocate(6000)), ["a"]);
}

// Mesos caps a `refuse_seconds` too large for its clock instead of overflowing to no filter.
#[test]
fn huge_refuse_is_capped_at_365_days_and_still_expires() {
    for huge in [1e30, f64::INFINITY, f64::MAX, 1e10] {
        assert_eq!(refuse_ms(huge, 5000), Some(MAX_REFUSE_MS));
    }
    assert_eq!(refuse_ms(0.0001, 5000), Some(1));
    let mut al = one_agent("cpus:2;mem:64");
    al.remove_framework("b").unwrap();
    let start = u64::MAX - MAX_REFUSE_MS / 2; // expiry saturates rather than wrapping to the past
    let offer = al.allocate(start).remove(0);
    al.decline("a", "agent1", &offer.resources, 1e30, start)
        .unwrap();
    assert!(al.allocate(start + MAX_REFUSE_MS / 4).is_empty());

    let mut al = one_agent("cpus:2;mem:64");
    al.remove_framework("b").unwrap();
    let offer = al.allocate(0).remove(0);
    al.decline("a", "agent1", &offer.resources, f64::INFINITY, 0)
        .unwrap();
    assert!(al.allocate(MAX_REFUSE_MS - 1).is_empty());
    assert_eq!(offered_to(&al.allocate(MAX_REFUSE_MS)), ["a"]);
}

#[test]
fn filter_expiry_re_offers() {
    let mut al = one_agent("cpus:2;mem:64");
    al.remove_framework("b").unwrap();
    let offer = al.allocate(0).remove(0);
    al.decline("a", "agent1", &offer.resources, 10.0, 0)
        .unwrap();
    assert_eq!(al.active_filters("a", 9_999), 1);
    assert!(al.allocate(9_999).is_empty());
    assert_eq!(al.allocate(10_000), vec![offer]);
    assert_eq!(al.active_filters("a", 10_000), 0);
}

// A filtered framework is skipped and the next one in DRF order gets the agent.
#[test]
fn declined_resources_go_to_the_next_framework() {
    let mut al = one_agent("cpus:2;mem:64");
    let offer = al.allocate(0).remove(0);
    assert_eq!(offer.framework_id, "a");
    al.decline("a", "agent1", &offer.resources, 5.0, 0).unwrap();
    assert_eq!(offered_to(&al.allocate(1)), ["b"]);
}

// Mesos' filter refuses only offers contained in the declined resources: if more becomes free on
// the agent, the framework is offered again.
#[test]
fn filter_refuses_only_subsets_of_the_declined_resources() {
    let mut al = one_agent("cpus:4;mem:64");
    al.remove_framework("b").unwrap();
    let offer = al.allocate(0).remove(0);
    // Keeps cpus:2;mem:64 for a task and declines the other two cpus.
    al.decline("a", "agent1", &r("cpus:2"), 60.0, 0).unwrap();
    assert!(al.allocate(1).is_empty());
    al.recover("agent1", "a", &r("mem:64")).unwrap(); // the task gave back its memory
    let again = al.allocate(2);
    assert_eq!(again[0].resources, r("cpus:2;mem:64"));
    assert_eq!(offer.resources, r("cpus:4;mem:64"));
}

#[test]
fn suppressed_and_inactive_frameworks_get_nothing() {
    let mut al = one_agent("cpus:2;mem:64");
    al.suppress("a").unwrap();
    al.deactivate_framework("b").unwrap();
    assert!(al.allocate(0).is_empty());
    al.activate_framework("b").unwrap();
    assert_eq!(offered_to(&al.allocate(1)), ["b"]);
}

// Mesos: REVIVE lifts suppression and removes all of the framework's filters.
#[test]
fn revive_clears_filters() {
    let mut al = one_agent("cpus:2;mem:64");
    al.remove_framework("b").unwrap();
    let offer = al.allocate(0).remove(0);
    al.decline("a", "agent1", &offer.resources, 3600.0, 0)
        .unwrap();
    al.suppress("a").unwrap();
    assert!(al.allocate(1).is_empty());
    al.revive("a").unwrap();
    assert_eq!(al.active_filters("a", 2), 0);
    assert_eq!(offered_to(&al.allocate(2)), ["a"]);
}

#[test]
fn removed_agent_resources_are_gone() {
    let mut al = one_agent("cpus:2;mem:64");
    al.add_agent("agent2", r("cpus:8;mem:512")).unwrap();
    let pass = al.allocate(0);
    assert_eq!(pass.len(), 2);
    al.remove_agent("agent2").unwrap();
    assert_eq!(al.cluster_total(), r("cpus:2;mem:64"));
    assert_eq!(al.allocated("b"), Resources::new());
    assert!(al.available("agent2").is_empty());
    let err = al.recover("agent2", "b", &pass[1].resources).unwrap_err();
    assert_eq!(err, AllocatorError::UnknownAgent("agent2".into()));
    al.recover("agent1", "a", &pass[0].resources).unwrap();
    assert!(al.allocate(1).iter().all(|x| x.agent_id == "agent1"));
    al.check_accounting().unwrap();
}

#[test]
fn recover_of_unallocated_resources_is_an_error_and_changes_nothing() {
    let mut al = one_agent("cpus:2;mem:64");
    al.allocate(0);
    let before = al.clone();
    for (agent, fw, res) in [
        ("agent1", "a", "cpus:3"),
        ("agent1", "b", "cpus:1"),
        ("agent1", "a", "ports:[1-2]"),
        ("agent1", "a", "cpus(ads):1"),
    ] {
        let err = al.recover(agent, fw, &r(res)).unwrap_err();
        assert!(matches!(err, AllocatorError::NotAllocated { .. }), "{err}");
    }
    assert_eq!(
        al.recover("nope", "a", &r("cpus:1")),
        Err(AllocatorError::UnknownAgent("nope".into()))
    );
    assert!(al.decline("a", "agent1", &r("cpus:5"), 5.0, 0).is_err());
    assert!(al.decline("zz", "agent1", &r("cpus:1"), 5.0, 0).is_err());
    assert_eq!(al, before);
}

// The master recovers a removed framework's tasks and offers; here removal does it in one step.
#[test]
fn removing_a_framework_returns_its_allocations() {
    let mut al = one_agent("cpus:2;mem:64");
    let offer = al.allocate(0).remove(0);
    let released = al.remove_framework("a").unwrap();
    assert_eq!(released, vec![offer]);
    assert_eq!(al.available("agent1"), r("cpus:2;mem:64"));
    assert!(al.recover("agent1", "a", &r("cpus:1")).is_err());
    assert_eq!(offered_to(&al.allocate(1)), ["b"]);
}

#[test]
fn duplicate_and_unknown_ids_are_errors() {
    let mut al = one_agent("cpus:1");
    assert_eq!(
        al.add_agent("agent1", r("cpus:1")),
        Err(AllocatorError::AgentExists("agent1".into()))
    );
    assert_eq!(
        al.add_framework("a", "*"),
        Err(AllocatorError::FrameworkExists("a".into()))
    );
    assert!(al.remove_agent("x").is_err());
    assert!(al.remove_framework("x").is_err());
    assert!(al.suppress("x").is_err());
    assert!(al.revive("x").is_err());
    assert!(al.add_filter("a", "x", &r("cpus:1"), 1.0, 0).is_err());
    assert_eq!(al.dominant_share("x"), 0.0);
}

// Statically reserved resources are only offered to frameworks of that role.
#[test]
fn reserved_resources_go_only_to_their_role() {
    let mut al = allocator();
    al.add_agent("agent1", r("cpus:2;cpus(ads):8")).unwrap();
    al.add_framework("a", "*").unwrap();
    al.add_framework("z", "ads").unwrap();
    assert_eq!(al.role("z"), Some("ads"));
    let pass = al.allocate(0);
    assert_eq!(pass.len(), 2);
    assert_eq!(pass[0].framework_id, "a");
    assert_eq!(pass[0].resources, r("cpus:2"));
    assert_eq!(pass[1].framework_id, "z");
    assert_eq!(pass[1].resources, r("cpus(ads):8"));
}

#[test]
fn agent_with_used_resources_and_total_updates() {
    let mut al = one_agent("cpus:1");
    let used = [("a".to_string(), r("cpus:3;mem:10"))];
    al.add_agent_with_used("agent2", r("cpus:4;mem:10"), &used)
        .unwrap();
    assert_eq!(al.available("agent2"), r("cpus:1"));
    let bad = [("a".to_string(), r("cpus:5"))];
    assert!(al.add_agent_with_used("agent3", r("cpus:4"), &bad).is_err());
    assert!(al.update_agent_total("agent2", r("cpus:2")).is_err());
    al.update_agent_total("agent2", r("cpus:6;mem:10")).unwrap();
    assert_eq!(al.available("agent2"), r("cpus:3"));
    assert_eq!(al.total("agent2").cpus(), Scalar::from_millis(6000));
    al.check_accounting().unwrap();
}

#[test]
fn allocation_interval_is_reported() {
    let mut al = allocator();
    assert!(al.allocation_due(0));
    al.allocate(100);
    assert!(!al.allocation_due(1099));
    assert!(al.allocation_due(1100));
}
