//! What a session has to write: the frames it encoded and, between them,
//! bytes of blobs that go from where they lie (the pieces of a large
//! message), not copied into the session's buffer first. The caller writes
//! it a slice at a time ([`Output::front`]).

use std::collections::VecDeque;
use std::ops::Range;

use msg_header::Bytes;

/// The write buffer a session keeps once it has written everything: one
/// that grew past this in a burst gives the rest back.
pub(crate) const OUT_KEEP: usize = 256 * 1024;

/// A slice of a blob at least this long is written from where it lies; a
/// shorter one is copied (a write of its own would cost more than the copy).
pub(crate) const SHARED_MIN: usize = 4 << 10;

/// Bytes queued before the tail.
enum Piece {
    /// Encoded frames.
    Own(Vec<u8>),
    /// A slice of a blob.
    Shared(Bytes, Range<usize>),
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        match self {
            Self::Own(v) => v,
            Self::Shared(b, r) => &b[r.clone()],
        }
    }
}

/// A session's output, in order: the queued pieces, then the tail it
/// appends frames to.
#[derive(Default)]
pub(crate) struct Output {
    queue: VecDeque<Piece>,
    /// Bytes of the queue not yet written.
    queued: usize,
    /// Bytes of the queue's first piece written.
    pos: usize,
    tail: Vec<u8>,
    /// Bytes of the tail written (while the queue is empty).
    tail_pos: usize,
}

impl Output {
    /// Where frames are appended (after everything else).
    pub(crate) fn tail(&mut self) -> &mut Vec<u8> {
        &mut self.tail
    }

    /// Bytes not yet written.
    pub(crate) fn len(&self) -> usize {
        self.queued + self.tail.len() - self.tail_pos
    }

    /// Whether everything is written.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `range` of `blob`: from where it lies if `share` and it is
    /// long enough, else copied.
    pub(crate) fn push_blob(&mut self, blob: &Bytes, range: Range<usize>, share: bool) {
        if !share || range.len() < SHARED_MIN {
            self.tail.extend_from_slice(&blob[range]);
            return;
        }
        if self.tail.len() > self.tail_pos {
            let own = if self.tail_pos == 0 {
                std::mem::take(&mut self.tail)
            } else {
                let rest = self.tail[self.tail_pos..].to_vec();
                self.tail.clear();
                rest
            };
            self.queued += own.len();
            self.queue.push_back(Piece::Own(own));
        } else {
            self.tail.clear();
        }
        self.tail_pos = 0;
        self.queued += range.len();
        self.queue.push_back(Piece::Shared(blob.clone(), range));
    }

    /// The next bytes to write (empty: none).
    pub(crate) fn front(&self) -> &[u8] {
        match self.queue.front() {
            Some(p) => &p.bytes()[self.pos..],
            None => &self.tail[self.tail_pos..],
        }
    }

    /// The next bytes to write, as up to `slices.len()` slices in order
    /// (for a vectored write); how many.
    pub(crate) fn fronts<'a>(&'a self, slices: &mut [&'a [u8]]) -> usize {
        let mut n = 0;
        for (slot, bytes) in slices.iter_mut().zip(self.pending()) {
            *slot = bytes;
            n += 1;
        }
        n
    }

    /// What is not yet written, in order: a slice per piece (none empty).
    fn pending(&self) -> impl Iterator<Item = &[u8]> {
        let first = self.queue.front().map(|p| &p.bytes()[self.pos..]);
        let rest = self.queue.iter().skip(1).map(Piece::bytes);
        let tail = (self.tail.len() > self.tail_pos).then(|| &self.tail[self.tail_pos..]);
        first.into_iter().chain(rest).chain(tail)
    }

    /// `n` bytes were written, from the [`front`](Self::front) on (they
    /// may span pieces, as a vectored write of [`fronts`](Self::fronts)).
    pub(crate) fn advance(&mut self, mut n: usize) {
        while n > 0 && !self.queue.is_empty() {
            let done = n.min(self.front().len());
            self.advance_front(done);
            n -= done;
        }
        if n > 0 {
            self.tail_written(n);
        }
    }

    /// `n` bytes of the queue's first piece were written.
    fn advance_front(&mut self, n: usize) {
        let Some(first) = self.queue.front() else { return };
        let len = first.bytes().len();
        let n = n.min(len - self.pos);
        self.pos += n;
        self.queued -= n;
        if self.pos < len {
            return;
        }
        self.pos = 0;
        if let Some(Piece::Own(mut v)) = self.queue.pop_front()
            && self.tail.capacity() == 0
            && v.capacity() <= OUT_KEEP
        {
            // Its buffer serves as the tail's again.
            v.clear();
            self.tail = v;
        }
    }

