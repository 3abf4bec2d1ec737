#!/usr/bin/env python3
"""openpi's serving protocol (docs/model.md §7) against a pi0.cpp policy server, from the client's side.

The client below re-implements openpi_client's msgpack_numpy encoding and the
websocket_client_policy flow (connect with compression=None and max_size=None, receive the
metadata, then send an observation and receive one reply per request; a str reply is an error)
on Debian's python3-websockets/-msgpack/-numpy; a raw-socket client checks the handshake and
the frames byte for byte. Each test starts its own server on 127.0.0.1 with a free port:

    test_serve_protocol.py --server PATH [--server-args "..."] [-k PATTERN]

PATH is tests/serve/fake_policy_server (deterministic fake policy, see its header) or, with
--real, `pi0 serve` on a real checkpoint (then only the policy-independent tests run).
Every wait is bounded: sockets time out, asyncio waits have deadlines, loops have counts.
"""
import argparse
import asyncio
import base64
import functools
import hashlib
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack
import numpy as np
import websockets

SERVER = None        # the server binary (argv)
SERVER_ARGS = []     # extra arguments for every server start
REAL = False         # True: the real policy (no fake-policy formula checks)
H, D = 10, 7         # the fake policy's action shape
STEP_TIMEOUT = 30.0  # seconds for any single network wait


# --- openpi_client.msgpack_numpy, written from docs/model.md §7 ---------------------------------------------
def pack_array(obj):
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in ("V", "O", "c"):
        raise ValueError(f"Unsupported dtype: {obj.dtype}")
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def unpack_array(obj):
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def packb(obj):
    return msgpack.packb(obj, default=pack_array, use_bin_type=True)


def unpackb(data):
    return msgpack.unpackb(data, object_hook=unpack_array)


# --- observations and what the fake policy must answer ---------------------------------------------
def make_obs(seed, noise=True, prompt="pick up the fork"):
    rng = np.random.default_rng(seed)
    obs = {
        "observation/image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "observation/wrist_image": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "observation/state": rng.standard_normal(8).astype(np.float32),
        "prompt": prompt,
    }
    if noise:
        obs["noise"] = rng.standard_normal((H, 32)).astype(np.float32)
    return obs


def fake_actions(obs):
    """The fake policy's formula (fake_policy_server.cpp), in float64 as it computes it."""
    s = obs["observation/state"].astype(np.float64)
    pix = float(obs["observation/image"].astype(np.float64).sum())
    i = np.arange(H, dtype=np.float64)[:, None]
    return 0.5 * s[None, :D] + 1e-6 * pix + 0.01 * len(obs["prompt"]) + 0.001 * i + obs["noise"][:, :D].astype(np.float64)


