//! The scale scenarios of the catalogue (`scenarios/scale/`): the seed's
//! batch of 50 concurrent runs and 16 concurrent runs. Each is checked the
//! way `netrace check` runs it (a variant's `explore` strategy where it
//! names one): the 17.05 duplicate is found by PCT and shrunk to the
//! shortest duplicate of the four-run seed, and the fixes are proven over
//! the whole space for every run, through the symmetry reduction.

use netrace::check::Judgement;
use netrace::explore::{Bounds, Options, Stop};
use netrace::scenario::{ipam::IpamScenario, Verdict};

mod common;
use common::{bundled_scale, check_all, check_as_bundled};

#[test]
fn the_scale_scenarios_meet_their_expectations_as_check_runs_them() {
    let scenarios = bundled_scale();
    assert!(scenarios.len() >= 2);
    let mut proven = 0;
    let mut found = 0;
    for s in &scenarios {
        for r in check_as_bundled(s) {
            assert_eq!(r.judgement(), Judgement::Met, "{} {}", s.name, r.variant);
            let sampled = matches!(r.strategy, "pct" | "random");
            for p in &r.properties {
                match p.verdict {
                    Verdict::Holds => {
                        assert!(r.complete && !sampled, "{} {}", s.name, r.variant);
                        assert!(r.reductions.contains(&"symmetry"), "{}", r.variant);
                        proven += 1;
                    }
                    Verdict::Violated => found += 1,
                    // What a sampled search did not find is unknown,
                    // never holds.
                    Verdict::Unknown(Stop::Sampling) => assert!(sampled),
                    v => panic!("{} {} {}: {v:?}", s.name, r.variant, p.property),
                }
            }
            if r.variant == "libnetwork-17.05" {
                assert_eq!(r.strategy, "pct");
                let dup = r
                    .properties
                    .iter()
                    .find(|p| p.property == "ipam.unique")
                    .and_then(|p| p.counterexample.as_ref())
                    .expect("the duplicate");
                // The four-run seed's shortest duplicate is 12 steps: two
                // runs each take their six phases; the other runs need
                // not move.
                assert_eq!(dup.steps, 12, "{}: {}", s.name, dup.token);
            }
        }
    }
    assert!(proven >= 15, "the fixes are proven at scale ({proven})");
    assert!(found >= 5, "the 17.05 bugs are found at scale ({found})");
}

#[test]
fn without_the_symmetry_reduction_sixteen_runs_do_not_fit_and_say_so() {
    // The unreduced space of 16 runs has more than 16! / (orbit size)
    // states: a bounded search ends `unknown (max_states)` where the
    // reduced one proves the property, and never disagrees with it.
    let s = bundled_scale()
        .into_iter()
        .find(|s| s.name == "concurrent-runs-16")
        .unwrap();
    let ipam = s.system.downcast::<IpamScenario>().unwrap();
    assert!(ipam.variants.iter().any(|v| v.name == "libnetwork-18.03"));
    let capped = Options {
        bounds: Bounds {
            max_states: 100_000,
            ..s.bounds
        },
        symmetry: false,
        ..Options::default()
    };
    let on = Options {
        bounds: s.bounds,
        ..Options::default()
    };
    let (off, on) = (check_all(&s, &capped), check_all(&s, &on));
    for (a, b) in off.iter().zip(&on) {
        if a.variant.starts_with("libnetwork-18.03") {
            assert_eq!(a.stop, Some(Stop::MaxStates), "{}", a.variant);
            assert!(b.complete, "{}", b.variant);
        }
        for (p, q) in a.properties.iter().zip(&b.properties) {
            if p.verdict == Verdict::Violated {
                assert_eq!(q.verdict, Verdict::Violated, "{} {}", a.variant, p.property);
            }
            if q.verdict == Verdict::Holds {
                assert_ne!(p.verdict, Verdict::Violated, "{} {}", a.variant, p.property);
            }
        }
    }
}
