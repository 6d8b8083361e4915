//! What a node's links hold together, against its budgets
//! ([`NodeLimits`]): read buffers grown for large frames (reserved before
//! they grow, so the budget is never passed), inbound messages delivered
//! and not yet handled, and output waiting to be written (summed by each
//! executor over its links as it flushes them). Each link's own bounds
//! stay; these bound their sum, so that one process, however many links
//! it opens, costs the others only the budget.
//!
//! Past a budget, the links holding any of it read no more (so none holds
//! more); past it for [`NodeLimits::budget_grace`], each executor cuts its
//! link holding the most, one a check, until the node is under again.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use connection::BudgetKind;

use crate::NodeLimits;

/// The node's budgets and what its links hold against them.
pub(crate) struct Budgets {
    max_read: usize,
    max_inbound: usize,
    max_output: usize,
    /// Read buffer bytes reserved beyond each link's base.
    read: AtomicUsize,
    /// Per executor, at its last flush: its links' inbound bytes held, and
    /// their output.
    inbound: Box<[AtomicUsize]>,
    output: Box<[AtomicUsize]>,
    /// Per executor and budget kind (read buffers, inbound, output): what
    /// its link holding the most holds, so that only the executor with the
    /// node's largest holder cuts it.
    largest: Box<[[AtomicUsize; 3]]>,
    /// Reads that waited for the read budget.
    read_waits: AtomicU64,
}

/// Which budgets the node is over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Over {
    pub(crate) read: bool,
    pub(crate) inbound: bool,
    pub(crate) output: bool,
}

impl Over {
    pub(crate) fn any(self) -> bool {
        self.read || self.inbound || self.output
    }

    /// The first budget it is over, in the order links are cut for them.
    pub(crate) fn kind(self) -> Option<BudgetKind> {
        if self.output {
            Some(BudgetKind::Output)
        } else if self.inbound {
            Some(BudgetKind::Inbound)
        } else if self.read {
            Some(BudgetKind::ReadBuffers)
        } else {
            None
        }
    }
}

impl Budgets {
    pub(crate) fn new(limits: &NodeLimits, executors: usize) -> Self {
        let slots = || (0..executors.max(1)).map(|_| AtomicUsize::new(0)).collect();
        Self {
            max_read: limits.max_read_buffers,
            max_inbound: limits.max_inbound_total,
            max_output: limits.max_output_total,
            read: AtomicUsize::new(0),
            inbound: slots(),
            output: slots(),
            largest: (0..executors.max(1)).map(|_| Default::default()).collect(),
            read_waits: AtomicU64::new(0),
        }
    }

