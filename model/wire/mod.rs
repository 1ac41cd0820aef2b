//! Real frame bytes for the protocols a container network puts on a
//! Linux bridge or a VXLAN underlay: Ethernet II, ARP, IPv4, UDP and
//! VXLAN.
//!
//! Every header follows one pattern (borrowed from smoltcp, written from
//! the RFCs): a *view* over bytes ([`EthernetFrame`], [`ArpPacket`],
//! [`Ipv4Packet`], [`UdpPacket`], [`VxlanPacket`]) whose `new_checked`
//! validates lengths once, so that no getter can panic afterwards, and a
//! *representation* ([`EthernetRepr`], [`ArpRepr`], ...) holding the typed,
//! parsed form with `parse`, `buffer_len` and `emit`. Setters need
//! `AsMut<[u8]>` and live in a separate impl. Protocol numbers are enums
//! with an `Unknown(..)` case so that odd bytes survive a round trip.
//! [`build`] has the frame builders the L2 model uses and a one-line,
//! `tcpdump -e`-style [`build::describe`]; [`pcap`] writes and reads
//! pcapng capture files (one interface per capture point) that
//! Wireshark, tshark and tcpdump open.
//!
//! What is modelled, and from which text:
//! - Ethernet II (DIX) headers: destination, source, EtherType. Frames are
//!   as a capture on a veth or bridge port shows them: no preamble, no FCS
//!   and no padding to the 60-byte minimum (Linux does not pad frames
//!   that never reach a physical NIC); trailing padding is accepted on
//!   input.
//! - ARP, RFC 826, for Ethernet hardware and IPv4 only (the view reads any
//!   hardware/protocol lengths; [`ArpRepr::parse`] refuses other pairs).
//! - IPv4, RFC 791, with the header checksum of RFC 1071 computed on emit
//!   and verified on parse. Options and fragments are *not* modelled:
//!   parse refuses them with [`Error::Unsupported`].
//! - UDP, RFC 768, over IPv4 only, including the pseudo-header checksum; a
//!   zero checksum means "none", as RFC 768 allows for IPv4.
//! - VXLAN, RFC 7348: the 8-byte header with the I flag and a 24-bit VNI,
//!   carried in UDP to [`VXLAN_PORT`] (4789). On receive the reserved bits
//!   are checked the way Linux's `vxlan_rcv` checks them (non-zero means
//!   drop), which is stricter than the RFC's "ignore".
//!
//! Not modelled: 802.3/LLC length frames, 802.1Q tags, IPv6, ICMP, TCP,
//! IPv4 options and reassembly, VXLAN extensions (GBP, GPE), and anything
//! about timing: frames are bytes, time is the caller's business.

mod arp;
pub mod build;
mod ethernet;
mod ipv4;
pub mod pcap;
mod udp;
mod vxlan;

pub use self::arp::{
    Hardware as ArpHardware, Operation as ArpOperation, Packet as ArpPacket, Repr as ArpRepr,
    ETHERNET_IPV4_LEN as ARP_ETHERNET_IPV4_LEN,
};
pub use self::ethernet::{
    Address as EthernetAddress, EtherType, Frame as EthernetFrame, Repr as EthernetRepr,
    HEADER_LEN as ETHERNET_HEADER_LEN,
};
pub use self::ipv4::{
    Packet as Ipv4Packet, Protocol as IpProtocol, Repr as Ipv4Repr, HEADER_LEN as IPV4_HEADER_LEN,
};
pub use self::udp::{Packet as UdpPacket, Repr as UdpRepr, HEADER_LEN as UDP_HEADER_LEN};
pub use self::vxlan::{
    Packet as VxlanPacket, Repr as VxlanRepr, FLAG_I as VXLAN_FLAG_I,
    HEADER_LEN as VXLAN_HEADER_LEN, PORT as VXLAN_PORT, VNI_MAX as VXLAN_VNI_MAX,
};

use std::fmt;
use std::net::Ipv4Addr;

/// Why bytes could not be read as the header asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// Fewer bytes than the fixed header or a length field requires.
    Truncated,
    /// A field holds a value its RFC forbids: IPv4 version other than 4 or
    /// a header length under 20, a UDP length under 8, a VXLAN header
    /// without the I flag or with reserved bits set.
    Malformed,
    /// A checksum (IPv4 header, UDP) does not verify.
    Checksum,
    /// The bytes carry some other protocol than the one asked for: an
    /// EtherType other than IPv4 where IPv4 was expected, a UDP port other
    /// than 4789 where VXLAN was expected, and so on.
    Unrecognized,
    /// Valid on the wire but outside this model: ARP for anything but
    /// Ethernet/IPv4, IPv4 options or fragments, 802.3 length frames.
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated",
            Error::Malformed => "malformed",
            Error::Checksum => "bad checksum",
            Error::Unrecognized => "unrecognized protocol",
            Error::Unsupported => "unsupported",
        })
    }
}

impl std::error::Error for Error {}

/// The result of reading a header.
pub type Result<T> = core::result::Result<T, Error>;

