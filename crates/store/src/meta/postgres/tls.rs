//! How the PostgreSQL adapter reaches its server: the URL's TLS parameters and the rustls
//! client configuration (ring provider, no other TLS stack).
//!
//! tokio-postgres knows only `sslmode=disable|prefer|require`; its default, `prefer`, falls
//! back to plaintext without a word, and its `require` never checks who answered. So the TLS
//! parameters are taken out of the URL here and only these are accepted:
//!
//! * `sslmode=verify-full` (the default when `sslmode` is absent): TLS, the server's
//!   certificate chain checked against `sslrootcert` and its name against the URL's host.
//! * `sslmode=require`: TLS, but the certificate is not checked, so it stops a passive
//!   eavesdropper and not an active one. With SCRAM password authentication, adding
//!   `channel_binding=require` closes that gap.
//! * `sslmode=disable`: plaintext. Only ever when asked for by name, e.g. over loopback or a
//!   Unix socket.
//!
//! `sslrootcert` (only with `verify-full`) is a PEM file of trusted CA certificates, or
//! `system` (the default) for the operating system's trust store. Every other parameter goes to
//! tokio-postgres unchanged.
//!
//! [`postgres_transport`] shows other crates (the server's posture checks) what this parser
//! made of a URL, so nothing outside reads the URL a second way.

