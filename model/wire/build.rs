//! Whole frames for the L2 model, and a one-line description of any
//! frame in the spirit of `tcpdump -e`.
//!
//! The builders fill headers the way Linux fills them where that is
//! cheap to say and deterministic: ARP requests carry a zero target
//! hardware address and go to broadcast (`arp_create` with no target);
//! IPv4 uses TTL [`TTL`] (`net.ipv4.ip_default_ttl`), TOS 0 and no
//! options. Frames are not padded to 60 bytes (a veth never pads), so an
//! ARP frame is 42 bytes.
//!
//! What is simplified: Linux fills the IPv4 identification with a hashed
//! counter when DF is clear (VXLAN's outer header); here it is always 0,
//! so that frames depend only on the arguments. The outer UDP source port
//! of VXLAN, which Linux derives from a hash of the inner flow, is an
//! argument.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::{
    ArpOperation, ArpPacket, ArpRepr, Error, EtherType, EthernetAddress, EthernetFrame,
    EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, Result, UdpPacket, UdpRepr, VxlanPacket,
    VxlanRepr, ETHERNET_HEADER_LEN, IPV4_HEADER_LEN, UDP_HEADER_LEN, VXLAN_PORT,
};

/// The UDP port (source and destination) of [`unicast_ip`] datagrams:
/// 1021, the first port RFC 4727 sets aside for experiments, so that no
/// real service is implied. The payload means nothing to the model.
pub const PROBE_PORT: u16 = 1021;

/// The IPv4 time-to-live of every built packet: Linux's default.
pub const TTL: u8 = 64;

/// How many VXLAN headers deep [`describe`] follows inner frames.
const DESCRIBE_DEPTH_MAX: usize = 4;

/// An ARP request for `target_ip` from `src_mac`/`src_ip`, broadcast, with
/// a zero target hardware address: 42 bytes.
pub fn arp_request(src_mac: EthernetAddress, src_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    arp_frame(
        EthernetAddress::BROADCAST,
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: src_mac,
            source_protocol_addr: src_ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: target_ip,
        },
    )
}

/// An ARP reply "`src_ip` is-at `src_mac`" sent unicast to the requester
/// `dst_mac`/`dst_ip`: 42 bytes.
pub fn arp_reply(
    src_mac: EthernetAddress,
    src_ip: Ipv4Addr,
    dst_mac: EthernetAddress,
    dst_ip: Ipv4Addr,
) -> Vec<u8> {
    arp_frame(
        dst_mac,
        ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: src_mac,
            source_protocol_addr: src_ip,
            target_hardware_addr: dst_mac,
            target_protocol_addr: dst_ip,
        },
    )
}

/// A gratuitous ARP (an ARP announcement, RFC 5227): a broadcast request
/// whose sender and target protocol addresses are both `ip`, target
/// hardware address zero, as Linux's `inetdev_send_gratuitous_arp` sends
/// it (for `arp_notify`). 42 bytes.
pub fn gratuitous_arp(mac: EthernetAddress, ip: Ipv4Addr) -> Vec<u8> {
    arp_request(mac, ip, ip)
}

fn arp_frame(dst_addr: EthernetAddress, arp: ArpRepr) -> Vec<u8> {
    let ethernet = EthernetRepr {
        src_addr: arp.source_hardware_addr,
        dst_addr,
        ethertype: EtherType::Arp,
    };
    let mut bytes = vec![0u8; ethernet.buffer_len() + arp.buffer_len()];
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    ethernet.emit(&mut frame);
    arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    bytes
}

/// A unicast IPv4/UDP frame from `src_ip` to `dst_ip`, both ports
/// [`PROBE_PORT`], carrying `payload`: the model's stand-in for "some IP
/// traffic". DF is set with identification 0 and the UDP checksum is
/// computed, as Linux sends from an unconnected UDP socket.
///
/// Panics if `payload` exceeds 65,507 bytes (one IPv4 packet).
pub fn unicast_ip(
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    payload: &[u8],
) -> Vec<u8> {
    ipv4_udp_frame(
        [src_mac, dst_mac],
        [src_ip, dst_ip],
        [PROBE_PORT, PROBE_PORT],
        true,
        true,
        payload,
    )
}

