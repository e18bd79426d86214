//! Behaviour of Mesos resources that the rest of meso relies on.

use super::*;
use proptest::prelude::*;

fn r(text: &str) -> Resources {
    Resources::parse(text).unwrap_or_else(|e| panic!("`{text}` should parse: {e}"))
}

fn ms(millis: i64) -> Scalar {
    Scalar::from_millis(millis)
}

// Mesos moved scalars to fixed point (MESOS-4687) so that repeated offer/recover cycles do not drift.
#[test]
fn point_one_added_three_times_and_subtracted_twice_is_exactly_point_one() {
    let tenth = r("cpus:0.1");
    let mut total = Resources::new();
    for _ in 0..3 {
        total += tenth.clone();
    }
    for _ in 0..2 {
        total = total.checked_sub(&tenth).unwrap();
    }
    assert_eq!(total, tenth);
    assert_eq!(total.cpus(), ms(100));
}

#[test]
fn many_additions_and_subtractions_return_exactly_to_the_start() {
    let start = r("cpus:2;mem:1024");
    let step = r("cpus:1.001;mem:1.001");
    let mut total = start.clone();
    for _ in 0..100_000 {
        total += &step;
    }
    assert_eq!(total.cpus(), ms(2_000 + 100_100_000));
    for _ in 0..100_000 {
        total = total.checked_sub(&step).unwrap();
    }
    assert_eq!(total, start);
}

#[test]
fn text_rounds_half_up_at_the_fourth_decimal() {
    assert_eq!(r("cpus:1.5011").cpus(), ms(1501));
    assert_eq!(r("cpus:1.5015").cpus(), ms(1502));
    assert_eq!(r("cpus:1.50149999").cpus(), ms(1501));
    assert_eq!(r("cpus:0.0005").cpus(), ms(1));
}

#[test]
fn scalar_prints_minimal_form() {
    assert_eq!(ms(1100).to_string(), "1.1");
    assert_eq!(ms(1_000_001_000).to_string(), "1000001");
    assert_eq!(ms(500).to_string(), "0.5");
    assert_eq!(ms(2000).to_string(), "2");
    assert_eq!(ms(1).to_string(), "0.001");
    assert_eq!(r("cpus:1.1").to_string(), "cpus:1.1");
    assert_eq!(r("mem:1000001").to_string(), "mem:1000001");
}

#[test]
fn scalar_from_f64_rounds_half_away_from_zero_and_rejects_non_finite() {
    assert_eq!(Scalar::from_f64(0.0005), Some(ms(1)));
    assert_eq!(Scalar::from_f64(2.25), Some(ms(2250)));
    assert_eq!(Scalar::from_f64(f64::NAN), None);
    assert_eq!(Scalar::from_f64(f64::INFINITY), None);
    assert_eq!(Scalar::from_f64(-1.0), None);
    assert_eq!(Scalar::from_f64(1e300), None);
    assert_eq!(ms(1500).as_f64(), 1.5);
}

// The master checks an agent's available resources contain a task's before launching it.
#[test]
fn agent_with_cpus_4_1_running_1_1_still_fits_a_task_of_3() {
    let agent = r("cpus:4.1;mem:1024");
    let running = r("cpus:1.1;mem:24");
    let left = agent.checked_sub(&running).unwrap();
    assert!(left.contains(&r("cpus:3")));
    assert!(!left.contains(&r("cpus:3.001")));
    assert_eq!(left.cpus(), ms(3000));
}

// The example agent `--resources` string from the Mesos attributes/resources documentation.
#[test]
fn documentation_example_string_parses() {
    let res = r(
        "cpus:24;gpus:2;mem:24576;disk:409600;ports:[21000-24000,30000-34000];\
                 bugs(debug_role):{a,b,c}",
    );
    let unreserved = res.unreserved();
    assert_eq!(unreserved.cpus(), ms(24_000));
    assert_eq!(unreserved.scalar("gpus"), ms(2_000));
    assert_eq!(unreserved.mem(), ms(24_576_000));
    assert_eq!(unreserved.disk(), ms(409_600_000));
    assert_eq!(res.ports(), Ranges(vec![(21000, 24000), (30000, 34000)]));
    // 3,001 ports in the first range and 4,001 in the second: both bounds are inclusive.
    assert_eq!(res.ports().pairs().len(), 2);
    assert_eq!(res.ports().len(), 3_001 + 4_001);
    let bugs = res.reserved("debug_role");
    assert_eq!(bugs.set("bugs"), ["a", "b", "c"].map(String::from).into());
    assert!(unreserved.set("bugs").is_empty());
    assert_eq!(res.scalar_names(), ["cpus", "disk", "gpus", "mem"]);
}

