//! SIP transports: UDP (one task per datagram, replies to the sender's address) and TCP (one
//! task per connection, messages framed by `Content-Length`), and TLS (the same, inside
//! rustls with the server's certificate; the only transport that may carry SRTP keys and client
//! certificates, which are read once per connection and judged per request by `sources`).

use super::Listening;
use super::dialog::{Srs, Transport};
use super::sources::{ClientCa, PeerCertificate};
use crate::config::SipConfig;
use callvault_sip::ParseError;
use callvault_sip::message::{MAX_MESSAGE, frame_len};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_rustls::TlsAcceptor;

/// A TCP connection that sends nothing for this long is closed (SRCs keep alive with OPTIONS
/// or CRLF pings well within it).
const TCP_IDLE: Duration = Duration::from_secs(300);
const HANDSHAKE: Duration = Duration::from_secs(20);

pub async fn start(
    srs: Arc<Srs>,
    cfg: &SipConfig,
    tls: Option<(Arc<rustls::ServerConfig>, Option<ClientCa>)>,
) -> Result<Listening, String> {
    let mut listening = Listening::default();
    if let Some(addr) = cfg.udp {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|e| format!("cannot listen for SIP on udp {addr}: {e}"))?;
        listening.udp = socket.local_addr().ok();
        let socket = Arc::new(socket);
        srs.attach_udp(socket.clone());
        tokio::spawn(serve_udp(socket, srs.clone()));
    }
    if let Some(addr) = cfg.tcp {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen for SIP on tcp {addr}: {e}"))?;
        listening.tcp = listener.local_addr().ok();
        tokio::spawn(serve_tcp(listener, srs.clone(), None));
    }
    if let (Some(addr), Some((tls, ca))) = (cfg.tls, tls) {
        let acceptor = TlsAcceptor::from(tls);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen for SIP on tls {addr}: {e}"))?;
        listening.tls = listener.local_addr().ok();
        tokio::spawn(serve_tcp(listener, srs, Some((acceptor, ca))));
    }
    Ok(listening)
}

async fn serve_udp(socket: Arc<UdpSocket>, srs: Arc<Srs>) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "sip udp receive failed");
                continue;
            }
        };
        let datagram = buf[..n].to_vec();
        let (socket, srs) = (socket.clone(), srs.clone());
        tokio::spawn(async move {
            for reply in srs.handle(&datagram, peer, Transport::Udp, None).await {
                let _ = socket.send_to(&reply, peer).await;
            }
        });
    }
}

async fn serve_tcp(
    listener: TcpListener,
    srs: Arc<Srs>,
    tls: Option<(TlsAcceptor, Option<ClientCa>)>,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let srs = srs.clone();
        match tls.clone() {
            None => {
                tokio::spawn(connection(stream, peer, srs, Transport::Tcp, None));
            }
            Some((acceptor, ca)) => {
                tokio::spawn(async move {
                    let handshake = tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await;
                    if let Ok(Ok(stream)) = handshake {
                        let cert = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|chain| PeerCertificate::of(chain, ca.as_ref()));
                        connection(stream, peer, srs, Transport::Tls, cert).await;
                    }
                });
            }
        }
    }
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: std::net::SocketAddr,
    srs: Arc<Srs>,
    transport: Transport,
    cert: Option<PeerCertificate>,
) {
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16_384];
    loop {
        // Keepalive CRLFs between messages (RFC 5626 §3.5.1).
        let blank = buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        buf.drain(..blank);
        match frame_len(&buf) {
            Ok(len) => {
                let message: Vec<u8> = buf.drain(..len).collect();
                for reply in srs.handle(&message, peer, transport, cert.as_ref()).await {
                    if stream.write_all(&reply).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            Err(ParseError::Incomplete) => {}
            Err(e) => {
                // The stream cannot be resynchronised: answer what can be answered, then close.
                if let Some(reply) = callvault_sip::message::Message::bad_request(&buf, &e) {
                    let _ = stream.write_all(&reply).await;
                }
                return;
            }
        }
        match tokio::time::timeout(TCP_IDLE, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    }
}
