//! Holds: what a message read from a link keeps of its link until it is
//! handled (memory counted against the link's bound, and the way back to
//! its sender if it is not handled).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, ThreadId};

use msg_header::{BoxMsg, UnhandledReason};

/// Where the bytes of a [`Hold`] go back to: a link's count of the memory
/// its inbound messages hold, which bounds how much it reads.
pub trait HoldPool: Send + Sync {
    /// `bytes` are no longer held.
    fn release(&self, bytes: usize);

    /// The message held was not handled (it became a dead letter on this
    /// node): its sender, on the link's other end, is told. By default,
    /// nobody is.
    fn unhandled(&self, _msg: &BoxMsg, _reason: UnhandledReason) {}

    /// The message of link sequence number `seq`, held with
    /// [`Hold::with_receipt`], was handled or returned: it may be
    /// acknowledged. By default, nothing happens.
    fn handled(&self, _seq: u64) {}
}

/// Bytes of a link's inbound memory held by one message until it is
/// handled: given back to its pool when dropped, wherever that happens (a
/// handler ran, the message became a dead letter). See
/// [`Route::deliver_held`](crate::Route::deliver_held).
pub struct Hold {
    pool: PoolRef,
    bytes: usize,
    /// The link sequence number whose acknowledgement waits for this
    /// message's handling; 0 for none.
    receipt: u64,
}

/// How a hold reaches its pool.
enum PoolRef {
    /// By reference: the message may be handled on any thread.
    Shared(Arc<dyn HoldPool>),
    /// By the number of a [`LocalPool`] of the thread that made the hold.
    Local(u64),
}

impl Hold {
    /// Holds `bytes` of `pool` (which the caller has counted already).
    pub fn new(pool: Arc<dyn HoldPool>, bytes: usize) -> Self {
        Self { pool: PoolRef::Shared(pool), bytes, receipt: 0 }
    }

    /// As [`new`](Self::new), for the message of link sequence number
    /// `seq` (at least 1), whose acknowledgement waits until it is handled:
    /// the pool hears of it ([`HoldPool::handled`]) from
    /// [`handled`](Self::handled) or [`unhandled`](Self::unhandled). A hold
    /// dropped without either (its message refused, or lost with its
    /// executor) says nothing: that message was not handled.
    pub fn with_receipt(pool: Arc<dyn HoldPool>, bytes: usize, seq: u64) -> Self {
        Self { pool: PoolRef::Shared(pool), bytes, receipt: seq }
    }

    /// The message this hold came with was handled (its handler ran).
    pub fn handled(self) {
        if self.receipt != 0 {
            self.with_pool(|pool| pool.handled(self.receipt));
        }
    }

    /// `msg`, which this hold came with, was not handled: the pool's link
    /// returns it to its sender; then the bytes are given back.
    pub fn unhandled(self, msg: &BoxMsg, reason: UnhandledReason) {
        self.with_pool(|pool| {
            pool.unhandled(msg, reason);
            // Returned, it is settled: acknowledged after the DEAD frame.
            if self.receipt != 0 {
                pool.handled(self.receipt);
            }
        });
    }

    /// Runs `f` with the pool, if it can be reached from this thread (a
    /// local pool cannot from another thread, nor once unregistered).
    fn with_pool(&self, f: impl FnOnce(&dyn HoldPool)) {
        match &self.pool {
            PoolRef::Shared(pool) => f(&**pool),
            PoolRef::Local(token) => {
                // Out of the table before the call, which may register or
                // unregister pools itself.
                let pool = LOCAL_POOLS.try_with(|t| t.borrow().get(token).cloned()).ok().flatten();
                if let Some(pool) = pool {
                    f(&*pool);
                }
            }
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // A local hold counts no bytes: its message waits on no other thread.
        if let PoolRef::Shared(pool) = &self.pool {
            pool.release(self.bytes);
        }
    }
}

impl fmt::Debug for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hold({} bytes)", self.bytes)
    }
}

thread_local! {
    /// The pools registered on this thread, by number.
    static LOCAL_POOLS: RefCell<HashMap<u64, Arc<dyn HoldPool>>> = RefCell::new(HashMap::new());
}

/// Numbers pools uniquely across threads, so that a hold taken to another
/// thread never finds a pool there.
static NEXT_LOCAL: AtomicU64 = AtomicU64::new(1);

