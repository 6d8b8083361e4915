//! Why a destination refused a message.

/// Why a destination refused a message it received well-formed: the
/// reason a NACK carries across a link (its code is the frame's `flags`,
/// `docs/WIRE.md` §3), and what a sender's dead letter or failed `ask`
/// reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum NackReason {
    /// The destination does not accept this message id.
    UnknownMsg = 1,
    /// The body does not decode as that message.
    BadBody = 2,
    /// No actor with this destination id.
    UnknownDst = 3,
    /// The destination's mailbox is full.
    MailboxFull = 4,
    /// The destination stopped.
    DstStopped = 5,
}

impl NackReason {
    /// The reason of a NACK's `flags`; `None` for a code this version does not know.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::UnknownMsg,
            2 => Self::BadBody,
            3 => Self::UnknownDst,
            4 => Self::MailboxFull,
            5 => Self::DstStopped,
            _ => return None,
        })
    }

    /// The name used in documents and logs, e.g. `mailbox_full`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownMsg => "unknown_msg",
            Self::BadBody => "bad_body",
            Self::UnknownDst => "unknown_dst",
            Self::MailboxFull => "mailbox_full",
            Self::DstStopped => "dst_stopped",
        }
    }
}

impl std::fmt::Display for NackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a node did not handle a message it had acknowledged: the code of a
/// DEAD frame's `flags`, which returns the message to its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnhandledReason {
    /// The destination stopped (or panicked) before handling it.
    ActorStopped = 1,
    /// The destination's manager shut down before handling it.
    Shutdown = 2,
}

impl UnhandledReason {
    /// The reason of a DEAD frame's `flags`; `None` for a code this version
    /// does not know.
    ///
    /// ```
    /// # mod ipchnl { pub use msg_header::UnhandledReason; }
    /// use ipchnl::UnhandledReason;
    /// assert_eq!(UnhandledReason::from_code(2), Some(UnhandledReason::Shutdown));
    /// assert_eq!(UnhandledReason::from_code(9), None);
    /// ```
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::ActorStopped,
            2 => Self::Shutdown,
            _ => return None,
        })
    }

    /// The name used in documents and logs, e.g. `actor_stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ActorStopped => "actor_stopped",
            Self::Shutdown => "shutdown",
        }
    }
}

impl std::fmt::Display for UnhandledReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::{NackReason, UnhandledReason};

    #[test]
    fn codes_round_trip_and_unknown_codes_are_none() {
        for code in 1..=5 {
            assert_eq!(NackReason::from_code(code).map(|r| r as u8), Some(code));
        }
        assert_eq!(NackReason::from_code(0), None);
        assert_eq!(NackReason::from_code(6), None);
        assert_eq!(NackReason::MailboxFull.to_string(), "mailbox_full");
    }

    #[test]
    fn unhandled_codes_round_trip() {
        for code in 1..=2 {
            assert_eq!(UnhandledReason::from_code(code).map(|r| r as u8), Some(code));
        }
        assert_eq!(UnhandledReason::from_code(0), None);
        assert_eq!(UnhandledReason::Shutdown.to_string(), "shutdown");
    }
}