/// Feeds arbitrary bytes to every parser as a receiver would: Ethernet
/// first, then ARP or IPv4 as the EtherType says, UDP as the IPv4 protocol
/// says, VXLAN (and the inner frame, to a bounded depth) as the UDP port
/// says, and finally [`build::describe`]. Each parser also sees the raw
/// bytes directly.
///
/// Panics only if a parser breaks its own contract: a getter panicking
/// after `new_checked` succeeded, or a `Repr` that does not survive
/// `emit` followed by `parse` unchanged. That is what a fuzz target wants
/// to find; on any input from a correct implementation it returns quietly.
pub fn fuzz_frame_parse(data: &[u8]) {
    fuzz_ethernet(data, 0);
    // Each parser on the raw bytes too, so that a fuzzer need not first
    // find a valid Ethernet header to reach them.
    fuzz_arp(data);
    let _ = fuzz_ipv4(data);
    let any = Ipv4Addr::new(192, 0, 2, 1);
    fuzz_udp(data, any, any);
    fuzz_vxlan(data);
    let _ = build::describe(data);
}

/// How deep [`fuzz_frame_parse`] follows VXLAN inside VXLAN.
const FUZZ_DEPTH_MAX: usize = 4;

fn fuzz_ethernet(data: &[u8], depth: usize) {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    let _ = (frame.dst_addr(), frame.src_addr(), frame.ethertype());
    let payload = frame.payload();
    if let Ok(repr) = EthernetRepr::parse(&frame) {
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut bytes[..]));
        let again = EthernetRepr::parse(&EthernetFrame::new_unchecked(&bytes[..]));
        assert_eq!(again, Ok(repr), "Ethernet emit/parse round trip");
    }
    match frame.ethertype() {
        EtherType::Arp => fuzz_arp(payload),
        EtherType::Ipv4 => {
            let Ok(ip) = fuzz_ipv4(payload) else {
                return;
            };
            if ip.protocol != IpProtocol::Udp {
                return;
            }
            let packet = Ipv4Packet::new_unchecked(payload);
            let Some(udp) = fuzz_udp(packet.payload(), ip.src_addr, ip.dst_addr) else {
                return;
            };
            if udp.dst_port != VXLAN_PORT {
                return;
            }
            let udp_packet = UdpPacket::new_unchecked(packet.payload());
            if let Some(inner) = fuzz_vxlan(udp_packet.payload()) {
                if depth < FUZZ_DEPTH_MAX {
                    fuzz_ethernet(inner, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn fuzz_arp(data: &[u8]) {
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    let _ = (
        packet.hardware_type(),
        packet.protocol_type(),
        packet.hardware_len(),
        packet.protocol_len(),
        packet.operation(),
        packet.source_hardware_addr(),
        packet.source_protocol_addr(),
        packet.target_hardware_addr(),
        packet.target_protocol_addr(),
    );
    if let Ok(repr) = ArpRepr::parse(&packet) {
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut bytes[..]));
        let again = ArpRepr::parse(&ArpPacket::new_unchecked(&bytes[..]));
        assert_eq!(again, Ok(repr), "ARP emit/parse round trip");
    }
}

fn fuzz_ipv4(data: &[u8]) -> Result<Ipv4Repr> {
    let packet = Ipv4Packet::new_checked(data)?;
    let _ = (
        packet.version(),
        packet.header_len(),
        packet.tos(),
        packet.total_len(),
        packet.ident(),
        packet.dont_frag(),
        packet.more_frags(),
        packet.frag_offset(),
        packet.ttl(),
        packet.protocol(),
        packet.checksum(),
        packet.src_addr(),
        packet.dst_addr(),
        packet.verify_checksum(),
        packet.payload(),
    );
    let repr = Ipv4Repr::parse(&packet)?;
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut bytes[..]));
    let again = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&bytes[..]));
    assert_eq!(again, Ok(repr), "IPv4 emit/parse round trip");
    Ok(repr)
}

fn fuzz_udp(data: &[u8], src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> Option<UdpRepr> {
    let packet = UdpPacket::new_checked(data).ok()?;
    let _ = (
        packet.src_port(),
        packet.dst_port(),
        packet.length(),
        packet.checksum(),
        packet.verify_checksum(src_addr, dst_addr),
        packet.payload(),
    );
    let repr = UdpRepr::parse(&packet, src_addr, dst_addr).ok()?;
    for checksum in [false, true] {
        let mut bytes = vec![0u8; repr.buffer_len()];
        bytes[UDP_HEADER_LEN..].copy_from_slice(packet.payload());
        repr.emit(
            &mut UdpPacket::new_unchecked(&mut bytes[..]),
            src_addr,
            dst_addr,
            checksum,
        );
        let again = UdpRepr::parse(&UdpPacket::new_unchecked(&bytes[..]), src_addr, dst_addr);
        assert_eq!(again, Ok(repr), "UDP emit/parse round trip");
    }
    Some(repr)
}

fn fuzz_vxlan(data: &[u8]) -> Option<&[u8]> {
    let packet = VxlanPacket::new_checked(data).ok()?;
    let _ = (
        packet.flags(),
        packet.vni_valid(),
        packet.reserved_1(),
        packet.vni(),
        packet.reserved_2(),
    );
    let repr = VxlanRepr::parse(&packet).ok()?;
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut VxlanPacket::new_unchecked(&mut bytes[..]));
    let again = VxlanRepr::parse(&VxlanPacket::new_unchecked(&bytes[..]));
    assert_eq!(again, Ok(repr), "VXLAN emit/parse round trip");
    Some(packet.payload())
}

