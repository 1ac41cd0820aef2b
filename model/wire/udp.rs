//! UDP headers, RFC 768, over IPv4.
//!
//! The checksum covers an IPv4 pseudo-header (source, destination, zero,
//! protocol 17, UDP length), the UDP header and the payload, so checking
//! it needs the two addresses: [`Repr::parse`] and [`Repr::emit`] take
//! them. A zero checksum means the sender computed none, which RFC 768
//! allows over IPv4 and which Linux's VXLAN device sends by default
//! (`udpcsum` off); a computed checksum of zero goes out as `0xffff`.
//! The UDP length field bounds the payload; bytes after it in the IPv4
//! payload are ignored, as Linux's `udp_rcv` trims them.
//!
//! Not modelled: UDP over IPv6 (where the checksum is mandatory), UDP-Lite,
//! and checksum offload.

use std::net::Ipv4Addr;

use super::checksum;
use super::ipv4::Protocol;
use super::{Error, Result};

/// Length of the UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// The largest UDP length the 16-bit field can hold.
const LENGTH_MAX: usize = 0xffff;

mod field {
    use std::ops::Range;

    pub(super) const SRC_PORT: Range<usize> = 0..2;
    pub(super) const DST_PORT: Range<usize> = 2..4;
    pub(super) const LENGTH: Range<usize> = 4..6;
    pub(super) const CHECKSUM: Range<usize> = 6..8;
}

/// A view of a UDP datagram over a byte buffer.
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

    /// [`Error::Truncated`] unless the buffer holds the header and the
    /// length field's worth of bytes; [`Error::Malformed`] if the length
    /// field is under 8.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let length = usize::from(self.length());
        if length < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < length {
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

    /// The source port.
    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }

    /// The length field: header plus payload.
    pub fn length(&self) -> u16 {
        self.u16_at(field::LENGTH)
    }

    /// The checksum as carried; 0 means none was computed.
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }

    /// Whether the checksum verifies for a datagram from `src_addr` to
    /// `dst_addr`; true when it is 0 (none computed).
    pub fn verify_checksum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        self.sum(src_addr, dst_addr) == 0xffff
    }

    /// The one's complement sum of pseudo-header, header and payload.
    fn sum(&self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) -> u16 {
        let length = self.length();
        let pseudo = checksum::pseudo_header(src_addr, dst_addr, Protocol::Udp.into(), length);
        let datagram = checksum::sum(&self.buffer.as_ref()[..usize::from(length)]);
        checksum::combine(&[pseudo, datagram])
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The payload, bounded by the length field, with the buffer's
    /// lifetime.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.length())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_u16_at(&mut self, range: std::ops::Range<usize>, value: u16) {
        self.buffer.as_mut()[range].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the source port.
    pub fn set_src_port(&mut self, value: u16) {
        self.set_u16_at(field::SRC_PORT, value);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, value: u16) {
        self.set_u16_at(field::DST_PORT, value);
    }

    /// Sets the length field.
    pub fn set_length(&mut self, value: u16) {
        self.set_u16_at(field::LENGTH, value);
    }

    /// Sets the checksum field as given; see [`Packet::fill_checksum`].
    pub fn set_checksum(&mut self, value: u16) {
        self.set_u16_at(field::CHECKSUM, value);
    }

    /// Computes the checksum over the pseudo-header, the header and the
    /// payload as they stand (so set the length and write the payload
    /// first) and writes it, sending a computed 0 as `0xffff`.
    pub fn fill_checksum(&mut self, src_addr: Ipv4Addr, dst_addr: Ipv4Addr) {
        self.set_checksum(0);
        let value = !self.sum(src_addr, dst_addr);
        self.set_checksum(if value == 0 { 0xffff } else { value });
    }

    /// The payload as the length field bounds it, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.length());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// A parsed UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload bytes after the 8-byte header.
    pub payload_len: usize,
}