// Static reservations (`cpus(ads):8`) are a separate pool from the unreserved `*` resources.
#[test]
fn reserved_resources_are_kept_apart_from_unreserved() {
    let res = r("cpus:4;mem:2048;cpus(ads):8;mem(ads):4096");
    assert_eq!(res.unreserved(), r("cpus:4;mem:2048"));
    assert_eq!(res.reserved("ads"), r("cpus(ads):8;mem(ads):4096"));
    assert_eq!(res.reserved("*"), res.unreserved());
    assert_eq!(res.cpus(), ms(12_000));
    assert_eq!(res.iter().count(), 4);
    // Unreserved resources do not satisfy a demand for reserved ones, and vice versa.
    assert!(!r("cpus:10").contains(&r("cpus(ads):1")));
    assert!(!r("cpus(ads):10").contains(&r("cpus:1")));
    assert_eq!(r("cpus(*):2"), r("cpus:2"));
}

#[test]
fn same_name_and_role_twice_adds_scalars_and_merges_ranges() {
    assert_eq!(r("cpus:1;cpus:2.5"), r("cpus:3.5"));
    assert_eq!(r("ports:[1-10,5-15]").ports(), Ranges(vec![(1, 15)]));
    assert_eq!(r("ports:[1-5,6-8]").ports(), Ranges(vec![(1, 8)]));
    assert_eq!(r("ports:[1-5];ports:[6-8]").to_string(), "ports:[1-8]");
}

#[test]
fn whitespace_around_parts_is_tolerated() {
    assert_eq!(
        r(" cpus : 2 ; mem:3 ;ports:[ 1-2 , 4-5 ]; "),
        r("cpus:2;mem:3;ports:[1-2,4-5]")
    );
    assert_eq!(r(""), Resources::new());
}

#[test]
fn rejected_forms_name_the_bad_part() {
    let cases = [
        ("cpus:-1", "cpus:-1"),
        ("mem:1;cpus:nan", "cpus:nan"),
        ("cpus:inf", "cpus:inf"),
        ("cpus:0.0001", "cpus:0.0001"),
        ("ports:[10-5]", "ports:[10-5]"),
        ("bugs:{a,a}", "{a,a}"),
        ("cpus:1;cpus:[1-2]", "cpus:[1-2]"),
        ("mem:1;cpus", "cpus"),
        ("ports:[1-2", "ports:[1-2"),
        ("ports:1-2]", "ports:1-2]"),
        ("bugs:{a,b", "bugs:{a,b"),
        ("cpus(ads:1", "cpus(ads:1"),
        ("cpusads):1", "cpusads):1"),
        (":5", ":5"),
        ("(ads):5", "(ads):5"),
        ("cpus():5", "cpus():5"),
        ("cpus:abc", "cpus:abc"),
        ("ports:[a-b]", "ports:[a-b]"),
        ("cpus:99999999999999999999", "cpus:99999999999999999999"),
    ];
    for (text, bad) in cases {
        let err = Resources::parse(text).expect_err(text);
        assert!(err.to_string().contains(bad), "`{err}` should name `{bad}`");
        assert!(text.parse::<Resources>().is_err());
    }
}

#[test]
fn zero_scalars_and_empty_values_are_dropped() {
    assert!(r("cpus:0;ports:[];bugs:{}").is_empty());
    let left = r("cpus:2;mem:1").checked_sub(&r("cpus:2")).unwrap();
    assert_eq!(left, r("mem:1"));
}

#[test]
fn subtraction_of_uncontained_resources_fails() {
    let have = r("cpus:1;ports:[10-20];bugs:{a,b}");
    for want in [
        "cpus:1.001",
        "ports:[15-21]",
        "bugs:{c}",
        "mem:1",
        "cpus(ads):1",
    ] {
        let err = have.checked_sub(&r(want)).expect_err(want);
        assert!(matches!(err, ResourcesError::NotContained { .. }));
    }
    assert_eq!(
        have.checked_sub(&r("ports:[12-13];bugs:{a}")).unwrap(),
        r("cpus:1;ports:[10-11,14-20];bugs:{b}")
    );
}

#[test]
fn checked_add_rejects_kind_clash_and_plain_add_keeps_left() {
    let a = r("cpus:1");
    let b = r("cpus:[1-2]");
    assert!(matches!(
        a.checked_add(&b),
        Err(ResourcesError::TypeMismatch { .. })
    ));
    assert_eq!(a.clone() + b, a);
    let mut big = Resources::new().with(Resource::scalar("cpus", Scalar::MAX));
    assert!(matches!(
        big.try_insert(Resource::scalar("cpus", ms(1))),
        Err(ResourcesError::Overflow { .. })
    ));
    assert_eq!(big.cpus(), Scalar::MAX);
}

