//! `[sip]`: the SIPREC listeners and the recording clients allowed to use them, and the rules
//! that refuse an unsafe or unusable SIP setup before anything binds.

use super::{Config, ConfigError, refuse};
use callvault_core::TenantId;
use serde::{Deserialize, Deserializer};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The SIPREC recording server (docs/siprec.md). Off unless at least one listener is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// SIP over UDP, e.g. `0.0.0.0:5060`.
    pub udp: Option<SocketAddr>,
    /// SIP over TCP, e.g. `0.0.0.0:5060`.
    pub tcp: Option<SocketAddr>,
    /// SIP over TLS, e.g. `0.0.0.0:5061`, with the `[tls]` certificate or `tls_cert_file`. The only
    /// transport on which SRTP keys are accepted, and on which SRCs can present a client
    /// certificate.
    pub tls: Option<SocketAddr>,
    /// PEM roots that issue SRC client certificates. When set, a presented chain must lead to
    /// one of them before a source's `certificate_name` is believed. Not needed for sources
    /// pinned by `certificate_sha256` alone.
    pub client_ca_file: Option<PathBuf>,
    /// A PEM certificate chain and key for SIP/TLS of its own (e.g. one issued for the name
    /// your SBCs dial). Default: the HTTPS certificate of `[tls]`.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// The address put in SDP answers and Contact. Default: the listener's address, which must
    /// then not be unspecified (`0.0.0.0`).
    pub advertise: Option<std::net::IpAddr>,
    /// First and last UDP port for RTP. Each stream takes two (RTP, and RTCP which is ignored);
    /// a call's label 2 is answered on label 1's port + 2.
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// A call with no RTP for this long is finalised as incomplete (the SRC vanished).
    pub rtp_timeout_secs: u64,
    /// SIP requests per second one source address may send before being dropped.
    pub max_requests_per_sec: u32,
    /// The recording clients (SBCs, PBXs) allowed to record, each into one tenant. Anyone
    /// else is refused with 403 and audited.
    pub sources: Vec<SipSource>,
    /// TEST-ONLY: RFC 3261's T1 in milliseconds (500), so a test sees the 200 retransmission
    /// give up after 64·T1 in a second rather than 32. Exists only in debug builds; a release
    /// build rejects the key as unknown.
    #[cfg(debug_assertions)]
    pub test_t1_ms: Option<u64>,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            udp: None,
            tcp: None,
            tls: None,
            client_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            advertise: None,
            rtp_port_min: 20_000,
            rtp_port_max: 29_999,
            rtp_timeout_secs: 30,
            max_requests_per_sec: 50,
            sources: Vec::new(),
            #[cfg(debug_assertions)]
            test_t1_ms: None,
        }
    }
}

impl SipConfig {
    /// RFC 3261's T1: 500 ms (a test may shorten it in a debug build).
    pub fn t1(&self) -> std::time::Duration {
        #[cfg(debug_assertions)]
        if let Some(ms) = self.test_t1_ms {
            return std::time::Duration::from_millis(ms.clamp(1, 500));
        }
        std::time::Duration::from_millis(500)
    }

    pub fn enabled(&self) -> bool {
        self.udp.is_some() || self.tcp.is_some() || self.tls.is_some()
    }
}

/// One session recording client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSource {
    /// A name for logs and the audit record, e.g. `sbc-stockholm-1`.
    pub name: String,
    /// The tenant its calls are recorded for.
    #[serde(deserialize_with = "tenant")]
    pub tenant: TenantId,
    /// Addresses it sends SIP from (and RTP, with the SDP's `c=` addresses). With a
    /// certificate configured, a connection must come from one of these *and* present it; a
    /// source with a certificate and no addresses is let in from any address over SIP/TLS.
    #[serde(default)]
    pub addresses: Vec<std::net::IpAddr>,
    /// SHA-256 fingerprints of the SRC's own TLS client certificate (the leaf, DER), in hex,
    /// colons allowed (`openssl x509 -noout -fingerprint -sha256`). Several for a rollover.
    #[serde(default)]
    pub certificate_sha256: Vec<String>,
    /// A DNS name or `sip:` URI the SRC's client certificate must carry in its subject
    /// alternative names, issued under `sip.client_ca_file`.
    #[serde(default)]
    pub certificate_name: Option<String>,
    /// Accept unencrypted RTP (and SIP over UDP/TCP) from this source: for a trunk on a
    /// trusted network only. Otherwise the source must use SIP over TLS and SRTP.
    #[serde(default)]
    pub insecure_plain_rtp: bool,
    /// The SDP `a=label` of the caller's stream (recorded left). Default: the first stream.
    #[serde(default)]
    pub caller_label: Option<String>,
    /// The queue (line) its calls belong to: selects the recording policy and retention.
    #[serde(default)]
    pub queue: Option<String>,
}

