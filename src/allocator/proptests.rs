//! Accounting invariant under random operation sequences: per agent, available plus all
//! allocations equals the total; nothing is offered twice; a failed recover changes nothing.

use super::*;
use crate::resources::{Resource, Scalar};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    AddAgent(u8, u32, u32),
    RemoveAgent(u8),
    Allocate(u16),
    /// Recover the given thousandths of the cpus of the allocation picked by index.
    Recover(u8, u16),
    /// Recover more than is allocated.
    RecoverTooMuch(u8),
    Decline(u8, i8),
    Suppress(u8),
    Revive(u8),
    RemoveFramework(u8),
    AddFramework(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4, 1u32..64_000, 1u32..64_000).prop_map(|(a, c, m)| Op::AddAgent(a, c, m)),
        (0u8..4).prop_map(Op::RemoveAgent),
        (0u16..10_000).prop_map(Op::Allocate),
        (any::<u8>(), 0u16..=1000).prop_map(|(i, f)| Op::Recover(i, f)),
        any::<u8>().prop_map(Op::RecoverTooMuch),
        (any::<u8>(), any::<i8>()).prop_map(|(i, s)| Op::Decline(i, s)),
        (0u8..3).prop_map(Op::Suppress),
        (0u8..3).prop_map(Op::Revive),
        (0u8..3).prop_map(Op::RemoveFramework),
        (0u8..3).prop_map(Op::AddFramework),
    ]
}

fn held(al: &Allocator) -> Vec<(String, String, Resources)> {
    let mut out = Vec::new();
    for agent in al.agent_ids() {
        for fw in al.framework_ids() {
            let r = al.allocated_on(agent, fw);
            if !r.is_empty() {
                out.push((agent.to_string(), fw.to_string(), r));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn accounting_holds_under_random_operations(ops in prop::collection::vec(op(), 1..60)) {
        let mut al = Allocator::new(AllocatorConfig::default());
        for f in 0..3 {
            al.add_framework(&format!("f{f}"), "*").unwrap();
        }
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::AddAgent(a, c, m) => {
                    let total = Resources::from_scalars(
                        Scalar::from_millis(i64::from(c)),
                        Scalar::from_millis(i64::from(m)),
                    );
                    let _ = al.add_agent(&format!("s{a}"), total);
                }
                Op::RemoveAgent(a) => {
                    let _ = al.remove_agent(&format!("s{a}"));
                }
                Op::Allocate(dt) => {
                    now += u64::from(dt);
                    let before: BTreeMap<String, Resources> =
                        al.agent_ids().map(|a| (a.to_string(), al.available(a))).collect();
                    let pass = al.allocate(now);
                    // Nothing offered twice: per agent the pass hands out at most what was free.
                    let mut given: BTreeMap<String, Resources> = BTreeMap::new();
                    for x in &pass {
                        prop_assert!(!x.resources.is_empty());
                        *given.entry(x.agent_id.clone()).or_default() += &x.resources;
                    }
                    for (agent, res) in given {
                        prop_assert!(before[&agent].contains(&res));
                        prop_assert_eq!(
                            before[&agent].checked_sub(&res).unwrap(),
                            al.available(&agent)
                        );
                    }
                }
                Op::Recover(i, fraction) => {
                    let h = held(&al);
                    if !h.is_empty() {
                        let (agent, fw, res) = &h[usize::from(i) % h.len()];
                        let part = Resources::new().with(Resource::scalar(
                            "cpus",
                            Scalar::from_millis(res.cpus().millis() * i64::from(fraction) / 1000),
                        ));
                        al.recover(agent, fw, &part).unwrap();
                    }
                }
                Op::RecoverTooMuch(i) => {
                    let h = held(&al);
                    let before = al.clone();
                    let (agent, fw, res) = if h.is_empty() {
                        ("s0".to_string(), "f0".to_string(), Resources::new())
                    } else {
                        h[usize::from(i) % h.len()].clone()
                    };
                    let more = res + Resources::from_scalars(Scalar::from_millis(1), Scalar::ZERO);
                    prop_assert!(al.recover(&agent, &fw, &more).is_err());
                    prop_assert_eq!(&al, &before);
                }
                Op::Decline(i, secs) => {
                    let h = held(&al);
                    if !h.is_empty() {
                        let (agent, fw, res) = &h[usize::from(i) % h.len()];
                        al.decline(fw, agent, res, f64::from(secs), now).unwrap();
                    }
                }
                Op::Suppress(f) => {
                    let _ = al.suppress(&format!("f{f}"));
                }
                Op::Revive(f) => {
                    let _ = al.revive(&format!("f{f}"));
                }
                Op::RemoveFramework(f) => {
                    let _ = al.remove_framework(&format!("f{f}"));
                }
                Op::AddFramework(f) => {
                    let _ = al.add_framework(&format!("f{f}"), "*");
                }
            }
            prop_assert_eq!(al.check_accounting(), Ok(()));
            for agent in al.agent_ids() {
                prop_assert!(al.total(agent).contains(&al.available(agent)));
            }
            for fw in al.framework_ids() {
                let share = al.dominant_share(fw);
                prop_assert!((0.0..=1.0 + 1e-12).contains(&share));
            }
        }
    }
}
