//! Which sequence numbers of a call are acknowledged, as sorted disjoint ranges: a call with a
//! few gaps costs a few words however long it runs.

use std::ops::Range;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Acked(Vec<Range<u64>>);

impl Acked {
    pub fn from_sorted(seqs: impl IntoIterator<Item = u64>) -> Self {
        let mut a = Self::default();
        for s in seqs {
            a.insert(s);
        }
        a
    }

    pub fn contains(&self, seq: u64) -> bool {
        self.0.iter().any(|r| r.contains(&seq))
    }

    pub fn insert(&mut self, seq: u64) {
        if self.contains(seq) {
            return;
        }
        let at = self.0.partition_point(|r| r.end < seq);
        match self.0.get_mut(at) {
            Some(r) if r.end == seq => {
                r.end += 1;
                if self.0.get(at + 1).is_some_and(|next| next.start == seq + 1) {
                    let next = self.0.remove(at + 1);
                    self.0[at].end = next.end;
                }
            }
            Some(r) if r.start == seq + 1 => r.start = seq,
            _ => self.0.insert(at, seq..seq + 1),
        }
    }

    /// The newest acknowledged sequence number.
    pub fn highest(&self) -> Option<u64> {
        self.0.last().map(|r| r.end - 1)
    }

    /// Every chunk below this is acknowledged.
    pub fn contiguous(&self) -> u64 {
        match self.0.first() {
            Some(r) if r.start == 0 => r.end,
            _ => 0,
        }
    }

    /// The ranges below `end` that are not acknowledged, as `[first, last]` pairs.
    pub fn missing_below(&self, end: u64) -> Vec<[u64; 2]> {
        let mut out = Vec::new();
        let mut next = 0;
        for r in &self.0 {
            if r.start >= end {
                break;
            }
            if r.start > next {
                out.push([next, r.start - 1]);
            }
            next = r.end;
        }
        if next < end {
            out.push([next, end - 1]);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_report_gaps() {
        let mut a = Acked::default();
        for s in [0, 1, 5, 3, 2, 7] {
            a.insert(s);
        }
        a.insert(2);
        assert_eq!(a.0, vec![0..4, 5..6, 7..8]);
        assert_eq!((a.contiguous(), a.highest()), (4, Some(7)));
        assert_eq!(a.missing_below(10), vec![[4, 4], [6, 6], [8, 9]]);
        a.insert(4);
        a.insert(6);
        assert_eq!(a.0, vec![0..8]);
        assert!(a.missing_below(8).is_empty());
        let b = Acked::from_sorted([2, 3]);
        assert_eq!((b.contiguous(), b.missing_below(4)), (0, vec![[0, 1]]));
        assert_eq!(Acked::default().highest(), None);
    }
}
