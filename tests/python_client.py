#!/usr/bin/env python3
"""A foreign ipchnl client, written from docs/WIRE.md with the standard library only.

It links to an `ipchnl serve` over TCP, does the authenticated handshake,
reads the server's DIRECTORY, finds the actor that speaks
`echo_requestee_protocol`, makes one EchoReq/EchoReply round trip, has
`bytes` echo binary payloads (bodies with blobs, and a malformed one NACKed),
then sends a frame whose length is over the maximum and checks that the server
closes the link. Then, on new connections: the same node dialing again as
a new incarnation (a restart) has its old link closed `replaced`; and a
client that pipelines 10,000 requests and reads nothing for a second gets
every reply, in order, once it reads and acknowledges.

With --encrypt it requires the link encrypted (§2, "The encrypted link"):
the Noise handshake after AUTH, then every byte in AES-256-GCM records, for
the echo and the bytes echo. That needs the `cryptography` package; without
it the client prints "python client: skip" and exits 77.

Exit status 0 and a line starting with "python client: ok" on success;
exit status 1 and a line starting with "python client: FAIL" on stderr
otherwise. Every wait is bounded (--timeout), so it never hangs.
"""

import argparse
import hashlib
import hmac
import itertools
import json
import os
import socket
import struct
import sys
import threading
import time

# ---- §1 identities -------------------------------------------------------


def hash_id(name):
    """MsgId, ProtocolId, NodeId: the first 16 bytes of SHA-256 of a name."""
    return hashlib.sha256(name.encode("utf-8")).digest()[:16]


ECHO_REQ = hash_id("echo_req::EchoReq")
ECHO_REPLY = hash_id("echo_reply::EchoReply")
ECHO_REQUESTEE = hash_id("echo_requestee_protocol")
ECHO_BYTES = hash_id("server::EchoBytes")
ECHOED_BYTES = hash_id("server::EchoedBytes")

# ---- §2 handshake --------------------------------------------------------

MAGIC = b"IPCH"
T_HELLO, T_HELLO_ACK, T_AUTH = 1, 2, 3
VERSION_MIN = VERSION_MAX = 1
CAP_AUTH = 0x0000_0001
CAP_DEAD = 0x0000_0002  # this client does not set it: it takes no DEAD frames
CAP_ENCRYPT, CAP_ENCRYPT_REQUIRED = 0x0000_0004, 0x0000_0008
HELLO_LEN, HELLO_ACK_LEN, MAC_LEN, AUTH_LEN = 76, 76, 32, 40
SERVER_LABEL = b"ipchnl v1 server"
CLIENT_LABEL = b"ipchnl v1 client"

# ---- §3 frames -----------------------------------------------------------

# length, kind, flags, reserved, msg_id, dst_id, src_id, seq, ack, corr
HEADER = struct.Struct(">IBBH16s16s16sQQQ")
HEADER_LEN = HEADER.size  # 80
assert HEADER_LEN == 80
MAX_FRAME = 1 << 20
MSG, ACK, NACK, HEARTBEAT, DIRECTORY, WATCH, CLOSE = 1, 2, 3, 4, 5, 6, 7
KIND_NAMES = {1: "MSG", 2: "ACK", 3: "NACK", 4: "HEARTBEAT", 5: "DIRECTORY", 6: "WATCH", 7: "CLOSE"}
NACK_REASONS = {1: "unknown_msg", 2: "bad_body", 3: "unknown_dst", 4: "mailbox_full", 5: "dst_stopped"}
ZERO_ID = bytes(16)
HEARTBEAT_INTERVAL = 1.0  # the default of §3; the server's timeout is 5 s


class Fail(Exception):
    """A check failed: the message says which."""


def check(cond, what):
    if not cond:
        raise Fail(what)


def hello(nonce, node_id, incarnation, caps):
    return MAGIC + struct.pack(">BBBBI", T_HELLO, VERSION_MIN, VERSION_MAX, 0, caps) + nonce + node_id + incarnation


def server_mac(secret, hello_bytes, hello_ack_76):
    return hmac.new(secret, SERVER_LABEL + hello_bytes + hello_ack_76, hashlib.sha256).digest()


