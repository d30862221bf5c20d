//! The served certificate's validity window: an expired certificate is an outage waiting for
//! clients to "click through", one about to expire is an expired one next month.

use super::{Finding, Severity};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use x509_cert::der::Decode;

/// Days before expiry from which the certificate is reported.
const WARN_DAYS: i64 = 30;

/// `(not_before, not_after)` of the first certificate in a PEM file, in Unix seconds.
pub fn validity(pem: &Path) -> Option<(i64, i64)> {
    let der = CertificateDer::pem_file_iter(pem).ok()?.next()?.ok()?;
    validity_of_der(&der)
}

/// `(not_before, not_after)` of a DER certificate (as a TLS peer presents it), in Unix seconds.
pub fn validity_of_der(der: &[u8]) -> Option<(i64, i64)> {
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let v = &cert.tbs_certificate.validity;
    let secs = |t: x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_secs()).ok();
    Some((secs(v.not_before)?, secs(v.not_after)?))
}

/// Findings about a certificate (`shown` says which) valid from `not_before` to `not_after`,
/// judged at `now`.
pub fn judge(shown: &str, (not_before, not_after): (i64, i64), now: i64) -> Option<Finding> {
    let date = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .map(|d| d.date().to_string())
            .unwrap_or_else(|_| t.to_string())
    };
    let fix = "renew the certificate and point tls.cert/tls.key at it (for the self-signed \
               default: remove the certificate and its key from <data_dir>/tls, then run \
               `callvault init`)"
        .to_string();
    if now >= not_after {
        Some(Finding {
            id: "tls_certificate_expired",
            severity: Severity::Critical,
            explanation: format!(
                "the TLS certificate {shown} expired on {}: clients either fail or are taught to ignore certificate errors",
                date(not_after)
            ),
            fix,
        })
    } else if now < not_before {
        Some(Finding {
            id: "tls_certificate_not_yet_valid",
            severity: Severity::High,
            explanation: format!(
                "the TLS certificate {shown} is valid only from {}: check the clock of this host",
                date(not_before)
            ),
            fix,
        })
    } else if not_after - now < WARN_DAYS * 86_400 {
        Some(Finding {
            id: "tls_certificate_expiring",
            severity: Severity::High,
            explanation: format!(
                "the TLS certificate {shown} expires on {} (in {} days)",
                date(not_after),
                (not_after - now) / 86_400
            ),
            fix,
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn id(v: (i64, i64), now: i64) -> Option<&'static str> {
        judge("cert.pem", v, now).map(|f| f.id)
    }

    #[test]
    fn the_window_is_judged_at_its_edges() {
        let (from, to) = (100 * DAY, 500 * DAY);
        assert_eq!(id((from, to), 200 * DAY), None);
        assert_eq!(id((from, to), to - 31 * DAY), None);
        assert_eq!(
            id((from, to), to - 29 * DAY),
            Some("tls_certificate_expiring")
        );
        assert_eq!(id((from, to), to), Some("tls_certificate_expired"));
        assert_eq!(
            id((from, to), from - 1),
            Some("tls_certificate_not_yet_valid")
        );
    }

    #[test]
    fn reads_the_validity_of_a_generated_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        crate::tls::generate_self_signed(&cert, &key).unwrap();
        let (from, to) = validity(&cert).unwrap();
        let now = crate::clock::unix_now();
        assert!(
            from < now && (396 * DAY..=398 * DAY).contains(&(to - now)),
            "{from} {to}"
        );
    }
}
