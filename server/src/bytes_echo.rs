//! [`BytesEcho`]: answers every [`EchoBytes`] with the same bytes, which
//! travel beside the message's JSON (a body with blobs, `docs/WIRE.md` §3).
//! `ipchnl serve` runs one called `bytes`; the Python client and the
//! tests send it binary payloads.

use actor::{Context, Handler, service};
use msg_header::Bytes;
use msg_serde_macro::msg_serde_macro;

msg_serde_macro! {
    /// Bytes to be echoed back, with a tag to match the reply.
    #[derive(Clone, PartialEq)]
    pub struct EchoBytes("server::EchoBytes") -> EchoedBytes {
        /// Copied into the reply.
        pub tag: u64,
        /// The payload.
        pub data: Bytes,
    }
}

msg_serde_macro! {
    /// The reply to an [`EchoBytes`]: its tag and bytes.
    #[derive(Clone, PartialEq)]
    pub struct EchoedBytes("server::EchoedBytes") {
        /// The request's tag.
        pub tag: u64,
        /// The request's payload (shared with it inside a process).
        pub data: Bytes,
    }
}

service! {
    /// What a [`BytesEcho`] serves: [`EchoBytes`].
    pub BytesEchoService = "server::bytes_echo" [EchoBytes]
}

/// Echoes binary payloads.
///
/// ```
/// # mod ipchnl { pub use actor::{ActorSender, Served, StaticDirectory, dispatch}; pub use msg_header::Bytes; pub mod echo { pub use server::{BytesEcho, BytesEchoService, EchoBytes, EchoedBytes}; } }
/// use ipchnl::{ActorSender, Bytes, Served, StaticDirectory, dispatch};
/// use ipchnl::echo::{BytesEcho, BytesEchoService, EchoBytes, EchoedBytes};
///
/// let mut echo = Served::<BytesEchoService, _>::new(BytesEcho);
/// let (addr, rx) = ActorSender::channel("bytes", &echo, None);
/// let (me, replies) = ActorSender::inbox("me");
/// let data = Bytes::from(vec![7; 1000]);
/// addr.send_from(EchoBytes::new(1, data.clone()), &me)?;
/// dispatch(&mut echo, &addr, &StaticDirectory::default(), rx.recv()?);
/// let reply = replies.recv()?.msg.downcast::<EchoedBytes>()?;
/// assert_eq!((reply.tag, reply.data.as_ptr()), (1, data.as_ptr()), "the same bytes, not a copy");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct BytesEcho;

impl Handler<EchoBytes> for BytesEcho {
    fn handle(&mut self, _: &mut Context<'_>, req: EchoBytes) -> EchoedBytes {
        EchoedBytes::new(req.tag, req.data)
    }
}