def auth(secret, hello_bytes, hello_ack_108):
    head = MAGIC + bytes([T_AUTH, 0, 0, 0])
    mac = hmac.new(secret, CLIENT_LABEL + hello_bytes + hello_ack_108 + head, hashlib.sha256).digest()
    return head + mac


def frame(kind, body=b"", flags=0, msg_id=ZERO_ID, dst=ZERO_ID, src=ZERO_ID, seq=0, ack=0, corr=0, length=None):
    if length is None:
        length = HEADER_LEN - 4 + len(body)
    return HEADER.pack(length, kind, flags, 0, msg_id, dst, src, seq, ack, corr) + body


class Frame:
    def __init__(self, raw_header, body):
        (self.length, self.kind, self.flags, _reserved, self.msg_id, self.dst, self.src, self.seq, self.ack,
         self.corr) = HEADER.unpack(raw_header)
        self.body = body

    def describe(self):
        name = KIND_NAMES.get(self.kind, "kind %#04x" % self.kind)
        s = "%s seq=%d ack=%d corr=%d len=%d" % (name, self.seq, self.ack, self.corr, self.length)
        if self.kind in (MSG, NACK):
            s += " msg_id=%s dst=%s src=%s" % (self.msg_id.hex(), self.dst.hex(), self.src.hex())
        if self.kind == NACK:
            s += " reason=%s" % NACK_REASONS.get(self.flags, self.flags)
        if self.body:
            s += " body=%r" % self.body[:300]
        return s


# ---- the documented examples (§1, §5), checked before going on the wire --


def self_test():
    """The dumps of WIRE.md §5, rebuilt from their inputs with this file's code."""
    check(ECHO_REQ.hex() == "49772469a3a94e48fb73da57469c677d", "MsgId of echo_req::EchoReq differs from §1")
    alpha, beta = hash_id("alpha"), hash_id("beta")
    check(alpha.hex() == "8ed3f6ad685b959ead7022518e1af76c", "NodeId of alpha differs from §5")
    check(beta.hex() == "f44e64e75f3948e9f73f8dfa94721c4c", "NodeId of beta differs from §5")
    caps = CAP_AUTH | CAP_DEAD | CAP_ENCRYPT  # 00 00 00 07, as in the dumps
    h = hello(b"\xaa" * 32, alpha, b"\x11" * 16, caps)
    check(len(h) == HELLO_LEN, "HELLO is not 76 bytes")
    check(h[:12].hex() == "495043480101010000000007", "HELLO bytes 0..12 differ from §5")
    ack76 = MAGIC + bytes([T_HELLO_ACK, 1, 0, 0]) + struct.pack(">I", caps) + b"\xbb" * 32 + beta + b"\x22" * 16
    mac = server_mac(b"s3cret", h, ack76)
    check(mac.hex() == "8441976" "0db01fe777c11d67947847eaff2a69a6af90d0cb927f0da9003a13222",
          "server MAC differs from the HELLO_ACK dump of §5")
    a = auth(b"s3cret", h, ack76 + mac)
    check(a.hex() == "4950434803000000" "5028c8c7dd950e41f9a49128d5b61656b4d8e88d7a40a1a08e74c95a49a9c2fe",
          "AUTH differs from the dump of §5")
    body = json.dumps({"counter": 1, "req_timestamp_ns": 1000}, separators=(",", ":")).encode()
    f = frame(MSG, body, msg_id=ECHO_REQ, dst=bytes.fromhex("a0a0a0a0a0a0a0a00000000000000001"),
              src=bytes.fromhex("b0b0b0b0b0b0b0b00000000000000002"), seq=1)
    check(len(f) == 117 and f[:4].hex() == "00000071", "MSG frame length differs from §5")
    check(f.hex().startswith("000000710100000049772469a3a94e48fb73da57469c677da0a0a0a0a0a0a0a0"),
          "MSG frame bytes differ from §5")


# ---- §2 the encrypted link: Noise_NNpsk0_25519_AESGCM_BLAKE2s, then records


def _hmac(key, data):
    return hmac.new(key, data, hashlib.blake2s).digest()


