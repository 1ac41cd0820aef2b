//! Capture files of model frames, for Wireshark and tcpdump.
//!
//! [`write_pcap`] writes the classic libpcap format (not pcapng) with
//! link type Ethernet (`LINKTYPE_ETHERNET`, 1), microsecond timestamps
//! and little-endian headers whatever the host, so the same frames give
//! the same file bytes everywhere. Time is not read from any clock:
//! frame `i` is stamped `i` milliseconds after the epoch, which keeps the
//! order visible in Wireshark and the file reproducible.
//!
//! The `pcap-file` crate (version 2) does the format: it is maintained,
//! reads as well as writes (so tests can round-trip), handles both byte
//! orders and nanosecond files, and is pure Rust, with no libpcap C
//! library to build or link.

use std::io::{self, Read, Write};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

/// The snapshot length written in the header: libpcap's largest
/// (`MAXIMUM_SNAPLEN`), more than any model frame.
pub const SNAPLEN: u32 = 262_144;

/// Writes `frames` (Ethernet frames, no FCS) as a pcap file to `w`,
/// frame `i` timestamped at `i` ms.
///
/// Errors: the writer's own errors, and [`io::ErrorKind::InvalidInput`]
/// for a frame longer than [`SNAPLEN`].
pub fn write_pcap<W: Write>(w: W, frames: &[Vec<u8>]) -> io::Result<()> {
    let header = PcapHeader {
        version_major: 2,
        version_minor: 4,
        ts_correction: 0,
        ts_accuracy: 0,
        snaplen: SNAPLEN,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::Little,
    };
    let mut writer = PcapWriter::with_header(w, header).map_err(to_io)?;
    for (i, frame) in frames.iter().enumerate() {
        let len = u32::try_from(frame.len())
            .ok()
            .filter(|&len| len <= SNAPLEN)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "frame {i} of {} bytes exceeds the snaplen {SNAPLEN}",
                        frame.len()
                    ),
                )
            })?;
        let timestamp = Duration::from_millis(i as u64);
        writer
            .write_packet(&PcapPacket::new(timestamp, len, frame))
            .map_err(to_io)?;
    }
    writer.into_writer().flush()
}

/// Reads every frame of a pcap file written by [`write_pcap`] (or any
/// Ethernet pcap), dropping timestamps.
///
/// Errors: the reader's own errors, and [`io::ErrorKind::InvalidData`]
/// for a file that is not pcap or whose link type is not Ethernet.
pub fn read_pcap<R: Read>(r: R) -> io::Result<Vec<Vec<u8>>> {
    let mut reader = PcapReader::new(r).map_err(to_io)?;
    let datalink = reader.header().datalink;
    if datalink != DataLink::ETHERNET {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("link type {datalink:?}, not Ethernet"),
        ));
    }
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        frames.push(packet.map_err(to_io)?.data.into_owned());
    }
    Ok(frames)
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

    fn frames() -> Vec<Vec<u8>> {
        let a = EthernetAddress::docker(Ipv4Addr::new(10, 0, 0, 2));
        let b = EthernetAddress::docker(Ipv4Addr::new(10, 0, 0, 3));
        let (ip_a, ip_b) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3));
        let data = unicast_ip(a, b, ip_a, ip_b, b"hello");
        vec![
            arp_request(a, ip_a, ip_b),
            arp_reply(b, ip_b, a, ip_a),
            data.clone(),
            vxlan_encap(
                EthernetAddress([0x52, 0x54, 0, 0, 0, 1]),
                EthernetAddress([0x52, 0x54, 0, 0, 0, 2]),
                Ipv4Addr::new(192, 168, 1, 1),
                Ipv4Addr::new(192, 168, 1, 2),
                49152,
                256,
                &data,
            ),
        ]
    }

    #[test]
    fn round_trip() {
        let frames = frames();
        let mut file = Vec::new();
        write_pcap(&mut file, &frames).unwrap();
        assert_eq!(read_pcap(&file[..]).unwrap(), frames);
        // Header 24 bytes; each record 16 bytes plus the frame.
        let expected: usize = 24 + frames.iter().map(|f| 16 + f.len()).sum::<usize>();
        assert_eq!(file.len(), expected);
    }

    #[test]
    fn empty_capture() {
        let mut file = Vec::new();
        write_pcap(&mut file, &[]).unwrap();
        assert_eq!(file.len(), 24);
        assert_eq!(read_pcap(&file[..]).unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn exact_bytes_are_deterministic() {
        let frames = frames();
        let mut file = Vec::new();
        write_pcap(&mut file, &frames).unwrap();
        #[rustfmt::skip]
        let header = [
            0xd4, 0xc3, 0xb2, 0xa1, // magic, little-endian, microseconds
            0x02, 0x00, 0x04, 0x00, // version 2.4
            0, 0, 0, 0, 0, 0, 0, 0, // thiszone, sigfigs
            0x00, 0x00, 0x04, 0x00, // snaplen 262144
            0x01, 0x00, 0x00, 0x00, // LINKTYPE_ETHERNET
        ];
        assert_eq!(&file[..24], &header);
        // Second record (frame 1, 42 bytes) starts after the first.
        let second = 24 + 16 + 42;
        #[rustfmt::skip]
        let record = [
            0, 0, 0, 0, // seconds
            0xe8, 0x03, 0, 0, // 1000 microseconds
            42, 0, 0, 0, // captured length
            42, 0, 0, 0, // original length
        ];
        assert_eq!(&file[second..second + 16], &record);
        let mut again = Vec::new();
        write_pcap(&mut again, &frames).unwrap();
        assert_eq!(again, file);
    }

    #[test]
    fn refusals() {
        let err = write_pcap(Vec::new(), &[vec![0; SNAPLEN as usize + 1]]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            read_pcap(&b"not a pcap file at all, no"[..])
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidData
        );
        let mut file = Vec::new();
        write_pcap(&mut file, &frames()).unwrap();
        file[20] = 101; // LINKTYPE_RAW
        assert_eq!(
            read_pcap(&file[..]).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
