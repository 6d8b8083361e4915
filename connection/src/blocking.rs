//! The wire over a blocking byte stream: a handshake and a frame reader
//! and writer over any `Read + Write` (a `TcpStream`, a `UnixStream`), for
//! clients and tools that do not run a session: the bare baselines of the
//! benchmarks, tests that play a hostile peer, a client in a script. What
//! it reads is bounded as a session's is (the handshake's own limits, and
//! `max_frame`). A link the handshake encrypted is read and written in
//! records ([`Secure`]), as a session does.
//!
//! # Examples
//!
//! Both ends of a socket pair, one on a thread:
//!
//! ```
//! use std::os::unix::net::UnixStream;
//! use connection::blocking::BlockingLink;
//! use connection::{FrameHeader, FrameKind, HandshakeConfig, Incarnation, Role, DEFAULT_MAX_FRAME};
//! use msg_header::NodeId;
//!
//! let (a, b) = UnixStream::pair()?;
//! let config = |name: &str| HandshakeConfig::new(NodeId::of_name(name), Incarnation([1; 16]));
//! let server = std::thread::spawn(move || {
//!     let (mut link, hello) = BlockingLink::handshake(b, Role::Server, config("b"), [2; 32], DEFAULT_MAX_FRAME)?;
//!     assert_eq!(hello.node_id, NodeId::of_name("a"));
//!     let (header, body) = link.read_frame()?;
//!     assert_eq!((header.kind, body.as_slice()), (FrameKind::Heartbeat, &b""[..]));
//!     Ok::<(), std::io::Error>(())
//! });
//! let (mut link, hello) = BlockingLink::handshake(a, Role::Client, config("a"), [1; 32], DEFAULT_MAX_FRAME)?;
//! assert_eq!(hello.node_id, NodeId::of_name("b"));
//! link.write_frame(&FrameHeader::new(FrameKind::Heartbeat), b"")?;
//! server.join().expect("the server")?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read, Write};

use crate::{FrameDecoder, FrameHeader, Handshake, HandshakeConfig, PeerHello, Role, Secure, encode_frame};

/// A blocking stream after its handshake: frames in and out.
pub struct BlockingLink<S> {
    stream: S,
    /// Bytes read and not yet taken as frames (opened, on an encrypted
    /// link).
    buf: Vec<u8>,
    decoder: FrameDecoder,
    /// An encrypted link's records, and the bytes read that are not yet a
    /// whole record.
    secure: Option<(Secure, Vec<u8>)>,
}

