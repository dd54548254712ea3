//! The share rule of the instance pool as plain bookkeeping (no locks, no
//! waiting): who holds how many invocation slots, who waits, and which
//! waiter the next free slot goes to. [`super::InstancePool`] wraps it in a
//! lock and turns its decisions into woken tasks.
//!
//! The rule, for `C` slots and `N` running workloads:
//!
//! - A workload's **share** is `⌊C / N⌋` (at least 1), or its own
//!   `max_instances` if that is smaller.
//! - A workload holding fewer slots than its share takes any free slot.
//! - A workload at or over its share **borrows** a free slot only if, after
//!   taking it, the free slots still cover the largest unused share of any
//!   other workload (`share − held`). So one workload alone may use the
//!   whole pool, but while others run it never takes the slots one of them
//!   would need to reach its share at once.
//! - Waiters are served under-share first, then fewest slots held, then in
//!   arrival order. A workload over its share therefore never gets a slot
//!   while one under its share waits for it.

use std::collections::BTreeMap;

/// A workload registered with the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(u64);

/// A request waiting for a slot; tickets are numbered in arrival order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

#[derive(Debug, Clone, Copy)]
struct Member {
    /// The workload's own bound (`limits.max_instances`).
    max: u32,
    held: u32,
}

/// Slots, members and waiters of one pool.
#[derive(Debug)]
pub struct Ledger {
    capacity: u32,
    /// Slots taken, including those of members that have left since.
    used: u32,
    members: BTreeMap<MemberId, Member>,
    waiting: BTreeMap<Ticket, MemberId>,
    next_member: u64,
    next_ticket: u64,
}

impl Ledger {
    /// A ledger of `capacity` slots, none taken.
    pub fn new(capacity: u32) -> Ledger {
        Ledger {
            capacity,
            used: 0,
            members: BTreeMap::new(),
            waiting: BTreeMap::new(),
            next_member: 0,
            next_ticket: 0,
        }
    }

    /// Registers a workload that may hold at most `max` slots.
    pub fn join(&mut self, max: u32) -> MemberId {
        let id = MemberId(self.next_member);
        self.next_member += 1;
        self.members.insert(id, Member { max, held: 0 });
        id
    }

    /// Removes `member`: it no longer counts in the shares, and its waiting
    /// tickets are withdrawn (returned, so that their tasks can be told).
    /// Slots it still holds stay taken until released.
    pub fn leave(&mut self, member: MemberId) -> Vec<Ticket> {
        self.members.remove(&member);
        let tickets: Vec<Ticket> = self
            .waiting
            .iter()
            .filter(|(_, m)| **m == member)
            .map(|(t, _)| *t)
            .collect();
        for ticket in &tickets {
            self.waiting.remove(ticket);
        }
        tickets
    }

    /// Whether `member` is registered.
    pub fn has(&self, member: MemberId) -> bool {
        self.members.contains_key(&member)
    }

    /// Slots not taken.
    pub fn free(&self) -> u32 {
        self.capacity.saturating_sub(self.used)
    }

    /// Slots taken.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// Slots `member` holds.
    pub fn held(&self, member: MemberId) -> u32 {
        self.members.get(&member).map_or(0, |m| m.held)
    }

    /// The slots `member` is guaranteed (see the module doc).
    pub fn share(&self, member: MemberId) -> u32 {
        self.members.get(&member).map_or(0, |m| self.share_of(m))
    }

    fn share_of(&self, member: &Member) -> u32 {
        let running = u32::try_from(self.members.len().max(1)).unwrap_or(u32::MAX);
        member.max.min((self.capacity / running).max(1))
    }

    /// Whether `member` may take a free slot now, ignoring who waits.
    pub fn may_take(&self, member: MemberId) -> bool {
        self.eligible(member, &Unused::of(self))
    }

    fn eligible(&self, member: MemberId, unused: &Unused) -> bool {
        let Some(m) = self.members.get(&member) else {
            return false;
        };
        let free = self.free();
        free > 0
            && m.held < m.max
            && (m.held < self.share_of(m) || free > unused.largest_besides(member))
    }

    /// Takes a slot for `member` at once if nobody waits and the rule lets
    /// it; a request that cannot is [`enqueue`](Self::enqueue)d instead.
    pub fn try_take(&mut self, member: MemberId) -> bool {
        if !self.waiting.is_empty() || !self.may_take(member) {
            return false;
        }
        self.take(member);
        true
    }

    /// Queues a request of `member`; [`grant_next`](Self::grant_next)
    /// serves it.
    pub fn enqueue(&mut self, member: MemberId) -> Ticket {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.waiting.insert(ticket, member);
        ticket
    }

