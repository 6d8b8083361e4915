//! Limits: every bound on what one peer can make a node hold or do, in
//! one struct per scope with one `Default`, each declared once by
//! [`limits!`](crate::limits): the field, its documentation (which states
//! its default) and its default value. The same declaration gives the
//! table that `docs/GUARANTEES.md` prints ([`LimitRow`]), and a test
//! checks that the page, the documentation and the values agree.

use std::fmt::Write as _;
use std::time::Duration;

use crate::DEFAULT_MAX_FRAME;

/// One limit as the guarantees page shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitRow {
    /// The field's name.
    pub name: &'static str,
    /// Its documentation, one paragraph (its `Default: …` sentence included).
    pub doc: String,
    /// Its value, as the documentation writes it (`1 MiB`, `5 s`, `1,024`).
    pub shown: String,
}

impl LimitRow {
    /// The documentation without its `Default: …` sentence.
    pub fn what(&self) -> String {
        match self.doc.find(" Default: ").or_else(|| self.doc.starts_with("Default: ").then_some(0)) {
            Some(at) => {
                let rest = &self.doc[at..];
                let end = rest.find(". ").map_or(rest.len(), |e| e + 1);
                format!("{}{}", &self.doc[..at], &rest[end..]).trim().to_owned()
            }
            None => self.doc.clone(),
        }
    }

    /// Whether the documentation states the value the field has.
    pub fn doc_states_default(&self) -> bool {
        self.doc.contains(&format!("Default: {}.", self.shown))
            || self.doc.contains(&format!("Default: {} ", self.shown))
    }
}

/// A count with thousands separators: `1,024`.
pub fn show_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A size in bytes: `8 MiB`, `16 KiB`, or a count of bytes.
pub fn show_bytes(n: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if n >= unit && n.is_multiple_of(unit) {
            return format!("{} {name}", show_count((n / unit) as u64));
        }
    }
    format!("{} bytes", show_count(n as u64))
}

/// A duration: `5 s`, `50 ms`, `10 µs`.
pub fn show_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    let mut out = String::new();
    let _ = match ns {
        0 => write!(out, "0"),
        n if n.is_multiple_of(1_000_000_000) => write!(out, "{} s", n / 1_000_000_000),
        n if n.is_multiple_of(1_000_000) => write!(out, "{} ms", n / 1_000_000),
        n if n.is_multiple_of(1_000) => write!(out, "{} µs", n / 1_000),
        n => write!(out, "{n} ns"),
    };
    out
}

/// How a limit of type `Self` is written: a count, unless the field says
/// `=> bytes` (a size) or it is a duration.
#[doc(hidden)]
pub mod show {
    use std::time::Duration;

    /// A count: `1,024`.
    pub fn count<T: Copy + Into<u64>>(n: &T) -> String {
        super::show_count((*n).into())
    }

    /// A size: `8 MiB`.
    pub fn bytes(n: &usize) -> String {
        super::show_bytes(*n)
    }

    /// A duration: `5 s`.
    pub fn duration(d: &Duration) -> String {
        super::show_duration(*d)
    }

    /// A count of `usize`: `1,024`.
    pub fn len(n: &usize) -> String {
        super::show_count(*n as u64)
    }
}

/// Declares a struct of limits: each field with its documentation (which
/// states its default as `Default: VALUE.`), its default value, and how
/// its value is written (a function of [`show`]); gives the struct, its
/// `Default` and `rows()`, the table `docs/GUARANTEES.md` prints.
#[doc(hidden)]
#[macro_export]
macro_rules! limits {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr => $show:ident,
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        impl ::std::default::Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }

        impl $name {
            /// Every limit, as `docs/GUARANTEES.md` shows it, with its value here.
            pub fn rows(&self) -> ::std::vec::Vec<$crate::LimitRow> {
                ::std::vec![$(
                    $crate::LimitRow {
                        name: ::std::stringify!($field),
                        doc: {
                            let lines: &[&str] = &[$($doc),*];
                            lines.iter().map(|l| l.trim()).collect::<::std::vec::Vec<_>>().join(" ")
                        },
                        shown: $crate::limits_show::$show(&self.$field),
                    },
                )*]
            }
        }
    };
}