def _hkdf(ck, ikm, n):
    temp = _hmac(ck, ikm)
    outs, prev = [], b""
    for i in range(1, n + 1):
        prev = _hmac(temp, prev + bytes([i]))
        outs.append(prev)
    return outs


class Cipher:
    """A Noise CipherState: AES-256-GCM, nonce 4 zero bytes then the counter, big-endian."""

    def __init__(self, key):
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        self.aead, self.n = AESGCM(key), 0

    def _nonce(self):
        nonce = b"\0\0\0\0" + struct.pack(">Q", self.n)
        self.n += 1
        return nonce

    def seal(self, ad, plain):
        return self.aead.encrypt(self._nonce(), plain, ad)

    def open(self, ad, sealed):
        from cryptography.exceptions import InvalidTag
        try:
            return self.aead.decrypt(self._nonce(), sealed, ad)
        except InvalidTag:
            raise Fail("a record did not open (altered, replayed, reordered or dropped)")


def noise_client(link, secret, transcript):
    """The initiator's side of Noise_NNpsk0_25519_AESGCM_BLAKE2s after AUTH: (send, receive) ciphers."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    psk = hmac.new(secret, b"ipchnl noise psk 1" + transcript, hashlib.sha256).digest()
    name = b"Noise_NNpsk0_25519_AESGCM_BLAKE2s"
    h = hashlib.blake2s(name).digest() if len(name) > 32 else name.ljust(32, b"\0")
    ck = h
    h = hashlib.blake2s(h + transcript).digest()  # the prologue
    ck, temp_h, k = _hkdf(ck, psk, 3)  # psk: MixKeyAndHash
    h = hashlib.blake2s(h + temp_h).digest()
    e = X25519PrivateKey.generate()
    e_pub = e.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    h = hashlib.blake2s(h + e_pub).digest()  # e: MixHash, and MixKey (psk mode)
    ck, k = _hkdf(ck, e_pub, 2)
    tag = Cipher(k).seal(h, b"")
    h = hashlib.blake2s(h + tag).digest()
    msg1 = e_pub + tag
    link.send(struct.pack(">H", len(msg1)) + msg1, "Noise message 1")
    msg2 = link.read_exact(2 + 48, "Noise message 2")
    check(struct.unpack(">H", msg2[:2])[0] == 48, "Noise message 2 is not 48 bytes")
    re_pub, tag = msg2[2:34], msg2[34:]
    h = hashlib.blake2s(h + re_pub).digest()  # e
    ck, k = _hkdf(ck, re_pub, 2)
    ck, k = _hkdf(ck, e.exchange(X25519PublicKey.from_public_bytes(re_pub)), 2)  # ee
    Cipher(k).open(h, tag)
    k1, k2 = _hkdf(ck, b"", 2)
    return Cipher(k1), Cipher(k2)


# ---- the link --------------------------------------------------------------


class Link:
    def __init__(self, sock, deadline, verbose):
        self.sock = sock
        self.deadline = deadline
        self.verbose = verbose
        self.buf = b""
        self.last_send = time.monotonic()
        self.send_seq = 0  # our MSG seq
        self.recv_seq = 0  # the server's last MSG seq
        self.max_ack = 0  # the highest ack the server sent
        self.server_name = None
        self.records = None  # (send, receive) ciphers of an encrypted link
        self.sealed = b""  # bytes of records not yet opened

    def log(self, s):
        if self.verbose:
            print("python client: " + s, file=sys.stderr)

    def remaining(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Fail("timed out (the --timeout hang guard) waiting for the server")
        return left

    def send(self, data, what):
        if self.records:
            seal = self.records[0].seal
            data = b"".join(struct.pack(">H", len(c)) + c
                            for c in (seal(b"", data[i:i + 65519]) for i in range(0, len(data), 65519)))
        self.sock.settimeout(self.remaining())
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Fail("sending %s failed: %s" % (what, e))
        self.last_send = time.monotonic()

    def send_frame(self, kind, **kw):
        kw.setdefault("ack", self.recv_seq)
        data = frame(kind, **kw)
        self.log("-> " + Frame(data[:HEADER_LEN], data[HEADER_LEN:]).describe())
        self.send(data, KIND_NAMES[kind])

    def fill(self, what, heartbeat):
        """Reads more bytes; b'' at end of stream. Sends heartbeats while idle."""
        while True:
            wait = self.remaining()
            if heartbeat:
                wait = min(wait, max(0.05, self.last_send + HEARTBEAT_INTERVAL - time.monotonic()))
            self.sock.settimeout(wait)
            try:
                got = self.sock.recv(65536)
                if not self.records or not got:
                    return got
                plain = self.open_records(got)
                if plain:
                    return plain
                continue
            except socket.timeout:
                if heartbeat and time.monotonic() >= self.last_send + HEARTBEAT_INTERVAL:
                    self.send_frame(HEARTBEAT)
                continue
            except ConnectionResetError:
                return b""
            except OSError as e:
                raise Fail("reading %s failed: %s" % (what, e))

    def open_records(self, got):
        """Takes `got`, bytes of records; the plaintext of those now whole (the rest waits)."""
        self.sealed += got
        plain = b""
        while len(self.sealed) >= 2:
            n = struct.unpack(">H", self.sealed[:2])[0]
            if len(self.sealed) < 2 + n:
                break
            plain += self.records[1].open(b"", self.sealed[2:2 + n])
            self.sealed = self.sealed[2 + n:]
        return plain

    def read_exact(self, n, what, heartbeat=False):
        while len(self.buf) < n:
            got = self.fill(what, heartbeat)
            if not got:
                raise Fail("the server closed the connection while %s was expected (%d of %d bytes read)"
                           % (what, len(self.buf), n))
            self.buf += got
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self):
        raw = self.read_exact(HEADER_LEN, "a frame header", heartbeat=True)
        length = struct.unpack(">I", raw[:4])[0]
        check(76 <= length <= MAX_FRAME - 4, "the server sent a frame length of %d" % length)
        body = self.read_exact(length - 76, "a frame body", heartbeat=True)
        f = Frame(raw, body)
        self.log("<- " + f.describe())
        check(f.kind in KIND_NAMES, "the server sent an unknown frame kind %#04x" % f.kind)
        check(f.ack >= self.max_ack, "the server's ack went down from %d to %d" % (self.max_ack, f.ack))
        check(f.ack <= self.send_seq, "the server acked seq %d, but only %d MSG frames were sent"
              % (f.ack, self.send_seq))
        self.max_ack = f.ack
        if f.kind == MSG:
            check(f.seq == self.recv_seq + 1, "the server sent MSG seq %d after %d" % (f.seq, self.recv_seq))
            self.recv_seq = f.seq
        else:
            check(f.seq == 0, "a %s frame with seq %d" % (KIND_NAMES[f.kind], f.seq))
        if f.kind == CLOSE:
            raise Fail("the server closed the link: %r" % f.body)
        if f.kind == NACK:
            raise Fail("the server refused MSG seq %d: %s %r"
                       % (f.corr, NACK_REASONS.get(f.flags, f.flags), f.body))
        return f


def parse_json(f, what):
    try:
        return json.loads(f.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise Fail("the body of %s is not JSON (%s): %r" % (what, e, f.body[:200]))


def read_secret(path):
    """The secret file's bytes; one trailing newline (LF or CRLF) is not part of it, as for `ipchnl`."""
    try:
        with open(path, "rb") as fh:
            secret = fh.read()
    except OSError as e:
        raise Fail("cannot read secret file %s: %s" % (path, e))
    if secret.endswith(b"\r\n"):
        secret = secret[:-2]
    elif secret.endswith(b"\n"):
        secret = secret[:-1]
    check(secret, "the secret file %s is empty" % path)
    return secret


