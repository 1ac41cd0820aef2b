//! VXLAN headers, RFC 7348 section 5.
//!
//! ```text
//!  0                   1                   2                   3
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! ```
//!
//! The header follows a UDP header to port [`PORT`] (4789, IANA) and is
//! followed by the inner Ethernet frame. The RFC says reserved bits "MUST
//! be set to zero on transmission and ignored on receipt"; Linux's
//! `vxlan_rcv` instead drops a packet with any reserved bit set unless an
//! extension (GBP, GPE) claims it, and [`Repr::parse`] follows Linux,
//! since that is the datapath modelled. The view reads every bit, so
//! odd headers can still be inspected.
//!
//! Not modelled: the GBP and GPE extensions, remote checksum offload.
//! Note that Linux's `ip link add type vxlan` without `dstport` uses
//! 8472, the port Linux chose before IANA assigned 4789; Docker's overlay
//! driver passes 4789 explicitly.

use super::{Error, Result};

/// The IANA-assigned VXLAN UDP port (RFC 7348 section 5).
pub const PORT: u16 = 4789;

/// Length of the VXLAN header.
pub const HEADER_LEN: usize = field::RESERVED_2 + 1;

/// The I flag: the VNI is valid. Must be set (RFC 7348).
pub const FLAG_I: u8 = 0x08;

/// The largest VNI: 24 bits.
pub const VNI_MAX: u32 = 0x00ff_ffff;

mod field {
    use std::ops::Range;

    pub(super) const FLAGS: usize = 0;
    pub(super) const RESERVED_1: Range<usize> = 1..4;
    pub(super) const VNI: Range<usize> = 4..7;
    pub(super) const RESERVED_2: usize = 7;
}

/// A view of a VXLAN header (and the inner frame after it) over a byte
/// buffer.
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

    /// [`Error::Truncated`] unless the buffer holds the 8-byte header.
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

    /// The flags byte, all eight bits.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// Whether the I flag is set.
    pub fn vni_valid(&self) -> bool {
        self.flags() & FLAG_I != 0
    }

    /// The 24 reserved bits after the flags.
    pub fn reserved_1(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::RESERVED_1];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }

    /// The 24-bit VXLAN Network Identifier.
    pub fn vni(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::VNI];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }

    /// The last, reserved byte.
    pub fn reserved_2(&self) -> u8 {
        self.buffer.as_ref()[field::RESERVED_2]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The inner frame, with the buffer's lifetime.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the flags byte.
    pub fn set_flags(&mut self, value: u8) {
        self.buffer.as_mut()[field::FLAGS] = value;
    }

    /// Sets the 24 reserved bits after the flags. Panics if `value` does
    /// not fit in 24 bits.
    pub fn set_reserved_1(&mut self, value: u32) {
        assert!(
            value <= 0x00ff_ffff,
            "VXLAN reserved field {value:#x} exceeds 24 bits"
        );
        self.buffer.as_mut()[field::RESERVED_1].copy_from_slice(&value.to_be_bytes()[1..]);
    }

    /// Sets the VNI. Panics if it exceeds [`VNI_MAX`].
    pub fn set_vni(&mut self, value: u32) {
        assert!(value <= VNI_MAX, "VNI {value} exceeds 24 bits");
        self.buffer.as_mut()[field::VNI].copy_from_slice(&value.to_be_bytes()[1..]);
    }

    /// Sets the last, reserved byte.
    pub fn set_reserved_2(&mut self, value: u8) {
        self.buffer.as_mut()[field::RESERVED_2] = value;
    }

    /// The inner frame, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// A parsed VXLAN header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The VXLAN Network Identifier, at most [`VNI_MAX`].
    pub vni: u32,
}

impl Repr {
    /// Reads a header: [`Error::Truncated`] if short; [`Error::Malformed`]
    /// without the I flag or with any reserved bit set (Linux's
    /// `vxlan_rcv` drops both).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.flags() != FLAG_I || packet.reserved_1() != 0 || packet.reserved_2() != 0 {
            return Err(Error::Malformed);
        }
        Ok(Repr { vni: packet.vni() })
    }

    /// The header length, 8; the inner frame is the caller's.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header: the I flag, zero reserved bits, the VNI.
    ///
    /// Panics if the buffer is shorter than 8 bytes or the VNI exceeds
    /// [`VNI_MAX`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized>(&self, packet: &mut Packet<&mut T>) {
        packet.set_flags(FLAG_I);
        packet.set_reserved_1(0);
        packet.set_vni(self.vni);
        packet.set_reserved_2(0);
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// VNI 256 (0x000100) with the I flag, then two bytes of inner frame.
    static HEADER: [u8; 10] = [
        0x08, 0x00, 0x00, 0x00, // flags: I; reserved
        0x00, 0x01, 0x00, 0x00, // VNI 256; reserved
        0xde, 0xad, // inner frame (truncated, as far as VXLAN cares)
    ];

    #[test]
    fn parse() {
        let packet = Packet::new_checked(&HEADER[..]).unwrap();
        assert_eq!(packet.flags(), FLAG_I);
        assert!(packet.vni_valid());
        assert_eq!(packet.reserved_1(), 0);
        assert_eq!(packet.vni(), 256);
        assert_eq!(packet.reserved_2(), 0);
        assert_eq!(packet.payload(), &[0xde, 0xad]);
        assert_eq!(Repr::parse(&packet), Ok(Repr { vni: 256 }));
    }

    #[test]
    fn emit() {
        let mut bytes = [0xffu8; 10];
        bytes[8..].copy_from_slice(&[0xde, 0xad]);
        Repr { vni: 256 }.emit(&mut Packet::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, HEADER);
    }

    #[test]
    fn round_trip_largest_vni() {
        let bytes = [0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0];
        let repr = Repr::parse(&Packet::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(repr.vni, VNI_MAX);
        let mut out = [0u8; 8];
        repr.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, bytes);
    }

    #[test]
    fn length_checks() {
        for len in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&HEADER[..len]), Err(Error::Truncated));
            assert_eq!(
                Repr::parse(&Packet::new_unchecked(&HEADER[..len])),
                Err(Error::Truncated)
            );
        }
        let packet = Packet::new_checked(&HEADER[..HEADER_LEN]).unwrap();
        assert_eq!(packet.payload(), &[] as &[u8]);
    }

    #[test]
    fn every_prefix_parses_without_panic() {
        for end in 0..=HEADER.len() {
            if let Ok(packet) = Packet::new_checked(&HEADER[..end]) {
                let _ = (packet.vni(), packet.payload());
                let _ = Repr::parse(&packet);
            }
        }
    }

    #[test]
    fn linux_drops_what_the_rfc_would_ignore() {
        for (index, value) in [(0, 0x00), (0, 0x88), (1, 0x01), (3, 0x80), (7, 0x01)] {
            let mut bytes = HEADER;
            bytes[index] = value;
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(
                Repr::parse(&packet),
                Err(Error::Malformed),
                "byte {index} = {value:#x}"
            );
            assert_eq!(packet.vni(), 256, "the view still reads the VNI");
        }
    }

    #[test]
    #[should_panic(expected = "exceeds 24 bits")]
    fn emit_refuses_a_25_bit_vni() {
        let mut bytes = [0u8; 8];
        Repr { vni: VNI_MAX + 1 }.emit(&mut Packet::new_unchecked(&mut bytes[..]));
    }
}