/// A pool registered on the calling thread, for the messages that are
/// handled on the thread that read them: their holds name the pool by
/// number instead of counting a reference to it, so that such a hold costs
/// no atomic operation. Unregistered when dropped on that thread.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use actor::{HoldPool, LocalPool};
///
/// #[derive(Default)]
/// struct Acks(AtomicU64);
/// impl HoldPool for Acks {
///     fn release(&self, _bytes: usize) {}
///     fn handled(&self, seq: u64) { self.0.store(seq, Ordering::SeqCst); }
/// }
///
/// let acks = Arc::new(Acks::default());
/// let local = LocalPool::register(acks.clone());
/// local.hold(Some(7)).handled();
/// assert_eq!(acks.0.load(Ordering::SeqCst), 7);
/// ```
pub struct LocalPool {
    token: u64,
    thread: ThreadId,
}

impl LocalPool {
    /// Registers `pool` on this thread.
    pub fn register(pool: Arc<dyn HoldPool>) -> Self {
        let token = NEXT_LOCAL.fetch_add(1, Ordering::Relaxed);
        // A thread that is ending has no table left: holds of this pool
        // then reach nothing, as from another thread.
        let _ = LOCAL_POOLS.try_with(|t| t.borrow_mut().insert(token, pool));
        Self { token, thread: thread::current().id() }
    }

    /// Whether this pool was registered on the calling thread.
    pub fn is_current(&self) -> bool {
        self.thread == thread::current().id()
    }

    /// A hold of no bytes for a message handled on this thread; with a
    /// receipt, for the message of that sequence number (see
    /// [`Hold::with_receipt`]). Its pool is reached only from this thread:
    /// elsewhere, [`Hold::handled`] and [`Hold::unhandled`] do nothing.
    pub fn hold(&self, receipt: Option<u64>) -> Hold {
        Hold { pool: PoolRef::Local(self.token), bytes: 0, receipt: receipt.unwrap_or(0) }
    }
}

impl Drop for LocalPool {
    fn drop(&mut self) {
        if self.is_current() {
            let _ = LOCAL_POOLS.try_with(|t| t.borrow_mut().remove(&self.token));
        }
    }
}

impl fmt::Debug for LocalPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalPool({})", self.token)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use msg_header::IntoBoxMsg;

    use super::*;

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl HoldPool for Log {
        fn release(&self, bytes: usize) {
            self.0.lock().unwrap().push(format!("release {bytes}"));
        }
        fn unhandled(&self, _msg: &BoxMsg, reason: UnhandledReason) {
            self.0.lock().unwrap().push(format!("unhandled {reason:?}"));
        }
        fn handled(&self, seq: u64) {
            self.0.lock().unwrap().push(format!("handled {seq}"));
        }
    }

    fn taken(log: &Log) -> Vec<String> {
        std::mem::take(&mut *log.0.lock().unwrap())
    }

    fn msg() -> BoxMsg {
        echo_req::EchoReq::new(1, 2).into_box_msg()
    }

    #[test]
    fn a_shared_hold_gives_its_bytes_back_and_reports_its_receipt() {
        let log = Arc::new(Log::default());
        Hold::new(log.clone(), 10).handled();
        assert_eq!(taken(&log), ["release 10"]);
        Hold::with_receipt(log.clone(), 5, 3).handled();
        assert_eq!(taken(&log), ["handled 3", "release 5"]);
        Hold::with_receipt(log.clone(), 5, 4).unhandled(&msg(), UnhandledReason::ActorStopped);
        assert_eq!(taken(&log), ["unhandled ActorStopped", "handled 4", "release 5"]);
        drop(Hold::with_receipt(log.clone(), 1, 9));
        assert_eq!(taken(&log), ["release 1"], "dropped unsettled: no receipt");
    }

    #[test]
    fn a_local_hold_reaches_its_pool_on_its_thread_only_and_counts_nothing() {
        let log = Arc::new(Log::default());
        let local = LocalPool::register(log.clone());
        assert!(local.is_current());
        local.hold(None).handled();
        local.hold(Some(2)).handled();
        local.hold(None).unhandled(&msg(), UnhandledReason::Shutdown);
        assert_eq!(taken(&log), ["handled 2", "unhandled Shutdown"]);

        // Taken to another thread, it finds no pool there.
        let hold = local.hold(Some(5));
        thread::spawn(move || hold.handled()).join().unwrap();
        assert!(taken(&log).is_empty());

        // Unregistered, its holds reach nothing, and the pool is let go.
        let hold = local.hold(Some(6));
        drop(local);
        hold.handled();
        assert!(taken(&log).is_empty());
        assert_eq!(Arc::strong_count(&log), 1);
    }
}
