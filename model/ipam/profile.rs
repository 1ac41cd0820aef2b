//! Version profiles: which libnetwork behaviour a variant runs.
//!
//! Each built-in profile is one point of libnetwork's fix history
//! (docs/fidelity.md §1 and ../shared/fidelity.md):
//!
//! | profile | store | network lock (#1808) | handle lock through commit (#2105) | search |
//! |---|---|---|---|---|
//! | `libnetwork-17.05` | none (local scope, #1130) | no | no | 17.05 |
//! | `libnetwork-17.06` | none | yes, around `CreateEndpoint` only | no | 17.05 |
//! | `libnetwork-18.03` | none | yes | yes, when there is no store | 2023 |
//! | `classic-swarm-cas` | consul-like CAS store (global scope) | no | no | 17.05 |
//!
//! Serial allocation (#1788, `com.docker.network.ipam.serial`) is an option
//! of any profile. A scenario variant may also override single fields to
//! ask "what if" questions (for example 18.03 without its lock).
//!
//! Approximation, stated: 17.06 shipped the partial search fix #1799 (the
//! head-sequence offset), which no recorded vector covers; the 17.06
//! profile therefore runs the 17.05 search. The scenarios shipped do not
//! reach the search bugs under that profile.

use super::bitseq::Version;

/// How a variant's allocator behaves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Profile {
    /// The profile's name as written in scenario files.
    pub name: String,
    /// Which `bitseq` search code runs.
    pub search: Version,
    /// The handle lives in a key-value store with compare-and-swap
    /// (global scope); otherwise `writeToStore` checks nothing.
    pub store: bool,
    /// `CreateEndpoint` takes the per-network lock (`networkLocker`) for the
    /// whole allocation; endpoint deletion does not.
    pub network_lock: bool,
    /// With no store, `Handle.set` holds the handle lock from reading the
    /// handle until the commit, so no other `set` interleaves.
    pub hold_handle_lock: bool,
    /// Serial allocation: search from after the last ordinal handed out.
    pub serial: bool,
    /// After a daemon failure, the operator runs `docker network
    /// disconnect -f NETWORK NAME` before starting each killed container
    /// again (moby `ForceEndpointDelete`, engine-api #29): a stale endpoint
    /// record is deleted and its address released. Needs endpoint records.
    pub force_disconnect: bool,
}

/// The names of the built-in profiles.
pub const PROFILE_NAMES: [&str; 4] = [
    "libnetwork-17.05",
    "libnetwork-17.06",
    "libnetwork-18.03",
    "classic-swarm-cas",
];

impl Profile {
    /// A built-in profile by name.
    pub fn builtin(name: &str) -> Option<Profile> {
        let (search, store, network_lock, hold_handle_lock) = match name {
            "libnetwork-17.05" => (Version::V17_05, false, false, false),
            "libnetwork-17.06" => (Version::V17_05, false, true, false),
            "libnetwork-18.03" => (Version::V2023, false, true, true),
            "classic-swarm-cas" => (Version::V17_05, true, false, false),
            _ => return None,
        };
        Some(Profile {
            name: name.to_string(),
            search,
            store,
            network_lock,
            hold_handle_lock,
            serial: false,
            force_disconnect: false,
        })
    }

    /// True when `Handle.set` keeps the handle locked from read to commit.
    pub fn holds_lock_through_commit(&self) -> bool {
        self.hold_handle_lock && !self.store
    }

    /// One line saying what this profile does, for trace headers.
    pub fn summary(&self) -> String {
        let mut parts = vec![if self.store {
            "CAS store (global scope)".to_string()
        } else {
            "no store (local scope)".to_string()
        }];
        parts.push(if self.network_lock {
            "network lock around CreateEndpoint".to_string()
        } else {
            "no network lock".to_string()
        });
        if self.holds_lock_through_commit() {
            parts.push("handle lock held through commit".to_string());
        }
        parts.push(format!("{} search", self.search.name()));
        if self.serial {
            parts.push("serial allocation".to_string());
        }
        if self.force_disconnect {
            parts.push("force-disconnect before a restart".to_string());
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_profile_exists_and_unknown_does_not() {
        for name in PROFILE_NAMES {
            assert_eq!(Profile::builtin(name).unwrap().name, name);
        }
        assert!(Profile::builtin("libnetwork-99").is_none());
        assert!(Profile::builtin("libnetwork-18.03")
            .unwrap()
            .holds_lock_through_commit());
        assert!(!Profile::builtin("classic-swarm-cas")
            .unwrap()
            .holds_lock_through_commit());
    }
}
