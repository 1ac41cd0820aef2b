//! Capture files of model frames, for Wireshark, tshark and tcpdump.
//!
//! [`write_pcapng`] writes pcapng (the format Wireshark writes by
//! default; libpcap reads it since 1.1): one section, one interface per
//! capture point in the order each first appears, and one enhanced packet
//! per frame. The capture points are where the model delivers a frame
//! (see `OverlaySystem::capture_point`): a bridge port as the frame
//! enters `br0` (`host1 br0 veth-A`, inbound), vxlan1 as it transmits
//! (`host1 vxlan1`, outbound), a host's underlay as the encapsulated
//! frame arrives (`host1 underlay`, inbound) and a container's `eth0`
//! (`A eth0`, inbound). The interface name is the `if_name` option, the
//! direction the packet's `epb_flags`, and each packet's comment names the
//! replay step that moved it (`step 4: deliver ...`, as the text trace
//! numbers and words it), so `tshark -r F -T fields -e
//! frame.interface_name -e frame.comment` tells where and when.
//!
//! **Timestamps** come from no clock. Packet `i` (0-based, in file order)
//! is stamped at the simulated clock of its step (seconds since the
//! scenario started, as `wait N` advances it) plus `i` microseconds, so
//! the order of the trace is the order of the timestamps, the gaps of a
//! script's waits show in Wireshark's time column, and the same schedule
//! gives the same file bytes everywhere (little-endian, whatever the
//! host).
//!
//! The `pcap-file` crate (version 2) does the format: maintained, reads
//! as well as writes (so tests round-trip), pure Rust with no libpcap C
//! library to build or link. Its enhanced packet blocks write a
//! timestamp as nanoseconds whatever the interface says, so every
//! interface here declares `if_tsresol` = 9 (nanoseconds) and the file
//! means what the crate wrote.

use std::borrow::Cow;
use std::io::{self, Read, Write};
use std::time::Duration;

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::{Block, PcapNgReader, PcapNgWriter};
use pcap_file::{DataLink, Endianness, PcapError};

use crate::sim::{CapturedFrame, Direction};

/// The snapshot length of every interface: libpcap's largest
/// (`MAXIMUM_SNAPLEN`), more than any model frame.
pub const SNAPLEN: u32 = 262_144;

/// `if_tsresol` of every interface: 10^-9 s (see the module docs).
const TS_RESOLUTION: u8 = 9;

/// `epb_flags` direction bits (pcapng §4.3.1): 01 inbound, 10 outbound.
fn flags(direction: Direction) -> u32 {
    match direction {
        Direction::Inbound => 0b01,
        Direction::Outbound => 0b10,
    }
}

/// The timestamp of packet `index` delivered at `at_s` (module docs).
pub fn timestamp(at_s: u32, index: usize) -> Duration {
    Duration::from_secs(u64::from(at_s)) + Duration::from_micros(index as u64)
}

/// Writes `frames` (each with its comment: the replay step that moved
/// it) as a pcapng file to `w`.
///
/// Errors: the writer's own errors, and [`io::ErrorKind::InvalidInput`]
/// for a frame longer than [`SNAPLEN`].
pub fn write_pcapng<W: Write>(w: W, frames: &[(String, CapturedFrame)]) -> io::Result<()> {
    let section = SectionHeaderBlock {
        endianness: Endianness::Little,
        major_version: 1,
        minor_version: 0,
        section_length: -1,
        options: vec![SectionHeaderOption::UserApplication(Cow::Owned(format!(
            "netrace {}",
            env!("CARGO_PKG_VERSION")
        )))],
    };
    let mut writer = PcapNgWriter::with_section_header(w, section).map_err(to_io)?;
    let mut interfaces: Vec<&str> = Vec::new();
    for (i, (comment, frame)) in frames.iter().enumerate() {
        if frame.bytes.len() > SNAPLEN as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "frame {i} of {} bytes exceeds the snaplen {SNAPLEN}",
                    frame.bytes.len()
                ),
            ));
        }
        let interface_id = match interfaces.iter().position(|n| *n == frame.interface) {
            Some(id) => id,
            None => {
                writer
                    .write_pcapng_block(InterfaceDescriptionBlock {
                        linktype: DataLink::ETHERNET,
                        snaplen: SNAPLEN,
                        options: vec![
                            InterfaceDescriptionOption::IfName(Cow::Borrowed(&frame.interface)),
                            InterfaceDescriptionOption::IfTsResol(TS_RESOLUTION),
                        ],
                    })
                    .map_err(to_io)?;
                interfaces.push(&frame.interface);
                interfaces.len() - 1
            }
        };
        writer
            .write_pcapng_block(EnhancedPacketBlock {
                interface_id: interface_id as u32,
                timestamp: timestamp(frame.at_s, i),
                original_len: frame.bytes.len() as u32,
                data: Cow::Borrowed(&frame.bytes),
                options: vec![
                    EnhancedPacketOption::Flags(flags(frame.direction)),
                    EnhancedPacketOption::Comment(Cow::Borrowed(comment)),
                ],
            })
            .map_err(to_io)?;
    }
    writer.into_inner().flush()
}

