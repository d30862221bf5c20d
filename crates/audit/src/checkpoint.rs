//! Signed statements "the chain had head `hash` at entry `seq`".

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Hash;

/// Domain separation from entry hashes and from any other use of the same key.
const DOMAIN: &[u8] = b"callvault-checkpoint-v1\0";
const MESSAGE_LEN: usize = DOMAIN.len() + 8 + 32 + 16;

/// A signed chain head. A hash chain alone only shows that the record is self-consistent: whoever
/// can write the database can recompute every hash after an edit. A signature by a key the
/// database does not hold pins the head, and a copy in the external [`sink`](crate::sink) pins it
/// even against someone who holds the key too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The entry whose hash is signed.
    pub seq: u64,
    /// That entry's chain hash.
    pub hash: Hash,
    /// When it was signed; covered by the signature.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Ed25519 over `"callvault-checkpoint-v1\0" || seq BE || hash || time unix nanos i128 BE`.
    #[serde(with = "hex64")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    pub fn sign(key: &SigningKey, seq: u64, hash: Hash, time: OffsetDateTime) -> Self {
        let signature = key.sign(&message(seq, &hash, time)).to_bytes();
        Checkpoint {
            seq,
            hash,
            time,
            signature,
        }
    }

    /// Strict verification: rejects non-canonical signatures and weak keys, so that a checkpoint
    /// has exactly one valid signature and cannot be re-encoded into a second one.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let sig = Signature::from_bytes(&self.signature);
        key.verify_strict(&message(self.seq, &self.hash, self.time), &sig)
            .is_ok()
    }
}

fn message(seq: u64, hash: &Hash, time: OffsetDateTime) -> [u8; MESSAGE_LEN] {
    let mut m = [0u8; MESSAGE_LEN];
    let (domain, rest) = m.split_at_mut(DOMAIN.len());
    domain.copy_from_slice(DOMAIN);
    let (s, rest) = rest.split_at_mut(8);
    s.copy_from_slice(&seq.to_be_bytes());
    let (h, t) = rest.split_at_mut(32);
    h.copy_from_slice(&hash.0);
    t.copy_from_slice(&time.unix_timestamp_nanos().to_be_bytes());
    m
}

/// Signatures as 128 lowercase hex digits, like hashes.
mod hex64 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(text.as_ref(), &mut out)
            .map_err(|_| D::Error::custom("signature must be 128 hexadecimal digits"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    #[test]
    fn sign_verify_and_tamper() {
        let t = datetime!(2025-01-02 03:04:05.5 UTC);
        let cp = Checkpoint::sign(&key(1), 10, Hash([7; 32]), t);
        assert!(cp.verify(&key(1).verifying_key()));
        assert!(!cp.verify(&key(2).verifying_key()));
        let mut c = cp.clone();
        c.seq = 11;
        assert!(!c.verify(&key(1).verifying_key()));
        let mut c = cp.clone();
        c.hash = Hash([8; 32]);
        assert!(!c.verify(&key(1).verifying_key()));
        let mut c = cp.clone();
        c.time += time::Duration::nanoseconds(1);
        assert!(!c.verify(&key(1).verifying_key()));
        let mut c = cp.clone();
        c.signature[0] ^= 1;
        assert!(!c.verify(&key(1).verifying_key()));
    }

    /// The vector in docs/audit-format.md: seed 32 x 0x01, the entry test vector's hash.
    #[test]
    fn checkpoint_test_vector() {
        let hash: Hash = "c9a3f86127cf3f097317228645b41fa4ec6d938c6a8a75dc73df6a9b0c055e00"
            .parse()
            .unwrap();
        let t = datetime!(2025-01-02 03:05:00 UTC);
        let m = message(7, &hash, t);
        assert_eq!(
            hex::encode(m),
            concat!(
                "63616c6c7661756c742d636865636b706f696e742d763100",
                "0000000000000007",
                "c9a3f86127cf3f097317228645b41fa4ec6d938c6a8a75dc73df6a9b0c055e00",
                "00000000000000001816c12bbd349800",
            )
        );
        let cp = Checkpoint::sign(&key(1), 7, hash, t);
        assert_eq!(
            hex::encode(key(1).verifying_key().as_bytes()),
            "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
        );
        assert_eq!(
            hex::encode(cp.signature),
            concat!(
                "f6fe763fee56f92bc838d89263e6367be2981ecbaa88b661de0f83f7fc7e835d",
                "801223119cd5ad83f6be3e76923ae448e7d825e1e8d2bf2b1ad8aff7ef863007",
            )
        );
    }

    #[test]
    fn json_round_trip() {
        let cp = Checkpoint::sign(
            &key(1),
            3,
            Hash([9; 32]),
            datetime!(2025-01-02 03:04:05.000000001 UTC),
        );
        let json = serde_json::to_string(&cp).unwrap();
        assert!(json.contains(&hex::encode(cp.signature)));
        let back: Checkpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cp);
        assert!(back.verify(&key(1).verifying_key()));
    }
}
