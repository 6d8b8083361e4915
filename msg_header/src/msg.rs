//! The message traits.

use std::any::Any;
use std::fmt;

use crate::{DowncastError, MsgError, MsgHeader, MsgId};

/// A message: anything with a [`MsgHeader`] that can be sent to an actor.
///
/// Object safe: messages travel as [`BoxMsg`] and their header is read with
/// a trait call. Declare messages with `msg_serde_macro!` or
/// `msg_local_macro!` rather than implementing this by hand.
pub trait Msg: Any + Send + fmt::Debug {
    /// The header.
    fn header(&self) -> &MsgHeader;

    /// The header, to be stamped by a send.
    fn header_mut(&mut self) -> &mut MsgHeader;

    /// The wire name the message's id is the hash of, e.g. `echo_req::EchoReq`.
    fn name(&self) -> &'static str;

    /// The wire encoding, or `None` for a local-only message (one that may
    /// hold a channel and so can never leave its process).
    fn as_wire(&self) -> Option<&dyn WireMsg> {
        None
    }
}

/// A message on its way: boxed, its type known only by its [`MsgId`].
pub type BoxMsg = Box<dyn Msg>;

impl dyn Msg {
    /// The message type, read from the header (no hashing).
    #[inline]
    pub fn msg_id(&self) -> MsgId {
        self.header().msg_id()
    }

    /// Whether the message is a `T`.
    pub fn is<T: Msg>(&self) -> bool {
        let any: &dyn Any = self;
        any.is::<T>()
    }

    /// The message as a `T`, if it is one.
    pub fn downcast_ref<T: Msg>(&self) -> Option<&T> {
        let any: &dyn Any = self;
        any.downcast_ref()
    }

    /// The message as a mutable `T`, if it is one.
    pub fn downcast_mut<T: Msg>(&mut self) -> Option<&mut T> {
        let any: &mut dyn Any = self;
        any.downcast_mut()
    }

    /// Takes the concrete message out of the box; a message of another type
    /// is an error that hands the message back.
    ///
    /// ```
    /// # use msg_header::*;
    /// # #[derive(Debug)] struct Ping(MsgHeader);
    /// # impl Msg for Ping {
    /// #     fn header(&self) -> &MsgHeader { &self.0 }
    /// #     fn header_mut(&mut self) -> &mut MsgHeader { &mut self.0 }
    /// #     fn name(&self) -> &'static str { "Ping" }
    /// # }
    /// # impl MsgType for Ping { const NAME: &'static str = "Ping";
    /// #     fn msg_id() -> MsgId { MsgId::of_name("Ping") } }
    /// # #[derive(Debug)] struct Pong(MsgHeader);
    /// # impl Msg for Pong {
    /// #     fn header(&self) -> &MsgHeader { &self.0 }
    /// #     fn header_mut(&mut self) -> &mut MsgHeader { &mut self.0 }
    /// #     fn name(&self) -> &'static str { "Pong" }
    /// # }
    /// # impl MsgType for Pong { const NAME: &'static str = "Pong";
    /// #     fn msg_id() -> MsgId { MsgId::of_name("Pong") } }
    /// let msg: BoxMsg = Box::new(Ping(MsgHeader::new(Ping::msg_id())));
    /// let err = msg.downcast::<Pong>().unwrap_err();
    /// assert_eq!(err.expected, "Pong");
    /// let ping: Box<Ping> = err.into_inner().downcast::<Ping>()?;
    /// # let _ = ping;
    /// # Ok::<(), DowncastError>(())
    /// ```
    ///
    /// A [`RawMsg`] (a message that arrived from another process undecoded)
    /// of `T`'s id is decoded here.
    pub fn downcast<T: MsgType>(self: Box<Self>) -> Result<Box<T>, DowncastError> {
        if !self.is::<T>() {
            if let Some(raw) = self.downcast_ref::<RawMsg>()
                && raw.header.msg_id() == T::msg_id()
                && let Some(Ok(decoded)) = T::decode_raw(raw.header, &raw.body)
            {
                return Ok(Box::new(decoded));
            }
            return Err(DowncastError { msg: self, expected: T::NAME });
        }
        let any: Box<dyn Any> = self;
        #[allow(clippy::expect_used)] // invariant: `is::<T>()` was checked just above
        Ok(any.downcast::<T>().expect("type checked above"))
    }
}

