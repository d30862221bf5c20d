//! Things that go stale while nobody looks: the software itself and the audit chain's last
//! verification.

use super::{Finding, Severity};
use crate::audit_log::LastVerification;

/// When the source this binary was built from was last changed (Unix seconds; see build.rs).
pub fn source_epoch() -> i64 {
    env!("CALLVAULT_SOURCE_EPOCH").parse().unwrap_or(0)
}

/// Software older than `max_days` is outdated; twice as old, dangerously so.
pub fn software_age(built: i64, now: i64, max_days: u64) -> Option<Finding> {
    let age_days = (now - built).max(0) / 86_400;
    let max = i64::try_from(max_days).unwrap_or(i64::MAX);
    if age_days <= max {
        return None;
    }
    Some(Finding {
        id: "software_outdated",
        severity: if age_days > max.saturating_mul(2) {
            Severity::High
        } else {
            Severity::Medium
        },
        explanation: format!(
            "this callvault build is from source {age_days} days old (limit {max_days}): it lacks every fix made since"
        ),
        fix: "upgrade callvault (or raise posture.max_software_age_days if a reviewed release policy says so)".into(),
    })
}

/// The chain must be verified at least every `2 × interval`; a deployment younger than that
/// (its first audit entry at `since`) has not missed a verification yet.
pub fn audit_verification(
    last: Option<&LastVerification>,
    since: Option<i64>,
    now: i64,
    interval_secs: u64,
) -> Option<Finding> {
    if let Some(l) = last.filter(|l| !l.intact) {
        return Some(Finding {
            id: "audit_chain_broken",
            severity: Severity::High,
            explanation: format!(
                "the last verification of the audit chain (at Unix time {}) found it broken: entries were altered, removed or reordered",
                l.at
            ),
            fix: "run `callvault audit verify` to name the first bad entry, compare with the external sink and the backups, and treat it as an incident".into(),
        });
    }
    let reference = last.map(|l| l.at).or(since)?;
    let limit = 2 * i64::try_from(interval_secs).unwrap_or(i64::MAX / 4);
    (now - reference > limit).then(|| Finding {
        id: "audit_not_verified",
        severity: Severity::Medium,
        explanation: match last {
            Some(l) => format!(
                "the audit chain was last verified {} hours ago",
                (now - l.at) / 3_600
            ),
            None => "the audit chain has never been verified".into(),
        },
        fix: "run `callvault audit verify` (a running full node verifies every audit.verify_interval_secs; check that one is up)".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn software_age_turns_medium_then_high() {
        let now = 1_000 * DAY;
        assert!(software_age(now - 10 * DAY, now, 180).is_none());
        assert!(software_age(now + DAY, now, 180).is_none());
        let old = software_age(now - 200 * DAY, now, 180).unwrap();
        assert_eq!(
            (old.id, old.severity),
            ("software_outdated", Severity::Medium)
        );
        assert_eq!(
            software_age(now - 400 * DAY, now, 180).unwrap().severity,
            Severity::High
        );
    }

    #[test]
    fn this_build_knows_its_source_date() {
        let now = crate::clock::unix_now();
        let built = source_epoch();
        assert!(built > 1_700_000_000 && built <= now + DAY, "{built}");
    }

    #[test]
    fn verification_must_be_recent_and_intact() {
        let now = 100 * DAY;
        let ok = |at| LastVerification { at, intact: true };
        // A young deployment has not missed one; an old one that never verified has.
        assert!(audit_verification(None, Some(now - DAY), now, DAY as u64).is_none());
        assert!(audit_verification(None, None, now, DAY as u64).is_none());
        let never = audit_verification(None, Some(now - 3 * DAY), now, DAY as u64).unwrap();
        assert_eq!(never.id, "audit_not_verified");
        assert!(audit_verification(Some(&ok(now - DAY)), Some(0), now, DAY as u64).is_none());
        let stale = audit_verification(Some(&ok(now - 3 * DAY)), Some(0), now, DAY as u64);
        assert_eq!(stale.unwrap().severity, Severity::Medium);
        let broken = LastVerification {
            at: now,
            intact: false,
        };
        let f = audit_verification(Some(&broken), Some(0), now, DAY as u64).unwrap();
        assert_eq!((f.id, f.severity), ("audit_chain_broken", Severity::High));
    }
}