crate::limits! {
    /// A link's limits, timers and turns: every field bounds what one peer
    /// can make this side hold or do. One `Default`, shown in
    /// `docs/GUARANTEES.md` (checked against it by a test). The session
    /// reads the protocol's limits; the node reads the rest (what it keeps
    /// per link above the session, and how much of an executor's turn a
    /// link takes).
    ///
    /// ```
    /// use connection::LinkLimits;
    /// let limits = LinkLimits::default();
    /// assert_eq!((limits.max_frame, limits.window), (1 << 20, 1024));
    /// let row = limits.rows().into_iter().find(|r| r.name == "max_frame").expect("a row");
    /// assert_eq!(row.shown, "1 MiB");
    /// assert!(row.doc_states_default());
    /// ```
    #[derive(Clone, Debug, PartialEq, Eq)]
    #[non_exhaustive]
    pub struct LinkLimits {
        /// The largest frame, header included. Default: 1 MiB.
        max_frame: usize = DEFAULT_MAX_FRAME => bytes,
        /// The largest message body, in bytes: one larger than a frame goes
        /// in parts (WIRE.md §3), other frames between its parts; one
        /// larger than this is refused before any of it is sent (the send
        /// fails, `TooLarge`), and a peer announcing one closes the link,
        /// `protocol_message_too_large`. What a message coming in parts
        /// holds counts against the node's read buffers, and it must get a
        /// part every `frame_deadline`. Default: 64 MiB.
        max_message: usize = 64 << 20 => bytes,
        /// Messages sent on a link and not yet acknowledged, at most; also
        /// how many the peer may send beyond the last acknowledgement this
        /// side sent (one more is a protocol error, `window_overrun`): both
        /// ends use the same. Default: 1,024.
        window: usize = 1024 => len,
        /// Bytes of a link's inbound messages delivered and not yet handled,
        /// at most: past it the link acknowledges nothing and reads nothing
        /// (the peer's window fills, TCP pushes back) until they drain (never
        /// less than `max_frame`). Default: 8 MiB.
        max_inbound_bytes: usize = 8 << 20 => bytes,
        /// Bytes waiting to be written to a link, at most: past it the link
        /// reads nothing from its peer (a peer that does not read cannot make
        /// this side write more), and past `write_deadline` it is cut (never
        /// less than `max_frame`). Default: 8 MiB.
        max_write_buffer: usize = 8 << 20 => bytes,
        /// Unacknowledged messages read after which an ACK is sent at once,
        /// not at the next flush. Default: 256.
        ack_every: u64 = 256 => count,
        /// How long the handshake may take. Default: 5 s.
        handshake_timeout: Duration = Duration::from_secs(5) => duration,
        /// A heartbeat is sent after this long without sending. Default: 1 s.
        heartbeat_interval: Duration = Duration::from_secs(1) => duration,
        /// The link is down after this long without receiving (time this
        /// side chose not to read does not count). Default: 5 s.
        heartbeat_timeout: Duration = Duration::from_secs(5) => duration,
        /// A frame must be whole this long after its first byte came (time
        /// this side chose not to read does not count, except a piece of a
        /// message in parts waiting for the read budget after the peer
        /// ended its stream), or the link is cut,
        /// `slow_frame`: a peer cannot hold a read buffer grown for a large
        /// frame by trickling it, nor keep its link alive by sending a byte
        /// now and then. Default: 10 s.
        frame_deadline: Duration = Duration::from_secs(10) => duration,
        /// A link whose peer takes nothing written for this long is cut,
        /// `slow_consumer`, so a stuck reader cannot hold this side's
        /// memory. Default: 10 s.
        write_deadline: Duration = Duration::from_secs(10) => duration,
        /// Watches of this node's actors the peer may hold at once, one per
        /// (watcher, watched) pair; past it the link closes,
        /// `protocol_too_many_watches`. Default: 4,096.
        max_watches: usize = 4096 => len,
        /// Actors the peer may announce; past it the link closes. Default: 4,096.
        max_remote_actors: usize = 4096 => len,
        /// The longest actor or node name a directory may carry, in bytes;
        /// past it the link closes. Default: 255.
        max_name_len: usize = 255 => len,
        /// Protocols, and message ids, one announced actor may list; past it
        /// the link closes. Default: 128.
        max_actor_ids: usize = 128 => len,
        /// Control frames the peer may send per second, on average: every
        /// frame but a MSG, an ACK that acknowledges something new and a
        /// NACK that refuses a message sent (those are bounded by what this
        /// side sends); a DIRECTORY costs one more per KiB. Past the burst
        /// this side reads nothing more from the link until the budget has
        /// refilled (counted as `control_throttled`; the link stays up), so
        /// a flood of valid frames waits in TCP instead of taking the
        /// executor. Default: 10,000.
        control_rate: u32 = 10_000 => count,
        /// Control frames the peer may send at once before `control_rate`
        /// applies (more than `max_watches`, so a peer that watches every
        /// actor it may at once is not slowed). Default: 10,000.
        control_burst: u32 = 10_000 => count,
        /// Bytes read from one link per executor turn, at most, before the
        /// others have theirs: one busy link cannot starve the rest (a
        /// shared-memory link reads one sample, up to 64 KiB, at least).
        /// Default: 16 KiB.
        read_budget: usize = 16 << 10 => bytes,
        /// Bytes written to one link per executor turn, at most, while more
        /// waits (the parts of a large message): commands and the other
        /// links have their turn between, so a small message never waits
        /// for a large one to be written whole. Default: 64 KiB.
        write_budget: usize = 64 << 10 => bytes,
        /// Messages of one link delivered per executor turn, at most (the
        /// rest wait for the next): a message of another link on the same
        /// executor waits behind no more than this many of a busy one's.
        /// Default: 64.
        msgs_per_turn: usize = 64 => len,
        /// Reply addresses a link remembers for what comes back over it
        /// (asks, inboxes, actors of a third node), the oldest forgotten
        /// first. Default: 4,096.
        max_reply_targets: usize = 4096 => len,
        /// Messages a link keeps owed to a full window, in windows: a
        /// handler's send past the window is kept to send as
        /// acknowledgements come (the link reads no more from its peer
        /// meanwhile), and past this many windows it is `Full`. Default: 4.
        owed_windows: usize = 4 => len,
    }
}