    /// Withdraws a request that stopped waiting; false if it was served
    /// (or withdrawn) already.
    pub fn cancel(&mut self, ticket: Ticket) -> bool {
        self.waiting.remove(&ticket).is_some()
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Serves the waiter the rule puts first, if a free slot may go to
    /// anyone: it now holds the slot.
    pub fn grant_next(&mut self) -> Option<(Ticket, MemberId)> {
        if self.free() == 0 {
            return None;
        }
        let unused = Unused::of(self);
        let (_, ticket, member) = self
            .waiting
            .iter()
            .filter(|(_, m)| self.eligible(**m, &unused))
            .filter_map(|(t, m)| {
                let held = self.members.get(m)?;
                let over = held.held >= self.share_of(held);
                Some(((over, held.held, *t), *t, *m))
            })
            .min_by_key(|(key, _, _)| *key)?;
        self.waiting.remove(&ticket);
        self.take(member);
        Some((ticket, member))
    }

    /// Gives back a slot `member` held (also after it left).
    pub fn release(&mut self, member: MemberId) {
        self.used = self.used.saturating_sub(1);
        if let Some(m) = self.members.get_mut(&member) {
            m.held = m.held.saturating_sub(1);
        }
    }

    fn take(&mut self, member: MemberId) {
        self.used += 1;
        if let Some(m) = self.members.get_mut(&member) {
            m.held += 1;
        }
    }
}

/// The two largest unused shares (`share − held`) of the members, so that
/// "the largest of any *other* member" costs nothing per waiter.
struct Unused {
    first: (Option<MemberId>, u32),
    second: u32,
}

impl Unused {
    fn of(ledger: &Ledger) -> Unused {
        let mut unused = Unused {
            first: (None, 0),
            second: 0,
        };
        for (id, m) in &ledger.members {
            let value = ledger.share_of(m).saturating_sub(m.held);
            if value > unused.first.1 {
                unused.second = unused.first.1;
                unused.first = (Some(*id), value);
            } else if value > unused.second {
                unused.second = value;
            }
        }
        unused
    }