# This process's dials, numbered upwards: a client nonce begins with its
# link's number (§2, §3: of two links one node dialed, the larger is kept).
DIALS = itertools.count(1)


def handshake(link, secret, node_id, encrypt=False):
    nonce, incarnation = struct.pack(">Q", next(DIALS)) + os.urandom(24), os.urandom(16)
    h = hello(nonce, node_id, incarnation, CAP_AUTH | (CAP_ENCRYPT | CAP_ENCRYPT_REQUIRED if encrypt else 0))
    check(len(h) == HELLO_LEN, "HELLO is not 76 bytes")
    link.send(h, "HELLO")
    ack = link.read_exact(HELLO_ACK_LEN, "HELLO_ACK")
    check(ack[:4] == MAGIC, "HELLO_ACK magic is %r, not IPCH" % ack[:4])
    check(ack[4] == T_HELLO_ACK, "HELLO_ACK type is %d, not 2" % ack[4])
    check(VERSION_MIN <= ack[5] <= VERSION_MAX, "the server chose version %d" % ack[5])
    caps = struct.unpack(">I", ack[8:12])[0]
    check(caps & CAP_AUTH, "the server does not set AUTH (caps %#010x) though we have a secret" % caps)
    check(ack[44:60] != node_id, "the server has our NodeId")
    ack += link.read_exact(MAC_LEN, "the server MAC")
    check(len(ack) == 108, "HELLO_ACK is not 108 bytes")
    expected = server_mac(secret, h, ack[:76])
    check(hmac.compare_digest(expected, ack[76:108]), "the server MAC is wrong (a different secret?)")
    link.send(auth(secret, h, ack), "AUTH")
    if encrypt or caps & CAP_ENCRYPT_REQUIRED:
        check(encrypt, "the server requires encryption (run with --encrypt)")
        check(caps & CAP_ENCRYPT, "the server cannot encrypt (caps %#010x)" % caps)
        link.records = noise_client(link, secret, h + ack)
        # What came with Noise message 2 (the server writes frames at once)
        # is records already.
        leftover, link.buf = link.buf, b""
        link.buf = link.open_records(leftover)
    link.log("handshake done with node %s (version %d%s)" % (ack[44:60].hex(), ack[5],
                                                             ", encrypted" if link.records else ""))


