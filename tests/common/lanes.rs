//! The lanes two seed diagrams must have, exactly and in order
//! (tests/pictures.rs draws them with `replay --svg`, tests/browser.rs finds
//! them in the HTML report): the duplicate's four `[[actor]] run`s on
//! daemon0 then its handle (model/ipam/system/sketch.rs); and the last
//! word's containers, br0's ports (veths, then vxlan1's), vxlan1 and the
//! driver (classic Swarm has the miss path) per host, the second host
//! mirrored (model/overlay/system/sketch.rs).

/// `docker-17.05-duplicate-ip`, variant `libnetwork-17.05`, `ipam.unique`.
pub const DUPLICATE_IP: [&str; 5] = [
    "daemon0 run cranky_shockley0",
    "daemon0 run prickly_spence",
    "daemon0 run trusting_davinci",
    "daemon0 run small_davinci7",
    "daemon0 handle",
];

/// `classic-overlay-last-word`, variant `classic-17.03`, `l2.fdb_correct`.
pub const LAST_WORD: [&str; 12] = [
    "host1 A",
    "host1 B",
    "host1 br0 veth-A",
    "host1 br0 veth-B",
    "host1 br0 vxlan1",
    "host1 vxlan1",
    "host1 driver",
    "host2 driver",
    "host2 vxlan1",
    "host2 br0 vxlan1",
    "host2 br0 veth-C",
    "host2 C",
];
