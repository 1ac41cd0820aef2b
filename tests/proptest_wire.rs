//! Property tests of the frame codecs: emit then parse is the identity for
//! every header, the builders' frames parse back to what was asked, and
//! parsing never panics on any bytes.

use std::net::Ipv4Addr;

use netrace::wire::{
    build, ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame,
    EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr, UdpPacket, UdpRepr, VxlanPacket, VxlanRepr,
};
use proptest::prelude::*;

fn mac() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

fn ip() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7769_7265),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ethernet_round_trips(src in mac(), dst in mac(), ty in any::<u16>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        let repr = EthernetRepr { src_addr: src, dst_addr: dst, ethertype: EtherType::from(ty) };
        let mut bytes = vec![0u8; repr.buffer_len() + payload.len()];
        let mut frame = EthernetFrame::new_unchecked(&mut bytes[..]);
        repr.emit(&mut frame);
        frame.payload_mut().copy_from_slice(&payload);
        let frame = EthernetFrame::new_checked(&bytes[..]).unwrap();
        // 802.3 length values (< 0x0600) are refused by parse; the view
        // still reads them back.
        if ty >= 0x0600 {
            prop_assert_eq!(EthernetRepr::parse(&frame).unwrap(), repr);
        }
        prop_assert_eq!(frame.payload(), &payload[..]);
    }

    #[test]
    fn arp_round_trips(op in any::<u16>(), sha in mac(), spa in ip(), tha in mac(), tpa in ip()) {
        let repr = ArpRepr {
            operation: ArpOperation::from(op),
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: tha,
            target_protocol_addr: tpa,
        };
        let mut bytes = vec![0u8; repr.buffer_len()];
        repr.emit(&mut ArpPacket::new_unchecked(&mut bytes[..]));
        let parsed = ArpRepr::parse(&ArpPacket::new_checked(&bytes[..]).unwrap()).unwrap();
        prop_assert_eq!(parsed, repr);
    }

    #[test]
    fn ipv4_udp_round_trips(src in ip(), dst in ip(), ttl in 1u8.., tos in any::<u8>(), sport in any::<u16>(), dport in any::<u16>(),
                            payload in proptest::collection::vec(any::<u8>(), 0..128), checksum in any::<bool>(), ident in any::<u16>(), dont_frag in any::<bool>()) {
        let udp = UdpRepr { src_port: sport, dst_port: dport, payload_len: payload.len() };
        let ip = Ipv4Repr { src_addr: src, dst_addr: dst, protocol: IpProtocol::Udp, payload_len: udp.buffer_len(), ttl, tos, ident, dont_frag };
        let mut bytes = vec![0u8; ip.buffer_len()];
        let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
        ip.emit(&mut packet);
        let mut datagram = UdpPacket::new_unchecked(packet.payload_mut());
        // The header first (it sets the length the payload view uses), then
        // the payload, then the checksum over both.
        udp.emit(&mut datagram, src, dst, false);
        datagram.payload_mut().copy_from_slice(&payload);
        if checksum {
            datagram.fill_checksum(src, dst);
        }
        let packet = Ipv4Packet::new_checked(&bytes[..]).unwrap();
        prop_assert_eq!(Ipv4Repr::parse(&packet).unwrap(), ip);
        let datagram = UdpPacket::new_checked(packet.payload()).unwrap();
        prop_assert_eq!(UdpRepr::parse(&datagram, src, dst).unwrap(), udp);
        prop_assert_eq!(datagram.payload(), &payload[..]);
    }

    #[test]
    fn vxlan_encapsulation_round_trips(osrc in mac(), odst in mac(), src in ip(), dst in ip(), port in any::<u16>(),
                                       vni in 0u32..(1 << 24), inner in proptest::collection::vec(any::<u8>(), 14..96)) {
        let outer = build::vxlan_encap(osrc, odst, src, dst, port, vni, &inner);
        let (header, got) = build::vxlan_decap(&outer).unwrap();
        prop_assert_eq!(header, VxlanRepr { vni });
        prop_assert_eq!(got, &inner[..]);
        let mut again = vec![0u8; header.buffer_len()];
        header.emit(&mut VxlanPacket::new_unchecked(&mut again[..]));
        prop_assert_eq!(VxlanRepr::parse(&VxlanPacket::new_checked(&again[..]).unwrap()).unwrap(), header);
    }

    #[test]
    fn builders_say_what_they_were_asked(a in mac(), b in mac(), x in ip(), y in ip()) {
        let req = build::arp_request(a, x, y);
        let frame = EthernetFrame::new_checked(&req[..]).unwrap();
        prop_assert!(frame.dst_addr().is_broadcast());
        let arp = ArpRepr::parse(&ArpPacket::new_checked(frame.payload()).unwrap()).unwrap();
        prop_assert_eq!((arp.operation, arp.source_hardware_addr, arp.source_protocol_addr, arp.target_protocol_addr),
                        (ArpOperation::Request, a, x, y));
        let rep = build::arp_reply(b, y, a, x);
        let arp = ArpRepr::parse(&ArpPacket::new_checked(&rep[14..]).unwrap()).unwrap();
        prop_assert_eq!((arp.operation, arp.source_hardware_addr, arp.target_hardware_addr), (ArpOperation::Reply, b, a));
    }

    #[test]
    fn parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        netrace::wire::fuzz_frame_parse(&bytes);
        let _ = build::describe(&bytes);
        let _ = build::vxlan_decap(&bytes);
    }
}
