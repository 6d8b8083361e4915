//! The messages a link owes its peer: sent by handlers while the window was
//! full, kept in order until acknowledgements make room. Their encoded
//! frames share one buffer, so a stream that runs ahead of its window
//! (every send beyond it is owed) costs no allocation per message.

use std::collections::VecDeque;

/// Past this many bytes already paid at the front, the buffer is compacted
/// (when they are also half of it): the copy is paid for by as many bytes
/// of frames sent.
const COMPACT_AFTER: usize = 64 * 1024;

/// Owed messages, oldest first.
pub(crate) struct OwedQueue<M> {
    /// The frames, back to back; `bytes[head..]` is still owed.
    bytes: Vec<u8>,
    head: usize,
    items: VecDeque<Owed<M>>,
    /// How many of `items` have no window place yet.
    unplaced: usize,
}

/// One owed message: its frame's length in the buffer and the message
/// itself (reported as a dead letter if it is never sent).
pub(crate) struct Owed<M> {
    len: usize,
    /// The message.
    pub(crate) msg: M,
    /// It has its window place already (it came after an owed one).
    pub(crate) placed: bool,
}

impl<M> Default for OwedQueue<M> {
    fn default() -> Self {
        Self { bytes: Vec::new(), head: 0, items: VecDeque::new(), unplaced: 0 }
    }
}

impl<M> OwedQueue<M> {
    /// How many messages are owed.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is owed.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Owes `msg`, encoded as `frame`, behind the others.
    pub(crate) fn push(&mut self, frame: &[u8], msg: M, placed: bool) {
        self.bytes.extend_from_slice(frame);
        self.unplaced += usize::from(!placed);
        self.items.push_back(Owed { len: frame.len(), msg, placed });
    }

    /// How many owed messages have no window place yet.
    pub(crate) fn unplaced(&self) -> usize {
        self.unplaced
    }

    /// Whether the oldest owed message has its window place already.
    pub(crate) fn front_placed(&self) -> Option<bool> {
        self.items.front().map(|o| o.placed)
    }

    /// Takes the oldest owed message and hands its frame to `send`.
    pub(crate) fn pop_with<R>(&mut self, send: impl FnOnce(&[u8], Owed<M>) -> R) -> Option<R> {
        let owed = self.items.pop_front()?;
        self.unplaced -= usize::from(!owed.placed);
        let (start, end) = (self.head, self.head + owed.len);
        let out = send(&self.bytes[start..end], owed);
        self.head = end;
        if self.items.is_empty() {
            self.bytes.clear();
            self.head = 0;
        } else if self.head >= COMPACT_AFTER && self.head * 2 >= self.bytes.len() {
            self.bytes.drain(..self.head);
            self.head = 0;
        }
        Some(out)
    }

    /// Takes every owed message, unsent (their link is gone).
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Owed<M>> + '_ {
        self.bytes.clear();
        self.head = 0;
        self.unplaced = 0;
        self.items.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pop(q: &mut OwedQueue<u32>) -> Option<(Vec<u8>, u32, bool)> {
        q.pop_with(|frame, o| (frame.to_vec(), o.msg, o.placed))
    }

    #[test]
    fn frames_come_back_in_order_with_their_messages() {
        let mut q = OwedQueue::default();
        assert!(q.is_empty() && q.front_placed().is_none());
        q.push(b"one", 1, false);
        q.push(b"second", 2, true);
        assert_eq!((q.len(), q.front_placed(), q.unplaced()), (2, Some(false), 1));
        assert_eq!(pop(&mut q), Some((b"one".to_vec(), 1, false)));
        assert_eq!(q.unplaced(), 0);
        q.push(b"3", 3, true);
        assert_eq!(pop(&mut q), Some((b"second".to_vec(), 2, true)));
        assert_eq!(pop(&mut q), Some((b"3".to_vec(), 3, true)));
        assert_eq!(pop(&mut q), None);
        assert!(q.bytes.is_empty(), "an emptied queue keeps no bytes");
    }

    #[test]
    fn a_queue_never_empty_stays_bounded_by_what_it_owes() {
        let mut q = OwedQueue::default();
        let frame = [7u8; 100];
        q.push(&frame, 0, false);
        for i in 1..100_000u32 {
            q.push(&frame, i, false);
            let (got, msg, _) = pop(&mut q).unwrap();
            assert_eq!((got.len(), msg), (100, i - 1));
            assert!(q.bytes.len() <= 2 * COMPACT_AFTER + 200, "compacted as it goes");
        }
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn draining_gives_every_message_back() {
        let mut q = OwedQueue::default();
        for i in 0..5u32 {
            q.push(b"frame", i, i % 2 == 0);
        }
        assert_eq!(q.unplaced(), 2);
        let msgs: Vec<u32> = q.drain().map(|o| o.msg).collect();
        assert_eq!(msgs, [0, 1, 2, 3, 4]);
        assert!(q.is_empty() && q.bytes.is_empty() && q.unplaced() == 0);
    }
}
