//! The wire over a blocking byte stream: a handshake and a frame reader
//! and writer over any `Read + Write` (a `TcpStream`, a `UnixStream`), for
//! clients and tools that do not run a session: the bare baselines of the
//! benchmarks, tests that play a hostile peer, a client in a script. What
//! it reads is bounded as a session's is (the handshake's own limits, and
//! `max_frame`).
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

use crate::{FrameDecoder, FrameHeader, Handshake, HandshakeConfig, PeerHello, Role, encode_frame};

/// A blocking stream after its handshake: frames in and out.
pub struct BlockingLink<S> {
    stream: S,
    /// Bytes read and not yet taken as frames.
    buf: Vec<u8>,
    decoder: FrameDecoder,
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
                let link = Self { stream, buf, decoder: FrameDecoder::new(max_frame) };
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
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Writes one frame.
    pub fn write_frame(&mut self, header: &FrameHeader, body: &[u8]) -> io::Result<()> {
        let mut frame = Vec::with_capacity(crate::FRAME_HEADER_LEN + body.len());
        encode_frame(header, body, self.decoder.max(), &mut frame).map_err(invalid)?;
        self.stream.write_all(&frame)
    }

    /// The stream, to write (or not read) as the caller pleases.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The stream, and what was read from it that is not yet a frame.
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