impl Repr {
    /// Reads a header from a datagram sent from `src_addr` to `dst_addr`:
    /// [`Error::Truncated`] or [`Error::Malformed`] from
    /// [`Packet::check_len`], [`Error::Checksum`] if a non-zero checksum
    /// does not verify.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Packet<&T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
    ) -> Result<Repr> {
        packet.check_len()?;
        if !packet.verify_checksum(src_addr, dst_addr) {
            return Err(Error::Checksum);
        }
        Ok(Repr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.length()) - HEADER_LEN,
        })
    }

    /// Header plus payload: the UDP length `emit` writes, and the buffer
    /// it needs.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Writes the header for a datagram from `src_addr` to `dst_addr`.
    /// With `checksum` false the checksum is 0 (none, as Linux VXLAN
    /// sends); with `checksum` true it is computed over the payload
    /// *already in the buffer*, so copy the payload in first (or call
    /// [`Packet::fill_checksum`] afterwards).
    ///
    /// Panics if the buffer is shorter than [`Repr::buffer_len`] or that
    /// exceeds 65,535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(
        &self,
        packet: &mut Packet<&mut T>,
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        checksum: bool,
    ) {
        let length = self.buffer_len();
        assert!(
            length <= LENGTH_MAX,
            "UDP datagram of {length} bytes exceeds {LENGTH_MAX}"
        );
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_length(length as u16);
        packet.set_checksum(0);
        if checksum {
            packet.fill_checksum(src_addr, dst_addr);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);

    /// 1021 > 1021 carrying "hello", checksummed from 10.0.0.2 to
    /// 10.0.0.3. Worked by hand: pseudo-header
    /// 0a00+0002+0a00+0003+0011+000d = 1423; header 03fd+03fd+000d = 0807;
    /// "hello" 6865+6c6c+6f00 = 143d1 -> 43d2; total 1423+0807+43d2 =
    /// 5ffc, complemented a003.
    static DATAGRAM: [u8; 13] = [
        0x03, 0xfd, 0x03, 0xfd, // ports 1021 > 1021
        0x00, 0x0d, 0xa0, 0x03, // length 13, checksum
        b'h', b'e', b'l', b'l', b'o',
    ];

    fn repr() -> Repr {
        Repr {
            src_port: 1021,
            dst_port: 1021,
            payload_len: 5,
        }
    }

    #[test]
    fn parse() {
        let packet = Packet::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(packet.src_port(), 1021);
        assert_eq!(packet.dst_port(), 1021);
        assert_eq!(packet.length(), 13);
        assert_eq!(packet.checksum(), 0xa003);
        assert!(packet.verify_checksum(SRC, DST));
        assert!(!packet.verify_checksum(DST, Ipv4Addr::new(10, 0, 0, 4)));
        assert_eq!(packet.payload(), b"hello");
        assert_eq!(Repr::parse(&packet, SRC, DST), Ok(repr()));
    }

    #[test]
    fn emit_with_and_without_checksum() {
        let mut bytes = [0u8; 13];
        bytes[HEADER_LEN..].copy_from_slice(b"hello");
        repr().emit(&mut Packet::new_unchecked(&mut bytes[..]), SRC, DST, true);
        assert_eq!(bytes, DATAGRAM);
        repr().emit(&mut Packet::new_unchecked(&mut bytes[..]), SRC, DST, false);
        assert_eq!(&bytes[6..8], &[0, 0]);
        // No checksum verifies whatever the addresses.
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet, DST, DST), Ok(repr()));
    }

    #[test]
    fn round_trip() {
        let repr = Repr::parse(&Packet::new_checked(&DATAGRAM[..]).unwrap(), SRC, DST).unwrap();
        let mut bytes = DATAGRAM;
        bytes[..HEADER_LEN].fill(0);
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]), SRC, DST, true);
        assert_eq!(bytes, DATAGRAM);
    }

    #[test]
    fn bad_checksum() {
        let mut bytes = DATAGRAM;
        bytes[8] = b'j';
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(Repr::parse(&packet, SRC, DST), Err(Error::Checksum));
    }

    #[test]
    fn zero_sum_goes_out_as_ffff() {
        // Choose the source port so that the sum of everything else is
        // 0xffff: the checksum is then !0xffff = 0, sent as 0xffff.
        let mut bytes = DATAGRAM;
        bytes[0..2].fill(0);
        let rest = {
            let mut p = Packet::new_unchecked(&mut bytes[..]);
            p.set_checksum(0);
            p.sum(SRC, DST)
        };
        let src_port = 0xffff - rest;
        let r = Repr { src_port, ..repr() };
        r.emit(&mut Packet::new_unchecked(&mut bytes[..]), SRC, DST, true);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.checksum(), 0xffff);
        assert_eq!(Repr::parse(&packet, SRC, DST), Ok(r));
    }

    #[test]
    fn length_checks() {
        for len in 0..DATAGRAM.len() {
            assert_eq!(Packet::new_checked(&DATAGRAM[..len]), Err(Error::Truncated));
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&DATAGRAM[..len]), SRC, DST),
                Err(Error::Truncated)
            );
        }
        let mut bytes = DATAGRAM;
        bytes[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&bytes[..]), Err(Error::Malformed));
        // A length shorter than the buffer bounds the payload.
        let mut bytes = DATAGRAM;
        bytes[4..6].copy_from_slice(&10u16.to_be_bytes());
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.payload(), b"he");
    }

    #[test]
    fn every_prefix_parses_without_panic() {
        for end in 0..=DATAGRAM.len() {
            if let Ok(packet) = Packet::new_checked(&DATAGRAM[..end]) {
                let _ = (packet.payload(), packet.verify_checksum(SRC, DST));
                let _ = Repr::parse(&packet, SRC, DST);
            }
        }
    }
}