def find_echo_server(link):
    """Reads the full DIRECTORY (the server's first frame); the echo server's ActorId."""
    f = link.read_frame()
    check(f.kind == DIRECTORY, "the server's first frame is %s, not DIRECTORY" % KIND_NAMES[f.kind])
    d = parse_json(f, "the first DIRECTORY")
    check(isinstance(d, dict) and d.get("full") is True, "the first DIRECTORY is not full: %r" % d)
    link.server_name = d.get("node")
    link.bytes_echo = next((bytes.fromhex(e["id"]) for e in d.get("add", [])
                            if ECHO_BYTES.hex() in e.get("msgs", []) and e.get("name") == "bytes"), None)
    for entry in d.get("add", []):
        if ECHO_REQUESTEE.hex() in entry.get("protocols", []):
            check(entry.get("name") == "server", "the echo actor is named %r, not server" % entry.get("name"))
            check(ECHO_REQ.hex() in entry.get("msgs", []), "the echo actor does not list EchoReq in msgs")
            actor = bytes.fromhex(entry["id"])
            check(len(actor) == 16, "a 16-byte ActorId")
            return actor
    raise Fail("no actor speaks echo_requestee_protocol (%s) in %r" % (ECHO_REQUESTEE.hex(), d))


def echo(link, server, src, corr):
    body = json.dumps({"counter": 1, "req_timestamp_ns": 123}, separators=(",", ":")).encode()
    link.send_seq = 1
    link.send_frame(MSG, body=body, msg_id=ECHO_REQ, dst=server, src=src, seq=1, corr=corr)
    while True:
        f = link.read_frame()
        if f.kind == MSG:
            if f.msg_id == ECHO_REPLY and f.dst == src:
                break
            raise Fail("an unexpected MSG: " + f.describe())
        if f.kind == DIRECTORY:
            parse_json(f, "a DIRECTORY update")
        elif f.kind == WATCH:
            raise Fail("an unexpected WATCH: " + f.describe())
        # ACK, HEARTBEAT: their ack was checked by read_frame.
    reply = parse_json(f, "EchoReply")
    check(isinstance(reply, dict), "EchoReply is not an object: %r" % reply)
    check(reply.get("counter") == 1, "EchoReply counter is %r, not 1" % reply.get("counter"))
    check(reply.get("req_timestamp_ns") == 123, "EchoReply req_timestamp_ns is %r, not 123"
          % reply.get("req_timestamp_ns"))
    check(isinstance(reply.get("reply_timestamp_ns"), int), "EchoReply has no reply_timestamp_ns")
    check(f.corr == corr, "EchoReply corr is %#x, not ours %#x" % (f.corr, corr))
    check(f.src == server, "EchoReply src_id is %s, not the server %s" % (f.src.hex(), server.hex()))
    # Be a good citizen: acknowledge the reply (cumulative, up to its seq).
    link.send_frame(ACK)
    # The reply's own ack covers our request, or a frame before it did; if
    # not yet, the acknowledgement is still due: wait for it.
    while link.max_ack < 1:
        g = link.read_frame()
        check(g.kind != MSG, "an unexpected MSG: " + g.describe())
    return reply


