//! ARP packets, RFC 826.
//!
//! The view reads the general layout (hardware and protocol address
//! lengths come from the packet), so any ARP packet can be inspected;
//! [`Repr`] covers only Ethernet hardware with IPv4 protocol addresses,
//! the one pair a container network uses, and refuses the rest as
//! [`Error::Unsupported`]. Operation codes other than request and reply
//! (RARP, InARP) are kept as [`Operation::Unknown`] but given no meaning.

use std::fmt;
use std::net::Ipv4Addr;

use super::ethernet::{Address as EthernetAddress, EtherType};
use super::{Error, Result};

/// The hardware type field (`ar$hrd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hardware {
    /// 1, Ethernet (10Mb) in the IANA registry: every Ethernet speed.
    Ethernet,
    /// Any other value, kept as read.
    Unknown(u16),
}

impl From<u16> for Hardware {
    fn from(value: u16) -> Hardware {
        match value {
            1 => Hardware::Ethernet,
            other => Hardware::Unknown(other),
        }
    }
}

impl From<Hardware> for u16 {
    fn from(value: Hardware) -> u16 {
        match value {
            Hardware::Ethernet => 1,
            Hardware::Unknown(other) => other,
        }
    }
}

/// The opcode field (`ar$op`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// 1, `ares_op$REQUEST`: who has the target protocol address?
    Request,
    /// 2, `ares_op$REPLY`: the sender has it.
    Reply,
    /// Any other value, kept as read.
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(value: u16) -> Operation {
        match value {
            1 => Operation::Request,
            2 => Operation::Reply,
            other => Operation::Unknown(other),
        }
    }
}

impl From<Operation> for u16 {
    fn from(value: Operation) -> u16 {
        match value {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(other) => other,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Request => f.write_str("Request"),
            Operation::Reply => f.write_str("Reply"),
            Operation::Unknown(other) => write!(f, "op {other}"),
        }
    }
}

/// Bytes in an ARP packet for Ethernet and IPv4: 8 fixed, then two
/// 6-byte hardware and two 4-byte protocol addresses.
pub const ETHERNET_IPV4_LEN: usize = field::FIXED_LEN + 2 * (6 + 4);

/// Offsets. The fixed part is at fixed places; the four addresses follow
/// at places that depend on the two length fields, as in RFC 826.
mod field {
    use std::ops::Range;

    pub(super) const HTYPE: Range<usize> = 0..2;
    pub(super) const PTYPE: Range<usize> = 2..4;
    pub(super) const HLEN: usize = 4;
    pub(super) const PLEN: usize = 5;
    pub(super) const OPER: Range<usize> = 6..8;
    pub(super) const FIXED_LEN: usize = 8;

    /// `ar$sha`: sender hardware address.
    pub(super) const fn sha(hlen: usize, _plen: usize) -> Range<usize> {
        FIXED_LEN..FIXED_LEN + hlen
    }

    /// `ar$spa`: sender protocol address.
    pub(super) const fn spa(hlen: usize, plen: usize) -> Range<usize> {
        let start = sha(hlen, plen).end;
        start..start + plen
    }

    /// `ar$tha`: target hardware address.
    pub(super) const fn tha(hlen: usize, plen: usize) -> Range<usize> {
        let start = spa(hlen, plen).end;
        start..start + hlen
    }

    /// `ar$tpa`: target protocol address.
    pub(super) const fn tpa(hlen: usize, plen: usize) -> Range<usize> {
        let start = tha(hlen, plen).end;
        start..start + plen
    }
}