/// Wraps the Ethernet frame `inner` in VXLAN (RFC 7348) with `vni`, in
/// UDP from `src_port` to [`VXLAN_PORT`], in IPv4 from `src_ip` to
/// `dst_ip`, in an outer Ethernet header. As Linux's VXLAN device sends
/// by default: UDP checksum 0 (`udpcsum` off), DF clear, TTL [`TTL`].
///
/// Panics if `vni` exceeds 24 bits or `inner` exceeds 65,499 bytes.
pub fn vxlan_encap(
    outer_src_mac: EthernetAddress,
    outer_dst_mac: EthernetAddress,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    src_port: u16,
    vni: u32,
    inner: &[u8],
) -> Vec<u8> {
    let vxlan = VxlanRepr { vni };
    let mut payload = vec![0u8; vxlan.buffer_len() + inner.len()];
    let mut packet = VxlanPacket::new_unchecked(&mut payload[..]);
    vxlan.emit(&mut packet);
    packet.payload_mut().copy_from_slice(inner);
    ipv4_udp_frame(
        [outer_src_mac, outer_dst_mac],
        [src_ip, dst_ip],
        [src_port, VXLAN_PORT],
        false,
        false,
        &payload,
    )
}

/// Ethernet, IPv4 (no options, identification 0), UDP, payload. Pairs
/// are `[source, destination]`.
fn ipv4_udp_frame(
    macs: [EthernetAddress; 2],
    ips: [Ipv4Addr; 2],
    ports: [u16; 2],
    dont_frag: bool,
    udp_checksum: bool,
    payload: &[u8],
) -> Vec<u8> {
    let ethernet = EthernetRepr {
        src_addr: macs[0],
        dst_addr: macs[1],
        ethertype: EtherType::Ipv4,
    };
    let udp = UdpRepr {
        src_port: ports[0],
        dst_port: ports[1],
        payload_len: payload.len(),
    };
    let ip = Ipv4Repr {
        src_addr: ips[0],
        dst_addr: ips[1],
        protocol: IpProtocol::Udp,
        payload_len: udp.buffer_len(),
        ttl: TTL,
        tos: 0,
        ident: 0,
        dont_frag,
    };
    let mut bytes = vec![0u8; ethernet.buffer_len() + ip.buffer_len()];
    // Payload first: the UDP checksum covers it.
    let payload_at = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + UDP_HEADER_LEN;
    bytes[payload_at..].copy_from_slice(payload);
    let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
    ethernet.emit(&mut frame);
    let mut packet = Ipv4Packet::new_unchecked(frame.payload_mut());
    ip.emit(&mut packet);
    let mut datagram = UdpPacket::new_unchecked(packet.payload_mut());
    udp.emit(&mut datagram, ip.src_addr, ip.dst_addr, udp_checksum);
    bytes
}

/// Unwraps a VXLAN frame as a receiving VTEP does: Ethernet, IPv4 (header
/// checksum verified), UDP to [`VXLAN_PORT`] (a non-zero checksum
/// verified), then the VXLAN header. Returns the header and the inner
/// Ethernet frame, borrowed from `bytes`.
///
/// Errors: [`Error::Unrecognized`] if the frame is not IPv4, not UDP or
/// not to port 4789; otherwise whatever the layer that failed says.
/// Addresses are not checked: whether this VTEP should accept the frame
/// is the caller's question.
pub fn vxlan_decap(bytes: &[u8]) -> Result<(VxlanRepr, &[u8])> {
    let frame = EthernetFrame::new_checked(bytes)?;
    if EthernetRepr::parse(&frame)?.ethertype != EtherType::Ipv4 {
        return Err(Error::Unrecognized);
    }
    let packet = Ipv4Packet::new_checked(frame.payload())?;
    let ip = Ipv4Repr::parse(&packet)?;
    if ip.protocol != IpProtocol::Udp {
        return Err(Error::Unrecognized);
    }
    let datagram = UdpPacket::new_checked(packet.payload())?;
    if UdpRepr::parse(&datagram, ip.src_addr, ip.dst_addr)?.dst_port != VXLAN_PORT {
        return Err(Error::Unrecognized);
    }
    let header = VxlanPacket::new_checked(datagram.payload())?;
    let vxlan = VxlanRepr::parse(&header)?;
    Ok((vxlan, header.payload()))
}

/// One line describing `frame`, in the spirit of `tcpdump -e`:
///
/// ```text
/// 02:42:0a:00:00:02 > ff:ff:ff:ff:ff:ff, ARP, Request who-has 10.0.0.3 tell 10.0.0.2
/// 02:42:0a:00:00:03 > 02:42:0a:00:00:02, ARP, Reply 10.0.0.3 is-at 02:42:0a:00:00:03
/// 02:42:0a:00:00:02 > 02:42:0a:00:00:03, IPv4, 10.0.0.2 > 10.0.0.3, UDP 1021 > 1021, length 5
/// ```
///
/// A VXLAN frame shows the outer headers, `VXLAN vni N:` and then the
/// inner frame the same way (to a depth of four). Never panics: bytes
/// too short for an Ethernet header give `malformed frame (N bytes)`, and
/// a deeper layer that fails to parse is named with the reason.
pub fn describe(frame: &[u8]) -> String {
    let mut out = String::new();
    describe_ethernet(&mut out, frame, 0);
    out
}

