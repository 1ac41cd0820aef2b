//! Raw `AF_PACKET` sockets on the containers' `eth0`: what a container
//! receives, and the exact bytes it transmits.
//!
//! A socket is opened on a short-lived thread that `setns(2)`s into the
//! container's namespace, creates the socket, binds it to `eth0` with
//! `ETH_P_ALL`, and ends: the socket keeps its namespace for its whole
//! life. It is created with protocol 0 (receiving nothing) and starts
//! receiving only at `bind`, so it never sees another interface's frames.
//!
//! Receiving: every frame that arrives *on* `eth0` (`PACKET_HOST`,
//! `PACKET_BROADCAST`, `PACKET_MULTICAST` and `PACKET_OTHERHOST` alike —
//! the model counts every frame a container's `eth0` is handed, whoever it
//! is for); frames the container itself sends (`PACKET_OUTGOING`) are
//! skipped. Reads use `poll(2)` with a timeout: nothing here blocks
//! forever. Sending: `sendto(2)` of the whole Ethernet frame on the bound
//! interface, so the frame enters `veth-NAME` on `br0` exactly as given.
//!
//! Not done: timestamps, `PACKET_AUXDATA` (VLAN tags), ring buffers,
//! BPF filters — the oracle's frames are few and small.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::netns::{ifindex, in_netns};
use super::KernelError;

/// Ethernet frames of the oracle are small; anything longer is truncated
/// in the capture (and still counted).
const FRAME_MAX: usize = 2048;

/// A packet socket bound to one interface in one namespace.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
    /// `namespace/interface`, for messages.
    pub name: String,
}

fn errno(what: &str, name: &str) -> KernelError {
    KernelError::Failed(format!(
        "{what} on {name}: {}",
        std::io::Error::last_os_error()
    ))
}

impl PacketSocket {
    /// Opens a socket on `ifname` inside namespace `ns`.
    pub fn open(ns: &str, ifname: &str) -> Result<PacketSocket, KernelError> {
        let name = format!("{ns}/{ifname}");
        in_netns(ns, move || {
            let index = ifindex(ifname)?;
            // SAFETY: plain socket(2); the fd is owned right away.
            let raw = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                    0,
                )
            };
            if raw < 0 {
                return Err(KernelError::Unavailable(format!(
                    "cannot open an AF_PACKET socket in {name}: {} (needs root, CAP_NET_RAW)",
                    std::io::Error::last_os_error()
                )));
            }
            // SAFETY: raw is a fresh descriptor nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let sll = sockaddr_ll(index as i32, libc::ETH_P_ALL as u16);
            // SAFETY: bind(2) with a correctly sized sockaddr_ll.
            let rc = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(errno("bind", &name));
            }
            Ok(PacketSocket {
                fd,
                ifindex: index as i32,
                name,
            })
        })
    }

    /// Transmits `frame` (a whole Ethernet frame) on the interface.
    pub fn send(&self, frame: &[u8]) -> Result<(), KernelError> {
        if frame.len() < 14 {
            return Err(KernelError::Failed(format!(
                "a frame of {} bytes has no Ethernet header",
                frame.len()
            )));
        }
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let mut sll = sockaddr_ll(self.ifindex, ethertype);
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: sendto(2) of a valid buffer to a sized sockaddr_ll.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(errno("send", &self.name));
        }
        if n as usize != frame.len() {
            return Err(KernelError::Failed(format!(
                "send on {}: {n} of {} bytes sent",
                self.name,
                frame.len()
            )));
        }
        Ok(())
    }

    /// Appends to `out` every frame queued on the socket now, without
    /// waiting. Returns how many were appended.
    pub fn drain(&self, out: &mut Vec<Vec<u8>>) -> Result<usize, KernelError> {
        let mut n = 0;
        let mut buf = vec![0u8; FRAME_MAX];
        loop {
            // SAFETY: an all-zero sockaddr_ll is valid.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            // SAFETY: recvfrom(2) into a buffer of the given size.
            let r = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if r < 0 {
                let e = std::io::Error::last_os_error();
                return match e.kind() {
                    std::io::ErrorKind::WouldBlock => Ok(n),
                    std::io::ErrorKind::Interrupted => continue,
                    _ => Err(KernelError::Failed(format!("recv on {}: {e}", self.name))),
                };
            }
            if from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            out.push(buf[..(r as usize).min(FRAME_MAX)].to_vec());
            n += 1;
        }
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

fn sockaddr_ll(ifindex: i32, protocol: u16) -> libc::sockaddr_ll {
    // SAFETY: an all-zero sockaddr_ll is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex;
    sll
}

/// Waits up to `timeout` until at least one socket has a frame queued
/// (or returns at once if one has), then drains every socket into its
/// list in `out`. Returns how many frames were appended in total.
pub fn wait_any(
    sockets: &[PacketSocket],
    out: &mut [Vec<Vec<u8>>],
    timeout: Duration,
) -> Result<usize, KernelError> {
    let deadline = Instant::now() + timeout;
    let mut fds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|s| libc::pollfd {
            fd: s.raw(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: poll(2) over a live vector of pollfds.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(KernelError::Failed(format!("poll: {e}")));
        }
        break;
    }
    let mut n = 0;
    for (s, list) in sockets.iter().zip(out.iter_mut()) {
        n += s.drain(list)?;
    }
    Ok(n)
}
