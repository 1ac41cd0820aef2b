//! The allocator catalogue: allocators of the container ecosystem that keep
//! their state in etcd, each as a model over [`crate::store::etcd::Etcd`].
//!
//! Every system of the catalogue has the same shape: actors (an API call,
//! a controller's loop) that advance in steps named after the upstream
//! functions they stand for, each step one request to the store (or one
//! local decision), over a store with etcd's v3 semantics. What they
//! share lives here:
//!
//! - [`Pool`]: a small address range as offsets (the bitmaps of the
//!   models are `u64`s, so at most 64 addresses), and how an offset is
//!   printed;
//! - the shared properties' checks: [`unique`] (`ipam.unique`: no two live
//!   objects hold one address) and [`no_leak`] (`ipam.no_leak`: at
//!   quiescence, once the system's repair has run as often as it promises,
//!   every address no live object uses is free);
//! - [`bits`]: the offsets set in a bitmap, in order.
//!
//! Each system adds its own module with its step functions and its users'
//! property: [`k8s`] (Kubernetes ClusterIP, kubernetes #37488 and #39206),
//! [`whereabouts`] (whereabouts #143, #207 and #208),
//! [`calico`] (calico #3589 and #5613, libcalico-go #778 and #785, #6003),
//! [`cilium`] (Cilium operator IPAM, cilium #13412 and #17939's handshake),
//! [`swarmkit`] (swarm mode's allocator restore, swarmkit #2237 and #2468).
//! Not here: a store shared by two systems, or time beyond the explicit
//! counters a system's model keeps.

pub mod calico;
pub mod cilium;
pub mod k8s;
pub mod swarmkit;
pub mod whereabouts;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::sim::Checked;

/// The most addresses a catalogue pool has: bitmaps are `u64`s.
pub const MAX_POOL: u32 = 64;

/// A range of addresses as offsets `0..size` from `first`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    /// The range as configured (`10.96.0.0/29`).
    pub cidr: Ipv4Net,
    /// The address of offset 0.
    pub first: Ipv4Addr,
    /// How many addresses.
    pub size: u32,
}

impl Pool {
    /// The host addresses of an IPv4 CIDR without its network and
    /// broadcast addresses (what Kubernetes' `ipallocator.NewCIDRRange`
    /// hands out), or why the range is unusable.
    pub fn hosts(cidr: Ipv4Net) -> Result<Pool, String> {
        let total = 1u64 << (32 - u32::from(cidr.prefix_len()));
        if total < 4 {
            return Err(format!(
                "{cidr} has no host addresses besides its network and broadcast addresses"
            ));
        }
        let size = total - 2;
        if size > u64::from(MAX_POOL) {
            return Err(format!(
                "{cidr} has {size} addresses; the catalogue's models take at most {MAX_POOL} \
                 (a /26): the races need two or three addresses, not thousands"
            ));
        }
        Ok(Pool {
            cidr,
            first: Ipv4Addr::from(u32::from(cidr.network()) + 1),
            size: size as u32,
        })
    }

    /// The address of an offset.
    pub fn addr(&self, offset: u32) -> Ipv4Addr {
        assert!(offset < self.size, "offset {offset} outside the pool");
        Ipv4Addr::from(u32::from(self.first) + offset)
    }

    /// Every offset set: `(1 << size) - 1`.
    pub fn full(&self) -> u64 {
        if self.size == 64 {
            u64::MAX
        } else {
            (1u64 << self.size) - 1
        }
    }
}

/// A plain put of `value` at `key` (no lease, no previous value).
pub(crate) fn put<V>(key: &str, value: V) -> crate::store::etcd::PutRequest<V> {
    crate::store::etcd::PutRequest {
        key: key.to_string(),
        value,
        lease: 0,
        prev_kv: false,
    }
}

/// The offsets set in `mask`, lowest first.
pub fn bits(mask: u64) -> impl Iterator<Item = u32> {
    (0..64).filter(move |b| mask & (1u64 << b) != 0)
}

/// `ipam.unique` over live objects: `holders` are (owner, offset) of every
/// live object that holds an address; two owners on one offset violate it.
pub fn unique<'a>(
    pool: &Pool,
    holders: impl IntoIterator<Item = (&'a str, u32)>,
) -> Result<Checked, String> {
    let mut seen: std::collections::BTreeMap<u32, &str> = std::collections::BTreeMap::new();
    let mut any = false;
    for (owner, offset) in holders {
        any = true;
        if let Some(first) = seen.insert(offset, owner) {
            return Err(format!(
                "{} is held by {first} and {owner}",
                pool.addr(offset)
            ));
        }
    }
    Ok(Checked::when(any))
}

/// `ipam.no_leak`: `before` is the allocated bitmap at quiescence, `after`
/// the same after the promised repair runs, `used` the addresses live
/// objects hold. Violated when `after` still has an address no live object
/// uses; `Nothing` to check when nothing was leaked to begin with.
pub fn no_leak(
    pool: &Pool,
    before: u64,
    after: u64,
    used: u64,
    promise: &str,
) -> Result<Checked, String> {
    let leaked = after & !used;
    if leaked != 0 {
        let list: Vec<String> = bits(leaked).map(|o| pool.addr(o).to_string()).collect();
        return Err(format!(
            "{} used by no Service and still allocated after {promise}",
            list.join(", ")
        ));
    }
    Ok(Checked::when(before & !used != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_is_the_host_addresses() {
        let p = Pool::hosts("10.96.0.0/29".parse().unwrap()).unwrap();
        assert_eq!(
            (p.size, p.addr(0), p.addr(5)),
            (6, Ipv4Addr::new(10, 96, 0, 1), Ipv4Addr::new(10, 96, 0, 6))
        );
        assert_eq!(p.full(), 0b11_1111);
        assert!(Pool::hosts("10.96.0.0/31".parse().unwrap()).is_err());
        assert!(Pool::hosts("10.96.0.0/24".parse().unwrap()).is_err());
    }

    #[test]
    fn unique_and_no_leak_say_what_is_wrong() {
        let p = Pool::hosts("10.96.0.0/29".parse().unwrap()).unwrap();
        assert_eq!(unique(&p, [("a", 0), ("b", 1)]), Ok(Checked::Something));
        assert_eq!(unique(&p, []), Ok(Checked::Nothing));
        let e = unique(&p, [("a", 2), ("b", 2)]).unwrap_err();
        assert_eq!(e, "10.96.0.3 is held by a and b");
        assert_eq!(
            no_leak(&p, 0b11, 0b01, 0b01, "1 run"),
            Ok(Checked::Something)
        );
        assert_eq!(no_leak(&p, 0b01, 0b01, 0b01, "1 run"), Ok(Checked::Nothing));
        let e = no_leak(&p, 0b11, 0b11, 0b01, "1 run").unwrap_err();
        assert!(e.starts_with("10.96.0.2 used by no Service"), "{e}");
    }
}
