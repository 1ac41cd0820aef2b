//! IPv4 headers, RFC 791, with the header checksum of RFC 1071.
//!
//! The view reads every field, options included (they sit between byte
//! 20 and the IHL), and trims the payload to the total length so that
//! Ethernet padding is not mistaken for data. [`Repr`] models the
//! 20-byte header only: options, fragments (MF set or a non-zero
//! offset) are refused with [`Error::Unsupported`]; the reserved flag
//! bit set is [`Error::Malformed`]; a bad header checksum is
//! [`Error::Checksum`]. There is no reassembly.

use std::fmt;
use std::net::Ipv4Addr;

use super::checksum;
use super::{Error, Result};

/// The protocol field: what the payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// 1, ICMP (recognized, not parsed).
    Icmp,
    /// 6, TCP (recognized, not parsed).
    Tcp,
    /// 17, UDP.
    Udp,
    /// Any other value, kept as read (253 and 254 are for experiments,
    /// RFC 3692).
    Unknown(u8),
}

impl From<u8> for Protocol {
    fn from(value: u8) -> Protocol {
        match value {
            1 => Protocol::Icmp,
            6 => Protocol::Tcp,
            17 => Protocol::Udp,
            other => Protocol::Unknown(other),
        }
    }
}

impl From<Protocol> for u8 {
    fn from(value: Protocol) -> u8 {
        match value {
            Protocol::Icmp => 1,
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Unknown(other) => other,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Icmp => f.write_str("ICMP"),
            Protocol::Tcp => f.write_str("TCP"),
            Protocol::Udp => f.write_str("UDP"),
            Protocol::Unknown(other) => write!(f, "proto {other}"),
        }
    }
}

/// Length of a header without options (IHL 5).
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// The largest total length the 16-bit field can hold.
const TOTAL_LEN_MAX: usize = 0xffff;

mod field {
    use std::ops::Range;

    pub(super) const VER_IHL: usize = 0;
    pub(super) const TOS: usize = 1;
    pub(super) const LENGTH: Range<usize> = 2..4;
    pub(super) const IDENT: Range<usize> = 4..6;
    pub(super) const FLG_OFF: Range<usize> = 6..8;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const CHECKSUM: Range<usize> = 10..12;
    pub(super) const SRC_ADDR: Range<usize> = 12..16;
    pub(super) const DST_ADDR: Range<usize> = 16..20;

    /// Bits of the flags-and-offset word.
    pub(super) const FLAG_RESERVED: u16 = 0x8000;
    pub(super) const FLAG_DF: u16 = 0x4000;
    pub(super) const FLAG_MF: u16 = 0x2000;
    pub(super) const OFFSET_MASK: u16 = 0x1fff;
}