def with_blobs(fields, blobs):
    """A body with blobs (§3): the JSON, then the blobs; a field names blob k by the number k."""
    j = json.dumps(fields, separators=(",", ":")).encode()
    return (b"\x00" + struct.pack(">I", len(j)) + j + struct.pack(">I", len(blobs))
            + b"".join(struct.pack(">Q", len(b)) for b in blobs) + b"".join(blobs))


def read_blobs(f, what):
    """The fields and the blobs of a MSG body: plain JSON has none."""
    body = f.body
    if body[:1] != b"\x00":
        return parse_json(f, what), []
    check(len(body) >= 9, "%s: a body with blobs cut short" % what)
    j = struct.unpack(">I", body[1:5])[0]
    check(9 + j <= len(body), "%s: its JSON length passes the body" % what)
    fields = json.loads(body[5:5 + j].decode("utf-8"))
    n = struct.unpack(">I", body[5 + j:9 + j])[0]
    at = 9 + j + 8 * n
    check(at <= len(body), "%s: more blob lengths than bytes" % what)
    blobs = []
    for k in range(n):
        size = struct.unpack(">Q", body[9 + j + 8 * k:17 + j + 8 * k])[0]
        blobs.append(body[at:at + size])
        at += size
    check(at == len(body), "%s: its blobs do not end where the body does" % what)
    return fields, blobs


def read_msg_to(link, src, what):
    """The next MSG, which must be to `src`; DIRECTORY, ACK and HEARTBEAT frames are passed over."""
    while True:
        f = link.read_frame()
        if f.kind == MSG:
            check(f.dst == src, "an unexpected MSG: " + f.describe())
            return f
        if f.kind == DIRECTORY:
            parse_json(f, "a DIRECTORY update")
        elif f.kind == WATCH:
            raise Fail("an unexpected WATCH while %s was expected: %s" % (what, f.describe()))


def bytes_echo(link, src):
    """Binary payloads (§3, bodies with blobs): 100,000 random bytes as a blob, and three bytes as a JSON
    array, come back from `bytes` as blobs; a body with a byte after its last blob is NACKed bad_body,
    and the link stays up."""
    actor = link.bytes_echo
    check(actor is not None, "no actor named bytes lists server::EchoBytes in the DIRECTORY")
    payload = os.urandom(100_000)
    cases = [(with_blobs({"tag": 11, "data": 0}, [payload]), 11, payload),
             (json.dumps({"tag": 12, "data": [1, 2, 3]}).encode(), 12, b"\x01\x02\x03")]
    for body, tag, expected in cases:
        link.send_seq += 1
        link.send_frame(MSG, body=body, msg_id=ECHO_BYTES, dst=actor, src=src, seq=link.send_seq, corr=tag)
        f = read_msg_to(link, src, "EchoedBytes")
        check(f.msg_id == ECHOED_BYTES and f.corr == tag, "not the EchoedBytes of tag %d: %s" % (tag, f.describe()))
        fields, blobs = read_blobs(f, "EchoedBytes")
        check(fields.get("tag") == tag, "EchoedBytes tag is %r, not %d" % (fields.get("tag"), tag))
        k = fields.get("data")
        check(isinstance(k, int) and 0 <= k < len(blobs), "EchoedBytes data is %r, not a blob of %d" % (k, len(blobs)))
        check(blobs[k] == expected, "EchoedBytes carries %d other bytes, not the %d sent" % (len(blobs[k]), len(expected)))
    link.send_seq += 1
    link.send_frame(MSG, body=with_blobs({"tag": 13, "data": 0}, [b"abc"]) + b"!", msg_id=ECHO_BYTES, dst=actor,
                    src=src, seq=link.send_seq, corr=13)
    try:
        f = read_msg_to(link, src, "a NACK")
        raise Fail("a body with a byte after its last blob was answered: " + f.describe())
    except Fail as e:
        check("bad_body" in str(e), "not NACKed bad_body: %s" % e)
    link.send_frame(ACK)
    return len(payload)