impl LinkLimits {
    /// The limits as they apply: `max_inbound_bytes` and
    /// `max_write_buffer` at least `max_frame`, the window, the read and
    /// write budgets and the turn at least 1.
    pub fn normalized(&self) -> Self {
        let mut l = self.clone();
        l.max_inbound_bytes = l.max_inbound_bytes.max(l.max_frame);
        l.max_write_buffer = l.max_write_buffer.max(l.max_frame);
        l.window = l.window.max(1);
        l.read_budget = l.read_budget.max(1);
        l.write_budget = l.write_budget.max(1);
        l.msgs_per_turn = l.msgs_per_turn.max(1);
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_the_docs_write_them() {
        assert_eq!(show_count(0), "0");
        assert_eq!(show_count(999), "999");
        assert_eq!(show_count(1024), "1,024");
        assert_eq!(show_count(1_234_567), "1,234,567");
        assert_eq!(show_bytes(1 << 20), "1 MiB");
        assert_eq!(show_bytes(16 << 10), "16 KiB");
        assert_eq!(show_bytes(256 << 20), "256 MiB");
        assert_eq!(show_bytes(1000), "1,000 bytes");
        assert_eq!(show_duration(Duration::from_secs(5)), "5 s");
        assert_eq!(show_duration(Duration::from_millis(50)), "50 ms");
        assert_eq!(show_duration(Duration::from_micros(10)), "10 µs");
    }

    #[test]
    fn every_link_limit_documents_its_default() {
        let rows = LinkLimits::default().rows();
        assert_eq!(rows.len(), 22);
        for row in rows {
            assert!(row.doc_states_default(), "{}: docs say {:?}, value is {}", row.name, row.doc, row.shown);
            assert!(!row.what().contains("Default:"), "{}", row.what());
        }
    }

    #[test]
    fn normalized_limits_keep_the_buffers_above_a_frame() {
        let l = LinkLimits { max_frame: 16 << 20, window: 0, ..LinkLimits::default() };
        let n = l.normalized();
        assert_eq!((n.max_inbound_bytes, n.max_write_buffer, n.window), (16 << 20, 16 << 20, 1));
    }
}