#[test]
fn ranges_operations() {
    let a = Ranges::new([(1, 10), (20, 30)]);
    assert_eq!(
        a.subtract(&Ranges::single(5, 25)),
        Ranges(vec![(1, 4), (26, 30)])
    );
    assert!(a.contains(&Ranges::new([(2, 3), (20, 30)])));
    assert!(!a.contains(&Ranges::single(9, 11)));
    assert!(a.overlaps(&Ranges::single(10, 19)));
    assert!(!a.overlaps(&Ranges::single(11, 19)));
    assert_eq!(a.len(), 21);
    assert_eq!(Ranges::single(0, u64::MAX).len(), u64::MAX);
    assert_eq!(
        a.intersection(&Ranges::single(8, 22)),
        Ranges(vec![(8, 10), (20, 22)])
    );
    assert_eq!(a.to_string(), "[1-10,20-30]");
    assert_eq!(Ranges(vec![(5, 1)]).len(), 0);
}

#[test]
fn round_trips_through_the_wire_codec() {
    let res = r("cpus:1.5;ports:[1-2];bugs(dev):{x}");
    let bytes = crate::codec::encode(&res).unwrap();
    let back: Resources = crate::codec::decode(&bytes).unwrap();
    assert_eq!(back, res);
}

// ---- property tests ----

const ROLES: [Option<&str>; 3] = [None, Some("ads"), Some("dev")];

fn resource_strategy() -> impl Strategy<Value = Resource> {
    let role = prop::sample::select(ROLES.to_vec());
    let scalar = (
        prop::sample::select(vec!["cpus", "mem", "disk", "gpus"]),
        1i64..10_000_000,
    )
        .prop_map(|(n, m)| Resource::scalar(n, ms(m)));
    let ranges = prop::collection::vec((0u64..1000, 0u64..50), 0..4).prop_map(|v| {
        Resource::ranges("ports", Ranges::new(v.into_iter().map(|(b, l)| (b, b + l))))
    });
    let set = prop::collection::btree_set(prop::sample::select(vec!["a", "b", "c", "d"]), 0..4)
        .prop_map(|s| Resource::set("zones", s));
    (prop_oneof![scalar, ranges, set], role).prop_map(|(r, role)| match role {
        Some(role) => r.reserved_for(role),
        None => r,
    })
}

fn resources_strategy() -> impl Strategy<Value = Resources> {
    prop::collection::vec(resource_strategy(), 0..8).prop_map(Resources::from_iter)
}