/// A view of an ARP packet over a byte buffer.
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

    /// [`Error::Truncated`] unless the buffer holds the fixed part and the
    /// four addresses its length fields announce. Trailing bytes (Ethernet
    /// padding) are allowed.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < field::FIXED_LEN {
            return Err(Error::Truncated);
        }
        let (hlen, plen) = self.lens();
        if len < field::tpa(hlen, plen).end {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn lens(&self) -> (usize, usize) {
        (
            usize::from(self.hardware_len()),
            usize::from(self.protocol_len()),
        )
    }

    fn u16_at(&self, range: std::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[range];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// `ar$hrd`, the hardware type.
    pub fn hardware_type(&self) -> Hardware {
        Hardware::from(self.u16_at(field::HTYPE))
    }

    /// `ar$pro`, the protocol type, in EtherType numbering.
    pub fn protocol_type(&self) -> EtherType {
        EtherType::from(self.u16_at(field::PTYPE))
    }

    /// `ar$hln`, bytes in a hardware address.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// `ar$pln`, bytes in a protocol address.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// `ar$op`, the operation.
    pub fn operation(&self) -> Operation {
        Operation::from(self.u16_at(field::OPER))
    }

    /// `ar$sha`, the sender hardware address ([`Packet::hardware_len`] bytes).
    pub fn source_hardware_addr(&self) -> &[u8] {
        let (hlen, plen) = self.lens();
        &self.buffer.as_ref()[field::sha(hlen, plen)]
    }

    /// `ar$spa`, the sender protocol address ([`Packet::protocol_len`] bytes).
    pub fn source_protocol_addr(&self) -> &[u8] {
        let (hlen, plen) = self.lens();
        &self.buffer.as_ref()[field::spa(hlen, plen)]
    }

    /// `ar$tha`, the target hardware address ([`Packet::hardware_len`] bytes).
    pub fn target_hardware_addr(&self) -> &[u8] {
        let (hlen, plen) = self.lens();
        &self.buffer.as_ref()[field::tha(hlen, plen)]
    }

    /// `ar$tpa`, the target protocol address ([`Packet::protocol_len`] bytes).
    pub fn target_protocol_addr(&self) -> &[u8] {
        let (hlen, plen) = self.lens();
        &self.buffer.as_ref()[field::tpa(hlen, plen)]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16_at(&mut self, range: std::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets `ar$hrd`.
    pub fn set_hardware_type(&mut self, value: Hardware) {
        self.set_u16_at(field::HTYPE, value.into());
    }

    /// Sets `ar$pro`.
    pub fn set_protocol_type(&mut self, value: EtherType) {
        self.set_u16_at(field::PTYPE, value.into());
    }

    /// Sets `ar$hln`; set it before the addresses, which it places.
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets `ar$pln`; set it before the addresses, which it places.
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets `ar$op`.
    pub fn set_operation(&mut self, value: Operation) {
        self.set_u16_at(field::OPER, value.into());
    }

    /// Sets `ar$sha`. Panics unless `value` is [`Packet::hardware_len`] long.
    pub fn set_source_hardware_addr(&mut self, value: &[u8]) {
        let (hlen, plen) = self.lens();
        self.buffer.as_mut()[field::sha(hlen, plen)].copy_from_slice(value);
    }

    /// Sets `ar$spa`. Panics unless `value` is [`Packet::protocol_len`] long.
    pub fn set_source_protocol_addr(&mut self, value: &[u8]) {
        let (hlen, plen) = self.lens();
        self.buffer.as_mut()[field::spa(hlen, plen)].copy_from_slice(value);
    }

    /// Sets `ar$tha`. Panics unless `value` is [`Packet::hardware_len`] long.
    pub fn set_target_hardware_addr(&mut self, value: &[u8]) {
        let (hlen, plen) = self.lens();
        self.buffer.as_mut()[field::tha(hlen, plen)].copy_from_slice(value);
    }

    /// Sets `ar$tpa`. Panics unless `value` is [`Packet::protocol_len`] long.
    pub fn set_target_protocol_addr(&mut self, value: &[u8]) {
        let (hlen, plen) = self.lens();
        self.buffer.as_mut()[field::tpa(hlen, plen)].copy_from_slice(value);
    }
}

/// A parsed ARP packet for Ethernet and IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Request, reply or an unknown opcode.
    pub operation: Operation,
    /// `ar$sha`.
    pub source_hardware_addr: EthernetAddress,
    /// `ar$spa`.
    pub source_protocol_addr: Ipv4Addr,
    /// `ar$tha`: zero in a Linux request (`arp_create` with no target).
    pub target_hardware_addr: EthernetAddress,
    /// `ar$tpa`.
    pub target_protocol_addr: Ipv4Addr,
}

impl Repr {
    /// Reads an Ethernet/IPv4 ARP packet. [`Error::Truncated`] on a short
    /// buffer; [`Error::Unsupported`] for any other hardware or protocol
    /// type or address lengths.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.hardware_type() != Hardware::Ethernet
            || packet.protocol_type() != EtherType::Ipv4
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(Error::Unsupported);
        }
        let mac = |bytes: &[u8]| EthernetAddress::from_bytes(bytes).ok_or(Error::Malformed);
        let ip = |bytes: &[u8]| {
            <[u8; 4]>::try_from(bytes)
                .map(Ipv4Addr::from)
                .map_err(|_| Error::Malformed)
        };
        Ok(Repr {
            operation: packet.operation(),
            source_hardware_addr: mac(packet.source_hardware_addr())?,
            source_protocol_addr: ip(packet.source_protocol_addr())?,
            target_hardware_addr: mac(packet.target_hardware_addr())?,
            target_protocol_addr: ip(packet.target_protocol_addr())?,
        })
    }

    /// The packet length, [`ARP_ETHERNET_IPV4_LEN`](super::ARP_ETHERNET_IPV4_LEN) (28) bytes.
    pub const fn buffer_len(&self) -> usize {
        ETHERNET_IPV4_LEN
    }

    /// Writes the whole packet.
    ///
    /// Panics if the buffer is shorter than [`Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) {
        packet.set_hardware_type(Hardware::Ethernet);
        packet.set_protocol_type(EtherType::Ipv4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr.as_bytes());
        packet.set_source_protocol_addr(&self.source_protocol_addr.octets());
        packet.set_target_hardware_addr(self.target_hardware_addr.as_bytes());
        packet.set_target_protocol_addr(&self.target_protocol_addr.octets());
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// "who-has 10.0.0.3 tell 10.0.0.2" from 02:42:0a:00:00:02, written
    /// out by hand from the field layout of RFC 826 (as Linux's
    /// `arp_create` fills it: target hardware address zero).
    static REQUEST: [u8; 28] = [
        0x00, 0x01, // ar$hrd: Ethernet
        0x08, 0x00, // ar$pro: IPv4
        0x06, // ar$hln
        0x04, // ar$pln
        0x00, 0x01, // ar$op: request
        0x02, 0x42, 0x0a, 0x00, 0x00, 0x02, // ar$sha
        0x0a, 0x00, 0x00, 0x02, // ar$spa: 10.0.0.2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ar$tha: unknown
        0x0a, 0x00, 0x00, 0x03, // ar$tpa: 10.0.0.3
    ];

    fn request() -> Repr {
        Repr {
            operation: Operation::Request,
            source_hardware_addr: EthernetAddress([0x02, 0x42, 0x0a, 0, 0, 2]),
            source_protocol_addr: Ipv4Addr::new(10, 0, 0, 2),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Addr::new(10, 0, 0, 3),
        }
    }

    #[test]
    fn parse_every_field() {
        let packet = Packet::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(packet.hardware_type(), Hardware::Ethernet);
        assert_eq!(packet.protocol_type(), EtherType::Ipv4);
        assert_eq!(packet.hardware_len(), 6);
        assert_eq!(packet.protocol_len(), 4);
        assert_eq!(packet.operation(), Operation::Request);
        assert_eq!(
            packet.source_hardware_addr(),
            &[0x02, 0x42, 0x0a, 0x00, 0x00, 0x02]
        );
        assert_eq!(packet.source_protocol_addr(), &[10, 0, 0, 2]);
        assert_eq!(packet.target_hardware_addr(), &[0; 6]);
        assert_eq!(packet.target_protocol_addr(), &[10, 0, 0, 3]);
        assert_eq!(Repr::parse(&packet), Ok(request()));
    }

    #[test]
    fn emit() {
        let mut bytes = [0xa5u8; 28];
        request().emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, REQUEST);
        assert_eq!(request().buffer_len(), 28);
    }

    #[test]
    fn round_trip_reply_and_unknown_op() {
        let mut reply = REQUEST;
        reply[7] = 2;
        reply[18..24].copy_from_slice(&[0x02, 0x42, 0x0a, 0, 0, 3]);
        let mut odd = REQUEST;
        odd[6..8].copy_from_slice(&9u16.to_be_bytes()); // InARP request
        for bytes in [REQUEST, reply, odd] {
            let repr = Repr::parse(&Packet::new_unchecked(&bytes[..])).unwrap();
            let mut out = [0u8; 28];
            repr.emit(&mut Packet::new_unchecked(&mut out[..]));
            assert_eq!(out, bytes);
        }
        let odd = Repr::parse(&Packet::new_unchecked(&odd[..])).unwrap();
        assert_eq!(odd.operation, Operation::Unknown(9));
    }

    #[test]
    fn length_checks() {
        for len in 0..REQUEST.len() {
            assert_eq!(Packet::new_checked(&REQUEST[..len]), Err(Error::Truncated));
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&REQUEST[..len])),
                Err(Error::Truncated)
            );
        }
        // Ethernet padding after the packet is ignored.
        let mut padded = [0u8; 46];
        padded[..28].copy_from_slice(&REQUEST);
        assert_eq!(
            Repr::parse(&Packet::new_checked(&padded[..]).unwrap()),
            Ok(request())
        );
    }

    #[test]
    fn every_prefix_parses_without_panic() {
        for end in 0..=REQUEST.len() {
            if let Ok(packet) = Packet::new_checked(&REQUEST[..end]) {
                let _ = (packet.source_hardware_addr(), packet.target_protocol_addr());
                let _ = Repr::parse(&packet);
            }
        }
    }

    #[test]
    fn other_address_lengths_are_read_but_unsupported() {
        // A made-up hardware type with 2-byte addresses and 4-byte IPv4:
        // the view places the fields by the lengths; Repr refuses it.
        let bytes = [
            0x00, 0x07, 0x08, 0x00, 2, 4, 0x00, 0x01, //
            0xaa, 0xbb, 10, 0, 0, 2, //
            0x00, 0x00, 10, 0, 0, 3,
        ];
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.hardware_type(), Hardware::Unknown(7));
        assert_eq!(packet.source_hardware_addr(), &[0xaa, 0xbb]);
        assert_eq!(packet.target_protocol_addr(), &[10, 0, 0, 3]);
        assert_eq!(Repr::parse(&packet), Err(Error::Unsupported));
        // Lengths that announce more than the buffer holds.
        let mut long = REQUEST;
        long[4] = 255;
        assert_eq!(Packet::new_checked(&long[..]), Err(Error::Truncated));
    }
}
