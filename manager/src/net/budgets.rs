//! What the driver does for the node's budgets: it adds up what this
//! executor's links hold, and carries out what the budgets' watch
//! (`crate::budget`, free of I/O) decides.

use connection::{BudgetKind, CloseReason};
use std::time::Instant;

use super::{Host, Io, Net};
use crate::budget;
use crate::throttle::warn_throttled;

/// How often a busy executor adds up what its links hold for the node's
/// budgets: every this many flushes (a look at every link and a few
/// atomic stores, 2-4% of a shared-memory round trip when done at every
/// flush), before it sleeps, and at every flush while near or over one.
pub(super) const EVERY_FLUSHES: u32 = 32;

impl Net {
    /// The executor is about to sleep: what its links counted and hold is
    /// brought up to date.
    pub(crate) fn before_sleep<H: Host + ?Sized>(&mut self, host: &H) {
        self.publish_counters();
        if self.has_io() {
            self.check_budgets(host);
        }
    }

    /// Adds up what this executor's links hold for the node's budgets and
    /// does what the watch over them says: over one, the links holding any
    /// of it read no more (for the read budget: those waiting for it); over
    /// one for the grace, the link holding the most is cut, one every
    /// [`BUDGET_CHECK`](crate::budget::BUDGET_CHECK) (over the read
    /// budget again right after a cut for it, the grace is not waited for
    /// anew). Under them again, they read on.
    pub(super) fn check_budgets<H: Host + ?Sized>(&mut self, host: &H) {
        let (mut inbound, mut output, mut largest) = (0, 0, [0; 3]);
        for (_, io) in self.io.iter() {
            if let Io::Link(link) = io {
                let held = [
                    link.core.holding(BudgetKind::ReadBuffers),
                    link.core.inbound_held(),
                    link.core.pending_output(),
                ];
                inbound += held[1];
                output += held[2];
                for (most, h) in largest.iter_mut().zip(held) {
                    *most = (*most).max(h);
                }
            }
        }
        let budgets = host.budgets();
        budgets.publish(self.index, inbound, output, largest);
        self.budgets.set_near(budgets.is_near());
        let over = budgets.over(host.config().link.max_frame);
        if !over.any() {
            if self.budgets.under(Instant::now())
                || self.io.iter().any(|(_, io)| matches!(io, Io::Link(l) if l.core.is_budget_paused()))
            {
                for key in self.keys() {
                    if self.link(key).is_some_and(|l| l.core.set_budget_paused(false)) {
                        self.ready.push(key);
                    }
                }
            }
            return;
        }
        let Some(verdict) = self.budgets.over(over, Instant::now(), host.config().limits.budget_grace) else {
            return;
        };
        self.timers_changed = true;
        for (_, io) in self.io.iter_mut() {
            if let Io::Link(link) = io {
                let c = &mut link.core;
                let p = verdict.pause;
                if (p.inbound && c.inbound_held() > 0) || (p.output && c.pending_output() > 0) {
                    let _ = c.set_budget_paused(true);
                }
            }
        }
        let Some(kind) = verdict.cut else { return };
        let holders = self.io.iter().filter_map(|(key, io)| match io {
            Io::Link(link) => Some((link.core.holding(kind), link.core.id(), key)),
            Io::Listener(_) => None,
        });
        // Only the executor with the node's largest holder cuts: another's
        // links may hold little.
        if let Some((held, key)) =
            budget::largest(holders).filter(|(held, _)| budgets.is_largest(kind, *held))
        {
            warn_throttled!(
                host.throttle(),
                "budget",
                budget = kind.key(),
                held,
                "over the node's budget: the link holding the most is cut"
            );
            if kind == BudgetKind::ReadBuffers {
                let limits = &host.config().limits;
                self.budgets.read_cut(held, limits.max_read_buffers, limits.budget_grace, Instant::now());
            }
            self.fail(host, key, CloseReason::Budget(kind));
        }
    }
}
