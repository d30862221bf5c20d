//! The further parties of a call, those the recording metadata names besides the caller: stored
//! with the recording when the INVITE is answered and whenever a re-INVITE or UPDATE brings new
//! metadata, so that a search by any of their numbers finds the call.

use super::{Recipient, Reject, Srs, internal_error, reject};
use callvault_core::E164;
use callvault_sip::metadata::Metadata;
use callvault_store::Party;

impl Srs {
    /// Stores the metadata's participants other than the caller as parties of the recording:
    /// keyed hash to search by, number encrypted to the tenant (as the caller is). A node
    /// without the tenant's hash key (ingest-only) cannot make the hash and stores none.
    pub(super) async fn store_parties(
        &self,
        rec: &Recipient,
        metadata: &Metadata,
    ) -> Result<(), Reject> {
        let numbers = other_parties(metadata, rec.caller.as_ref());
        let Some(keys) = &self.st.keys else {
            if !numbers.is_empty() {
                tracing::debug!(call = %rec.id, "no hash key on this node: further parties not stored");
            }
            return Ok(());
        };
        if numbers.is_empty() {
            return Ok(());
        }
        let hasher = keys
            .caller_key(&self.st.meta, &rec.tenant)
            .await
            .map_err(|e| internal_error("opening the caller hash key", e))?;
        let recipients = [rec.key.clone()];
        let parties = numbers
            .iter()
            .map(|n| {
                Ok(Party {
                    number_hash: hasher.hash(n.expose()),
                    number_enc: callvault_crypto::encrypt_small(&recipients, n.expose().as_bytes())
                        .map_err(|e| internal_error("sealing a party's number", e))?,
                })
            })
            .collect::<Result<Vec<_>, Reject>>()?;
        self.st
            .meta
            .add_parties(&rec.tenant, &rec.id, &parties)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, call = %rec.id, "storing SIPREC parties failed");
                reject(500, "Server Internal Error")
            })
    }
}

/// The E.164 numbers of the metadata's participants, once each, without the caller's.
fn other_parties(metadata: &Metadata, caller: Option<&E164>) -> Vec<E164> {
    let mut out: Vec<E164> = Vec::new();
    for p in &metadata.participants {
        let Some(number) = p
            .aor
            .as_deref()
            .and_then(|a| E164::parse(user_part(a)).ok())
        else {
            continue;
        };
        if Some(&number) != caller && !out.contains(&number) {
            out.push(number);
        }
    }
    out
}

/// `sip:+4670…@host;user=phone` → `+4670…`; `tel:+4670…` stays whole for `E164::parse`.
pub(super) fn user_part(aor: &str) -> &str {
    let aor = aor.trim().trim_start_matches('<').trim_end_matches('>');
    match aor.split_once(':') {
        Some(("sip" | "sips", rest)) => rest.split(['@', ';']).next().unwrap_or(rest),
        _ => aor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_parts_of_addresses_of_record() {
        assert_eq!(user_part("sip:+46701234567@10.0.0.10"), "+46701234567");
        assert_eq!(
            user_part("<sips:agent.4711@cc.example;user=phone>"),
            "agent.4711"
        );
        assert_eq!(user_part("tel:+46771177177"), "tel:+46771177177");
    }
}