use crate::StoreError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::fmt::Display;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How the connection is protected; re-exported as `PostgresSslMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext.
    Disable,
    /// TLS, the certificate not checked.
    Require,
    /// TLS, the certificate chain and name checked.
    VerifyFull,
}

/// Where `verify-full` finds the certificates it trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    System,
    File(String),
}

/// A parsed URL: what tokio-postgres gets, plus our TLS decisions.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) config: tokio_postgres::Config,
    pub(super) mode: SslMode,
    roots: Roots,
}

fn invalid(msg: impl Display) -> StoreError {
    StoreError::Backend(format!(
        "PostgreSQL URL: {msg} (expected postgres://user:password@host:port/database?sslmode=verify-full)"
    ))
}

/// Parses `url`, taking out `sslmode` and `sslrootcert`.
pub(super) fn parse(url: &str) -> Result<Target, StoreError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(invalid("not a postgres:// URL"));
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut roots) = (None, None);
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "sslmode" => &mut mode,
            "sslrootcert" => &mut roots,
            _ => {
                rest.push(pair);
                continue;
            }
        };
        if slot.replace(percent_decode(value)?).is_some() {
            return Err(invalid(format!("`{key}` given twice")));
        }
    }
    let mode = match mode.as_deref() {
        None | Some("verify-full") => SslMode::VerifyFull,
        Some("require") => SslMode::Require,
        Some("disable") => SslMode::Disable,
        Some(other) => {
            return Err(invalid(format!(
                "sslmode={other} is not supported: use verify-full, require or disable"
            )));
        }
    };
    let roots = match (roots, mode) {
        (None, _) => Roots::System,
        (Some(r), SslMode::VerifyFull) if r == "system" => Roots::System,
        (Some(r), SslMode::VerifyFull) => Roots::File(r),
        (Some(_), _) => {
            return Err(invalid(
                "sslrootcert only applies to sslmode=verify-full; with any other mode the certificate is not checked",
            ));
        }
    };
    let rebuilt = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    let mut config = tokio_postgres::Config::from_str(&rebuilt).map_err(invalid)?;
    config.ssl_mode(match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        // tokio-postgres's `Require` refuses a server that will not do TLS; what is checked
        // inside the handshake is up to the connector below.
        SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
    });
    Ok(Target {
        config,
        mode,
        roots,
    })
}

/// How a PostgreSQL URL's connections travel, as the adapter will make them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresTransport {
    pub mode: SslMode,
    /// Where connections go, as written: host names, addresses (`hostaddr` where given) and
    /// Unix socket directories.
    pub destinations: Vec<String>,
    /// Every destination is on this machine (a Unix socket, `localhost` or a loopback
    /// address), so plaintext never crosses a network.
    pub local: bool,
}

/// What [`parse`] makes of `url`'s transport: the one reading of a URL for checks outside
/// this crate.
pub fn postgres_transport(url: &str) -> Result<PostgresTransport, StoreError> {
    use tokio_postgres::config::Host;
    let target = parse(url)?;
    let hosts = target.config.get_hosts();
    let addrs = target.config.get_hostaddrs();
    // tokio-postgres connects to the i-th `hostaddr` where one is given, else the i-th host.
    let (mut destinations, mut local) = (Vec::new(), true);
    for i in 0..hosts.len().max(addrs.len()) {
        let (shown, here) = match (addrs.get(i), hosts.get(i)) {
            (Some(ip), _) => (ip.to_string(), ip.is_loopback()),
            (None, Some(Host::Tcp(name))) => (
                name.clone(),
                name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
            ),
            (None, Some(Host::Unix(dir))) => (dir.display().to_string(), true),
            (None, None) => continue,
        };
        destinations.push(shown);
        local &= here;
    }
    Ok(PostgresTransport {
        mode: target.mode,
        local: local && !destinations.is_empty(),
        destinations,
    })
}

fn percent_decode(s: &str) -> Result<String, StoreError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid("bad %-escape in a parameter"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("a parameter is not UTF-8"))
}

impl Target {
    /// The TLS connector for this target. With `disable` it is never used, but it still
    /// trusts nothing, so a slip elsewhere fails closed.
    pub(super) fn connector(&self) -> Result<MakeRustlsConnect, StoreError> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Backend(format!("TLS setup: {e}")))?;
        let config = match self.mode {
            SslMode::Disable => builder
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth(),
            SslMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth(),
            SslMode::VerifyFull => builder
                .with_root_certificates(self.root_store()?)
                .with_no_client_auth(),
        };
        Ok(MakeRustlsConnect::new(config))
    }

    fn root_store(&self) -> Result<RootCertStore, StoreError> {
        let mut store = RootCertStore::empty();
        match &self.roots {
            Roots::File(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        StoreError::Backend(format!("PostgreSQL sslrootcert {path}: {e}"))
                    })?;
                let (added, _) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(StoreError::Backend(format!(
                        "PostgreSQL sslrootcert {path}: no usable CA certificate in the file"
                    )));
                }
            }
            Roots::System => {
                let found = rustls_native_certs::load_native_certs();
                store.add_parsable_certificates(found.certs);
                if store.is_empty() {
                    return Err(StoreError::Backend(
                        "PostgreSQL sslmode=verify-full: no system CA certificates found; set sslrootcert=/path/to/ca.pem in the URL".into(),
                    ));
                }
            }
        }
        Ok(store)
    }
}

/// `sslmode=require`: any certificate is accepted, but the handshake signatures are still
/// checked, so the session is at least encrypted to whoever holds that certificate's key.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn err(url: &str) -> String {
        match parse(url) {
            Err(e) => e.to_string(),
            Ok(t) => panic!("{url} parsed as {t:?}"),
        }
    }

    #[test]
    fn tls_is_verified_unless_the_url_says_otherwise() {
        let t = parse("postgres://u:p@db.example/cv").unwrap();
        assert_eq!((t.mode, t.roots), (SslMode::VerifyFull, Roots::System));
        let t = parse("postgresql://u@db.example/cv?sslmode=require").unwrap();
        assert_eq!(t.mode, SslMode::Require);
        let t = parse("postgres://u@127.0.0.1:5433/cv?sslmode=disable").unwrap();
        assert_eq!(t.mode, SslMode::Disable);
        assert_eq!(
            t.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }

    #[test]
    fn other_parameters_pass_through_and_roots_are_decoded() {
        let t = parse(
            "postgres://u@h/cv?application_name=cv&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(t.roots, Roots::File("/etc/ca x.pem".into()));
        assert_eq!(t.config.get_application_name(), Some("cv"));
        assert_eq!(
            t.config.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(3))
        );
        assert_eq!(
            t.config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    #[test]
    fn weak_or_ambiguous_settings_are_refused() {
        for mode in ["prefer", "allow", "verify-ca", ""] {
            assert!(
                err(&format!("postgres://h/db?sslmode={mode}")).contains("not supported"),
                "{mode}"
            );
        }
        assert!(
            err("postgres://h/db?sslmode=require&sslrootcert=/ca.pem").contains("only applies")
        );
        assert!(err("postgres://h/db?sslmode=disable&sslmode=verify-full").contains("twice"));
        assert!(err("host=h dbname=db").contains("not a postgres:// URL"));
        assert!(err("").contains("not a postgres:// URL"));
        assert!(err("postgres://h/db?sslrootcert=%zz").contains("%-escape"));
    }

    #[test]
    fn transport_names_where_connections_go_and_whether_they_stay_local() {
        let t = postgres_transport("postgres://u:p@db.internal:5432/cv?sslmode=disable").unwrap();
        assert_eq!(t.mode, SslMode::Disable);
        assert_eq!(
            (t.destinations, t.local),
            (vec!["db.internal".into()], false)
        );
        for local in [
            "postgres://u@127.0.0.1/cv",
            "postgres://u@[::1]:5433/cv",
            "postgres://u@localhost,127.0.0.2/cv",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/cv",
            "postgres://u@db.internal/cv?hostaddr=127.0.0.1",
        ] {
            assert!(postgres_transport(local).unwrap().local, "{local}");
        }
        for remote in [
            "postgres://u@localhost,db.internal/cv",
            "postgres://u@localhost/cv?hostaddr=192.0.2.7",
            "postgres:///cv",
        ] {
            assert!(!postgres_transport(remote).unwrap().local, "{remote}");
        }
        assert!(postgres_transport("host=h dbname=db").is_err());
    }

    #[test]
    fn a_root_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let t = parse(&format!("postgres://h/db?sslrootcert={}", empty.display())).unwrap();
        assert!(t.connector().is_err());
        let missing = parse("postgres://h/db?sslrootcert=/nonexistent/ca.pem").unwrap();
        assert!(missing.connector().is_err());
    }
}
