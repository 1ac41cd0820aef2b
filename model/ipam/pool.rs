//! An IPv4 address pool as libnetwork's default IPAM driver sees it: a
//! subnet whose host part is the bitmap ordinal, with the network and
//! broadcast ordinals reserved when the pool's bitmap is created
//! (`ipam/allocator.go`, `insertBitMask`), and an optional sub-range
//! (`--ip-range`, served by `SetAnyInRange`).
//!
//! Not modelled: IPv6 pools, address spaces other than the default ones,
//! pool allocation from the predefined list.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// A pool and the ordinals its bitmap reserves.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pool {
    /// The subnet.
    pub net: Ipv4Net,
    /// The gateway address (requested at network creation).
    pub gateway: Ipv4Addr,
    /// `--ip-range`: allocations without a preferred address come from it.
    pub range: Option<Ipv4Net>,
    /// The pool ID as libnetwork logs it (`LocalDefault/172.17.0.0/16`).
    pub id: String,
}

impl Pool {
    /// Builds a pool; `global` selects the global address space name.
    pub fn new(
        net: Ipv4Net,
        gateway: Ipv4Addr,
        range: Option<Ipv4Net>,
        global: bool,
    ) -> Result<Pool, String> {
        let net = net.trunc();
        if net.prefix_len() > 30 {
            return Err(format!(
                "pool {net} has no room for containers: a /{} leaves no host addresses after network, broadcast and gateway",
                net.prefix_len()
            ));
        }
        if !net.contains(&gateway) || gateway == net.network() || gateway == net.broadcast() {
            return Err(format!(
                "gateway {gateway} is not a host address of pool {net}"
            ));
        }
        if let Some(r) = range {
            if !net.contains(&r.network()) || !net.contains(&r.broadcast()) {
                return Err(format!("ip_range {r} is not inside pool {net}"));
            }
        }
        let space = if global {
            "GlobalDefault"
        } else {
            "LocalDefault"
        };
        let id = match range {
            Some(r) => format!("{space}/{net}/{}", r.trunc()),
            None => format!("{space}/{net}"),
        };
        Ok(Pool {
            net,
            gateway,
            range: range.map(|r| r.trunc()),
            id,
        })
    }

    /// The bitmap size: one ordinal per address of the subnet.
    pub fn bits(&self) -> u64 {
        1u64 << (32 - self.net.prefix_len())
    }

    /// The address of an ordinal.
    pub fn address(&self, ordinal: u64) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.net.network()).wrapping_add(ordinal as u32))
    }

    /// The ordinal of an address of the pool.
    pub fn ordinal(&self, addr: Ipv4Addr) -> Option<u64> {
        self.net
            .contains(&addr)
            .then(|| u64::from(u32::from(addr) - u32::from(self.net.network())))
    }

    /// The gateway's ordinal.
    pub fn gateway_ordinal(&self) -> u64 {
        self.ordinal(self.gateway)
            .expect("gateway checked in Pool::new")
    }

    /// The ordinals reserved by the pool itself: network, broadcast, gateway.
    pub fn reserved(&self) -> [u64; 3] {
        [0, self.bits() - 1, self.gateway_ordinal()]
    }

    /// The `[start, end]` ordinals a dynamic allocation searches: the whole
    /// pool (`SetAny`) or the ip range (`SetAnyInRange`).
    pub fn search_range(&self) -> Option<(u64, u64)> {
        self.range.map(|r| {
            let start = self
                .ordinal(r.network())
                .expect("range checked in Pool::new");
            let end = self
                .ordinal(r.broadcast())
                .expect("range checked in Pool::new");
            (start, end)
        })
    }

    /// How many addresses dynamic allocation can hand out at most.
    pub fn capacity(&self) -> u64 {
        let reserved = self.reserved();
        match self.search_range() {
            None => self.bits() - 3,
            Some((start, end)) => {
                let inside = reserved.iter().filter(|&&o| o >= start && o <= end).count() as u64;
                end - start + 1 - inside
            }
        }
    }

    /// `address/prefix`, as `RequestAddress` returns it.
    pub fn with_prefix(&self, ordinal: u64) -> String {
        format!("{}/{}", self.address(ordinal), self.net.prefix_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(cidr: &str) -> Pool {
        let net: Ipv4Net = cidr.parse().unwrap();
        Pool::new(
            net,
            Ipv4Addr::from(u32::from(net.network()) + 1),
            None,
            false,
        )
        .unwrap()
    }

    #[test]
    fn ordinals_are_host_parts() {
        let p = pool("172.17.0.0/16");
        assert_eq!(p.bits(), 65536);
        assert_eq!(p.ordinal("172.17.0.16".parse().unwrap()), Some(16));
        assert_eq!(p.address(16), "172.17.0.16".parse::<Ipv4Addr>().unwrap());
        assert_eq!(p.ordinal("10.0.0.1".parse().unwrap()), None);
        assert_eq!(p.reserved(), [0, 65535, 1]);
        assert_eq!(p.id, "LocalDefault/172.17.0.0/16");
        assert_eq!(p.capacity(), 65533);
    }

    #[test]
    fn bad_pools_are_refused() {
        let net: Ipv4Net = "10.0.0.0/31".parse().unwrap();
        assert!(Pool::new(net, "10.0.0.1".parse().unwrap(), None, false).is_err());
        let net: Ipv4Net = "10.0.0.0/24".parse().unwrap();
        assert!(Pool::new(net, "10.0.1.1".parse().unwrap(), None, false).is_err());
        assert!(Pool::new(net, "10.0.0.0".parse().unwrap(), None, false).is_err());
        let r: Ipv4Net = "10.0.1.0/25".parse().unwrap();
        assert!(Pool::new(net, "10.0.0.1".parse().unwrap(), Some(r), false).is_err());
    }

    #[test]
    fn range_capacity_skips_reserved() {
        let net: Ipv4Net = "10.0.0.0/24".parse().unwrap();
        let r: Ipv4Net = "10.0.0.128/25".parse().unwrap();
        let p = Pool::new(net, "10.0.0.1".parse().unwrap(), Some(r), true).unwrap();
        assert_eq!(p.search_range(), Some((128, 255)));
        assert_eq!(p.capacity(), 127); // broadcast .255 is inside the range
        assert_eq!(p.id, "GlobalDefault/10.0.0.0/24/10.0.0.128/25");
    }
}
