//! The hex dumps in `docs/WIRE.md` §5 "Examples" are what the encoder
//! produces, byte for byte.
//!
//! A dump is a line `NAME (N bytes):`, then a fenced `text` block of lines
//! `OFFSET: XX XX ...` (hex offset, 16 bytes a line). A missing or wrong
//! dump fails with the encoder's dump, in that format, to paste.

use connection::{
    DEFAULT_MAX_FRAME, FrameHeader, FrameKind, Handshake, HandshakeConfig, Incarnation, Role, Secret,
    encode_msg_frame,
};
use echo_req::EchoReq;
use msg_header::{ActorId, Bytes, MsgType, NodeId};
use server::EchoBytes;

const WIRE_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/WIRE.md");

/// The text of §5, up to the next `## ` section.
fn examples_section() -> String {
    let doc = std::fs::read_to_string(WIRE_MD).unwrap_or_else(|e| panic!("reading {WIRE_MD}: {e}"));
    let start = doc.find("\n## 5. Examples").unwrap_or_else(|| panic!("{WIRE_MD} has no \"## 5. Examples\""));
    let section = &doc[start + 1..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    section[..end].to_string()
}

/// Every dump of §5: its name and bytes, in document order.
fn dumps() -> Vec<(String, Vec<u8>)> {
    parse_dumps(&examples_section())
}

/// Every dump in `section`: its name and bytes, in order.
fn parse_dumps(section: &str) -> Vec<(String, Vec<u8>)> {
    let mut lines = section.lines().enumerate();
    let mut dumps = Vec::new();
    while let Some((_, line)) = lines.next() {
        let Some((name, len)) = dump_title(line) else { continue };
        let (at, fence) = lines.by_ref().find(|(_, l)| !l.trim().is_empty()).unwrap_or_default();
        assert_eq!(fence.trim(), "```text", "§5, dump {name:?}: a ```text block must follow its title");
        let mut bytes = Vec::new();
        let mut closed = false;
        for (n, line) in lines.by_ref() {
            let line = line.trim();
            if line == "```" {
                closed = true;
                break;
            }
            let (offset, hex) =
                line.split_once(':').unwrap_or_else(|| panic!("§5 line {n}: no `OFFSET:` in {line:?}"));
            let offset = usize::from_str_radix(offset.trim(), 16)
                .unwrap_or_else(|e| panic!("§5 line {n}: bad offset {offset:?}: {e}"));
            assert_eq!(offset, bytes.len(), "§5 line {n}: offset of dump {name:?}");
            let row: Vec<u8> = hex
                .split_whitespace()
                .map(|b| {
                    u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("§5 line {n}: bad byte {b:?}: {e}"))
                })
                .collect();
            assert!((1..=16).contains(&row.len()), "§5 line {n}: 1 to 16 bytes a line");
            bytes.extend(row);
        }
        assert!(closed, "§5, dump {name:?} (from line {at}): the block is not closed");
        assert_eq!(bytes.len(), len, "§5, dump {name:?}: its title says {len} bytes");
        dumps.push((name, bytes));
    }
    dumps
}

/// `NAME (N bytes):` as its name and N.
fn dump_title(line: &str) -> Option<(String, usize)> {
    let rest = line.trim().strip_suffix(" bytes):")?;
    let (name, len) = rest.rsplit_once(" (")?;
    Some((name.trim().to_string(), len.parse().ok()?))
}

/// A dump in the document's format, to paste into it.
fn format_dump(name: &str, bytes: &[u8]) -> String {
    let mut out = format!("{name} ({} bytes):\n\n```text\n", bytes.len());
    for (i, row) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
        out += &format!("{:04x}: {}\n", i * 16, hex.join(" "));
    }
    out + "```\n"
}

/// Checks that the dump `name` is `expected`; fails with the right dump
/// to paste otherwise.
fn check(dumps: &[(String, Vec<u8>)], name: &str, expected: &[u8]) {
    let wanted = format_dump(name, expected);
    let found = dumps.iter().find(|(n, _)| n == name);
    let Some((_, bytes)) = found else {
        panic!("docs/WIRE.md §5 has no dump {name:?}; the encoder gives:\n\n{wanted}");
    };
    assert!(
        bytes == expected,
        "docs/WIRE.md §5, dump {name:?}, differs from the encoder:\n\n{}\nThe encoder gives:\n\n{wanted}",
        format_dump(name, bytes)
    );
}