    fn largest_besides(&self, member: MemberId) -> u32 {
        if self.first.0 == Some(member) {
            self.second
        } else {
            self.first.1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes slots for `member` until the rule refuses; how many it got.
    fn fill(ledger: &mut Ledger, member: MemberId) -> u32 {
        let mut n = 0;
        while ledger.try_take(member) {
            n += 1;
        }
        n
    }

    #[test]
    fn a_workload_alone_may_use_the_whole_pool() {
        let mut ledger = Ledger::new(10);
        let a = ledger.join(100);
        assert_eq!(ledger.share(a), 10);
        assert_eq!(fill(&mut ledger, a), 10);
        assert_eq!(ledger.free(), 0);
    }

    #[test]
    fn a_workload_never_holds_more_than_its_own_bound() {
        let mut ledger = Ledger::new(10);
        let a = ledger.join(3);
        assert_eq!(fill(&mut ledger, a), 3);
        assert_eq!(ledger.free(), 7);
    }

    #[test]
    fn a_borrower_leaves_an_idle_neighbour_its_share() {
        let mut ledger = Ledger::new(9);
        let a = ledger.join(9);
        let b = ledger.join(9);
        assert_eq!((ledger.share(a), ledger.share(b)), (4, 4));
        // Four within its share, one borrowed from the rounding; then the
        // four slots left are the neighbour's share.
        assert_eq!(fill(&mut ledger, a), 5);
        assert_eq!(ledger.free(), 4);
        assert!(!ledger.may_take(a));
        assert_eq!(fill(&mut ledger, b), 4);
        assert_eq!(ledger.free(), 0);
    }

    #[test]
    fn a_neighbour_with_a_small_bound_keeps_only_what_it_can_use() {
        let mut ledger = Ledger::new(10);
        let a = ledger.join(10);
        let b = ledger.join(2);
        assert_eq!(ledger.share(b), 2);
        assert_eq!(fill(&mut ledger, a), 8);
        assert_eq!(fill(&mut ledger, b), 2);
    }

    #[test]
    fn with_several_neighbours_the_largest_unused_share_stays_free() {
        let mut ledger = Ledger::new(12);
        let [a, b, c] = [ledger.join(12), ledger.join(12), ledger.join(12)];
        assert_eq!(fill(&mut ledger, b), 8);
        // b borrowed down to one idle neighbour's share (4): a gets it at
        // once, and c waits for the first slot released.
        assert_eq!(fill(&mut ledger, a), 4);
        assert!(!ledger.try_take(c));
        let ticket = ledger.enqueue(c);
        ledger.release(b);
        assert_eq!(ledger.grant_next(), Some((ticket, c)));
    }

    #[test]
    fn under_share_waiters_come_before_earlier_over_share_ones() {
        let mut ledger = Ledger::new(4);
        let a = ledger.join(4);
        assert_eq!(fill(&mut ledger, a), 4);
        // b starts while a holds everything: a is now over its share of 2.
        let b = ledger.join(4);
        let a_waits = ledger.enqueue(a);
        let b_waits = ledger.enqueue(b);
        ledger.release(a);
        assert_eq!(ledger.grant_next(), Some((b_waits, b)));
        ledger.release(a);
        // a holds 2, its share; borrowing the free slot would eat the one
        // b has not used yet. a waits on, b's next request is served.
        assert_eq!(ledger.grant_next(), None);
        let b_again = ledger.enqueue(b);
        assert_eq!(ledger.grant_next(), Some((b_again, b)));
        assert!(ledger.cancel(a_waits));
    }

    #[test]
    fn among_under_share_waiters_the_one_holding_fewest_goes_first() {
        let mut ledger = Ledger::new(6);
        let [a, b, c] = [ledger.join(6), ledger.join(6), ledger.join(6)];
        assert!(ledger.try_take(a) && ledger.try_take(a));
        assert!(ledger.try_take(b) && ledger.try_take(b));
        assert!(ledger.try_take(c) && ledger.try_take(c));
        ledger.release(a);
        ledger.release(c);
        // a holds 1, b 2, c 1, two free: b's ticket is first but holds most.
        let b_waits = ledger.enqueue(b);
        let c_waits = ledger.enqueue(c);
        let a_waits = ledger.enqueue(a);
        assert_eq!(ledger.grant_next(), Some((c_waits, c)));
        assert_eq!(ledger.grant_next(), Some((a_waits, a)));
        assert_eq!(ledger.grant_next(), None);
        assert!(ledger.cancel(b_waits));
    }

    #[test]
    fn leaving_withdraws_the_waiters_and_widens_the_shares() {
        let mut ledger = Ledger::new(8);
        let a = ledger.join(8);
        let b = ledger.join(8);
        assert_eq!(fill(&mut ledger, a), 4);
        let a_waits = ledger.enqueue(a);
        let b_waits = ledger.enqueue(b);
        assert_eq!(ledger.grant_next(), Some((b_waits, b)));
        let b_again = ledger.enqueue(b);
        assert_eq!(ledger.leave(b), vec![b_again]);
        // b's slot stays taken until released; a alone may now take the rest.
        assert_eq!(ledger.share(a), 8);
        assert_eq!(ledger.grant_next(), Some((a_waits, a)));
        assert_eq!(fill(&mut ledger, a), 2);
        assert_eq!(ledger.free(), 0);
        ledger.release(b);
        assert_eq!((ledger.used(), ledger.held(a)), (7, 7));
    }

    /// Random joins, requests and releases: after every step no slot is
    /// free while a waiter under its share waits, an over-share waiter waits
    /// only because borrowing would eat a neighbour's unused share, and the
    /// slots held add up.
    #[test]
    fn the_rule_holds_under_random_traffic() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut ledger = Ledger::new(16);
        let members: Vec<MemberId> = (0..4).map(|i| ledger.join(4 + 4 * i)).collect();
        let mut holding: Vec<MemberId> = Vec::new();
        for _ in 0..5000 {
            let member = members[next(4) as usize];
            match next(3) {
                0 if !ledger.try_take(member) => {
                    ledger.enqueue(member);
                }
                0 => holding.push(member),
                1 if !holding.is_empty() => {
                    let released = holding.swap_remove(next(holding.len() as u64) as usize);
                    ledger.release(released);
                }
                _ => {}
            }
            while let Some((_, granted)) = ledger.grant_next() {
                holding.push(granted);
            }
            assert_eq!(ledger.used() as usize, holding.len());
            assert!(ledger.used() <= 16);
            let unused = Unused::of(&ledger);
            for member in ledger.waiting.values() {
                let m = ledger.members[member];
                if m.held < m.max && m.held < ledger.share_of(&m) {
                    assert_eq!(ledger.free(), 0, "an under-share waiter waits");
                } else if m.held < m.max && ledger.free() > 0 {
                    assert!(ledger.free() - 1 < unused.largest_besides(*member));
                }
            }
        }
    }
}