/// A view of an IPv4 packet over a byte buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking its length; getters may panic on a
    /// short buffer. Use [`Packet::new_checked`] for untrusted bytes.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`]; no getter can panic on
    /// the result.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the fixed header, the header the IHL announces and the
    /// total length all fit in the buffer ([`Error::Truncated`]
    /// otherwise), and that the IHL is at least 5 and the total length at
    /// least the header ([`Error::Malformed`] otherwise). It does not look
    /// at the version or the checksum; [`Repr::parse`] does.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < header_len {
            return Err(Error::Truncated);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::Malformed);
        }
        if len < total_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn u16_at(&self, range: std::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[range];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes: IHL times four.
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The type-of-service byte (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// The total length: header plus payload.
    pub fn total_len(&self) -> u16 {
        self.u16_at(field::LENGTH)
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        self.u16_at(field::IDENT)
    }

    /// Whether the reserved flag bit (bit 0) is set.
    pub fn reserved_flag(&self) -> bool {
        self.u16_at(field::FLG_OFF) & field::FLAG_RESERVED != 0
    }

    /// The DF (don't fragment) flag.
    pub fn dont_frag(&self) -> bool {
        self.u16_at(field::FLG_OFF) & field::FLAG_DF != 0
    }

    /// The MF (more fragments) flag.
    pub fn more_frags(&self) -> bool {
        self.u16_at(field::FLG_OFF) & field::FLAG_MF != 0
    }

    /// The fragment offset in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (self.u16_at(field::FLG_OFF) & field::OFFSET_MASK) << 3
    }

    /// The time-to-live field.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol field.
    pub fn protocol(&self) -> Protocol {
        Protocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header checksum as carried.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Whether the header checksum verifies: the one's complement sum of
    /// the whole header, checksum included, is all ones.
    pub fn verify_checksum(&self) -> bool {
        let header = &self.buffer.as_ref()[..usize::from(self.header_len())];
        checksum::sum(header) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload: from the end of the header (options included) to the
    /// total length, with the buffer's lifetime. Bytes past the total
    /// length (Ethernet padding) are left out.
    pub fn payload(&self) -> &'a [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16_at(&mut self, range: std::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the version nibble.
    pub fn set_version(&mut self, value: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (value << 4);
    }

    /// Sets the IHL from a header length in bytes. Panics unless it is a
    /// multiple of four from 20 to 60.
    pub fn set_header_len(&mut self, value: u8) {
        assert!(
            value.is_multiple_of(4) && (20..=60).contains(&value),
            "IPv4 header length {value} is not a multiple of 4 in 20..=60"
        );
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | (value / 4);
    }

    /// Sets the type-of-service byte.
    pub fn set_tos(&mut self, value: u8) {
        self.buffer.as_mut()[field::TOS] = value;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, value: u16) {
        self.set_u16_at(field::LENGTH, value);
    }

    /// Sets the identification field.
    pub fn set_ident(&mut self, value: u16) {
        self.set_u16_at(field::IDENT, value);
    }

    /// Sets the flags and fragment offset at once: reserved bit clear,
    /// `dont_frag`, `more_frags`, and `frag_offset` in bytes. Panics if
    /// the offset is not a multiple of 8.
    pub fn set_flags_and_offset(&mut self, dont_frag: bool, more_frags: bool, frag_offset: u16) {
        assert!(
            frag_offset.is_multiple_of(8),
            "IPv4 fragment offset {frag_offset} is not a multiple of 8"
        );
        let mut word = frag_offset >> 3;
        if dont_frag {
            word |= field::FLAG_DF;
        }
        if more_frags {
            word |= field::FLAG_MF;
        }
        self.set_u16_at(field::FLG_OFF, word);
    }

    /// Sets the time-to-live field.
    pub fn set_ttl(&mut self, value: u8) {
        self.buffer.as_mut()[field::TTL] = value;
    }

    /// Sets the protocol field.
    pub fn set_protocol(&mut self, value: Protocol) {
        self.buffer.as_mut()[field::PROTOCOL] = value.into();
    }

    /// Sets the checksum field as given; see [`Packet::fill_checksum`].
    pub fn set_checksum(&mut self, value: u16) {
        self.set_u16_at(field::CHECKSUM, value);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&value.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, value: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&value.octets());
    }

    /// Computes the header checksum over the header as it stands and
    /// writes it; call it after every other header field is set.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let header_len = usize::from(self.header_len());
        let sum = checksum::sum(&self.buffer.as_ref()[..header_len]);
        self.set_checksum(!sum);
    }

    /// The payload as [`Packet::payload`] bounds it, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// A parsed IPv4 header without options, of an unfragmented packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// What the payload is.
    pub protocol: Protocol,
    /// Payload bytes after the 20-byte header.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Type of service (DSCP and ECN).
    pub tos: u8,
    /// Identification. Linux writes 0 for DF packets from unconnected
    /// sockets and a hashed counter otherwise (`ip_select_ident_segs`).
    pub ident: u16,
    /// The DF flag.
    pub dont_frag: bool,
}

