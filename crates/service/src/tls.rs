//! TLS: rustls only, TLS 1.2 and 1.3 with ring's default suites (AEAD-only, forward-secret).

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

/// Writes a self-signed certificate for loopback names. Good for the embedded default;
/// `doctor` reports it when the listener is reachable beyond loopback.
pub fn generate_self_signed(cert: &Path, key: &Path) -> Result<(), String> {
    let mut params = rcgen::CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .map_err(|e| format!("generating a certificate: {e}"))?;
    // Short-lived like a public certificate (CA/Browser Forum: at most 398 days), so scanners
    // and `doctor` see a sane validity and an operator renews rather than forgets it.
    let now = crate::clock::utc_now();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(397);
    let key_pair = rcgen::KeyPair::generate().map_err(|e| format!("generating a key: {e}"))?;
    let certificate = params
        .self_signed(&key_pair)
        .map_err(|e| format!("generating a certificate: {e}"))?;
    if let Some(dir) = cert.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    write_private(key, key_pair.serialize_pem().as_bytes())?;
    write_private(cert, certificate.pem().as_bytes())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The HTTPS listener's configuration: no client certificates, HTTP/2 or 1.1 by ALPN.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let mut cfg = config_with(cert, key, Arc::new(rustls::server::NoClientAuth))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The SIP/TLS listener's configuration: its certificate, no ALPN, and `clients`
/// deciding what client certificates are asked for (`sip::sources`).
pub fn sip_server_config(
    cert: &Path,
    key: &Path,
    clients: Arc<dyn rustls::server::danger::ClientCertVerifier>,
) -> Result<Arc<ServerConfig>, String> {
    config_with(cert, key, clients).map(Arc::new)
}

fn config_with(
    cert: &Path,
    key: &Path,
    clients: Arc<dyn rustls::server::danger::ClientCertVerifier>,
) -> Result<ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("tls.cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "tls.cert {}: no certificate in the file",
            cert.display()
        ));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("tls.key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("tls: {e}"))?
        .with_client_cert_verifier(clients)
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls: certificate and key do not match or are unsupported: {e}"))?;
    // The server's order of suites wins (strongest first), not whatever a client prefers.
    cfg.ignore_client_order = true;
    Ok(cfg)
}