def oversized(link):
    """A header claiming 2**24 bytes: the server must close without reading on
    (its last frame a CLOSE with reason "protocol_error", WIRE.md §3)."""
    link.send(frame(MSG, msg_id=ECHO_REQ, seq=link.send_seq + 1, ack=link.recv_seq, length=1 << 24),
              "the oversized header")
    link.log("-> a header with length %d" % (1 << 24))
    # Frames already in flight may still come, then CLOSE; nothing else, then the end.
    kinds = []
    closed = False
    while True:
        got = link.fill("the end of the link", heartbeat=False)
        if not got:
            break
        link.buf += got
        while len(link.buf) >= HEADER_LEN:
            length = struct.unpack(">I", link.buf[:4])[0]
            if len(link.buf) < 4 + length:
                break
            f = Frame(link.buf[:HEADER_LEN], link.buf[HEADER_LEN:4 + length])
            link.buf = link.buf[4 + length:]
            link.log("<- (in flight) " + f.describe())
            check(not closed, "a frame after CLOSE: " + f.describe())
            if f.kind == CLOSE:
                reason = json.loads(f.body.decode()).get("reason")
                check(reason == "protocol_error", "CLOSE with reason %r, not protocol_error" % reason)
                closed = True
                continue
            check(f.kind in (ACK, HEARTBEAT, DIRECTORY), "after the oversized header the server sent " +
                  f.describe())
            kinds.append(KIND_NAMES[f.kind])
    check(not link.buf, "the server closed in the middle of a frame (%d stray bytes)" % len(link.buf))
    check(closed, "the server closed without a CLOSE frame")
    return kinds


def open_link(args, secret, deadline, node_name):
    """A new connection, handshake done and directories exchanged; (link, echo server id)."""
    host, _, port = args.addr.rpartition(":")
    try:
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=args.timeout)
    except OSError as e:
        raise Fail("cannot connect to %s: %s" % (args.addr, e))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    link = Link(sock, deadline, args.verbose)
    handshake(link, secret, hash_id(node_name))
    link.send_frame(DIRECTORY, body=json.dumps({"node": node_name, "full": True, "add": [], "remove": []}).encode())
    return link, find_echo_server(link)


def redial_replaces(args, secret, deadline):
    """The same node dials again with a new incarnation (it restarted) while
    its old link is still open: the old one gets CLOSE "replaced" (§3)."""
    name = "python-restarts-%d" % os.getpid()
    old, _ = open_link(args, secret, deadline, name)
    with old.sock:
        new, server = open_link(args, secret, deadline, name)  # handshake() draws a new incarnation
        with new.sock:
            while True:
                try:
                    f = old.read_frame()
                except Fail as e:
                    check("replaced" in str(e), "the old link ended otherwise: %s" % e)
                    break
                check(f.kind != MSG, "a MSG on the replaced link: " + f.describe())
            reply = echo(new, server, os.urandom(16), 7)
            check(reply.get("counter") == 1, "the new link echoes")