    /// `n` more bytes of the tail were written: what was written goes once
    /// it is all, or half, of the tail (a link that never quite catches up
    /// would keep every byte it ever sent otherwise).
    fn tail_written(&mut self, n: usize) {
        self.tail_pos = (self.tail_pos + n).min(self.tail.len());
        if self.tail_pos == self.tail.len() {
            self.tail.clear();
            self.tail.shrink_to(OUT_KEEP);
            self.tail_pos = 0;
        } else if self.tail_pos >= self.tail.len() - self.tail_pos {
            self.tail.drain(..self.tail_pos);
            self.tail_pos = 0;
        }
    }

    /// Hands what is not yet written to `f`, in order, and forgets it.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(&[u8])) {
        for bytes in self.pending() {
            f(bytes);
        }
        self.clear();
    }

    /// Forgets what is not yet written.
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.queued = 0;
        self.pos = 0;
        self.tail.clear();
        self.tail.shrink_to(OUT_KEEP);
        self.tail_pos = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes everything, `chunk` bytes at most per write.
    fn write_all(out: &mut Output, chunk: usize) -> Vec<u8> {
        let mut wire = Vec::new();
        while !out.is_empty() {
            let front = out.front();
            let n = front.len().min(chunk);
            wire.extend_from_slice(&front[..n]);
            out.advance(n);
        }
        wire
    }

    #[test]
    fn frames_and_shared_blob_slices_are_written_in_order() {
        let blob = Bytes::from((0..20_000u32).map(|i| i as u8).collect::<Vec<u8>>());
        for share in [true, false] {
            let mut out = Output::default();
            out.tail().extend_from_slice(b"head1");
            out.push_blob(&blob, 0..10_000, share);
            out.push_blob(&blob, 10_000..10_010, share);
            out.tail().extend_from_slice(b"head2");
            out.push_blob(&blob, 10_010..20_000, share);
            out.tail().extend_from_slice(b"end");
            let mut expected = b"head1".to_vec();
            expected.extend_from_slice(&blob[..10_010]);
            expected.extend_from_slice(b"head2");
            expected.extend_from_slice(&blob[10_010..]);
            expected.extend_from_slice(b"end");
            assert_eq!(out.len(), expected.len());
            assert!(write_all(&mut out, 3000) == expected, "share: {share}");
            assert_eq!(out.len(), 0);
        }
    }

    #[test]
    fn a_partly_written_tail_keeps_its_place_before_a_blob() {
        let blob = Bytes::from(vec![7u8; 8192]);
        let mut out = Output::default();
        out.tail().extend_from_slice(b"0123456789");
        out.advance(4);
        out.push_blob(&blob, 0..8192, true);
        out.tail().extend_from_slice(b"after");
        let mut expected = b"456789".to_vec();
        expected.extend_from_slice(&blob);
        expected.extend_from_slice(b"after");
        assert!(write_all(&mut out, 1000) == expected);
    }

    #[test]
    fn a_vectored_write_takes_several_pieces_at_once() {
        let blob = Bytes::from(vec![9u8; 6000]);
        let mut out = Output::default();
        out.tail().extend_from_slice(b"head");
        out.push_blob(&blob, 0..6000, true);
        out.tail().extend_from_slice(b"tail");
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&blob);
        expected.extend_from_slice(b"tail");
        let mut wire = Vec::new();
        while !out.is_empty() {
            let mut slices = [&[][..]; 2];
            let n = out.fronts(&mut slices);
            // A write that stops partway through the second slice.
            let bytes: Vec<u8> = slices[..n].concat().into_iter().take(4100).collect();
            wire.extend_from_slice(&bytes);
            out.advance(bytes.len());
        }
        assert!(wire == expected);
    }

    #[test]
    fn drain_hands_over_what_is_left_in_order() {
        let blob = Bytes::from(vec![1u8; 5000]);
        let mut out = Output::default();
        out.tail().extend_from_slice(b"abc");
        out.push_blob(&blob, 0..5000, true);
        out.tail().extend_from_slice(b"xyz");
        out.advance(1);
        let mut got = Vec::new();
        out.drain(|b| got.extend_from_slice(b));
        let mut expected = b"bc".to_vec();
        expected.extend_from_slice(&blob);
        expected.extend_from_slice(b"xyz");
        assert!(got == expected);
        assert!(out.is_empty() && out.front().is_empty());
    }
}
