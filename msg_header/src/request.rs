//! Requests and their reply types: what a typed `ask` returns.

use crate::{BoxMsg, Msg, MsgType};

/// A message answered with a reply of one type, declared with
/// `msg_serde_macro! { struct Get("kv::Get") -> Value { .. } }`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` declares no reply type, so `ask` cannot say what comes back",
    label = "a message without `-> Reply`",
    note = "declare it `struct Name(\"wire::Name\") -> Reply {{ .. }}`, or ask with `.into_box_msg()` for the reply as it comes"
)]
pub trait Request: MsgType {
    /// The message the destination replies with.
    type Reply: MsgType;
}

/// What can be asked, and what the answer is: a [`Request`] gets its
/// [`Request::Reply`]; a [`BoxMsg`] (a message of a type known only at run
/// time) gets whatever comes back.
///
/// ```
/// # mod ipchnl { pub use msg_header::Asked; pub use msg_header::BoxMsg; pub use msg_header::MsgHeader; pub use msg_header::MsgId; pub use msg_header::RawMsg; }
/// use ipchnl::{Asked, BoxMsg, MsgHeader, MsgId, RawMsg};
///
/// // A boxed request gets any answer back, as it came.
/// let reply: BoxMsg = Box::new(RawMsg::new(MsgHeader::new(MsgId::of_name("x")), b"{}".to_vec()));
/// assert!(<BoxMsg as Asked>::answer(reply).is_ok());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` declares no reply type, so `ask` cannot say what comes back",
    label = "a request without `-> Reply`",
    note = "declare it `struct Name(\"wire::Name\") -> Reply {{ .. }}`, or ask with `.into_box_msg()` for the reply as it comes"
)]
pub trait Asked {
    /// What the answer is.
    type Answer;

    /// The request, boxed for the send.
    fn into_request(self) -> BoxMsg;

    /// The answer out of the reply that came; the reply itself when it is
    /// of another type than the request names.
    fn answer(reply: BoxMsg) -> Result<Self::Answer, BoxMsg>;
}

impl Asked for BoxMsg {
    type Answer = BoxMsg;

    fn into_request(self) -> BoxMsg {
        self
    }

    fn answer(reply: BoxMsg) -> Result<BoxMsg, BoxMsg> {
        Ok(reply)
    }
}

impl<M: Request + Msg> Asked for M {
    type Answer = M::Reply;

    fn into_request(self) -> BoxMsg {
        Box::new(self)
    }

    fn answer(reply: BoxMsg) -> Result<M::Reply, BoxMsg> {
        reply.downcast::<M::Reply>().map(|r| *r).map_err(|e| e.into_inner())
    }
}