/// A source's tenant, refused at parse time with the key and the value that is wrong.
fn tenant<'de, D: Deserializer<'de>>(d: D) -> Result<TenantId, D::Error> {
    let text = String::deserialize(d)?;
    TenantId::parse(&text)
        .map_err(|e| serde::de::Error::custom(format!("`sip.sources` `tenant = \"{text}\"`: {e}")))
}

impl Config {
    pub(super) fn validate_sip(&self) -> Result<(), ConfigError> {
        let sip = &self.sip;
        if !sip.enabled() {
            return Ok(());
        }
        let invalid = |m: String| Err(refuse("config_invalid", m));
        if sip.rtp_port_min < 1024 || sip.rtp_port_max < sip.rtp_port_min.saturating_add(3) {
            return invalid(format!(
                "`sip.rtp_port_min` = {} and `sip.rtp_port_max` = {} must span at least 4 ports above 1023, e.g. 20000 and 29999",
                sip.rtp_port_min, sip.rtp_port_max
            ));
        }
        if !(1..=3600).contains(&sip.rtp_timeout_secs) || sip.max_requests_per_sec == 0 {
            return invalid("`sip.rtp_timeout_secs` must be 1 to 3600 and `sip.max_requests_per_sec` at least 1".into());
        }
        let listen_ip = sip.udp.or(sip.tcp).or(sip.tls).map(|a| a.ip());
        if sip.advertise.is_none() && listen_ip.is_some_and(|ip| ip.is_unspecified()) {
            return invalid("SIP listens on an unspecified address: set `sip.advertise` to the address SRCs should send RTP to".into());
        }
        if sip.tls_cert_file.is_some() != sip.tls_key_file.is_some() {
            return invalid("set both `sip.tls_cert_file` and `sip.tls_key_file`, or neither (then SIP/TLS uses the `[tls]` certificate)".into());
        }
        if sip.client_ca_file.is_some() && sip.tls.is_none() {
            return invalid("`sip.client_ca_file` is set but `sip.tls` is not: client certificates travel only over SIP/TLS".into());
        }
        if sip.sources.is_empty() {
            return invalid("`[sip]` has listeners but no `[[sip.sources]]`: every call would be refused. Add the SBCs that may record".into());
        }
        for src in &sip.sources {
            for pin in &src.certificate_sha256 {
                parse_sha256(pin).map_err(|e| {
                    refuse(
                        "config_invalid",
                        format!("`sip.sources` `{}`: `certificate_sha256` {e}", src.name),
                    )
                })?;
            }
            let has_certificate =
                !src.certificate_sha256.is_empty() || src.certificate_name.is_some();
            if src.addresses.is_empty() && !has_certificate {
                return invalid(format!(
                    "`sip.sources` `{}` lists neither `addresses` nor a client certificate (`certificate_sha256` or `certificate_name`): it could never be recognised",
                    src.name
                ));
            }
            if has_certificate && sip.tls.is_none() {
                return invalid(format!(
                    "`sip.sources` `{}` is identified by a client certificate, which only SIP over TLS carries: set `sip.tls`",
                    src.name
                ));
            }
            if src.certificate_name.is_some() && sip.client_ca_file.is_none() {
                return invalid(format!(
                    "`sip.sources` `{}` sets `certificate_name`, but anyone can make a certificate with any name: set `sip.client_ca_file` to the CA that issues your SRCs' certificates, or pin the certificate with `certificate_sha256`",
                    src.name
                ));
            }
            if !src.insecure_plain_rtp && sip.tls.is_none() {
                return invalid(format!(
                    "`sip.sources` `{}` must use SRTP, which needs SIP over TLS: set `sip.tls`, or `insecure_plain_rtp = true` for a trunk on a trusted network",
                    src.name
                ));
            }
        }
        self.sip_client_roots()?;
        Ok(())
    }

    /// The PEM roots of `sip.client_ca_file`; an unreadable or empty file is a config error.
    pub fn sip_client_roots(&self) -> Result<Option<rustls::RootCertStore>, ConfigError> {
        use rustls_pki_types::{CertificateDer, pem::PemObject};
        let Some(path) = &self.sip.client_ca_file else {
            return Ok(None);
        };
        let bad = |why: String| {
            refuse(
                "config_invalid",
                format!("`sip.client_ca_file` {}: {why}", path.display()),
            )
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        for c in certs {
            roots
                .add(c)
                .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(bad(
                "holds no certificate: put the PEM CA certificate(s) that issue your SRCs' client certificates there".into(),
            ));
        }
        Ok(Some(roots))
    }

    /// The SIP/TLS listener's certificate and key: its own, else the HTTPS ones.
    pub fn sip_tls_paths(&self) -> (PathBuf, PathBuf) {
        match (&self.sip.tls_cert_file, &self.sip.tls_key_file) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => self.tls_paths(),
        }
    }
}

