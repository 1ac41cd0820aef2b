//! Ethernet II (DIX) headers: destination, source, EtherType.
//!
//! Not modelled: the preamble and FCS (captures do not show them),
//! padding to the 60-byte minimum (accepted on input, never added),
//! 802.1Q tags, and 802.3 frames whose type field is a length (values
//! under 0x0600), which [`Repr::parse`] refuses as unsupported.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use super::{Error, Result};

/// A 48-bit Ethernet (IEEE 802 MAC) address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address(pub [u8; 6]);

impl Address {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Address = Address([0xff; 6]);

    /// Docker's container MAC for an IPv4 address: `02:42:` followed by
    /// the four address bytes, as libnetwork's `GenerateMACFromIP` has
    /// built it since 2015 (libnetwork #274). `02` sets the
    /// locally-administered bit and clears the group bit.
    pub const fn docker(ip: Ipv4Addr) -> Address {
        let o = ip.octets();
        Address([0x02, 0x42, o[0], o[1], o[2], o[3]])
    }

    /// The six bytes, first on the wire first.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }

    /// Whether this is `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group (I/G) bit, the low bit of the first byte, is set.
    /// Broadcast is a multicast address by this definition, as in IEEE 802.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// Whether the address names one station: the group bit is clear.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// Whether the locally-administered (U/L) bit is set, as in Docker's
    /// `02:42:..` addresses.
    pub const fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }

    /// Reads six bytes; `None` unless `bytes` has exactly six.
    pub fn from_bytes(bytes: &[u8]) -> Option<Address> {
        <[u8; 6]>::try_from(bytes).ok().map(Address)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for Address {
    type Err = Error;

    /// Reads six colon-separated pairs of hex digits, either case:
    /// `02:42:ac:11:00:02`. Anything else is [`Error::Malformed`].
    fn from_str(s: &str) -> Result<Address> {
        let mut bytes = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut bytes {
            let part = parts.next().ok_or(Error::Malformed)?;
            if part.len() != 2 || !part.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::Malformed);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| Error::Malformed)?;
        }
        if parts.next().is_some() {
            return Err(Error::Malformed);
        }
        Ok(Address(bytes))
    }
}

/// The EtherType field: what the payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EtherType {
    /// 0x0800, IPv4.
    Ipv4,
    /// 0x0806, ARP.
    Arp,
    /// 0x86dd, IPv6 (recognized, not parsed).
    Ipv6,
    /// Any other value, kept as read. Values under 0x0600 are 802.3
    /// lengths, not types.
    Unknown(u16),
}

impl EtherType {
    /// Whether the field is an 802.3 length (under 0x0600), not a type.
    pub fn is_length(&self) -> bool {
        u16::from(*self) < ETHERTYPE_MIN
    }
}

impl From<u16> for EtherType {
    fn from(value: u16) -> EtherType {
        match value {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(value: EtherType) -> u16 {
        match value {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(other) => other,
        }
    }
}

impl fmt::Display for EtherType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EtherType::Ipv4 => f.write_str("IPv4"),
            EtherType::Arp => f.write_str("ARP"),
            EtherType::Ipv6 => f.write_str("IPv6"),
            EtherType::Unknown(other) => write!(f, "ethertype 0x{other:04x}"),
        }
    }
}

/// Length of the Ethernet II header: two addresses and the EtherType.
pub const HEADER_LEN: usize = field::PAYLOAD.start;

/// The smallest EtherType that is a type and not an 802.3 length.
const ETHERTYPE_MIN: u16 = 0x0600;

mod field {
    use std::ops::{Range, RangeFrom};

    pub(super) const DESTINATION: Range<usize> = 0..6;
    pub(super) const SOURCE: Range<usize> = 6..12;
    pub(super) const ETHERTYPE: Range<usize> = 12..14;
    pub(super) const PAYLOAD: RangeFrom<usize> = 14..;
}

/// A view of an Ethernet II frame over a byte buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking its length; getters may panic on a
    /// short buffer. Use [`Frame::new_checked`] for untrusted bytes.
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer after [`Frame::check_len`]; no getter can panic on
    /// the result.
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// [`Error::Truncated`] unless the buffer holds a whole header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Header plus a payload of `payload_len` bytes.
    pub const fn buffer_len(payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Address {
        let mut bytes = [0u8; 6];
        bytes.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        Address(bytes)
    }

    /// The source address.
    pub fn src_addr(&self) -> Address {
        let mut bytes = [0u8; 6];
        bytes.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        Address(bytes)
    }

    /// The EtherType (or 802.3 length) field.
    pub fn ethertype(&self) -> EtherType {
        let b = &self.buffer.as_ref()[field::ETHERTYPE];
        EtherType::from(u16::from_be_bytes([b[0], b[1]]))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Frame<&'a T> {
    /// Everything after the header, with the buffer's lifetime
    /// (including any padding: the inner header's length field decides).
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, value: Address) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&value.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, value: Address) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&value.0);
    }

    /// Sets the EtherType field.
    pub fn set_ethertype(&mut self, value: EtherType) {
        self.buffer.as_mut()[field::ETHERTYPE].copy_from_slice(&u16::from(value).to_be_bytes());
    }

    /// Everything after the header, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// The parsed Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source address.
    pub src_addr: Address,
    /// Destination address.
    pub dst_addr: Address,
    /// What the payload is.
    pub ethertype: EtherType,
}