fn describe_ethernet(out: &mut String, bytes: &[u8], depth: usize) {
    let Ok(frame) = EthernetFrame::new_checked(bytes) else {
        let _ = write!(out, "malformed frame ({} bytes)", bytes.len());
        return;
    };
    let _ = write!(out, "{} > {}, ", frame.src_addr(), frame.dst_addr());
    let payload = frame.payload();
    match frame.ethertype() {
        EtherType::Arp => describe_arp(out, payload),
        EtherType::Ipv4 => describe_ipv4(out, payload, depth),
        length if length.is_length() => {
            let _ = write!(out, "802.3, length {}", u16::from(length));
        }
        other => {
            let _ = write!(out, "{other}, length {}", payload.len());
        }
    }
}

fn describe_arp(out: &mut String, bytes: &[u8]) {
    out.push_str("ARP, ");
    let packet = match ArpPacket::new_checked(bytes) {
        Ok(packet) => packet,
        Err(error) => {
            let _ = write!(out, "{error} ({} bytes)", bytes.len());
            return;
        }
    };
    let arp = match ArpRepr::parse(&packet) {
        Ok(arp) => arp,
        Err(error) => {
            let _ = write!(
                out,
                "{error}: hardware {} protocol 0x{:04x}",
                u16::from(packet.hardware_type()),
                u16::from(packet.protocol_type())
            );
            return;
        }
    };
    let (spa, tpa) = (arp.source_protocol_addr, arp.target_protocol_addr);
    match arp.operation {
        ArpOperation::Request => {
            let _ = write!(out, "Request who-has {tpa}");
            if arp.target_hardware_addr != EthernetAddress([0; 6]) {
                let _ = write!(out, " ({})", arp.target_hardware_addr);
            }
            let _ = write!(out, " tell {spa}");
            if spa == tpa {
                out.push_str(" (gratuitous)");
            }
        }
        ArpOperation::Reply => {
            let _ = write!(out, "Reply {spa} is-at {}", arp.source_hardware_addr);
        }
        op @ ArpOperation::Unknown(_) => {
            let _ = write!(
                out,
                "{op}, sender {spa} ({}), target {tpa} ({})",
                arp.source_hardware_addr, arp.target_hardware_addr
            );
        }
    }
}

fn describe_ipv4(out: &mut String, bytes: &[u8], depth: usize) {
    out.push_str("IPv4, ");
    let packet = match Ipv4Packet::new_checked(bytes) {
        Ok(packet) => packet,
        Err(error) => {
            let _ = write!(out, "{error} ({} bytes)", bytes.len());
            return;
        }
    };
    let _ = write!(out, "{} > {}, ", packet.src_addr(), packet.dst_addr());
    let ip = match Ipv4Repr::parse(&packet) {
        Ok(ip) => ip,
        Err(error) => {
            out.push_str(&error.to_string());
            return;
        }
    };
    if ip.protocol != IpProtocol::Udp {
        let _ = write!(out, "{}, length {}", ip.protocol, ip.payload_len);
        return;
    }
    out.push_str("UDP");
    let datagram = match UdpPacket::new_checked(packet.payload()) {
        Ok(datagram) => datagram,
        Err(error) => {
            let _ = write!(out, ", {error} ({} bytes)", ip.payload_len);
            return;
        }
    };
    let _ = write!(out, " {} > {}, ", datagram.src_port(), datagram.dst_port());
    let udp = match UdpRepr::parse(&datagram, ip.src_addr, ip.dst_addr) {
        Ok(udp) => udp,
        Err(error) => {
            out.push_str(&error.to_string());
            return;
        }
    };
    if udp.dst_port != VXLAN_PORT {
        let _ = write!(out, "length {}", udp.payload_len);
        return;
    }
    out.push_str("VXLAN");
    let header = match VxlanPacket::new_checked(datagram.payload()) {
        Ok(header) => header,
        Err(error) => {
            let _ = write!(out, ", {error} ({} bytes)", udp.payload_len);
            return;
        }
    };
    let vxlan = match VxlanRepr::parse(&header) {
        Ok(vxlan) => vxlan,
        Err(error) => {
            let _ = write!(
                out,
                ", {error}: flags 0x{:02x} vni {}",
                header.flags(),
                header.vni()
            );
            return;
        }
    };
    let _ = write!(out, " vni {}: ", vxlan.vni);
    if depth + 1 >= DESCRIBE_DEPTH_MAX {
        let _ = write!(
            out,
            "inner frame of {} bytes (nested deeper than {DESCRIBE_DEPTH_MAX})",
            header.payload().len()
        );
        return;
    }
    describe_ethernet(out, header.payload(), depth + 1);
}