/// What a concrete message type knows about itself without an instance.
pub trait MsgType: Msg + Sized {
    /// The wire name, given to the declaring macro.
    const NAME: &'static str;

    /// The id, hashed once per type and kept in a `static`.
    fn msg_id() -> MsgId;

    /// Decodes a body of this type, if it has a wire form (`None` for a
    /// local-only message). Used by [`downcast`](Msg#method.downcast) on a
    /// [`RawMsg`].
    #[doc(hidden)]
    fn decode_raw(_header: MsgHeader, _body: &[u8]) -> Option<Result<Self, MsgError>> {
        None
    }
}

/// A message that arrived from another process for an address with no
/// protocols of its own (an `ask`, an inbox) and that this process had no
/// decoder for: its header and JSON body, undecoded.
/// [`downcast`](Msg#method.downcast) decodes it into its type; sent on to
/// another process, it goes as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMsg {
    header: MsgHeader,
    body: Vec<u8>,
}

impl RawMsg {
    /// A message of `header.msg_id()` whose fields are the JSON `body`.
    pub fn new(header: MsgHeader, body: Vec<u8>) -> Self {
        Self { header, body }
    }

    /// The JSON of its fields.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl Msg for RawMsg {
    fn header(&self) -> &MsgHeader {
        &self.header
    }

    fn header_mut(&mut self) -> &mut MsgHeader {
        &mut self.header
    }

    fn name(&self) -> &'static str {
        "(undecoded)"
    }

    fn as_wire(&self) -> Option<&dyn WireMsg> {
        Some(self)
    }
}

impl WireMsg for RawMsg {
    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), MsgError> {
        out.extend_from_slice(&self.body);
        Ok(())
    }
}

/// A message that can cross processes: its fields encode as JSON.
pub trait WireMsg: Msg {
    /// Appends the message's fields (not its header) as JSON to `out`.
    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), MsgError>;

    /// As [`encode_body`](Self::encode_body), but the bytes of its
    /// [`Bytes`](crate::Bytes) fields are returned, to follow what `out`
    /// got, rather than copied after it: a link sends a large message
    /// straight from them. The default copies them, returning none.
    fn encode_body_split(&self, out: &mut Vec<u8>) -> Result<Vec<crate::Bytes>, MsgError> {
        self.encode_body(out).map(|()| Vec::new())
    }
}

/// A wire message type that can be rebuilt from a header and a JSON body.
pub trait DecodeMsg: MsgType + WireMsg {
    /// Rebuilds the message; `header.msg_id()` must be this type's id.
    fn decode_body(header: MsgHeader, body: &[u8]) -> Result<Self, MsgError>;
}

/// Decodes a message body into a [`BoxMsg`]; one per wire message type,
/// kept by protocols to decode frames by their [`MsgId`].
pub type DecodeFn = fn(MsgHeader, &[u8]) -> Result<BoxMsg, MsgError>;

/// The [`DecodeFn`] of `T`.
pub fn decode_boxed<T: DecodeMsg>(header: MsgHeader, body: &[u8]) -> Result<BoxMsg, MsgError> {
    Ok(Box::new(T::decode_body(header, body)?))
}

/// Anything that can be sent as a message: a concrete message or a
/// [`BoxMsg`]. Lets send calls take either without boxing twice.
pub trait IntoBoxMsg {
    /// Boxes the message (a [`BoxMsg`] is returned as it is).
    fn into_box_msg(self) -> BoxMsg;
}

impl<T: Msg> IntoBoxMsg for T {
    fn into_box_msg(self) -> BoxMsg {
        Box::new(self)
    }
}

impl IntoBoxMsg for BoxMsg {
    fn into_box_msg(self) -> BoxMsg {
        self
    }
}
