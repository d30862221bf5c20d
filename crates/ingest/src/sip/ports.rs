//! RTP port allocation from `[sip] rtp_port_min..=rtp_port_max`. A call with n streams takes
//! n consecutive even ports two apart (RTP on p, p+2, …; the odd RTCP ports are left alone),
//! so label 2 is answered on label 1's port + 2 — what pcap-replaying clients such as SIPp
//! expect. A port another process holds is skipped; when nothing fits the call gets 503.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;

#[derive(Clone)]
pub struct Ports(Arc<Inner>);

struct Inner {
    ip: IpAddr,
    min: u16,
    max: u16,
    used: Mutex<(BTreeSet<u16>, u16)>,
}

/// Ports held by a call; returned when dropped.
pub struct Lease {
    ports: Ports,
    taken: Vec<u16>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut used = self.ports.lock();
        for p in &self.taken {
            used.0.remove(p);
        }
    }
}

impl Ports {
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Self {
        let min = min + min % 2;
        Self(Arc::new(Inner {
            ip,
            min,
            max,
            used: Mutex::new((BTreeSet::new(), min)),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (BTreeSet<u16>, u16)> {
        self.0
            .used
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Binds `n` sockets on consecutive even ports, or `None` when the range is exhausted.
    pub fn allocate(&self, n: usize) -> Option<(Vec<UdpSocket>, Lease)> {
        let span = 2 * n as u32;
        let (min, max) = (u32::from(self.0.min), u32::from(self.0.max));
        if n == 0 || span > max + 1 - min {
            return None;
        }
        let slots = (max + 2 - min - span) / 2 + 1;
        let mut used = self.lock();
        let start = u32::from(used.1);
        for k in 0..slots {
            let base = min + ((start - min) / 2 + k) % slots * 2;
            let ports: Vec<u16> = (0..n as u32).map(|i| (base + 2 * i) as u16).collect();
            if ports.iter().any(|p| used.0.contains(p)) {
                continue;
            }
            let Some(sockets) = ports
                .iter()
                .map(|&p| self.bind(p))
                .collect::<Option<Vec<_>>>()
            else {
                continue;
            };
            used.0.extend(&ports);
            used.1 = (base + span).min(max) as u16;
            drop(used);
            let lease = Lease {
                ports: self.clone(),
                taken: ports,
            };
            return Some((sockets, lease));
        }
        None
    }

    fn bind(&self, port: u16) -> Option<UdpSocket> {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(self.0.ip, port)).ok()?;
        socket.set_nonblocking(true).ok()?;
        UdpSocket::from_std(socket).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_take_ports_two_apart_and_exhaustion_is_none() {
        // A range that holds exactly one two-stream call.
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let free = probe.local_addr().unwrap().port() & !1;
        drop(probe);
        let ports = Ports::new("127.0.0.1".parse().unwrap(), free, free + 3);
        let (sockets, lease) = ports.allocate(2).unwrap();
        let p: Vec<u16> = sockets
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        assert_eq!(p[1], p[0] + 2);
        assert!(ports.allocate(2).is_none());
        drop((sockets, lease));
        assert!(ports.allocate(2).is_some());
    }
}
