//! The multi-host kernel oracle (model/kernel/cluster.rs): every bundled
//! `overlay-cluster` scenario's variants, on every schedule (or, for a
//! larger space, the first-action one and each counterexample), agree with real vxlan devices
//! in namespaces joined by a real underlay, request by request and table
//! by table; and an entry deleted behind the model's back is caught.
//!
//! Needs root and network namespaces: see tests/common/kernel.rs.

use netrace::kernel::cluster;
use netrace::kernel::netns;
use netrace::scenario::cluster::ClusterScenario;

mod common;
use common::kernel::{kernel_or_skip, leaves_no_namespace};

#[test]
fn every_bundled_cluster_schedule_agrees_with_the_kernel() {
    let Some(_lock) = kernel_or_skip("overlay-cluster schedules") else {
        return;
    };
    let mut runs = 0;
    let mut refused = 0;
    for s in common::bundled() {
        let Some(c) = s.system.downcast::<ClusterScenario>() else {
            continue;
        };
        for v in &c.variants {
            for (what, schedule) in cluster::schedules(&v.model) {
                let r = leaves_no_namespace(|| cluster::run(&v.model, &schedule))
                    .expect("the oracle runs");
                assert!(
                    r.mismatches.is_empty(),
                    "{} {} ({what}): {:#?}",
                    s.name,
                    v.name,
                    r.mismatches
                );
                assert_eq!(r.steps, schedule.len());
                runs += 1;
                refused += r.refused;
            }
        }
    }
    assert!(
        runs >= 3,
        "the rejoin scenario's variants and counterexample ran ({runs})"
    );
    assert!(refused >= 1, "the EEXIST of moby-29 was seen on the kernel");
}

#[test]
fn an_entry_deleted_behind_the_models_back_is_caught() {
    let Some(_lock) = kernel_or_skip("overlay-cluster mismatch") else {
        return;
    };
    let s = netrace::scenario::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/swarm-rejoin-fdb-eexist.toml"
    )))
    .unwrap();
    let c = s.system.downcast::<ClusterScenario>().unwrap();
    let v = &c.variants[1];
    let (_, first) = cluster::schedules(&v.model).remove(0);
    let r = leaves_no_namespace(|| {
        cluster::run_with(&v.model, &first, &mut |step, hosts| {
            if step == 1 {
                // worker1's permanent entry for B, gone.
                netns::run(
                    "bridge",
                    &[
                        "-n",
                        &hosts[0],
                        "fdb",
                        "del",
                        "02:42:0a:00:01:11",
                        "dev",
                        "vxlan1",
                        "self",
                    ],
                )?;
            }
            Ok(())
        })
    })
    .expect("the oracle runs");
    assert!(
        r.mismatches
            .iter()
            .any(|m| m.step == 1 && m.host == "worker1" && m.what.contains("FDB")),
        "{:#?}",
        r.mismatches
    );
}