/// A packet read back from a pcapng file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadPacket {
    /// The `if_name` of its interface (empty when the interface has none).
    pub interface: String,
    /// Its direction flag, when it has one.
    pub direction: Option<Direction>,
    /// Its timestamp, in the file's units as the `pcap-file` crate reads
    /// them (nanoseconds; see the module docs).
    pub timestamp: Duration,
    /// Its first comment, if any.
    pub comment: Option<String>,
    /// The frame.
    pub bytes: Vec<u8>,
}

/// Reads every packet of a pcapng file written by [`write_pcapng`] (or
/// any Ethernet pcapng).
///
/// Errors: the reader's own errors, and [`io::ErrorKind::InvalidData`]
/// for a file that is not pcapng or an interface that is not Ethernet.
pub fn read_pcapng<R: Read>(r: R) -> io::Result<Vec<ReadPacket>> {
    let mut reader = PcapNgReader::new(r).map_err(to_io)?;
    let mut packets = Vec::new();
    while let Some(block) = reader.next_block() {
        let Block::EnhancedPacket(epb) = block.map_err(to_io)? else {
            continue;
        };
        let epb = epb.into_owned();
        let idb = reader
            .interfaces()
            .get(epb.interface_id as usize)
            .ok_or_else(|| {
                invalid(format!(
                    "packet on undeclared interface {}",
                    epb.interface_id
                ))
            })?;
        if idb.linktype != DataLink::ETHERNET {
            return Err(invalid(format!(
                "link type {:?}, not Ethernet",
                idb.linktype
            )));
        }
        let interface = idb
            .options
            .iter()
            .find_map(|o| match o {
                InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                _ => None,
            })
            .unwrap_or_default();
        let direction = epb.options.iter().find_map(|o| match o {
            EnhancedPacketOption::Flags(f) => match f & 0b11 {
                0b01 => Some(Direction::Inbound),
                0b10 => Some(Direction::Outbound),
                _ => None,
            },
            _ => None,
        });
        let comment = epb.options.iter().find_map(|o| match o {
            EnhancedPacketOption::Comment(c) => Some(c.to_string()),
            _ => None,
        });
        packets.push(ReadPacket {
            interface,
            direction,
            timestamp: epb.timestamp,
            comment,
            bytes: epb.data.into_owned(),
        });
    }
    Ok(packets)
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn to_io(error: PcapError) -> io::Error {
    match error {
        PcapError::IoError(error) => error,
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::wire::build::{arp_reply, arp_request, unicast_ip, vxlan_encap};
    use crate::wire::EthernetAddress;
    use std::net::Ipv4Addr;

    fn captured(interface: &str, direction: Direction, at_s: u32, bytes: Vec<u8>) -> CapturedFrame {
        CapturedFrame {
            interface: interface.into(),
            direction,
            at_s,
            bytes,
        }
    }

    fn step(n: usize) -> String {
        format!("step {n}")
    }

    fn frames() -> Vec<(String, CapturedFrame)> {
        let a = EthernetAddress::docker(Ipv4Addr::new(10, 0, 0, 2));
        let b = EthernetAddress::docker(Ipv4Addr::new(10, 0, 0, 3));
        let (ip_a, ip_b) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3));
        let data = unicast_ip(a, b, ip_a, ip_b, b"hello");
        let inb = Direction::Inbound;
        vec![
            (
                step(1),
                captured("host1 br0 veth-A", inb, 0, arp_request(a, ip_a, ip_b)),
            ),
            (
                step(2),
                captured("A eth0", inb, 0, arp_reply(b, ip_b, a, ip_a)),
            ),
            (
                step(3),
                captured("host1 br0 veth-A", inb, 300, data.clone()),
            ),
            (
                step(4),
                captured(
                    "host1 vxlan1",
                    Direction::Outbound,
                    300,
                    vxlan_encap(
                        EthernetAddress([0x52, 0x54, 0, 0, 0, 1]),
                        EthernetAddress([0x52, 0x54, 0, 0, 0, 2]),
                        Ipv4Addr::new(192, 168, 1, 1),
                        Ipv4Addr::new(192, 168, 1, 2),
                        49152,
                        256,
                        &data,
                    ),
                ),
            ),
        ]
    }

    fn write(frames: &[(String, CapturedFrame)]) -> Vec<u8> {
        let mut file = Vec::new();
        write_pcapng(&mut file, frames).unwrap();
        file
    }

    #[test]
    fn round_trip_keeps_bytes_interfaces_directions_steps_and_time() {
        let frames = frames();
        let packets = read_pcapng(&write(&frames)[..]).unwrap();
        assert_eq!(packets.len(), frames.len());
        for (i, (p, (comment, f))) in packets.iter().zip(&frames).enumerate() {
            assert_eq!(p.bytes, f.bytes);
            assert_eq!(p.interface, f.interface);
            assert_eq!(p.direction, Some(f.direction));
            assert_eq!(p.comment.as_ref(), Some(comment));
            assert_eq!(p.timestamp, timestamp(f.at_s, i));
        }
        // The wait shows: 300 s between packets 1 and 2, 1 µs otherwise.
        assert_eq!(
            packets[2].timestamp - packets[1].timestamp,
            Duration::from_secs(300) + Duration::from_micros(1)
        );
    }

    #[test]
    fn one_interface_per_capture_point_in_order_of_first_use() {
        let file = write(&frames());
        let mut reader = PcapNgReader::new(&file[..]).unwrap();
        while let Some(b) = reader.next_block() {
            b.unwrap();
        }
        let names: Vec<String> = reader
            .interfaces()
            .iter()
            .map(|i| match &i.options[0] {
                InterfaceDescriptionOption::IfName(n) => n.to_string(),
                other => panic!("first option {other:?}"),
            })
            .collect();
        assert_eq!(names, ["host1 br0 veth-A", "A eth0", "host1 vxlan1"]);
        assert!(reader.interfaces().iter().all(|i| i
            .options
            .contains(&InterfaceDescriptionOption::IfTsResol(9))));
    }

    #[test]
    fn exact_bytes_are_deterministic_and_little_endian() {
        let file = write(&frames());
        // Section header block: type, then the byte-order magic as the
        // little-endian bytes of 0x1A2B3C4D.
        assert_eq!(&file[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
        assert_eq!(&file[8..12], &[0x4d, 0x3c, 0x2b, 0x1a]);
        assert_eq!(write(&frames()), file);
        let empty = write(&[]);
        assert_eq!(read_pcapng(&empty[..]).unwrap(), Vec::new());
        assert_eq!(&empty[..4], &file[..4]);
    }

    #[test]
    fn refusals() {
        let big = captured("x", Direction::Inbound, 0, vec![0; SNAPLEN as usize + 1]);
        let err = write_pcapng(Vec::new(), &[(step(1), big)]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            read_pcapng(&b"not a pcapng file at all, no"[..])
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidData
        );
    }
}
