//! Frames written by handlers running on the executor that owns their link:
//! encoded straight into a buffer of the thread, moved to the link when the
//! handler returns, with no hand-off through the mailbox.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use actor::ActorSender;
use msg_header::BoxMsg;

use crate::executor::ExecutorHandle;
use crate::peer::Peer;

/// One frame in the outbox: `bytes[start..end]`.
pub(crate) struct Item {
    pub(crate) peer: Arc<Peer>,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) msg: BoxMsg,
    pub(crate) reply_to: Option<ActorSender>,
    /// Owed to a full window (not counted in it).
    pub(crate) owed: bool,
}

/// The frames written on this thread and not yet moved to their links.
#[derive(Default)]
pub(crate) struct Outbox {
    pub(crate) bytes: Vec<u8>,
    pub(crate) items: Vec<Item>,
}

thread_local! {
    /// The executor this thread runs (the address of its handle), or 0.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
    static OUTBOX: RefCell<Outbox> = RefCell::new(Outbox::default());
}

fn address(handle: &ExecutorHandle) -> usize {
    std::ptr::from_ref(handle) as usize
}

/// Marks this thread as the one that runs `handle`'s executor.
pub(crate) fn enter(handle: &ExecutorHandle) {
    CURRENT.with(|c| c.set(address(handle)));
}

/// Whether this thread runs `handle`'s executor.
pub(crate) fn is_current(handle: &ExecutorHandle) -> bool {
    CURRENT.with(Cell::get) == address(handle)
}

/// Appends the frame `encode` writes; its span, to [`commit`] at once.
/// `None` if the outbox is in use (a send made while it is being emptied).
pub(crate) fn write<E>(
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Option<Result<(usize, usize), E>> {
    OUTBOX.with(|o| {
        let mut o = o.try_borrow_mut().ok()?;
        let start = o.bytes.len();
        Some(match encode(&mut o.bytes) {
            Ok(()) => Ok((start, o.bytes.len())),
            Err(e) => {
                o.bytes.truncate(start);
                Err(e)
            }
        })
    })
}

/// Records the frame [`write`] just wrote as `msg`'s, for `peer`.
pub(crate) fn commit(
    peer: &Arc<Peer>,
    (start, end): (usize, usize),
    msg: BoxMsg,
    reply_to: Option<ActorSender>,
    owed: bool,
) {
    OUTBOX.with(|o| {
        if let Ok(mut o) = o.try_borrow_mut() {
            o.items.push(Item { peer: peer.clone(), start, end, msg, reply_to, owed });
        }
    });
}

/// Whether anything waits in the outbox.
pub(crate) fn is_empty() -> bool {
    OUTBOX.with(|o| o.try_borrow().is_ok_and(|o| o.items.is_empty()))
}

/// Takes what is in the outbox, leaving it empty (its buffer is kept by
/// the caller and handed back with [`give_back`]).
pub(crate) fn take() -> Outbox {
    OUTBOX.with(|o| o.try_borrow_mut().map(|mut o| std::mem::take(&mut *o)).unwrap_or_default())
}

/// Hands back an emptied outbox, so its buffers are reused.
pub(crate) fn give_back(mut outbox: Outbox) {
    outbox.bytes.clear();
    outbox.items.clear();
    OUTBOX.with(|o| {
        if let Ok(mut o) = o.try_borrow_mut() {
            if o.items.is_empty() && o.bytes.capacity() < outbox.bytes.capacity() {
                *o = outbox;
            }
        }
    });
}