/// A handshake or frame error, as the `io::Error` a blocking caller expects.
fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<S: Read + Write> BlockingLink<S> {
    /// Does the handshake on `stream` in `role` (the client speaks first),
    /// with `config` (its secret, if any) and the random `nonce`; frames
    /// after it are at most `max_frame` bytes. The peer's hello.
    pub fn handshake(
        mut stream: S,
        role: Role,
        config: HandshakeConfig,
        nonce: [u8; 32],
        max_frame: usize,
    ) -> io::Result<(Self, PeerHello)> {
        let mut hs = Handshake::new(role, config, nonce);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let out = hs.take_output();
            if !out.is_empty() {
                stream.write_all(&out)?;
            }
            if let Some(hello) = hs.peer().filter(|_| hs.is_done()).cloned() {
                let mut link =
                    Self { stream, buf: Vec::new(), decoder: FrameDecoder::new(max_frame), secure: None };
                match hs.take_secure() {
                    Some(secure) => {
                        link.secure = Some((secure, Vec::new()));
                        link.received(&buf)?;
                    }
                    None => link.buf = buf,
                }
                return Ok((link, hello));
            }
            let n = stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
            let used = hs.read(&buf).map_err(invalid)?;
            buf.drain(..used);
        }
    }

    /// The next frame, whatever its kind: its header and body.
    pub fn read_frame(&mut self) -> io::Result<(FrameHeader, Vec<u8>)> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((frame, used)) = self.decoder.decode(&self.buf).map_err(invalid)? {
                let out = (frame.header, frame.body.to_vec());
                self.buf.drain(..used);
                return Ok(out);
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.received(&chunk[..n])?;
        }
    }

    /// Takes `bytes` read from the stream: into `buf`, opened first on an
    /// encrypted link.
    fn received(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some((secure, raw)) = &mut self.secure else {
            self.buf.extend_from_slice(bytes);
            return Ok(());
        };
        raw.extend_from_slice(bytes);
        let used = secure.open(raw, &mut self.buf).map_err(invalid)?;
        raw.drain(..used);
        Ok(())
    }

    /// Writes one frame.
    pub fn write_frame(&mut self, header: &FrameHeader, body: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(crate::FRAME_HEADER_LEN + body.len());
        encode_frame(header, body, self.decoder.max(), &mut frame).map_err(invalid)?;
        let bytes = self.seal(&frame)?;
        self.stream.write_all(&bytes)
    }

    /// What to write to the stream for `bytes` of frames (whole or not): the
    /// bytes themselves on a plain link, records holding them on an
    /// encrypted one (to write later, or a piece at a time).
    pub fn seal(&mut self, bytes: &[u8]) -> io::Result<Vec<u8>> {
        let Some((secure, _)) = &mut self.secure else { return Ok(bytes.to_vec()) };
        let mut out = Vec::with_capacity(bytes.len() + 64);
        secure.seal(bytes, &mut out).map_err(invalid)?;
        Ok(out)
    }

    /// Whether the handshake encrypted the link.
    pub fn is_encrypted(&self) -> bool {
        self.secure.is_some()
    }

    /// The stream, to write (or not read) as the caller pleases.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream, and what was read from it that is not yet a frame (on
    /// an encrypted link, what was opened: the link's keys go with it, so
    /// nothing more can be read or written on it).
    pub fn into_parts(self) -> (S, Vec<u8>) {
        (self.stream, self.buf)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use msg_header::NodeId;

    use super::*;
    use crate::{DEFAULT_MAX_FRAME, FrameKind, Incarnation, Secret};

    fn config(name: &str, secret: Option<&[u8]>) -> HandshakeConfig {
        let c = HandshakeConfig::new(NodeId::of_name(name), Incarnation([3; 16]));
        match secret {
            Some(s) => c.with_secret(Secret::new(s.to_vec()).expect("a secret")),
            None => c,
        }
    }

    #[test]
    fn a_secret_both_know_links_them_and_frames_flow_both_ways() -> io::Result<()> {
        let (a, b) = UnixStream::pair()?;
        let server = std::thread::spawn(move || -> io::Result<()> {
            let (mut link, hello) = BlockingLink::handshake(
                b,
                Role::Server,
                config("b", Some(b"sixteen bytes!!!")),
                [2; 32],
                4096,
            )?;
            assert!(hello.authenticated);
            let (h, body) = link.read_frame()?;
            link.write_frame(&h, &body)
        });
        let (mut link, hello) =
            BlockingLink::handshake(a, Role::Client, config("a", Some(b"sixteen bytes!!!")), [1; 32], 4096)?;
        assert!(hello.authenticated);
        let h = FrameHeader::new(FrameKind::Directory);
        link.write_frame(&h, br#"{"full":true}"#)?;
        let (back, body) = link.read_frame()?;
        assert_eq!((back.kind, body.as_slice()), (FrameKind::Directory, &br#"{"full":true}"#[..]));
        server.join().expect("the server")
    }

    #[test]
    fn an_encrypted_link_carries_frames_in_records_both_ways() -> io::Result<()> {
        let (a, b) = UnixStream::pair()?;
        let secret = Some(&b"sixteen bytes!!!"[..]);
        let server = std::thread::spawn(move || -> io::Result<()> {
            let config = config("b", secret).with_encryption();
            let (mut link, hello) = BlockingLink::handshake(b, Role::Server, config, [2; 32], 4096)?;
            assert!(hello.encrypted && link.is_encrypted());
            for _ in 0..2 {
                let (h, body) = link.read_frame()?;
                link.write_frame(&h, &body)?;
            }
            Ok(())
        });
        let (mut link, hello) = BlockingLink::handshake(a, Role::Client, config("a", secret), [1; 32], 4096)?;
        assert!(hello.encrypted && link.is_encrypted(), "the server requires it");
        let h = FrameHeader::new(FrameKind::Directory);
        link.write_frame(&h, br#"{"full":true}"#)?;
        // A frame written in two pieces, each sealed on its own.
        let mut frame = Vec::new();
        encode_frame(&h, br#"{"full":false}"#, 4096, &mut frame).map_err(invalid)?;
        let (first, second) = frame.split_at(7);
        for piece in [first, second] {
            let sealed = link.seal(piece)?;
            assert_eq!(sealed.len(), piece.len() + crate::RECORD_HEADER_LEN + crate::TAG_LEN);
            link.stream_mut().write_all(&sealed)?;
        }
        for want in [&br#"{"full":true}"#[..], br#"{"full":false}"#] {
            let (back, body) = link.read_frame()?;
            assert_eq!((back.kind, body.as_slice()), (FrameKind::Directory, want));
        }
        server.join().expect("the server")
    }

    #[test]
    fn a_wrong_secret_is_an_error_not_a_link() -> io::Result<()> {
        let (a, b) = UnixStream::pair()?;
        let server = std::thread::spawn(move || {
            BlockingLink::handshake(b, Role::Server, config("b", Some(b"one secret here!")), [2; 32], 4096)
                .map(|_| ())
        });
        let client =
            BlockingLink::handshake(a, Role::Client, config("a", Some(b"another secret!!")), [1; 32], 4096);
        assert!(client.is_err());
        assert!(server.join().expect("the server").is_err());
        Ok(())
    }

    #[test]
    fn a_frame_over_the_maximum_is_refused_before_it_is_read() -> io::Result<()> {
        let (a, b) = UnixStream::pair()?;
        let server = std::thread::spawn(move || -> io::Result<()> {
            let (mut link, _) =
                BlockingLink::handshake(b, Role::Server, config("b", None), [2; 32], DEFAULT_MAX_FRAME)?;
            link.write_frame(&FrameHeader::new(FrameKind::Directory), &[b' '; 2000])
        });
        let (mut link, _) = BlockingLink::handshake(a, Role::Client, config("a", None), [1; 32], 1024)?;
        let e = link.read_frame().expect_err("too large");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        server.join().expect("the server")
    }
}
