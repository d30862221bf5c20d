//! The 2xx to an INVITE over UDP is re-sent until the ACK arrives (RFC 3261 §13.3.1.4): first
//! after T1, the interval doubling up to T2, for at most 64·T1; then the call is ended with a
//! BYE, since an SRC that never saw our answer will not send the media or the BYE we wait for.
//!
//! The schedule is a plain iterator, so its timing is tested without sleeping; [`wait`] waits
//! out one step unless the ACK comes first, and the caller sends.

use std::time::Duration;
use tokio::sync::watch;

/// RFC 3261 §17.1.1.1 (the value it recommends; a recorder has no reason to differ). T1 is
/// `SipConfig::t1`: 500 ms, shorter only in a debug build's tests.
pub const T2: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Wait this long, then send the 2xx again.
    Resend(Duration),
    /// Wait this long, then give up (64·T1 after the first send).
    GiveUp(Duration),
}

/// The waits after the first send of a 2xx, ending with the one before giving up.
pub fn schedule(t1: Duration, t2: Duration) -> impl Iterator<Item = Step> {
    let limit = t1 * 64;
    let mut elapsed = Duration::ZERO;
    let mut interval = t1;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        if elapsed + interval < limit {
            elapsed += interval;
            let step = Step::Resend(interval);
            interval = (interval * 2).min(t2);
            Some(step)
        } else {
            done = true;
            Some(Step::GiveUp(limit - elapsed))
        }
    })
}

/// What to do after waiting out one step.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// The ACK came (or the dialog ended: nothing is left to confirm). Stop.
    Acked,
    Resend,
    GiveUp,
}

/// Waits out `step` unless `acked` turns true first.
pub async fn wait(step: Step, acked: &mut watch::Receiver<bool>) -> Next {
    let (duration, then) = match step {
        Step::Resend(d) => (d, Next::Resend),
        Step::GiveUp(d) => (d, Next::GiveUp),
    };
    tokio::select! {
        // An error means the sender (the dialog) is gone.
        _ = acked.wait_for(|a| *a) => Next::Acked,
        () = tokio::time::sleep(duration) => then,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_double_from_t1_to_t2_and_stop_at_64_t1() {
        let ms = Duration::from_millis;
        let steps: Vec<Step> = schedule(ms(500), T2).collect();
        let mut expected: Vec<Step> = [500, 1000, 2000]
            .into_iter()
            .chain([4000; 7])
            .map(|m| Step::Resend(ms(m)))
            .collect();
        // Sent at 0.5, 1.5, 3.5, 7.5, 11.5 … 31.5 s; given up at 32 s = 64·T1.
        expected.push(Step::GiveUp(ms(500)));
        assert_eq!(steps, expected);
        let total: Duration = steps
            .iter()
            .map(|s| match s {
                Step::Resend(d) | Step::GiveUp(d) => *d,
            })
            .sum();
        assert_eq!(total, ms(500) * 64);
    }

    #[test]
    fn a_short_t2_caps_every_interval() {
        let ms = Duration::from_millis;
        let steps: Vec<Step> = schedule(ms(100), ms(150)).collect();
        assert_eq!(steps[0], Step::Resend(ms(100)));
        assert!(
            steps[1..steps.len() - 1]
                .iter()
                .all(|s| *s == Step::Resend(ms(150)))
        );
        assert_eq!(steps.len(), 1 + 41 + 1, "100 + 41·150 = 6250 < 6400 ms");
        assert_eq!(steps.last(), Some(&Step::GiveUp(ms(150))));
    }

    #[tokio::test]
    async fn waiting_stops_at_the_ack_or_when_the_dialog_is_gone() {
        let long = Step::Resend(Duration::from_secs(3600));
        let (tx, mut rx) = watch::channel(false);
        tx.send_replace(true);
        assert_eq!(
            wait(long, &mut rx).await,
            Next::Acked,
            "already acknowledged"
        );
        let (tx, mut rx) = watch::channel(false);
        drop(tx);
        assert_eq!(wait(long, &mut rx).await, Next::Acked, "dialog ended");
        let (_tx, mut rx) = watch::channel(false);
        let tiny = Duration::from_millis(1);
        assert_eq!(wait(Step::Resend(tiny), &mut rx).await, Next::Resend);
        assert_eq!(wait(Step::GiveUp(tiny), &mut rx).await, Next::GiveUp);
    }
}