# --- the server process ----------------------------------------------------------------------------
class ServerProcess:
    def __init__(self, *args, host="127.0.0.1"):
        self.log = tempfile.NamedTemporaryFile(prefix="pi0_serve_", suffix=".log", delete=False)
        cmd = [SERVER, *SERVER_ARGS, "--host", host, "--port", "0", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self._readline(60.0)
        if not line.startswith("listening on "):
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}\n{self.stderr()}")
        self.url = line.split()[2]  # "listening on ws://HOST:PORT ...", IPv6 hosts in brackets
        self.port = int(self.url.rsplit(":", 1)[1])

    def _readline(self, timeout):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
        return self.proc.stdout.readline()

    def stderr(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"server did not exit within {timeout} s of {sig!r}\n{self.stderr()}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        code = self.stop()
        os.unlink(self.log.name)
        if exc[0] is None and code != 0:
            raise AssertionError(f"server exited with {code}")


# --- the openpi client flow on asyncio (Debian's websockets 10 has no sync client) ----------------
class ServerError(Exception):
    """A str reply: openpi's WebsocketClientPolicy raises on it too."""


class Client:
    async def connect(self, url, **kw):
        self.ws = await asyncio.wait_for(
            websockets.connect(url, compression=None, max_size=None, open_timeout=STEP_TIMEOUT, **kw), STEP_TIMEOUT)
        self.metadata = unpackb(await asyncio.wait_for(self.ws.recv(), STEP_TIMEOUT))
        return self

    async def infer(self, obs):
        await self.ws.send(packb(obs))
        return await self.reply()

    async def reply(self):
        r = await asyncio.wait_for(self.ws.recv(), STEP_TIMEOUT)
        if isinstance(r, str):
            raise ServerError(r)
        return unpackb(r)

    async def close_code(self):
        """Waits for the server to close; returns the close code."""
        try:
            await asyncio.wait_for(self.ws.recv(), STEP_TIMEOUT)
        except websockets.ConnectionClosed as e:
            return e.code
        raise AssertionError("expected the connection to close")

    async def close(self):
        await self.ws.close()


def run(coro, timeout=120.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# --- raw sockets, for byte-level checks ------------------------------------------------------------
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def raw_connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT)
    s.settimeout(STEP_TIMEOUT)
    return s


def read_until(s, marker):
    """Byte by byte, so that nothing after the marker (the first frame) is consumed."""
    data = b""
    while not data.endswith(marker):
        chunk = s.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def read_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def raw_handshake(s, key="dGhlIHNhbXBsZSBub25jZQ=="):
    s.sendall((f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"Authorization: Api-Key ignored\r\n\r\n").encode())
    head = read_until(s, b"\r\n\r\n")
    return head


def read_frame(s):
    b0, b1 = read_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", read_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", read_exact(s, 8))[0]
    assert not b1 & 0x80, "server frames must not be masked"
    return b0, read_exact(s, n)


def frame_bytes(opcode, payload, mask=b"\x01\x02\x03\x04", length=None):
    n = len(payload) if length is None else length
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if len(payload) < 4096 else \
        (np.frombuffer(payload, np.uint8) ^ np.resize(np.frombuffer(mask, np.uint8), len(payload))).tobytes()
    return head + mask + masked


def http_get(port, path):
    s = raw_connect(port)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def wait_for_file(path, timeout=20.0):
    for _ in range(int(timeout / 0.01)):
        if os.path.exists(path):
            return
        time.sleep(0.01)
    raise AssertionError(f"{path} did not appear within {timeout} s")