impl Repr {
    /// Reads the header; refuses a short buffer ([`Error::Truncated`]) and
    /// 802.3 length frames ([`Error::Unsupported`]).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(frame: &Frame<&T>) -> Result<Repr> {
        frame.check_len()?;
        let ethertype = frame.ethertype();
        if ethertype.is_length() {
            return Err(Error::Unsupported);
        }
        Ok(Repr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype,
        })
    }

    /// The header length: `emit` writes this many bytes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header; the payload is the caller's.
    ///
    /// Panics if the buffer is shorter than [`Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, frame: &mut Frame<&mut T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// A broadcast ARP frame's Ethernet header followed by four payload
    /// bytes: 02:42:0a:00:00:02 > ff:ff:ff:ff:ff:ff, ARP.
    static FRAME: [u8; 18] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // destination
        0x02, 0x42, 0x0a, 0x00, 0x00, 0x02, // source
        0x08, 0x06, // EtherType ARP
        0xaa, 0xbb, 0xcc, 0xdd, // payload
    ];

    fn repr() -> Repr {
        Repr {
            src_addr: Address([0x02, 0x42, 0x0a, 0x00, 0x00, 0x02]),
            dst_addr: Address::BROADCAST,
            ethertype: EtherType::Arp,
        }
    }

    #[test]
    fn parse() {
        let frame = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(frame.dst_addr(), Address::BROADCAST);
        assert_eq!(frame.src_addr(), Address([0x02, 0x42, 0x0a, 0, 0, 2]));
        assert_eq!(frame.ethertype(), EtherType::Arp);
        assert_eq!(frame.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(Repr::parse(&frame), Ok(repr()));
    }

    #[test]
    fn emit() {
        let mut bytes = [0u8; 18];
        let mut frame = Frame::new_unchecked(&mut bytes[..]);
        repr().emit(&mut frame);
        frame
            .payload_mut()
            .copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(bytes, FRAME);
    }

    #[test]
    fn round_trip() {
        let repr = Repr::parse(&Frame::new_unchecked(&FRAME[..])).unwrap();
        let mut bytes = FRAME;
        bytes[..HEADER_LEN].fill(0);
        repr.emit(&mut Frame::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, FRAME);
    }

    #[test]
    fn length_checks() {
        for len in 0..HEADER_LEN {
            assert_eq!(Frame::new_checked(&FRAME[..len]), Err(Error::Truncated));
            assert_eq!(
                Repr::parse(&Frame::new_unchecked(&FRAME[..len])),
                Err(Error::Truncated)
            );
        }
        let frame = Frame::new_checked(&FRAME[..HEADER_LEN]).unwrap();
        assert_eq!(frame.payload(), &[] as &[u8]);
        assert_eq!(Frame::<&[u8]>::buffer_len(4), 18);
    }

    #[test]
    fn every_prefix_parses_without_panic() {
        for end in 0..=FRAME.len() {
            if let Ok(frame) = Frame::new_checked(&FRAME[..end]) {
                let _ = (frame.dst_addr(), frame.src_addr(), frame.ethertype());
                let _ = frame.payload();
                let _ = Repr::parse(&frame);
            }
        }
    }

    #[test]
    fn length_field_frames_are_unsupported() {
        let mut bytes = FRAME;
        bytes[12..14].copy_from_slice(&0x05dcu16.to_be_bytes());
        let frame = Frame::new_checked(&bytes[..]).unwrap();
        assert_eq!(frame.ethertype(), EtherType::Unknown(0x05dc));
        assert_eq!(Repr::parse(&frame), Err(Error::Unsupported));
    }

    #[test]
    fn unknown_ethertype_round_trips() {
        let mut bytes = FRAME;
        bytes[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
        let repr = Repr::parse(&Frame::new_unchecked(&bytes[..])).unwrap();
        assert_eq!(repr.ethertype, EtherType::Unknown(0x88cc));
        let mut out = [0u8; HEADER_LEN];
        repr.emit(&mut Frame::new_unchecked(&mut out[..]));
        assert_eq!(out, bytes[..HEADER_LEN]);
        assert_eq!(EtherType::Unknown(0x88cc).to_string(), "ethertype 0x88cc");
    }

    #[test]
    fn address_display_and_parse() {
        let a = Address([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
        assert_eq!(a.to_string(), "02:42:ac:11:00:02");
        assert_eq!("02:42:ac:11:00:02".parse::<Address>(), Ok(a));
        assert_eq!("02:42:AC:11:00:02".parse::<Address>(), Ok(a));
        for bad in [
            "",
            "02:42:ac:11:00",
            "02:42:ac:11:00:02:03",
            "02:42:ac:11:00:2",
            "02:42:ac:11:00:002",
            "02-42-ac-11-00-02",
            "02:42:ac:11:00:0g",
            "02:42:ac:11:00:+2",
            "02:42:ac:11:00:02:",
        ] {
            assert_eq!(bad.parse::<Address>(), Err(Error::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn address_kinds() {
        assert!(Address::BROADCAST.is_broadcast());
        assert!(Address::BROADCAST.is_multicast());
        assert!(!Address::BROADCAST.is_unicast());
        let mdns = Address([0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb]);
        assert!(mdns.is_multicast() && !mdns.is_broadcast() && !mdns.is_unicast());
        let docker = Address::docker(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(docker.to_string(), "02:42:ac:11:00:02");
        assert!(docker.is_unicast() && docker.is_local() && !docker.is_broadcast());
        assert_eq!(
            Address::from_bytes(&[1, 2, 3, 4, 5, 6]),
            Some(Address([1, 2, 3, 4, 5, 6]))
        );
        assert_eq!(Address::from_bytes(&[1, 2, 3]), None);
    }
}
