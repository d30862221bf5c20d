//! Which configured recording client (SRC) a request comes from: its address and, over SIP/TLS,
//! its client certificate (docs/design/siprec.md, "Admission").
//!
//! The TLS handshake asks every client for a certificate but refuses none
//! ([`AnyClientCertificate`] only checks that the client holds the certificate's key); the
//! decision is made here, per request, so that a missing or wrong certificate is answered with
//! 403 and audited like an unknown address instead of vanishing as a failed handshake. A chain is
//! checked against `sip.client_ca_file` here too, with rustls' own WebPKI verifier.
//!
//! It must not: let a source that configures a certificate in without that certificate, believe
//! a certificate name without a chain to the configured CA, or admit anyone matching no source.

use crate::config::{SipSource, parse_sha256};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::Arc;
use x509_cert::der::Decode;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// What a TLS client proved about itself in the handshake, worked out once per connection.
#[derive(Debug, Clone)]
pub struct PeerCertificate {
    /// SHA-256 of the leaf certificate (DER).
    pub sha256: [u8; 32],
    /// Whether the chain leads to `sip.client_ca_file` (and why not, for the audit entry).
    pub chain: Result<(), String>,
    /// Subject alternative names: DNS names and URIs.
    pub names: Vec<String>,
}

impl PeerCertificate {
    /// `chain` is what the client sent, leaf first; `ca` the configured client CA, if any.
    pub fn of(chain: &[CertificateDer<'_>], ca: Option<&ClientCa>) -> Option<Self> {
        let leaf = chain.first()?;
        let verified = match ca {
            None => Err("no `sip.client_ca_file` is configured to check it against".to_owned()),
            Some(ca) => {
                ca.0.verify_client_cert(leaf, &chain[1..], UnixTime::now())
                    .map(drop)
                    .map_err(|e| format!("it was not issued by `sip.client_ca_file`: {e}"))
            }
        };
        Some(Self {
            sha256: Sha256::digest(leaf.as_ref()).into(),
            chain: verified,
            names: alt_names(leaf),
        })
    }

    fn fingerprint(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// DNS names and URIs of the certificate's subject alternative names (RFC 5922 §7.1: a SIP
/// peer's identity is there, not in the subject's common name).
fn alt_names(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok(cert) = x509_cert::Certificate::from_der(der.as_ref()) else {
        return Vec::new();
    };
    let extensions = cert.tbs_certificate.extensions.unwrap_or_default();
    extensions
        .iter()
        .filter(|e| e.extn_id == SubjectAltName::OID)
        .filter_map(|e| SubjectAltName::from_der(e.extn_value.as_bytes()).ok())
        .flat_map(|san| san.0)
        .filter_map(|name| match name {
            GeneralName::DnsName(n) | GeneralName::UniformResourceIdentifier(n) => {
                Some(n.as_str().to_owned())
            }
            _ => None,
        })
        .collect()
}

/// The CA of `sip.client_ca_file`, as a rustls WebPKI client verifier (used after the handshake).
#[derive(Clone)]
pub struct ClientCa(Arc<dyn ClientCertVerifier>);

impl ClientCa {
    pub fn new(roots: rustls::RootCertStore) -> Result<Self, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map(Self)
            .map_err(|e| format!("`sip.client_ca_file`: {e}"))
    }
}

/// The handshake side: asks for a certificate, requires none, accepts any whose key the client
/// proves it holds. Never used without [`admit`] deciding afterwards.
#[derive(Debug)]
pub struct AnyClientCertificate {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl AnyClientCertificate {
    pub fn new(ca: Option<&ClientCa>) -> Arc<Self> {
        let provider = rustls::crypto::ring::default_provider();
        Arc::new(Self {
            // Naming the CA lets an SRC with several certificates pick the right one.
            hints: ca
                .map(|c| c.0.root_hint_subjects().to_vec())
                .unwrap_or_default(),
            algorithms: provider.signature_verification_algorithms,
        })
    }
}

impl ClientCertVerifier for AnyClientCertificate {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Why a request was refused, for the 403's Warning and the `siprec.refused` audit entry; the
/// tenant of the source the address belongs to, so that tenant's auditors see the attempt.
#[derive(Debug)]
pub struct NotAdmitted<'a> {
    pub source: Option<&'a SipSource>,
    pub reason: String,
}

/// The first source the request fully matches: address (when the source lists any) and
/// certificate (when it configures one).
pub fn admit<'a>(
    sources: &'a [SipSource],
    ip: IpAddr,
    cert: Option<&PeerCertificate>,
) -> Result<&'a SipSource, NotAdmitted<'a>> {
    let mut refusal = None;
    for source in sources {
        let by_address = source.addresses.contains(&ip);
        if !by_address && !source.addresses.is_empty() {
            continue;
        }
        match certificate_mismatch(source, cert) {
            None => return Ok(source),
            // The first source at this address that wanted another certificate explains the
            // refusal; a certificate-only source that did not match says nothing.
            Some(reason) if by_address && refusal.is_none() => {
                refusal = Some(NotAdmitted {
                    source: Some(source),
                    reason,
                });
            }
            Some(_) => {}
        }
    }
    Err(refusal.unwrap_or_else(|| NotAdmitted {
        source: None,
        reason: match cert {
            Some(c) => format!(
                "not a configured recording client (client certificate SHA-256 {})",
                c.fingerprint()
            ),
            None => "not a configured recording client".into(),
        },
    }))
}

/// Why `cert` is not what `source` requires (`None`: it is, or the source requires none).
fn certificate_mismatch(source: &SipSource, cert: Option<&PeerCertificate>) -> Option<String> {
    if source.certificate_sha256.is_empty() && source.certificate_name.is_none() {
        return None;
    }
    // Config validation refuses a malformed pin; were one to get here, it matches nothing
    // (fail closed) rather than turning the source into an address-only one.
    let pins: Vec<[u8; 32]> = source
        .certificate_sha256
        .iter()
        .filter_map(|p| parse_sha256(p).ok())
        .collect();
    let Some(cert) = cert else {
        return Some(format!(
            "source `{}` must present its TLS client certificate over SIP/TLS; none was presented",
            source.name
        ));
    };
    if !source.certificate_sha256.is_empty() && !pins.contains(&cert.sha256) {
        return Some(format!(
            "the client certificate (SHA-256 {}) is not one pinned for source `{}`",
            cert.fingerprint(),
            source.name
        ));
    }
    if let Some(name) = &source.certificate_name {
        if let Err(why) = &cert.chain {
            return Some(format!(
                "the client certificate (SHA-256 {}) cannot vouch for source `{}`: {why}",
                cert.fingerprint(),
                source.name
            ));
        }
        let sip_uri = format!("sip:{name}");
        if !cert
            .names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(&sip_uri))
        {
            return Some(format!(
                "the client certificate (SHA-256 {}) does not name `{name}`, as source `{}` requires",
                cert.fingerprint(),
                source.name
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, addresses: &[&str], pin: Option<[u8; 32]>) -> SipSource {
        SipSource {
            name: name.into(),
            tenant: callvault_core::TenantId::parse("t1").unwrap(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            certificate_sha256: pin
                .map(|p| {
                    // Colon-separated upper case, as `openssl x509 -fingerprint` prints it.
                    let hex = hex::encode_upper(p);
                    let pairs: Vec<&str> = (0..32).map(|i| &hex[2 * i..2 * i + 2]).collect();
                    vec![pairs.join(":")]
                })
                .unwrap_or_default(),
            certificate_name: None,
            insecure_plain_rtp: false,
            caller_label: None,
            queue: None,
        }
    }

    fn cert(sha: u8) -> PeerCertificate {
        PeerCertificate {
            sha256: [sha; 32],
            chain: Err("none".into()),
            names: vec!["sbc.example.net".into()],
        }
    }

    #[test]
    fn address_and_certificate_both_decide() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.9".parse().unwrap();
        let sources = [
            source("plain", &["192.0.2.2"], None),
            source("pinned", &["192.0.2.1"], Some([7; 32])),
            source("roaming", &[], Some([8; 32])),
        ];
        assert_eq!(admit(&sources, ip, Some(&cert(7))).unwrap().name, "pinned");
        let none = admit(&sources, ip, None).unwrap_err();
        assert_eq!(none.source.unwrap().name, "pinned");
        assert!(
            none.reason.contains("none was presented"),
            "{}",
            none.reason
        );
        let wrong = admit(&sources, ip, Some(&cert(9))).unwrap_err();
        assert!(
            wrong.reason.contains("is not one pinned"),
            "{}",
            wrong.reason
        );
        assert!(wrong.reason.contains(&hex::encode([9u8; 32])));
        // The pinned certificate from another address: refused; a certificate-only source
        // is let in from anywhere.
        assert!(admit(&sources, other, Some(&cert(7))).is_err());
        assert_eq!(
            admit(&sources, other, Some(&cert(8))).unwrap().name,
            "roaming"
        );
        let mut broken = source("broken", &["192.0.2.3"], None);
        broken.certificate_sha256 = vec!["not hex".into()];
        let broken = [broken];
        let refused = admit(&broken, "192.0.2.3".parse().unwrap(), Some(&cert(7)));
        assert!(refused.is_err(), "a malformed pin fails closed");
        let stranger = admit(&sources, other, None).unwrap_err();
        assert!(stranger.source.is_none());
        assert_eq!(stranger.reason, "not a configured recording client");
        assert_eq!(
            admit(&sources, "192.0.2.2".parse().unwrap(), None)
                .unwrap()
                .name,
            "plain"
        );
    }

    #[test]
    fn a_certificate_name_needs_a_chain_to_the_ca() {
        let mut named = source("named", &["192.0.2.1"], None);
        named.certificate_name = Some("sbc.example.net".into());
        let sources = [named];
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let unverified = admit(&sources, ip, Some(&cert(1))).unwrap_err();
        assert!(
            unverified.reason.contains("cannot vouch"),
            "{}",
            unverified.reason
        );
        let mut verified = cert(1);
        verified.chain = Ok(());
        assert!(admit(&sources, ip, Some(&verified)).is_ok());
        verified.names = vec!["sip:SBC.example.net".into()];
        assert!(admit(&sources, ip, Some(&verified)).is_ok());
        verified.names = vec!["other.example.net".into()];
        let misnamed = admit(&sources, ip, Some(&verified)).unwrap_err();
        assert!(
            misnamed.reason.contains("does not name"),
            "{}",
            misnamed.reason
        );
    }
}