/// The authenticated handshake of §5: HELLO, HELLO_ACK and AUTH.
fn handshake() -> [Vec<u8>; 3] {
    let secret = || Secret::new("s3cret").unwrap();
    let config = |name: &str, incarnation: u8| {
        HandshakeConfig::new(NodeId::of_name(name), Incarnation([incarnation; 16])).with_secret(secret())
    };
    let mut client = Handshake::new(Role::Client, config("alpha", 0x11), [0xaa; 32]);
    let mut server = Handshake::new(Role::Server, config("beta", 0x22), [0xbb; 32]);
    let hello = client.take_output();
    assert_eq!(server.read(&hello), Ok(hello.len()));
    let hello_ack = server.take_output();
    assert_eq!(client.read(&hello_ack), Ok(hello_ack.len()));
    let auth = client.take_output();
    assert_eq!(server.read(&auth), Ok(auth.len()));
    assert!(client.is_done() && server.is_done());
    assert!(server.peer().unwrap().authenticated);
    [hello, hello_ack, auth]
}

/// The MSG frame of §5.
fn msg_frame() -> Vec<u8> {
    frame_of(&EchoReq::new(1, 1000))
}

/// The MSG frame with blobs of §5.
fn msg_frame_with_blobs() -> Vec<u8> {
    frame_of(&EchoBytes::new(7, Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])))
}

/// `msg` in the MSG frame the examples describe.
fn frame_of<M: MsgType + msg_header::WireMsg>(msg: &M) -> Vec<u8> {
    let header = FrameHeader {
        msg_id: M::msg_id(),
        dst: ActorId::from_u128(0xa0a0_a0a0_a0a0_a0a0_0000_0000_0000_0001),
        src: ActorId::from_u128(0xb0b0_b0b0_b0b0_b0b0_0000_0000_0000_0002),
        seq: 1,
        ack: 0,
        corr: 0,
        ..FrameHeader::new(FrameKind::Msg)
    };
    let mut out = Vec::new();
    encode_msg_frame(&header, msg, DEFAULT_MAX_FRAME, &mut out).unwrap();
    out
}

#[test]
fn handshake_dumps_match_the_encoder() {
    let dumps = dumps();
    let [hello, hello_ack, auth] = handshake();
    check(&dumps, "HELLO", &hello);
    check(&dumps, "HELLO_ACK", &hello_ack);
    check(&dumps, "AUTH", &auth);
}

#[test]
fn msg_frame_dump_matches_the_encoder() {
    check(&dumps(), "MSG frame", &msg_frame());
}

#[test]
fn msg_frame_with_blobs_dump_matches_the_encoder() {
    check(&dumps(), "MSG frame with blobs", &msg_frame_with_blobs());
}

#[test]
fn every_dump_is_checked() {
    let names: Vec<String> = dumps().into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        ["HELLO", "HELLO_ACK", "AUTH", "MSG frame", "MSG frame with blobs"],
        "the dumps of docs/WIRE.md §5"
    );
}

#[test]
fn the_dump_parser_reads_its_own_format() {
    let (a, b): (Vec<u8>, Vec<u8>) = ((0..=40).collect(), vec![0xff; 16]);
    let text = format!("intro\n\n{}\nnotes\n\n{}", format_dump("A thing", &a), format_dump("B", &b));
    assert!(text.contains("0020: 20 21 22 23 24 25 26 27 28\n"));
    assert_eq!(parse_dumps(&text), [("A thing".to_string(), a), ("B".to_string(), b)]);
    assert_eq!(dump_title("X (41 bytes):"), Some(("X".to_string(), 41)));
    assert_eq!(dump_title("not a title"), None);
}

#[test]
#[should_panic(expected = "its title says 3 bytes")]
fn the_dump_parser_refuses_a_wrong_length() {
    parse_dumps("X (3 bytes):\n\n```text\n0000: 01 02\n```\n");
}

#[test]
#[should_panic(expected = "offset of dump")]
fn the_dump_parser_refuses_a_wrong_offset() {
    parse_dumps("X (3 bytes):\n\n```text\n0000: 01\n0002: 02 03\n```\n");
}
