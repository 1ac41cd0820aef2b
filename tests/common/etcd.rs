//! The etcd oracle's start-or-skip rule, for every test that runs a real
//! etcd, and the model-versus-real report of the catalogue's real clients.

use netrace::store::oracle::{self, Server};

/// A fresh server, or `None` after saying loudly why not: `ETCD ORACLE
/// SKIPPED`, or a failure under `NETRACE_REQUIRE_ETCD=1` (CI sets it).
pub fn server_or_skip(test: &str) -> Option<Server> {
    match oracle::binary().and_then(|_| Server::start()) {
        Ok(s) => Some(s),
        Err(e) => {
            if std::env::var("NETRACE_REQUIRE_ETCD").as_deref() == Ok("1") {
                panic!("NETRACE_REQUIRE_ETCD=1 but the etcd oracle cannot run: {e}");
            }
            eprintln!("ETCD ORACLE SKIPPED ({test}): {e}");
            None
        }
    }
}

/// The model's verdicts beside the real runs', variant by variant, for the
/// catalogue's real-client tests (tests/etcd_{k8s,whereabouts,calico}.rs):
/// each records what the model says of a variant, how many seeded real
/// orders ended in a duplicate, and whether the model's own counterexample,
/// forced for real, did; [`Agreement::assert_agree`] prints the report and
/// fails on any disagreement.
#[derive(Default)]
pub struct Agreement {
    report: Vec<String>,
    disagreements: Vec<String>,
}

impl Agreement {
    /// `hits` of `runs` random real orders of `variant` ended in a
    /// duplicate, and the model says the variant is violated or not. A real
    /// duplicate the model rules out always disagrees; with `must_find`, so
    /// does a model violation no random order found (leave it off where the
    /// window is too narrow for random orders to hit, and rely on
    /// [`Agreement::forced`]).
    pub fn random(
        &mut self,
        variant: &str,
        model_violated: bool,
        hits: u64,
        runs: u64,
        must_find: bool,
    ) {
        let real = hits > 0;
        self.report.push(format!(
            "{variant}: model ipam.unique violated = {model_violated}, real = {real} ({hits} of {runs} random orders)"
        ));
        if real && !model_violated || must_find && model_violated && !real {
            self.disagreements
                .push(format!("{variant}: model {model_violated}, real {real}"));
        }
    }

    /// The model's counterexample of `variant`, forced for real, ended in a
    /// duplicate or not (`story`: what the real run did, may be empty).
    pub fn forced(&mut self, variant: &str, duplicate: bool, story: &str) {
        let story = if story.is_empty() {
            String::new()
        } else {
            format!(" — {story}")
        };
        self.report.push(format!(
            "{variant}: the model's order for real: duplicate {duplicate}{story}"
        ));
        if !duplicate {
            self.disagreements.push(format!(
                "{variant}: the model's counterexample is no duplicate for real"
            ));
        }
    }

    /// Prints the report; fails when a variant disagreed, or when the
    /// variants agree trivially (the era and the fix must differ: some
    /// variant violated and some not).
    pub fn assert_agree(self) {
        let report = self.report.join("\n");
        eprintln!("{report}");
        assert!(
            self.disagreements.is_empty(),
            "the model and the real runs disagree: {}\n{report}",
            self.disagreements.join("; ")
        );
        assert!(
            report.contains("violated = true"),
            "no variant is violated:\n{report}"
        );
        assert!(
            report.contains("violated = false"),
            "no variant holds:\n{report}"
        );
    }
}