impl Repr {
    /// Reads a header: [`Error::Truncated`] or [`Error::Malformed`] from
    /// [`Packet::check_len`]; [`Error::Malformed`] for a version other
    /// than 4 or the reserved flag set; [`Error::Unsupported`] for options
    /// or a fragment; [`Error::Checksum`] if the header checksum fails.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.version() != 4 || packet.reserved_flag() {
            return Err(Error::Malformed);
        }
        if usize::from(packet.header_len()) != HEADER_LEN {
            return Err(Error::Unsupported);
        }
        if packet.more_frags() || packet.frag_offset() != 0 {
            return Err(Error::Unsupported);
        }
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        Ok(Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - HEADER_LEN,
            ttl: packet.ttl(),
            tos: packet.tos(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        })
    }

    /// Header plus payload: the total length `emit` writes into the
    /// header, and the buffer it needs.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header, checksum included; the payload is the caller's
    /// (before or after: the header checksum does not cover it).
    ///
    /// Panics if the buffer is shorter than 20 bytes or if
    /// [`Repr::buffer_len`] exceeds 65,535, the most one packet can carry.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) {
        let total_len = self.buffer_len();
        assert!(
            total_len <= TOTAL_LEN_MAX,
            "IPv4 packet of {total_len} bytes exceeds {TOTAL_LEN_MAX}"
        );
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN as u8);
        packet.set_tos(self.tos);
        packet.set_total_len(total_len as u16);
        packet.set_ident(self.ident);
        packet.set_flags_and_offset(self.dont_frag, false, 0);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// 10.0.0.2 > 10.0.0.3, UDP, DF, TTL 64, ident 0, carrying 13 bytes
    /// (an 8-byte UDP header and "hello"). Checksum worked by hand:
    /// 4500+0021+0000+4000+4011+0a00+0002+0a00+0003 = d937, complemented
    /// 26c8.
    static PACKET: [u8; 33] = [
        0x45, 0x00, 0x00, 0x21, // version 4, IHL 5, tos 0, total length 33
        0x00, 0x00, 0x40, 0x00, // ident 0, DF, offset 0
        0x40, 0x11, 0x26, 0xc8, // TTL 64, UDP, checksum
        0x0a, 0x00, 0x00, 0x02, // source 10.0.0.2
        0x0a, 0x00, 0x00, 0x03, // destination 10.0.0.3
        0x03, 0xfd, 0x03, 0xfd, 0x00, 0x0d, 0x00, 0x00, // UDP header
        b'h', b'e', b'l', b'l', b'o',
    ];

    fn repr() -> Repr {
        Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 2),
            dst_addr: Ipv4Addr::new(10, 0, 0, 3),
            protocol: Protocol::Udp,
            payload_len: 13,
            ttl: 64,
            tos: 0,
            ident: 0,
            dont_frag: true,
        }
    }

    #[test]
    fn parse() {
        let packet = Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.total_len(), 33);
        assert!(packet.dont_frag() && !packet.more_frags());
        assert_eq!(packet.frag_offset(), 0);
        assert_eq!(packet.ttl(), 64);
        assert_eq!(packet.protocol(), Protocol::Udp);
        assert_eq!(packet.checksum(), 0x26c8);
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload(), &PACKET[20..]);
        assert_eq!(Repr::parse(&packet), Ok(repr()));
    }

    #[test]
    fn emit() {
        let mut bytes = [0u8; 33];
        bytes[20..].copy_from_slice(&PACKET[20..]);
        repr().emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, PACKET);
    }

    #[test]
    fn round_trip_with_tos_ident_no_df() {
        let r = Repr {
            tos: 0x02,
            ident: 0xbeef,
            dont_frag: false,
            ttl: 1,
            protocol: Protocol::Unknown(253),
            ..repr()
        };
        let mut bytes = [0u8; 33];
        r.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        let parsed = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(parsed, r);
        let mut again = [0u8; 33];
        parsed.emit(&mut Packet::new_unchecked(&mut again[..]));
        assert_eq!(again, bytes);
    }

    #[test]
    fn padding_is_not_payload() {
        let mut padded = [0u8; 46];
        padded[..33].copy_from_slice(&PACKET);
        let packet = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload().len(), 13);
        assert_eq!(Repr::parse(&packet), Ok(repr()));
    }

    #[test]
    fn length_checks() {
        for len in 0..PACKET.len() {
            assert_eq!(Packet::new_checked(&PACKET[..len]), Err(Error::Truncated));
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&PACKET[..len])),
                Err(Error::Truncated)
            );
        }
        let mut bytes = PACKET;
        bytes[0] = 0x44; // IHL 4: 16 bytes, shorter than any header
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error::Malformed));
        let mut bytes = PACKET;
        bytes[2..4].copy_from_slice(&19u16.to_be_bytes()); // total < header
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error::Malformed));
        let mut bytes = PACKET;
        bytes[0] = 0x4f; // 60-byte header in a 33-byte buffer
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error::Truncated));
    }

    #[test]
    fn every_prefix_parses_without_panic() {
        for end in 0..=PACKET.len() {
            if let Ok(packet) = Packet::new_checked(&PACKET[..end]) {
                let _ = (packet.payload(), packet.verify_checksum());
                let _ = Repr::parse(&packet);
            }
        }
    }

    /// Sets one header byte and fixes the checksum, so that the rejection
    /// is for the field and not the checksum.
    fn with(index: usize, value: u8) -> [u8; 33] {
        let mut bytes = PACKET;
        bytes[index] = value;
        Packet::new_unchecked(&mut bytes[..]).fill_checksum();
        bytes
    }

    #[test]
    fn refusals() {
        let mut bad = PACKET;
        bad[11] ^= 1;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bad[..])),
            Err(Error::Checksum)
        );
        let parse = |b: [u8; 33]| Repr::parse(&Packet::new_unchecked(&b[..]));
        assert_eq!(parse(with(0, 0x65)), Err(Error::Malformed)); // version 6
        assert_eq!(parse(with(6, 0xc0)), Err(Error::Malformed)); // reserved flag
        assert_eq!(parse(with(6, 0x20)), Err(Error::Unsupported)); // MF
        assert_eq!(parse(with(7, 0x01)), Err(Error::Unsupported)); // offset 8
                                                                   // IHL 6: a 4-byte option (the buffer still holds it).
        let opt = with(0, 0x46);
        let packet = Packet::new_checked(&opt[..]).unwrap();
        assert_eq!(packet.payload().len(), 9);
        assert!(packet.verify_checksum());
        assert_eq!(Repr::parse(&packet), Err(Error::Unsupported));
    }

    #[test]
    #[should_panic(expected = "exceeds 65535")]
    fn emit_refuses_oversized_payload() {
        let r = Repr {
            payload_len: 65_516,
            ..repr()
        };
        let mut bytes = [0u8; 20];
        r.emit(&mut Packet::new_unchecked(&mut bytes[..]));
    }
}
