//! Errors of this crate.

use crate::{BoxMsg, MsgId};

/// A text id that is not 32 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseIdError {
    /// The text is not 32 characters long.
    #[error("an id is 32 hex digits, got {0} characters")]
    Length(usize),
    /// The text has a character that is not a hex digit.
    #[error("an id is 32 hex digits, got a non-hex character")]
    NotHex,
}

/// Encoding or decoding a message failed.
#[derive(Debug, thiserror::Error)]
pub enum MsgError {
    /// The buffer is not the JSON of a message of this shape.
    #[error("malformed message json")]
    Json(#[from] serde_json::Error),
    /// A body with blobs that does not hold together (`docs/WIRE.md` §3),
    /// or one too large to write.
    #[error("malformed body with blobs: {0}")]
    Blobs(&'static str),
    /// The buffer holds a different message than the decoder's.
    #[error("wrong message id: expected {expected}, found {found}")]
    WrongMsgId {
        /// The id of the type that was asked for.
        expected: MsgId,
        /// The id found in the buffer.
        found: MsgId,
    },
}

/// A [`BoxMsg`] was not of the type asked for; the message is handed back.
#[derive(thiserror::Error)]
#[error("wrong message type: expected {expected}, found {}", msg.name())]
pub struct DowncastError {
    /// The message, unchanged.
    pub msg: BoxMsg,
    /// The name of the type that was asked for.
    pub expected: &'static str,
}

impl std::fmt::Debug for DowncastError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DowncastError")
            .field("expected", &self.expected)
            .field("found", &self.msg.name())
            .finish()
    }
}

impl DowncastError {
    /// Gives the message back.
    pub fn into_inner(self) -> BoxMsg {
        self.msg
    }
}