/// `b` without the range values and set items that `a` already has, so that `a + b - b == a`
/// holds (union of overlapping ranges or sets cannot be undone, in Mesos either).
fn disjoint_part(b: &Resources, a: &Resources) -> Resources {
    b.iter()
        .map(|x| {
            let role = x.role().unwrap_or("*");
            let mut y = x.clone();
            y.value = match &x.value {
                Value::Ranges(rs) => Value::Ranges(rs.subtract(&a.reserved(role).ranges(&x.name))),
                Value::Set(s) => Value::Set(
                    s.difference(&a.reserved(role).set(&x.name))
                        .cloned()
                        .collect(),
                ),
                v => v.clone(),
            };
            y
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn add_then_subtract_is_identity(a in resources_strategy(), b in resources_strategy()) {
        let b = disjoint_part(&b, &a);
        let sum = a.checked_add(&b).unwrap();
        prop_assert!(sum.contains(&a) && sum.contains(&b));
        prop_assert_eq!(sum.checked_sub(&b).unwrap(), a);
    }

    #[test]
    fn results_are_never_negative(a in resources_strategy(), b in resources_strategy()) {
        match a.checked_sub(&b) {
            Ok(rest) => {
                for x in rest.iter() {
                    prop_assert!(!x.value.is_empty());
                }
                prop_assert_eq!(rest.checked_add(&b).unwrap().contains(&a), true);
            }
            Err(_) => prop_assert!(!a.contains(&b)),
        }
    }

    #[test]
    fn contains_agrees_with_subtraction(a in resources_strategy(), b in resources_strategy()) {
        prop_assert_eq!(a.contains(&b), a.checked_sub(&b).is_ok());
        prop_assert!(a.contains(&a));
        prop_assert!(a.checked_sub(&a).unwrap().is_empty());
    }

    #[test]
    fn display_parse_round_trip(a in resources_strategy()) {
        let text = a.to_string();
        prop_assert_eq!(Resources::parse(&text).unwrap(), a);
    }

    #[test]
    fn scalar_text_round_trip(m in 1i64..i64::MAX) {
        let s = ms(m);
        prop_assert_eq!(Resources::parse(&format!("cpus:{s}")).unwrap().cpus(), s);
    }

    #[test]
    fn parse_never_panics(text in "[a-z0-9:;,(){}\\[\\]. *-]{0,40}") {
        let _ = Resources::parse(&text);
    }
}

fn ranges_model(r: &Ranges) -> BTreeSet<u64> {
    r.pairs().iter().flat_map(|&(b, e)| b..=e).collect()
}

fn small_ranges() -> impl Strategy<Value = Ranges> {
    prop::collection::vec((0u64..200, 0u64..20), 0..5)
        .prop_map(|v| Ranges(v.into_iter().map(|(b, l)| (b, b + l)).collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    // Ranges behave as the sets of values they cover, even from unsorted, overlapping input.
    #[test]
    fn ranges_agree_with_a_set_of_values(a in small_ranges(), b in small_ranges()) {
        let (ma, mb) = (ranges_model(&Ranges::new(a.0.clone())), ranges_model(&Ranges::new(b.0.clone())));
        let union: BTreeSet<u64> = ma.union(&mb).copied().collect();
        let diff: BTreeSet<u64> = ma.difference(&mb).copied().collect();
        prop_assert_eq!(ranges_model(&a.add(&b)), union);
        prop_assert_eq!(ranges_model(&a.subtract(&b)), diff);
        prop_assert_eq!(a.contains(&b), mb.is_subset(&ma));
        prop_assert_eq!(a.overlaps(&b), !ma.is_disjoint(&mb));
        prop_assert_eq!(a.len(), ma.len() as u64);
        let sum = a.add(&b);
        prop_assert_eq!(Ranges::new(sum.0.clone()), sum);
    }
}

// ---- decoding from the wire: a peer may send anything ----

fn wire(items: Vec<Resource>) -> Vec<u8> {
    crate::codec::encode(&items).expect("encode")
}

fn decoded(items: Vec<Resource>) -> Result<Resources, crate::codec::CodecError> {
    crate::codec::decode::<Resources>(&wire(items))
}

fn cpus(thousandths: i64) -> Resource {
    Resource::scalar("cpus", Scalar(thousandths))
}

/// On the wire a bag is the plain list of its entries: what was sent before decodes the same.
#[test]
fn a_valid_bag_round_trips_and_is_the_plain_list_on_the_wire() {
    let bag = r("cpus:1;mem:30000;ports:[31000-32000];zones:{a,b}");
    let bytes = crate::codec::encode(&bag).unwrap();
    assert_eq!(bytes, wire(bag.iter().cloned().collect()));
    assert_eq!(crate::codec::decode::<Resources>(&bytes).unwrap(), bag);
}

/// The field case: an agent announced `cpus:1;cpus:1;mem:30000;mem:30000` and the master
/// over-committed. Two entries of one name and role fail to decode.
#[test]
fn duplicate_entries_fail_to_decode() {
    let mem = Resource::scalar("mem", Scalar(30_000_000));
    assert!(decoded(vec![cpus(1000), cpus(1000), mem.clone(), mem]).is_err());
    // The unreserved role spelled `*` is the same entry as no role.
    assert!(decoded(vec![cpus(1000), cpus(1000).reserved_for("*")]).is_err());
    // One per role is fine.
    let two = decoded(vec![cpus(1000), cpus(1000).reserved_for("web")]).unwrap();
    assert_eq!(two.cpus(), Scalar(2000));
}

#[test]
fn negative_and_zero_scalars_fail_to_decode() {
    assert!(decoded(vec![cpus(-1000)]).is_err());
    assert!(decoded(vec![cpus(0)]).is_err());
    assert!(crate::codec::decode::<Scalar>(&crate::codec::encode(&-5i64).unwrap()).is_err());
}

#[test]
fn inverted_or_empty_ranges_and_empty_sets_fail_to_decode() {
    let ports = |pairs: Vec<(u64, u64)>| Resource {
        name: "ports".to_string(),
        role: None,
        value: Value::Ranges(Ranges(pairs)),
    };
    assert!(decoded(vec![ports(vec![(32000, 31000)])]).is_err());
    assert!(decoded(vec![ports(Vec::new())]).is_err());
    assert!(decoded(vec![Resource::set("zones", Vec::<String>::new())]).is_err());
    assert!(decoded(vec![Resource {
        name: String::new(),
        ..cpus(1000)
    }])
    .is_err());
}

/// Unsorted, overlapping and adjacent ranges are put in canonical form, and entries in order.
#[test]
fn unmerged_ranges_and_unsorted_entries_are_normalized() {
    let ports = Resource {
        name: "ports".to_string(),
        role: None,
        value: Value::Ranges(Ranges(vec![(40, 50), (1, 10), (5, 20), (21, 30)])),
    };
    let got = decoded(vec![
        Resource::scalar("mem", Scalar(5000)),
        ports,
        cpus(1000),
    ])
    .unwrap();
    assert_eq!(got, r("cpus:1;mem:5;ports:[1-30,40-50]"));
}