class Gate:
    """While the gate file exists the fake policy holds each call (after touching .running)."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="pi0_gate_")
        self.path = os.path.join(self.dir.name, "gate")
        open(self.path, "w").close()

    def arm(self):
        if os.path.exists(self.path + ".running"):
            os.unlink(self.path + ".running")
        open(self.path, "w").close()

    def wait_running(self):
        wait_for_file(self.path + ".running")

    def release(self):
        if os.path.exists(self.path):
            os.unlink(self.path)


def fake_policy_only(test):
    """For tests that hold requests with the fake policy's --gate or check its action formula:
    skipped with --real (`pi0 serve` has neither). Checked when the test runs, after main() has
    parsed --real."""
    @functools.wraps(test)
    def wrapper(self, *args, **kwargs):
        if REAL:
            self.skipTest("needs the fake policy server (--gate or its action formula)")
        return test(self, *args, **kwargs)
    return wrapper


async def good_request_works(url, seed=12345):
    c = await Client().connect(url)
    obs = make_obs(seed)
    r = await c.infer(obs)
    await c.close()
    if not REAL:
        np.testing.assert_allclose(r["actions"], fake_actions(obs), rtol=1e-12, atol=1e-12)
    return r


# --- the tests ---------------------------------------------------------------------------------------
class Protocol(unittest.TestCase):
    def test_healthz_on_the_same_port(self):
        with ServerProcess() as srv:
            r = http_get(srv.port, "/healthz")
            self.assertTrue(r.startswith(b"HTTP/1.1 200 OK\r\n"), r)
            self.assertTrue(r.endswith(b"\r\n\r\nOK\n"), r)
            self.assertIn(b"426", http_get(srv.port, "/").split(b"\r\n")[0])
            run(good_request_works(srv.url))  # health checks leave the WebSocket side alone

    def test_handshake_and_frames_byte_for_byte(self):
        with ServerProcess() as srv:
            s = raw_connect(srv.port)
            key = base64.b64encode(os.urandom(16)).decode()
            head = raw_handshake(s, key).decode()
            self.assertTrue(head.startswith("HTTP/1.1 101 Switching Protocols\r\n"), head)
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            self.assertIn(f"Sec-WebSocket-Accept: {accept}\r\n", head)
            self.assertNotIn("permessage-deflate", head)  # compression=None, as openpi
            b0, meta = read_frame(s)
            self.assertEqual(b0, 0x82)  # FIN + binary: msgpack(metadata) comes first
            if not REAL:
                expected = {"action_dim": D, "action_horizon": H, "reset_pose": [0.0, -1.5, 1.5, 0.0, 0.0, 0.0],
                            "robot": "fake"}
                self.assertEqual(meta, packb(expected))  # same bytes as Python's packer
            obs = make_obs(7)
            s.sendall(frame_bytes(0x2, packb(obs)))
            b0, reply = read_frame(s)
            self.assertEqual(b0, 0x82)
            r = unpackb(reply)
            self.assertEqual(r["actions"].dtype.str, "<f8")
            if not REAL:
                # The reply's array map: bin keys in openpi's order, then the str keys.
                raw = msgpack.unpackb(reply, raw=False)
                self.assertEqual(list(raw["actions"].keys()), [b"__ndarray__", b"data", b"dtype", b"shape"])
                self.assertEqual(raw["actions"][b"dtype"], "<f8")
                self.assertEqual(raw["actions"][b"shape"], [H, D])
                self.assertEqual(raw["actions"][b"data"], fake_actions(obs).astype("<f8").tobytes())
            s.sendall(frame_bytes(0x8, struct.pack(">H", 1000)))
            b0, payload = read_frame(s)
            self.assertEqual(b0, 0x88)
            self.assertEqual(struct.unpack(">H", payload[:2])[0], 1000)
            s.close()

    def test_openpi_client_flow_and_reply_format(self):
        with ServerProcess() as srv:
            async def go():
                c = await Client().connect(srv.url, extra_headers={"Authorization": "Api-Key x"})
                self.assertIsInstance(c.metadata, dict)
                for k in range(3):
                    obs = make_obs(100 + k)
                    obs["extra_scalar"] = np.float32(0.5)  # numpy scalars travel too
                    r = await c.infer(obs)
                    self.assertTrue(all(isinstance(key, str) for key in r))
                    self.assertTrue({"actions", "policy_timing", "server_timing"} <= set(r))
                    self.assertIsInstance(r["actions"], np.ndarray)
                    self.assertEqual(r["actions"].dtype, np.float64)
                    self.assertEqual(r["actions"].ndim, 2)
                    self.assertIsInstance(r["policy_timing"]["infer_ms"], float)
                    st = r["server_timing"]
                    self.assertIsInstance(st["infer_ms"], float)
                    self.assertGreaterEqual(st["infer_ms"], 0.0)
                    if k == 0:
                        self.assertNotIn("prev_total_ms", st)  # absent on a connection's first reply
                    else:
                        self.assertIsInstance(st["prev_total_ms"], float)
                        self.assertGreaterEqual(st["prev_total_ms"], st["infer_ms"] * 0)
                    if not REAL:
                        self.assertEqual(r["actions"].shape, (H, D))
                        np.testing.assert_allclose(r["actions"], fake_actions(obs), rtol=1e-12, atol=1e-12)
                await c.close()
            run(go())

    def test_bytes_prompt_is_the_same_text(self):
        """openpi clients may send the prompt as Python bytes: it is the same UTF-8 text."""
        with ServerProcess() as srv:
            async def go():
                c = await Client().connect(srv.url)
                text = await c.infer(make_obs(6, prompt="pick up the caf\u00e9 mug"))
                raw = await c.infer(make_obs(6, prompt="pick up the caf\u00e9 mug".encode()))
                np.testing.assert_array_equal(text["actions"], raw["actions"])
                await c.ws.send(packb(make_obs(6, prompt=b"caf\xe9")))  # Latin-1: not UTF-8 text
                with self.assertRaises(ServerError) as err:
                    await c.reply()
                self.assertIn('message["prompt"]', str(err.exception))
                self.assertIn("UTF-8", str(err.exception))
                self.assertEqual(await c.close_code(), 1011)
            run(go())

    def test_noise_makes_a_reply_reproducible(self):
        with ServerProcess() as srv:
            async def go():
                c = await Client().connect(srv.url)
                a = await c.infer(make_obs(5))
                b = await c.infer(make_obs(5))
                np.testing.assert_array_equal(a["actions"], b["actions"])
                x = await c.infer(make_obs(5, noise=False))
                y = await c.infer(make_obs(5, noise=False))
                self.assertFalse(np.array_equal(x["actions"], y["actions"]), "fresh noise per call without 'noise'")
                await c.close()
            run(go())


class BadInput(unittest.TestCase):
    """Each bad request gets a str reply naming the problem, then the close code; the server
    then answers the next client."""

    def bad_requests(self):
        good = packb(make_obs(1))
        cases = [
            ("malformed msgpack", b"\xc1\x00", "malformed msgpack", 1011),
            ("truncated", good[: len(good) // 2], "ends in the middle", 1011),
            ("trailing bytes", good + b"\x00", "trailing bytes", 1011),
            ("not a map", packb([1, 2, 3]), "expected a msgpack map", 1011),
            ("complex dtype", msgpack.packb({"observation/state": {b"__ndarray__": True, b"data": b"\0" * 64,
                                            b"dtype": "<c8", b"shape": [8]}}, use_bin_type=True), "complex", 1011),
            ("object dtype", msgpack.packb({"x": {b"__ndarray__": True, b"data": b"", b"dtype": "|O",
                                            b"shape": [0]}}, use_bin_type=True), "object", 1011),
            ("shape x itemsize != len(data)", msgpack.packb({"observation/state": {
                b"__ndarray__": True, b"data": b"\0" * 30, b"dtype": "<f4", b"shape": [8]}}, use_bin_type=True),
             "does not match shape [8]", 1011),
            ("str marker keys", msgpack.packb({"observation/state": {
                "__ndarray__": True, "data": b"\0" * 32, "dtype": "<f4", "shape": [8]}}, use_bin_type=True),
             "marker keys as bin", 1011),
        ]
        if not REAL:
            obs = make_obs(2)
            del obs["observation/state"]
            cases.append(("missing key", packb(obs), "observation/state", 1011))
            obs = make_obs(3)
            obs["observation/image"] = obs["observation/image"].astype(np.float32)
            cases.append(("wrong dtype for the policy", packb(obs), "observation/image", 1011))
            obs = make_obs(4)
            obs["observation/state"] = np.zeros((2, 4), np.float32)
            cases.append(("wrong shape for the policy", packb(obs), "observation/state", 1011))
            cases.append(("non-pi0 exception", packb(make_obs(5, prompt="raise std::runtime_error")),
                          "request failed", 1011))
        return cases

    def test_each_bad_request_gets_an_error_and_the_next_client_is_served(self):
        with ServerProcess() as srv:
            async def go():
                for name, payload, needle, code in self.bad_requests():
                    with self.subTest(name):
                        c = await Client().connect(srv.url)
                        await c.ws.send(payload)
                        with self.assertRaises(ServerError) as err:
                            await c.reply()
                        self.assertIn(needle, str(err.exception))
                        self.assertEqual(await c.close_code(), code)
                        await good_request_works(srv.url)
            run(go())

    def test_text_frame_is_refused(self):
        with ServerProcess() as srv:
            async def go():
                c = await Client().connect(srv.url)
                await c.ws.send("{'observation/state': [1, 2]}")
                with self.assertRaises(ServerError) as err:
                    await c.reply()
                self.assertIn("binary msgpack", str(err.exception))
                self.assertEqual(await c.close_code(), 1003)
                await good_request_works(srv.url)
            run(go())

    def test_oversize_message_is_refused_clearly(self):
        limit = 400_000
        with ServerProcess("--max-message-bytes", str(limit)) as srv:
            async def go():
                c = await Client().connect(srv.url)
                obs = make_obs(9)
                await c.infer(obs)  # ~300 KB: under the limit
                obs["observation/right_wrist_image"] = np.zeros((224, 224, 3), np.uint8)
                obs["big"] = np.zeros(4 << 20, np.uint8)  # 4 MiB, ten times the limit
                await c.ws.send(packb(obs))
                with self.assertRaises(ServerError) as err:
                    await c.reply()
                self.assertIn(f"message too big: more than {limit} bytes", str(err.exception))
                self.assertEqual(await c.close_code(), 1009)
                await good_request_works(srv.url)
            run(go())

    def test_oversize_frame_header_is_refused_before_its_payload(self):
        """A header announcing more than the limit is refused as soon as it is read (here: with one
        payload byte behind it), not after the limit's worth of payload; also 2^62 and 2^63 (whose top
        bit a conforming client never sets)."""
        limit = 400_000
        with ServerProcess("--max-message-bytes", str(limit)) as srv:
            for announced, code, text in ((limit + 1, 1009, f"message too big: more than {limit} bytes"),
                                          (1 << 62, 1009, "message too big"), (1 << 63, 1009, "message too big")):
                s = raw_connect(srv.port)
                self.assertTrue(raw_handshake(s).startswith(b"HTTP/1.1 101"))
                read_frame(s)  # the metadata
                s.sendall(frame_bytes(0x2, b"", length=announced) + b"\x00")  # header + first byte only
                said = b""
                b0, payload = read_frame(s)  # the socket's timeout fails the test if nothing comes
                while b0 != 0x88:            # the error text (openpi's convention), then the close frame
                    said += payload
                    b0, payload = read_frame(s)
                self.assertEqual(struct.unpack(">H", payload[:2])[0], code, f"announced {announced}")
                self.assertIn(text, said.decode())
                s.close()
            run(good_request_works(srv.url))

    def test_default_limit_takes_three_cameras(self):
        with ServerProcess() as srv:
            async def go():
                c = await Client().connect(srv.url)
                obs = make_obs(10)
                obs["observation/right_wrist_image"] = np.ones((224, 224, 3), np.uint8)
                r = await c.infer(obs)
                self.assertEqual(r["actions"].dtype, np.float64)
                await c.close()
            run(go())


class Faults(unittest.TestCase):
    @fake_policy_only
    def test_client_dropping_mid_frame_or_mid_request(self):
        gate = Gate()
        with ServerProcess("--gate", gate.path) as srv:
            # 1. A frame that announces 300 KB and stops after 10 bytes, then the socket closes.
            s = raw_connect(srv.port)
            raw_handshake(s)
            read_frame(s)
            s.sendall(frame_bytes(0x2, b"\x00" * 10, length=300_000)[:20])
            s.close()
            # 2. A client whose request is being computed vanishes without a close frame.
            async def vanish():
                c = await Client().connect(srv.url)
                await c.ws.send(packb(make_obs(11)))
                await asyncio.get_running_loop().run_in_executor(None, gate.wait_running)
                c.ws.transport.abort()
            run(vanish())
            gate.release()
            run(good_request_works(srv.url))
            self.assertIsNone(srv.proc.poll())

    @fake_policy_only
    def test_a_client_that_never_reads_blocks_nobody(self):
        with ServerProcess() as srv:
            s = raw_connect(srv.port)
            raw_handshake(s)
            payload = packb(make_obs(12))
            s.sendall(frame_bytes(0x2, payload) + frame_bytes(0x2, payload))  # and never reads
            async def go():
                c = await Client().connect(srv.url)
                for k in range(20):
                    obs = make_obs(200 + k)
                    r = await c.infer(obs)
                    np.testing.assert_allclose(r["actions"], fake_actions(obs), rtol=1e-12, atol=1e-12)
                await c.close()
            run(go())
            s.close()

    @fake_policy_only
    def test_full_queue_refuses_instead_of_buffering(self):
        gate = Gate()
        with ServerProcess("--gate", gate.path, "--max-queue", "1", "--workers", "1") as srv:
            async def go():
                a, b, c = [await Client().connect(srv.url) for _ in range(3)]
                obs_a, obs_b, obs_c = make_obs(21), make_obs(22), make_obs(23)
                await a.ws.send(packb(obs_a))
                await asyncio.get_running_loop().run_in_executor(None, gate.wait_running)  # a is running
                await b.ws.send(packb(obs_b))  # one of b, c waits in the queue (capacity 1) ...
                await c.ws.send(packb(obs_c))  # ... and the other is refused at once
                tb, tc = asyncio.create_task(b.reply()), asyncio.create_task(c.reply())
                done, _ = await asyncio.wait({tb, tc}, timeout=STEP_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
                self.assertEqual(len(done), 1)
                refused = done.pop()
                with self.assertRaises(ServerError) as err:
                    refused.result()
                self.assertIn("server busy", str(err.exception))
                self.assertEqual(await (b if refused is tb else c).close_code(), 1013)
                gate.release()
                ra = await a.reply()
                np.testing.assert_allclose(ra["actions"], fake_actions(obs_a), rtol=1e-12, atol=1e-12)
                waiting, obs_w = (c, obs_c) if refused is tb else (b, obs_b)
                rw = await (tc if refused is tb else tb)
                np.testing.assert_allclose(rw["actions"], fake_actions(obs_w), rtol=1e-12, atol=1e-12)
                await a.close()
                await waiting.close()
            run(go())

    @fake_policy_only
    def test_requests_sent_ahead_are_answered_in_order_within_a_bound(self):
        gate = Gate()
        with ServerProcess("--gate", gate.path) as srv:
            async def go():
                c = await Client().connect(srv.url)
                obs = [make_obs(30 + k) for k in range(3)]
                await c.ws.send(packb(obs[0]))
                await asyncio.get_running_loop().run_in_executor(None, gate.wait_running)
                for o in obs[1:]:
                    await c.ws.send(packb(o))  # two ahead of the reply: allowed
                gate.release()
                for o in obs:
                    r = await c.reply()
                    np.testing.assert_allclose(r["actions"], fake_actions(o), rtol=1e-12, atol=1e-12)
                await c.close()
                # Three ahead: refused.
                gate.arm()
                c = await Client().connect(srv.url)
                for k in range(4):
                    await c.ws.send(packb(obs[0]))
                    if k == 0:
                        await asyncio.get_running_loop().run_in_executor(None, gate.wait_running)
                with self.assertRaises(ServerError) as err:
                    await c.reply()
                self.assertIn("too many requests sent ahead", str(err.exception))
                gate.release()
                self.assertEqual(await c.close_code(), 1008)
            run(go())

    def test_connection_limit(self):
        with ServerProcess("--max-connections", "2") as srv:
            async def go():
                a = await Client().connect(srv.url)
                b = await Client().connect(srv.url)
                with self.assertRaises(websockets.InvalidStatusCode) as err:
                    await Client().connect(srv.url)
                self.assertEqual(err.exception.status_code, 503)
                await a.close()
                for _ in range(500):  # the closed session goes away shortly after its close handshake
                    try:
                        c = await Client().connect(srv.url)
                        break
                    except websockets.InvalidStatusCode:
                        await asyncio.sleep(0.01)
                else:
                    self.fail("a slot did not free up after a client left")
                await c.close()
                await b.close()
            run(go())


class Concurrency(unittest.TestCase):
    CLIENTS, REQUESTS = 8, 50

    def test_8_clients_x_50_requests(self):
        with ServerProcess("--workers", "2", "--max-queue", "16") as srv:
            seeds = [[1000 * c + k for k in range(self.REQUESTS)] for c in range(self.CLIENTS)]

            async def client(seed_list):
                c = await Client().connect(srv.url)
                out = []
                for s in seed_list:
                    out.append((await c.infer(make_obs(s)))["actions"])
                await c.close()
                return out

            async def go():
                # Reference: the same requests from a single client, one after another.
                single = await client([s for lst in seeds for s in lst])
                concurrent = await asyncio.gather(*[client(lst) for lst in seeds])
                return single, concurrent

            single, concurrent = run(go(), timeout=240.0)
            self.assertEqual(sum(len(x) for x in concurrent), self.CLIENTS * self.REQUESTS)
            for c in range(self.CLIENTS):
                for k in range(self.REQUESTS):
                    ref = single[c * self.REQUESTS + k]
                    np.testing.assert_array_equal(concurrent[c][k], ref)  # bit-identical to the lone run
                    if not REAL:
                        np.testing.assert_allclose(ref, fake_actions(make_obs(seeds[c][k])), rtol=1e-12, atol=1e-12)


class Shutdown(unittest.TestCase):
    @fake_policy_only
    def test_sigterm_finishes_requests_in_flight_then_closes(self):
        gate = Gate()
        srv = ServerProcess("--gate", gate.path)
        try:
            async def go():
                busy = await Client().connect(srv.url)
                idle = await Client().connect(srv.url)
                obs = make_obs(40)
                await busy.ws.send(packb(obs))
                await asyncio.get_running_loop().run_in_executor(None, gate.wait_running)
                srv.proc.send_signal(signal.SIGTERM)
                self.assertEqual(await idle.close_code(), 1001)  # idle connections close at once
                for _ in range(500):  # and no new connection is taken
                    try:
                        c = await Client().connect(srv.url)
                        await c.close()
                        await asyncio.sleep(0.01)
                    except (OSError, websockets.InvalidStatusCode, websockets.InvalidMessage, asyncio.TimeoutError):
                        break
                else:
                    self.fail("the server still accepts connections after SIGTERM")
                gate.release()
                r = await busy.reply()  # the request in flight is answered in full ...
                np.testing.assert_allclose(r["actions"], fake_actions(obs), rtol=1e-12, atol=1e-12)
                self.assertEqual(await busy.close_code(), 1001)  # ... then its connection closes
            run(go())
            self.assertEqual(srv.stop(timeout=30.0), 0)
            self.assertIn("clean exit", srv.stderr())
        finally:
            if srv.proc.poll() is None:
                srv.proc.kill()
                srv.proc.wait(10)


    @fake_policy_only
    def test_pipelined_requests_are_answered_before_the_close(self):
        """Requests a client already sent behind the one in flight were accepted: SIGTERM answers
        them all, then closes with 1001."""
        gate = Gate()
        srv = ServerProcess("--gate", gate.path)
        try:
            async def go():
                c = await Client().connect(srv.url)
                observations = [make_obs(70 + k) for k in range(3)]
                for obs in observations:
                    await c.ws.send(packb(obs))
                await asyncio.get_running_loop().run_in_executor(None, gate.wait_running)
                await asyncio.sleep(0.2)  # the two behind it have arrived
                srv.proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.2)
                gate.release()
                for obs in observations:
                    r = await c.reply()
                    np.testing.assert_allclose(r["actions"], fake_actions(obs), rtol=1e-12, atol=1e-12)
                self.assertEqual(await c.close_code(), 1001)
            run(go())
            self.assertEqual(srv.stop(timeout=30.0), 0)
        finally:
            if srv.proc.poll() is None:
                srv.proc.kill()
                srv.proc.wait(10)

    def test_silent_connection_does_not_hold_up_shutdown(self):
        """A TCP connection that never sends its HTTP request is closed at SIGTERM, not waited for
        until --handshake-timeout (60 s here)."""
        with ServerProcess("--handshake-timeout", "60") as srv:
            silent = raw_connect(srv.port)
            run(good_request_works(srv.url))
            t0 = time.monotonic()
            self.assertEqual(srv.stop(timeout=30.0), 0)
            self.assertLess(time.monotonic() - t0, 30.0)
            silent.close()

    def test_second_sigterm_stops_at_once(self):
        """A peer that never answers the close handshake would hold a draining server for the
        handshake timeout (60 s here); a second SIGTERM stops it now."""
        srv = ServerProcess("--handshake-timeout", "60", "--idle-timeout", "120")
        try:
            s = raw_connect(srv.port)
            self.assertTrue(raw_handshake(s).startswith(b"HTTP/1.1 101"))
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            self.assertIsNone(srv.proc.poll(), "the close handshake is still owed")
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            srv.proc.wait(30)
            self.assertLess(time.monotonic() - t0, 30.0)
            self.assertIn("second SIGTERM", srv.stderr())
            s.close()
        finally:
            if srv.proc.poll() is None:
                srv.proc.kill()
                srv.proc.wait(10)

class Metrics(unittest.TestCase):
    def test_metrics_count_outcomes_latency_and_connections(self):
        """GET /metrics: Prometheus text with requests by outcome, a latency histogram, queue depth,
        connections and the model's labels; each request also gets one log line with its latency."""
        with ServerProcess() as srv:
            async def go():
                c = await Client().connect(srv.url)
                await c.infer(make_obs(3))
                bad = make_obs(4)
                del bad["observation/state"]
                with self.assertRaises(ServerError):
                    await c.infer(bad)
                await c.close()
                keep = await Client().connect(srv.url)  # one connection open while scraped
                text = http_get(srv.port, "/metrics").decode()
                await keep.close()
                return text
            text = run(go())
            head, _, body = text.partition("\r\n\r\n")
            self.assertIn("200", head.splitlines()[0])
            self.assertIn("version=0.0.4", head)
            lines = body.splitlines()
            self.assertIn('pi0_requests_total{outcome="ok"} 1', lines)
            self.assertIn('pi0_requests_total{outcome="error"} 1', lines)
            self.assertIn('pi0_requests_total{outcome="busy"} 0', lines)
            self.assertIn('pi0_request_duration_seconds_count 2', lines)
            self.assertIn('pi0_request_duration_seconds_bucket{le="+Inf"} 2', lines)
            self.assertIn("pi0_connections 1", lines)
            self.assertIn("pi0_queue_depth 0", lines)
            self.assertTrue(any(l.startswith("pi0_model_info{") and l.endswith("} 1") for l in lines), body)
            for l in lines:  # every sample line parses as NAME[{labels}] VALUE
                if not l.startswith("#"):
                    float(l.rsplit(" ", 1)[1])
            self.assertIn("request 1 answered in", srv.stderr())

class Hosts(unittest.TestCase):
    def test_host_names_and_ipv6_listen_and_print_a_usable_url(self):
        for host, want in (("localhost", ("ws://127.0.0.1:", "ws://[::1]:")), ("::1", ("ws://[::1]:",))):
            with ServerProcess(host=host) as srv:
                self.assertTrue(srv.url.startswith(want), srv.url)
                run(good_request_works(srv.url))


def main():
    global SERVER, SERVER_ARGS, REAL
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--server-args", default="")
    ap.add_argument("--real", action="store_true", help="a real policy: skip the fake-policy checks")
    args, rest = ap.parse_known_args()
    SERVER, SERVER_ARGS, REAL = args.server, shlex.split(args.server_args), args.real
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