def pipelined(args, secret, deadline, n):
    """Writes n requests without reading, waits a second, then reads every
    reply, acknowledging as it goes: all n, in order, with corr copied."""
    link, server = open_link(args, secret, deadline, "python-pipeline-%d" % os.getpid())
    src = os.urandom(16)
    with link.sock:
        frames = b"".join(
            frame(MSG, body=json.dumps({"counter": i, "req_timestamp_ns": 0}).encode(), msg_id=ECHO_REQ,
                  dst=server, src=src, seq=i, corr=i)
            for i in range(1, n + 1))
        link.send_seq = n
        failed = []

        def write():
            try:
                link.send(frames, "%d pipelined requests" % n)
            except Fail as e:
                failed.append(e)

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(1.0)
        # The server reads and acknowledges them all (they fit its inbound
        # bound) while it owes replies: the writer finishes before we write again.
        writer.join(link.remaining())
        check(not writer.is_alive(), "the pipelined requests were not all taken")
        if failed:
            raise failed[0]
        expected = 1
        while expected <= n:
            f = link.read_frame()
            if f.kind != MSG:
                continue
            check(f.msg_id == ECHO_REPLY and f.dst == src, "an unexpected MSG: " + f.describe())
            reply = parse_json(f, "EchoReply")
            check(reply.get("counter") == expected and f.corr == expected,
                  "reply %r (corr %d) where %d was due" % (reply.get("counter"), f.corr, expected))
            expected += 1
            if expected % 256 == 0:
                link.send_frame(ACK)  # cumulative, up to the last reply read
        link.send_frame(ACK)
        return n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--addr", required=True, help="the server, HOST:PORT")
    p.add_argument("--secret-file", required=True, help="a file holding the shared secret")
    p.add_argument("--node-name", default="python-client-%d" % os.getpid(), help="this client's node name")
    p.add_argument("--timeout", type=float, default=30.0, help="hang guard for the whole run, seconds")
    p.add_argument("-v", "--verbose", action="store_true", help="log every frame on stderr")
    p.add_argument("--encrypt", action="store_true", help="require the link encrypted (needs `cryptography`)")
    args = p.parse_args()
    if args.encrypt:
        try:
            import cryptography  # noqa: F401
        except ImportError:
            print("python client: skip: --encrypt needs the `cryptography` package", file=sys.stderr)
            return 77
    try:
        self_test()
        host, sep, port = args.addr.rpartition(":")
        check(sep and host and port.isdigit(), "--addr must be HOST:PORT, not %r" % args.addr)
        secret = read_secret(args.secret_file)
        deadline = time.monotonic() + args.timeout
        try:
            sock = socket.create_connection((host.strip("[]"), int(port)), timeout=args.timeout)
        except OSError as e:
            raise Fail("cannot connect to %s: %s" % (args.addr, e))
        with sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = Link(sock, deadline, args.verbose)
            handshake(link, secret, hash_id(args.node_name), args.encrypt)
            # Our first frame: a full DIRECTORY (we announce no actors; the
            # reply goes to our src_id all the same).
            link.send_frame(DIRECTORY, body=json.dumps(
                {"node": args.node_name, "full": True, "add": [], "remove": []}).encode())
            server = find_echo_server(link)
            src = os.urandom(16)
            corr = int.from_bytes(os.urandom(8), "big") | 1
            echo(link, server, src, corr)
            blob_len = bytes_echo(link, src)
            if args.encrypt:
                # The rest of the run is about the plain wire.
                print("python client: ok: encrypted echo round trip with %s (counter 1, corr %#x), "
                      "%d bytes echoed as a blob" % (server.hex(), corr, blob_len))
                return 0
            in_flight = oversized(link)
        redial_replaces(args, secret, deadline)
        replies = pipelined(args, secret, deadline, 10_000)
    except Fail as e:
        print("python client: FAIL: %s" % e, file=sys.stderr)
        return 1
    print("python client: ok: echo round trip with %s on node %r (counter 1, corr %#x, ack %d), "
          "%d bytes echoed as a blob, a bad body with blobs NACKed, oversized frame closed the link (then %d frame(s) in flight: %s), a redial as a new "
          "incarnation replaced the old link, %d pipelined requests answered in order"
          % (server.hex(), link.server_name, corr, link.max_ack, blob_len, len(in_flight), ",".join(in_flight) or "none",
             replies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