    /// Reserves `bytes` of read buffer, if the budget has them.
    pub(crate) fn reserve_read(&self, bytes: usize) -> bool {
        let ok = self
            .read
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |r| {
                r.checked_add(bytes).filter(|&total| total <= self.max_read)
            })
            .is_ok();
        if !ok {
            self.read_waits.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Gives back `bytes` of read buffer.
    pub(crate) fn release_read(&self, bytes: usize) {
        if bytes > 0 {
            self.read.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    /// What executor `index`'s links hold now, and what its largest holder
    /// of each kind holds (read buffers, inbound, output).
    pub(crate) fn publish(&self, index: usize, inbound: usize, output: usize, largest: [usize; 3]) {
        let i = index.min(self.inbound.len() - 1);
        self.inbound[i].store(inbound, Ordering::Relaxed);
        self.output[i].store(output, Ordering::Relaxed);
        for (slot, held) in self.largest[i].iter().zip(largest) {
            slot.store(held, Ordering::Relaxed);
        }
    }

    /// Whether `held` of `kind` is as much as any executor's largest
    /// holder holds: only such a link is cut for the node's budget.
    pub(crate) fn is_largest(&self, kind: BudgetKind, held: usize) -> bool {
        let k = kind_index(kind);
        self.largest.iter().all(|l| l[k].load(Ordering::Relaxed) <= held)
    }

    /// Whether the node holds three quarters of a budget or more (then
    /// executors look at every flush, so as not to overshoot it).
    pub(crate) fn is_near(&self) -> bool {
        let sum = |v: &[AtomicUsize]| v.iter().map(|a| a.load(Ordering::Relaxed)).sum::<usize>();
        let near = |held: usize, max: usize| held >= max / 4 * 3;
        near(self.read.load(Ordering::Relaxed), self.max_read)
            || near(sum(&self.inbound), self.max_inbound)
            || near(sum(&self.output), self.max_output)
    }

    /// Which budgets are passed (the read budget: nearly, a growth of a
    /// frame's size from full).
    pub(crate) fn over(&self, max_frame: usize) -> Over {
        let sum = |v: &[AtomicUsize]| v.iter().map(|a| a.load(Ordering::Relaxed)).sum::<usize>();
        Over {
            read: self.read.load(Ordering::Acquire).saturating_add(max_frame / 2) > self.max_read,
            inbound: sum(&self.inbound) > self.max_inbound,
            output: sum(&self.output) > self.max_output,
        }
    }

    /// What the links hold: read buffers, inbound, output; and the reads
    /// that waited for the read budget.
    pub(crate) fn snapshot(&self) -> (usize, usize, usize, u64) {
        let sum = |v: &[AtomicUsize]| v.iter().map(|a| a.load(Ordering::Relaxed)).sum::<usize>();
        (
            self.read.load(Ordering::Acquire),
            sum(&self.inbound),
            sum(&self.output),
            self.read_waits.load(Ordering::Relaxed),
        )
    }
}

/// A budget kind's place in per-kind arrays.
pub(crate) fn kind_index(kind: BudgetKind) -> usize {
    match kind {
        BudgetKind::Inbound => 1,
        BudgetKind::Output => 2,
        _ => 0,
    }
}

/// How often an executor over one of the node's budgets looks again, and
/// cuts at most one link.
pub(crate) const BUDGET_CHECK: Duration = Duration::from_millis(10);

/// An executor's watch over the node's budgets: since when the node is
/// over one, and when to look again.
#[derive(Default)]
pub(crate) struct Watch {
    over_since: Option<Instant>,
    /// Since when the node is under its budgets again, while `over_since`
    /// still counts (see [`over`](Self::over)).
    under_since: Option<Instant>,
    /// The last look over a budget cut a link for the read budget.
    cut_read: bool,
    /// No link is cut for the read budget before this (see
    /// [`read_cut`](Self::read_cut)).
    next_read_cut: Option<Instant>,
    next_check: Option<Instant>,
    /// The node held three quarters of a budget at the last look.
    near: bool,
}

/// What an executor does about the budgets on a look.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// Its links holding any of these stop reading.
    pub(crate) pause: Over,
    /// Its link holding the most of this is cut.
    pub(crate) cut: Option<BudgetKind>,
}

impl Watch {
    /// Whether to look at every flush: near a budget, or over one.
    pub(crate) fn is_close(&self) -> bool {
        self.near || self.next_check.is_some()
    }

    /// Notes whether the node holds three quarters of a budget or more.
    pub(crate) fn set_near(&mut self, near: bool) {
        self.near = near;
    }

    /// When to look again (a timer): while over a budget.
    pub(crate) fn next_check(&self) -> Option<Instant> {
        self.next_check
    }

    /// The node is under its budgets again at `now`: whether links paused
    /// for them may read again (the first look under).
    pub(crate) fn under(&mut self, now: Instant) -> bool {
        self.next_check = None;
        if self.over_since.is_none() || self.under_since.is_some() {
            return false;
        }
        self.under_since = Some(now);
        true
    }

    /// The node is over the budgets `over` at `now`: what to do, if it is
    /// time to look again (every [`BUDGET_CHECK`]). Past `grace` over them,
    /// the link holding the most of the first is cut. Over the read
    /// budget again right after a cut for it (under it for less than the
    /// grace), the grace is not started anew: links that all wait for
    /// room (each holding part of a message it cannot finish) take what a
    /// cut frees at once, and would otherwise be cut one a grace. Any
    /// other dip starts it anew: links that drain (handlers, writes,
    /// messages made whole) make those.
    pub(crate) fn over(&mut self, over: Over, now: Instant, grace: Duration) -> Option<Verdict> {
        if self.next_check.is_some_and(|t| now < t) {
            return None;
        }
        self.next_check = Some(now + BUDGET_CHECK);
        if let Some(t) = self.under_since.take() {
            let refilled = self.cut_read
                && over.kind() == Some(BudgetKind::ReadBuffers)
                && now.duration_since(t) < grace;
            if !refilled {
                self.over_since = None;
            }
        }
        let since = *self.over_since.get_or_insert(now);
        let cut = over.kind().filter(|kind| {
            now.duration_since(since) >= grace
                && (*kind != BudgetKind::ReadBuffers || self.next_read_cut.is_none_or(|t| now >= t))
        });
        self.cut_read = cut == Some(BudgetKind::ReadBuffers);
        Some(Verdict { pause: over, cut })
    }

    /// A link holding `held` bytes of the read budget `max_read` was cut
    /// at `now`: the next cut for it waits `grace` times the share of the
    /// budget this one freed. Cuts then free at most about the budget per
    /// grace, and what the allocator keeps of the freed memory for a while
    /// (jemalloc's dirty pages, about a second) stays within about the
    /// budget too, however fast links that wait take the room.
    pub(crate) fn read_cut(&mut self, held: usize, max_read: usize, grace: Duration, now: Instant) {
        let share = held as f64 / max_read.max(1) as f64;
        self.next_read_cut = Some(now + grace.mul_f64(share.min(1.0)));
    }
}

/// Of `(holding, link id, key)`, the key of the link holding the most (the
/// oldest link of those holding as much); none if none holds anything.
pub(crate) fn largest(links: impl Iterator<Item = (usize, u64, usize)>) -> Option<(usize, usize)> {
    links
        .filter(|(held, ..)| *held > 0)
        .max_by_key(|(held, id, _)| (*held, std::cmp::Reverse(*id)))
        .map(|(held, _, key)| (held, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> NodeLimits {
        NodeLimits {
            max_read_buffers: 100,
            max_inbound_total: 50,
            max_output_total: 50,
            ..NodeLimits::default()
        }
    }

    #[test]
    fn read_buffers_are_reserved_never_past_the_budget() {
        let b = Budgets::new(&limits(), 2);
        assert!(b.reserve_read(60));
        assert!(!b.reserve_read(41), "past the budget");
        assert!(b.reserve_read(40));
        b.release_read(60);
        assert!(b.reserve_read(60));
        assert_eq!(b.snapshot().3, 1, "one read waited");
    }

    #[test]
    fn inbound_and_output_are_summed_over_executors() {
        let b = Budgets::new(&limits(), 2);
        b.publish(0, 30, 10, [0, 30, 10]);
        b.publish(1, 10, 10, [0, 10, 10]);
        assert!(!b.over(0).any());
        b.publish(1, 30, 45, [0, 30, 40]);
        let over = b.over(0);
        assert!(over.inbound && over.output && !over.read);
        assert_eq!(over.kind(), Some(BudgetKind::Output), "output is cut first");
        // Only the executor holding the node's largest holder cuts it.
        assert!(b.is_largest(BudgetKind::Output, 40) && !b.is_largest(BudgetKind::Output, 10));
        b.publish(0, 0, 0, [0; 3]);
        b.publish(1, 0, 0, [0; 3]);
        assert!(!b.over(0).any());
    }

    #[test]
    fn over_a_budget_links_pause_at_once_and_the_largest_is_cut_after_the_grace() {
        let mut w = Watch::default();
        let t0 = Instant::now();
        let grace = Duration::from_secs(1);
        let over = Over { output: true, ..Over::default() };
        let v = w.over(over, t0, grace).expect("a first look");
        assert_eq!(v, Verdict { pause: over, cut: None });
        assert!(w.over(over, t0 + Duration::from_millis(1), grace).is_none(), "not again so soon");
        assert_eq!(w.next_check(), Some(t0 + BUDGET_CHECK));
        let v = w.over(over, t0 + grace, grace).expect("a look");
        assert_eq!(v.cut, Some(BudgetKind::Output));
        let t1 = t0 + grace + BUDGET_CHECK;
        assert!(w.under(t1), "paused links read again");
        assert!(!w.under(t1 + BUDGET_CHECK));
        assert_eq!(w.next_check(), None);
        // Over the output again, even after a dip: the grace starts anew.
        assert_eq!(w.over(over, t1 + BUDGET_CHECK * 2, grace).expect("a look").cut, None);
    }

    #[test]
    fn the_read_budget_refilled_right_after_a_cut_does_not_start_its_grace_anew() {
        let mut w = Watch::default();
        let t0 = Instant::now();
        let grace = Duration::from_secs(1);
        let read = Over { read: true, ..Over::default() };
        assert_eq!(w.over(read, t0, grace).expect("a first look").cut, None);
        // Dips with no cut before them (messages made whole) start it anew.
        assert!(w.under(t0 + BUDGET_CHECK));
        assert_eq!(w.over(read, t0 + grace / 2, grace).expect("a look").cut, None);
        assert!(w.under(t0 + grace / 2 + BUDGET_CHECK));
        let t0 = t0 + grace;
        assert_eq!(w.over(read, t0, grace).expect("a look").cut, None, "half a grace over in all");
        assert_eq!(w.over(read, t0 + grace, grace).expect("a look").cut, Some(BudgetKind::ReadBuffers));
        // A cut frees room, waiting links take it at once: over again.
        let t1 = t0 + grace + BUDGET_CHECK;
        assert!(w.under(t1));
        let v = w.over(read, t1 + BUDGET_CHECK, grace).expect("a look");
        assert_eq!(v.cut, Some(BudgetKind::ReadBuffers), "the next holder is cut without a new grace");
        // Over the output too: its holder is not cut without a grace.
        let t2 = t1 + BUDGET_CHECK * 2;
        assert!(w.under(t2));
        let both = Over { read: true, output: true, ..Over::default() };
        assert_eq!(w.over(both, t2 + BUDGET_CHECK, grace).expect("a look").cut, None);
        // Under for the grace: the next time over has a grace of its own.
        let mut w = Watch::default();
        assert_eq!(w.over(read, t0 + grace, grace).expect("a look").cut, None);
        assert_eq!(w.over(read, t0 + grace * 2, grace).expect("a look").cut, Some(BudgetKind::ReadBuffers));
        assert!(w.under(t0 + grace * 2 + BUDGET_CHECK));
        assert_eq!(w.over(read, t0 + grace * 3 + BUDGET_CHECK, grace).expect("a look").cut, None);
    }

    #[test]
    fn cuts_for_the_read_budget_free_about_the_budget_per_grace() {
        let mut w = Watch::default();
        let t0 = Instant::now();
        let grace = Duration::from_secs(1);
        let read = Over { read: true, ..Over::default() };
        assert_eq!(w.over(read, t0, grace).expect("a look").cut, None);
        assert_eq!(w.over(read, t0 + grace, grace).expect("a look").cut, Some(BudgetKind::ReadBuffers));
        // The link cut held a quarter of the budget: the next waits a
        // quarter of the grace, paused meanwhile.
        w.read_cut(25, 100, grace, t0 + grace);
        let t1 = t0 + grace + BUDGET_CHECK;
        assert!(w.under(t1));
        let v = w.over(read, t1 + BUDGET_CHECK, grace).expect("a look");
        assert_eq!(v, Verdict { pause: read, cut: None });
        let v = w.over(read, t0 + grace + grace / 4, grace).expect("a look");
        assert_eq!(v.cut, Some(BudgetKind::ReadBuffers));
    }

    #[test]
    fn the_largest_holder_is_cut_the_oldest_of_equals_first() {
        assert_eq!(largest([(5, 1, 10), (9, 2, 20), (9, 3, 30), (0, 4, 40)].into_iter()), Some((9, 20)));
        assert_eq!(largest([(0, 1, 10)].into_iter()), None);
    }
}