/// The Internet checksum of RFC 1071: the one's complement of the one's
/// complement sum of 16-bit big-endian words.
mod checksum {
    use std::net::Ipv4Addr;

    /// The folded one's complement sum of `data` (not yet complemented);
    /// an odd last byte is padded with a zero byte, as RFC 1071 says.
    pub(crate) fn sum(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        let mut words = data.chunks_exact(2);
        for word in &mut words {
            acc += u32::from(u16::from_be_bytes([word[0], word[1]]));
        }
        if let [last] = words.remainder() {
            acc += u32::from(u16::from_be_bytes([*last, 0]));
        }
        // 65,535 bytes give at most 32,768 words of 0xffff: under 2^31,
        // so the u32 cannot overflow before folding.
        fold(acc)
    }

    /// One's complement sum of already folded partial sums.
    pub(crate) fn combine(sums: &[u16]) -> u16 {
        fold(sums.iter().map(|&s| u32::from(s)).sum())
    }

    /// The sum of the IPv4 pseudo-header of RFC 768 (and RFC 793):
    /// source, destination, zero, protocol, length.
    pub(crate) fn pseudo_header(
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        protocol: u8,
        length: u16,
    ) -> u16 {
        let mut bytes = [0u8; 12];
        bytes[0..4].copy_from_slice(&src_addr.octets());
        bytes[4..8].copy_from_slice(&dst_addr.octets());
        bytes[9] = protocol;
        bytes[10..12].copy_from_slice(&length.to_be_bytes());
        sum(&bytes)
    }

    fn fold(mut acc: u32) -> u16 {
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[cfg(test)]
    mod test {
        use super::*;

        #[test]
        fn rfc1071_example() {
            // The worked example of RFC 1071 section 3: the sum of
            // 0001 f203 f4f5 f6f7 is ddf2.
            assert_eq!(
                sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
                0xddf2
            );
        }

        #[test]
        fn odd_length_pads_with_zero() {
            assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// xorshift64 (Marsaglia 2003): enough to spray bytes, and the same on
    /// every platform and Rust version.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn seeds() -> Vec<Vec<u8>> {
        let a = EthernetAddress([0x02, 0x42, 0x0a, 0, 0, 2]);
        let b = EthernetAddress([0x02, 0x42, 0x0a, 0, 0, 3]);
        let ip_a = Ipv4Addr::new(10, 0, 0, 2);
        let ip_b = Ipv4Addr::new(10, 0, 0, 3);
        let inner = build::unicast_ip(a, b, ip_a, ip_b, b"hello");
        vec![
            build::arp_request(a, ip_a, ip_b),
            build::arp_reply(b, ip_b, a, ip_a),
            build::gratuitous_arp(a, ip_a),
            inner.clone(),
            build::vxlan_encap(
                EthernetAddress([0x02, 0, 0, 0, 0, 1]),
                EthernetAddress([0x02, 0, 0, 0, 0, 2]),
                Ipv4Addr::new(192, 168, 1, 1),
                Ipv4Addr::new(192, 168, 1, 2),
                49152,
                256,
                &inner,
            ),
        ]
    }

    #[test]
    fn fuzz_random_buffers_never_panic() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for _ in 0..4000 {
            let len = rng.below(160);
            let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            fuzz_frame_parse(&data);
        }
    }

    #[test]
    fn fuzz_mutated_frames_never_panic() {
        // Random bytes rarely get past the IPv4 checksum; mutating valid
        // frames reaches the deeper parsers.
        let seeds = seeds();
        let mut rng = XorShift(0x0123_4567_89ab_cdef);
        for _ in 0..4000 {
            let mut data = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(3) {
                match rng.below(3) {
                    0 => {
                        let i = rng.below(data.len());
                        data[i] = rng.next() as u8;
                    }
                    1 => {
                        let i = rng.below(data.len());
                        data[i] ^= 1 << rng.below(8);
                    }
                    _ => data.truncate(rng.below(data.len() + 1)),
                }
                if data.is_empty() {
                    break;
                }
            }
            fuzz_frame_parse(&data);
        }
    }

    #[test]
    fn fuzz_valid_frames_and_every_prefix() {
        for frame in seeds() {
            for end in 0..=frame.len() {
                fuzz_frame_parse(&frame[..end]);
            }
        }
    }

    #[test]
    fn error_display() {
        assert_eq!(Error::Truncated.to_string(), "truncated");
        assert_eq!(Error::Checksum.to_string(), "bad checksum");
    }
}