/// A SHA-256 fingerprint in hex, colons and spaces allowed, either case.
pub fn parse_sha256(text: &str) -> Result<[u8; 32], String> {
    let digits: String = text.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    let bytes = hex::decode(&digits).map_err(|_| {
        format!(
            "`{text}` is not hex: give the SHA-256 fingerprint as 64 hex digits, colons allowed"
        )
    })?;
    bytes.try_into().map_err(|b: Vec<u8>| {
        format!(
            "`{text}` has {} bytes; a SHA-256 fingerprint has 32",
            b.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_sip_settings_are_refused_with_the_fix() {
        let parse = |toml_text: &str| {
            let mut c: Config = toml::from_str(toml_text).unwrap();
            c.data_dir = "/tmp/callvault-test-data".into();
            c.validate_sip().map_err(|e| e.to_string())
        };
        let source =
            "[[sip.sources]]\nname = \"sbc\"\ntenant = \"t1\"\naddresses = [\"192.0.2.1\"]\n";
        let srtp_without_tls = parse(&format!("[sip]\nudp = \"127.0.0.1:5060\"\n{source}"));
        assert!(srtp_without_tls.unwrap_err().contains("set `sip.tls`"));
        let unspecified = parse(&format!("[sip]\ntls = \"0.0.0.0:5061\"\n{source}"));
        assert!(unspecified.unwrap_err().contains("sip.advertise"));
        let no_sources = parse("[sip]\ntls = \"127.0.0.1:5061\"\n");
        assert!(no_sources.unwrap_err().contains("[[sip.sources]]"));
        assert!(parse(&format!("[sip]\ntls = \"127.0.0.1:5061\"\n{source}")).is_ok());
        assert!(parse("").is_ok(), "no listener, nothing to check");
    }

    #[test]
    fn sip_client_certificate_settings_are_checked_before_bind() {
        let check = |sip: &str, source: &str| {
            let text = format!(
                "[sip]\ntls = \"127.0.0.1:5061\"\n{sip}\n[[sip.sources]]\nname = \"sbc\"\ntenant = \"t1\"\n{source}"
            );
            let mut c: Config = toml::from_str(&text).unwrap();
            c.data_dir = "/tmp/callvault-test-data".into();
            c.validate_sip().map_err(|e| e.to_string())
        };
        let pin = "AB:".repeat(31) + "AB";
        assert!(check("", &format!("certificate_sha256 = [\"{pin}\"]")).is_ok());
        assert!(
            check(
                "",
                &format!("certificate_sha256 = [\"{}\"]", "ab".repeat(32))
            )
            .is_ok()
        );
        let e = check("", "certificate_sha256 = [\"zz\"]").unwrap_err();
        assert!(
            e.contains("`sbc`") && e.contains("certificate_sha256") && e.contains("not hex"),
            "{e}"
        );
        let e = check("", "certificate_sha256 = [\"abcd\"]").unwrap_err();
        assert!(e.contains("has 2 bytes"), "{e}");
        let e = check(
            "tls_cert_file = \"/etc/sip.pem\"",
            "addresses = [\"192.0.2.1\"]",
        )
        .unwrap_err();
        assert!(e.contains("sip.tls_key_file"), "{e}");
        let e = check("", "").unwrap_err();
        assert!(
            e.contains("`sbc`") && e.contains("neither `addresses` nor"),
            "{e}"
        );
        let e = check("", "certificate_name = \"sbc.example.net\"").unwrap_err();
        assert!(
            e.contains("certificate_name") && e.contains("sip.client_ca_file"),
            "{e}"
        );
        let e = check(
            "client_ca_file = \"/nonexistent/ca.pem\"",
            "certificate_name = \"sbc.example.net\"",
        )
        .unwrap_err();
        assert!(
            e.contains("`sip.client_ca_file` /nonexistent/ca.pem"),
            "{e}"
        );
        let empty = tempfile::NamedTempFile::new().unwrap();
        let e = check(
            &format!("client_ca_file = \"{}\"", empty.path().display()),
            "addresses = [\"192.0.2.1\"]",
        )
        .unwrap_err();
        assert!(e.contains("holds no certificate"), "{e}");
    }

    #[test]
    fn a_source_tenant_that_is_no_tenant_id_is_refused_with_the_value() {
        let text = "[[sip.sources]]\nname = \"sbc\"\ntenant = \"Region A\"\n";
        let e = toml::from_str::<Config>(text).unwrap_err().to_string();
        assert!(
            e.contains("`sip.sources` `tenant = \"Region A\"`: tenant: must be"),
            "{e}"
        );
    }
}