#[cfg(test)]
mod test {
    use super::*;

    const MAC_A: EthernetAddress = EthernetAddress([0x02, 0x42, 0x0a, 0x00, 0x00, 0x02]);
    const MAC_B: EthernetAddress = EthernetAddress([0x02, 0x42, 0x0a, 0x00, 0x00, 0x03]);
    const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
    const VTEP_MAC_1: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x00, 0x00, 0x01]);
    const VTEP_MAC_2: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x00, 0x00, 0x02]);
    const VTEP_1: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 1);
    const VTEP_2: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);

    /// The whole broadcast frame for "who-has 10.0.0.3 tell 10.0.0.2" from
    /// 02:42:0a:00:00:02, written out by hand.
    static ARP_REQUEST: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // Ethernet destination: broadcast
        0x02, 0x42, 0x0a, 0x00, 0x00, 0x02, // Ethernet source
        0x08, 0x06, // EtherType ARP
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet, IPv4, 6, 4, request
        0x02, 0x42, 0x0a, 0x00, 0x00, 0x02, 0x0a, 0x00, 0x00, 0x02, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x03, // target
    ];

    #[test]
    fn arp_request_bytes() {
        let frame = arp_request(MAC_A, IP_A, IP_B);
        assert_eq!(frame.len(), 42);
        assert_eq!(frame, ARP_REQUEST);
        assert_eq!(
            describe(&frame),
            "02:42:0a:00:00:02 > ff:ff:ff:ff:ff:ff, ARP, Request who-has 10.0.0.3 tell 10.0.0.2"
        );
    }

    #[test]
    fn arp_reply_and_gratuitous() {
        let reply = arp_reply(MAC_B, IP_B, MAC_A, IP_A);
        assert_eq!(reply.len(), 42);
        let frame = EthernetFrame::new_checked(&reply[..]).unwrap();
        assert_eq!(frame.dst_addr(), MAC_A);
        let arp = ArpRepr::parse(&ArpPacket::new_checked(frame.payload()).unwrap()).unwrap();
        assert_eq!(arp.operation, ArpOperation::Reply);
        assert_eq!(arp.target_hardware_addr, MAC_A);
        assert_eq!(
            describe(&reply),
            "02:42:0a:00:00:03 > 02:42:0a:00:00:02, ARP, Reply 10.0.0.3 is-at 02:42:0a:00:00:03"
        );
        let garp = gratuitous_arp(MAC_A, IP_A);
        assert_eq!(
            describe(&garp),
            "02:42:0a:00:00:02 > ff:ff:ff:ff:ff:ff, ARP, \
             Request who-has 10.0.0.2 tell 10.0.0.2 (gratuitous)"
        );
    }

    #[test]
    fn unicast_ip_frame() {
        let frame = unicast_ip(MAC_A, MAC_B, IP_A, IP_B, b"hello");
        assert_eq!(frame.len(), 14 + 20 + 8 + 5);
        // The IPv4 and UDP parts are exactly the hand-checked arrays of
        // ipv4.rs and udp.rs.
        assert_eq!(
            &frame[14..26],
            &[0x45, 0, 0, 0x21, 0, 0, 0x40, 0, 0x40, 0x11, 0x26, 0xc8]
        );
        assert_eq!(
            &frame[34..42],
            &[0x03, 0xfd, 0x03, 0xfd, 0x00, 0x0d, 0xa0, 0x03]
        );
        assert_eq!(
            describe(&frame),
            "02:42:0a:00:00:02 > 02:42:0a:00:00:03, IPv4, 10.0.0.2 > 10.0.0.3, \
             UDP 1021 > 1021, length 5"
        );
    }

    #[test]
    fn vxlan_encap_and_decap() {
        let inner = unicast_ip(MAC_A, MAC_B, IP_A, IP_B, b"hello");
        let outer = vxlan_encap(VTEP_MAC_1, VTEP_MAC_2, VTEP_1, VTEP_2, 49152, 256, &inner);
        assert_eq!(outer.len(), 50 + inner.len());
        // Outer UDP: 49152 > 4789, length 8 + 8 + 47, checksum 0.
        assert_eq!(
            &outer[34..42],
            &[0xc0, 0x00, 0x12, 0xb5, 0x00, 0x3f, 0x00, 0x00]
        );
        // VXLAN: I flag, VNI 256.
        assert_eq!(&outer[42..50], &[0x08, 0, 0, 0, 0x00, 0x01, 0x00, 0]);
        // Outer IPv4: DF clear.
        assert_eq!(outer[20], 0x00);
        let (vxlan, decapped) = vxlan_decap(&outer).unwrap();
        assert_eq!(vxlan, VxlanRepr { vni: 256 });
        assert_eq!(decapped, &inner[..]);
        assert_eq!(
            describe(&outer),
            "52:54:00:00:00:01 > 52:54:00:00:00:02, IPv4, 192.168.1.1 > 192.168.1.2, \
             UDP 49152 > 4789, VXLAN vni 256: \
             02:42:0a:00:00:02 > 02:42:0a:00:00:03, IPv4, 10.0.0.2 > 10.0.0.3, \
             UDP 1021 > 1021, length 5"
        );
    }

    #[test]
    fn vxlan_decap_refusals() {
        let inner = arp_request(MAC_A, IP_A, IP_B);
        assert_eq!(vxlan_decap(&inner), Err(Error::Unrecognized));
        let probe = unicast_ip(VTEP_MAC_1, VTEP_MAC_2, VTEP_1, VTEP_2, &inner);
        assert_eq!(vxlan_decap(&probe), Err(Error::Unrecognized));
        let outer = vxlan_encap(VTEP_MAC_1, VTEP_MAC_2, VTEP_1, VTEP_2, 49152, 7, &inner);
        for end in 0..outer.len() {
            assert!(vxlan_decap(&outer[..end]).is_err(), "prefix of {end} bytes");
        }
        let mut bad = outer.clone();
        bad[42] = 0x0c; // a reserved flag bit
        assert_eq!(vxlan_decap(&bad), Err(Error::Malformed));
        assert!(describe(&bad).ends_with("VXLAN, malformed: flags 0x0c vni 7"));
        let mut bad = outer;
        bad[25] ^= 0xff; // IPv4 header checksum
        assert_eq!(vxlan_decap(&bad), Err(Error::Checksum));
        assert!(describe(&bad).ends_with("192.168.1.1 > 192.168.1.2, bad checksum"));
    }

    #[test]
    fn describe_never_panics_on_prefixes() {
        let inner = unicast_ip(MAC_A, MAC_B, IP_A, IP_B, b"hello");
        let outer = vxlan_encap(VTEP_MAC_1, VTEP_MAC_2, VTEP_1, VTEP_2, 49152, 256, &inner);
        for frame in [ARP_REQUEST.to_vec(), inner, outer] {
            for end in 0..=frame.len() {
                assert!(!describe(&frame[..end]).is_empty());
            }
        }
        assert_eq!(describe(&[]), "malformed frame (0 bytes)");
        assert_eq!(describe(&ARP_REQUEST[..13]), "malformed frame (13 bytes)");
        assert_eq!(
            describe(&ARP_REQUEST[..20]),
            "02:42:0a:00:00:02 > ff:ff:ff:ff:ff:ff, ARP, truncated (6 bytes)"
        );
    }

    #[test]
    fn describe_other_ethertypes() {
        let mut frame = ARP_REQUEST;
        frame[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert!(describe(&frame).ends_with(", IPv6, length 28"));
        frame[12..14].copy_from_slice(&[0x88, 0xcc]);
        assert!(describe(&frame).ends_with(", ethertype 0x88cc, length 28"));
        frame[12..14].copy_from_slice(&[0x00, 0x1c]);
        assert!(describe(&frame).ends_with(", 802.3, length 28"));
    }

    #[test]
    fn describe_stops_at_depth() {
        let mut frame = unicast_ip(MAC_A, MAC_B, IP_A, IP_B, b"x");
        for vni in 1..=6 {
            frame = vxlan_encap(VTEP_MAC_1, VTEP_MAC_2, VTEP_1, VTEP_2, 49152, vni, &frame);
        }
        let line = describe(&frame);
        assert_eq!(line.matches("VXLAN vni").count(), DESCRIBE_DEPTH_MAX);
        assert!(line.ends_with("(nested deeper than 4)"), "{line}");
    }
}
