"""Tests of `hybridnas serve`, streaming `hybridnas score --archs -` and the Python client.

Run by ctest (python/CMakeLists.txt) with HYBRIDNAS_BIN and HYBRIDNAS_DATA_DIR set:
    HYBRIDNAS_BIN=build/cli/hybridnas HYBRIDNAS_DATA_DIR=../shared/data /usr/bin/python3 -m unittest discover -s python/tests
"""

import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import hybridnas  # noqa: E402
from hybridnas import Client, ServerError, ServerExited, ServerTimeout  # noqa: E402

BIN = os.environ.get("HYBRIDNAS_BIN") or hybridnas.find_binary()
DATA = os.environ.get("HYBRIDNAS_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data"))
SAMPLE = os.path.join(DATA, "cifar10", "cifar10_sample.bin")
TABLE = os.path.join(DATA, "nb201", "nb201_cifar10.csv")


def quick(batch=8):
    """Fast scoring settings for the tests."""
    return ["--backend", "cpu", "--proxies", "naswot,ni", "--batch", str(batch), "-q", "--data", SAMPLE,
            "--table", TABLE]


QUICK = quick()
A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
B = "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|skip_connect~2|"
DEGENERATE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def readline(f, timeout=60.0):
    """One line from a pipe within `timeout` seconds (None when nothing came)."""
    buf = b""
    end = time.monotonic() + timeout
    fd = f.fileno()
    while not buf.endswith(b"\n"):
        left = end - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        c = os.read(fd, 1)
        if not c:
            return buf.decode() if buf else None
        buf += c
    return buf.decode()


class StdioServer:
    """`hybridnas serve` on pipes, driven line by line."""

    def __init__(self, args=(), batch=8):
        self.p = subprocess.Popen([BIN, "serve", *quick(batch), *args], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = readline(self.p.stdout)
        if line is None:
            self.p.kill()
            raise AssertionError(self.p.stderr.read().decode())
        self.ready = json.loads(line)

    def send(self, raw):
        self.p.stdin.write(raw if isinstance(raw, bytes) else raw.encode())
        self.p.stdin.flush()

    def ask(self, obj_or_raw):
        if isinstance(obj_or_raw, bytes):
            self.send(obj_or_raw)
        else:
            self.send((obj_or_raw if isinstance(obj_or_raw, str) else json.dumps(obj_or_raw)) + "\n")
        line = readline(self.p.stdout)
        assert line is not None, "no response"
        return json.loads(line)

    def close(self):
        self.p.stdin.close()
        rc = self.p.wait(timeout=60)
        self.p.stdout.close()
        self.p.stderr.close()
        return rc


class Protocol(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = StdioServer()

    @classmethod
    def tearDownClass(cls):
        assert cls.s.close() == 0

    def test_ready_record(self):
        r = self.s.ready
        self.assertTrue(r["ready"])
        self.assertEqual(r["protocol"], 1)
        self.assertEqual(r["backend"], "cpu")
        self.assertEqual(r["proxies"], ["naswot", "ni"])
        for key in ("version", "device", "settings", "input", "pid"):
            self.assertIn(key, r)
        self.assertEqual(r["settings"]["batch"], 8)

    def test_every_encoding_and_error_records(self):
        resp = self.s.ask({"id": 7, "archs": [A, 6111, "6111", [4, 0, 3, 1, 4, 3], "bogus", {"x": 1}, DEGENERATE, -1]})
        self.assertEqual(resp["id"], 7)
        res = resp["results"]
        self.assertEqual(len(res), 8)
        self.assertEqual(res[0]["arch"], A)
        self.assertEqual(res[1]["index"], 6111)
        self.assertEqual(res[1]["arch"], res[2]["arch"])
        self.assertEqual(res[1]["naswot"], res[2]["naswot"])
        self.assertIn("arch", res[3])  # a NASLib op-index list
        self.assertEqual(res[4]["input"], "bogus")
        self.assertIn("not an", res[4]["error"])
        self.assertIn("error", res[5])
        self.assertEqual(res[6]["naswot"], "-inf")
        self.assertEqual(res[6]["flags"]["naswot"], "degenerate")
        self.assertIn("negative", res[7]["error"])

    def test_proxy_subset(self):
        resp = self.s.ask({"id": "s", "archs": [A], "proxies": ["ni"]})
        self.assertEqual(resp["id"], "s")
        rec = resp["results"][0]
        self.assertIn("ni", rec)
        self.assertNotIn("naswot", rec)

    def test_ops(self):
        self.assertEqual(self.s.ask({"id": 1, "op": "ping"}), {"id": 1, "pong": True})
        info = self.s.ask({"id": 2, "op": "info"})["info"]
        self.assertGreaterEqual(info["requests"], 1)
        self.assertEqual(info["proxies"], ["naswot", "ni"])
        self.assertEqual(self.s.ask({"id": 3, "archs": []}), {"id": 3, "results": []})

    def test_errors_keep_the_server_serving(self):
        cases = [
            ("{not json", None, "JSON"),
            ('{"id": 5, "archs": [1', 5, "JSON"),
            ('[1, 2]', None, "not an object"),
            ('{"id": 5, "op": "dance"}', 5, "unknown op"),
            ('{"id": 5, "archs": "' + A + '"}', 5, "must be a list"),
            ('{"id": 5, "archs": [1], "proxies": ["ntk"]}', 5, "not computed"),
            ('{"id": 5, "archs": [1], "proxies": ["bogus"]}', 5, "bogus"),
            ('{"id": 5, "archs": [1], "extra": 1}', 5, "unknown field"),
            ('{"id": 1.5, "op": "ping"}', None, "id"),
            ('{"id": 5, "op": "ping", "archs": []}', 5, "takes no"),
            ('{"id": 5}', 5, "names no operation"),
            ('{"id": 5, "id": 6, "op": "ping"}', 5, "twice"),
        ]
        for raw, rid, text in cases:
            resp = self.s.ask(raw)
            self.assertEqual(resp.get("id"), rid, raw)
            self.assertIn(text, resp["error"], raw)
        # Binary garbage: an error response (valid JSON), then the server still answers.
        resp = self.s.ask(b"\xff\xfe\x00garbage\x80\n")
        self.assertIsNone(resp["id"])
        self.assertIn("UTF-8", resp["error"])
        self.assertEqual(self.s.ask({"id": 9, "op": "ping"}), {"id": 9, "pong": True})


class Limits(unittest.TestCase):
    def test_long_line_gets_an_error_with_its_id(self):
        s = StdioServer(["--max-request-bytes", "4096"])
        try:
            resp = s.ask('{"id": 42, "archs": [' + ",".join(['"%s"' % A] * 200) + "]}")
            self.assertEqual(resp["id"], 42)
            self.assertIn("longer than 4096", resp["error"])
            self.assertEqual(s.ask({"id": 43, "op": "ping"})["id"], 43)
        finally:
            self.assertEqual(s.close(), 0)

    def test_too_many_archs(self):
        s = StdioServer(["--max-archs", "2"])
        try:
            resp = s.ask({"id": 1, "archs": [1, 2, 3]})
            self.assertIn("at most 2", resp["error"])
        finally:
            self.assertEqual(s.close(), 0)


class SameAsScore(unittest.TestCase):
    def test_records_equal_score_records(self):
        archs = [A, "6111", B, DEGENERATE, "bogus"]
        out = subprocess.run([BIN, "score", *QUICK, "--archs", "-"], input="\n".join(archs) + "\n",
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 1, out.stderr)  # one input could not be scored
        from_score = [json.loads(l) for l in out.stdout.splitlines()]
        for r in from_score:
            r.pop("line", None)
        with Client(QUICK) as c:
            got = c.score([A, 6111, B, DEGENERATE, "bogus"])
        for a, b in zip(from_score, got):
            a.pop("seconds", None)
            b.pop("seconds", None)
        self.assertEqual(from_score, got)


class Shutdown(unittest.TestCase):
    def test_shutdown_answers_work_in_flight(self):
        s = StdioServer()
        s.send(json.dumps({"id": 1, "archs": [A, B]}) + "\n" + json.dumps({"id": 2, "op": "shutdown"}) +
               "\n" + json.dumps({"id": 3, "op": "ping"}) + "\n")
        first = json.loads(readline(s.p.stdout))
        second = json.loads(readline(s.p.stdout))
        self.assertEqual(first["id"], 1)
        self.assertEqual(len(first["results"]), 2)
        self.assertEqual(second, {"id": 2, "shutdown": True})
        self.assertEqual(s.p.wait(timeout=60), 0)
        self.assertEqual(s.p.stdout.read(), b"")  # nothing after shutdown
        s.close()

    def test_eof_exits_zero_after_answering(self):
        p = subprocess.run([BIN, "serve", *QUICK], input=json.dumps({"id": 1, "archs": [A]}),
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertTrue(lines[0]["ready"])
        self.assertEqual(lines[1]["id"], 1)  # a last request without its newline is answered

    def test_sigterm_finishes_work_in_flight(self):
        s = StdioServer(batch=64)
        s.send(json.dumps({"id": 1, "archs": list(range(100, 112))}) + "\n")
        time.sleep(0.5)  # the batch is being scored
        s.p.send_signal(signal.SIGTERM)
        line = readline(s.p.stdout, 120)
        self.assertIsNotNone(line)
        self.assertEqual(len(json.loads(line)["results"]), 12)
        self.assertEqual(s.p.wait(timeout=60), 0)
        s.close()


class StreamingScore(unittest.TestCase):
    def test_a_record_appears_before_stdin_closes(self):
        p = subprocess.Popen([BIN, "score", *QUICK, "--archs", "-"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            p.stdin.write((A + "\n").encode())
            p.stdin.flush()
            first = readline(p.stdout, 60)
            self.assertIsNotNone(first, "no record before stdin closed")
            self.assertEqual(json.loads(first)["arch"], A)
            p.stdin.write(b"bogus\n")
            p.stdin.flush()
            err = readline(p.stdout, 60)
            self.assertEqual(json.loads(err)["line"], 2)
            p.stdin.write((B + "\n").encode())
            p.stdin.flush()
            second = readline(p.stdout, 60)
            self.assertEqual(json.loads(second)["arch"], B)
        finally:
            p.stdin.close()
            rc = p.wait(timeout=60)
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(rc, 1)  # one line could not be scored

    def test_empty_stdin_is_an_error(self):
        p = subprocess.run([BIN, "score", *QUICK, "--archs", "-"], input="# nothing\n",
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("names no architecture", p.stderr)


class SocketServer(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "hn.sock")
        self.p = subprocess.Popen([BIN, "serve", *QUICK, "--socket", self.path],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        ready = readline(self.p.stdout, 60)
        if ready is None:
            self.p.kill()
            self.fail(self.p.stderr.read().decode())
        self.assertEqual(json.loads(ready)["socket"], self.path)

    def tearDown(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        self.assertEqual(self.p.wait(timeout=60), 0)
        self.p.stdout.close()
        self.p.stderr.close()
        self.assertFalse(os.path.exists(self.path), "the socket file is removed on exit")
        os.rmdir(self.dir)

    def test_a_client_that_does_not_read_loses_nothing(self):
        # 20,000 info answers (about 20 MB) pile up unread: the server stops reading this client
        # until they drain (back-pressure) and serves others meanwhile; then every answer arrives.
        flood = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        flood.connect(self.path)
        n = 20000
        payload = b"".join(b'{"id": %d, "op": "info"}\n' % i for i in range(n))
        sender = threading.Thread(target=flood.sendall, args=(payload,))
        sender.start()
        time.sleep(1.0)
        with Client.connect(self.path, timeout=60) as other:
            self.assertGreater(other.ping(), 0)
        f = flood.makefile("rb")
        self.assertTrue(json.loads(f.readline())["ready"])
        for i in range(n):
            self.assertEqual(json.loads(f.readline())["id"], i)
        sender.join(60)
        f.close()
        flood.close()

    def test_socket_mode_and_refusals(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        # A second server on the same path is refused while this one lives.
        r = subprocess.run([BIN, "serve", *QUICK, "--socket", self.path], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(r.returncode, 3)
        self.assertIn("another server", r.stderr)
        # A path that is a regular file is never replaced.
        plain = os.path.join(self.dir, "plain")
        with open(plain, "w") as f:
            f.write("keep me")
        r = subprocess.run([BIN, "serve", *QUICK, "--socket", plain], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(r.returncode, 3)
        self.assertIn("not a socket", r.stderr)
        with open(plain) as f:
            self.assertEqual(f.read(), "keep me")
        os.unlink(plain)

    def test_several_clients_one_disconnecting(self):
        # A client that sends a request and leaves before its answer.
        rude = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        rude.connect(self.path)
        rude.sendall((json.dumps({"id": 1, "archs": list(range(200, 216))}) + "\n").encode())
        rude.close()
        results = {}

        def work(k):
            with Client.connect(self.path, timeout=120) as c:
                results[k] = c.score([A, 100 + k])

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        self.assertEqual(sorted(results), [0, 1, 2, 3])
        for k, recs in results.items():
            self.assertEqual(recs[0]["arch"], A)
            self.assertEqual(recs[1]["index"], 100 + k)
        self.assertEqual(len({json.dumps(r[0]["naswot"]) for r in results.values()}), 1)
        with Client.connect(self.path) as c:
            self.assertGreaterEqual(c.info()["requests"], 5)
            c.shutdown()
        self.assertEqual(self.p.wait(timeout=60), 0)


class PythonClient(unittest.TestCase):
    def test_client_api(self):
        with Client(QUICK) as c:
            self.assertEqual(c.ready["proxies"], ["naswot", "ni"])
            recs = c.score([A, "bogus"], proxies=["naswot"])
            self.assertIsInstance(recs[0]["naswot"], float)
            self.assertIn("error", recs[1])
            with self.assertRaises(ServerError) as e:
                c.score([A], proxies=["ntk"])
            self.assertIn("not computed", e.exception.message)
            with self.assertRaises(TypeError):
                c.score(A)
            self.assertGreater(c.ping(), 0)
            self.assertEqual(c.info()["backend"], "cpu")

    def test_argument_types(self):
        class Index:  # numpy integers and the like: anything with __index__
            def __index__(self):
                return 6111

        with Client(QUICK) as c:
            recs = c.score([Index(), 6111.0, (4, 0, 3, 1, 4, 3), b"6111"])
            self.assertEqual([r["index"] for r in recs[:2]], [6111, 6111])
            self.assertIn("arch", recs[2])
            self.assertEqual(recs[3]["index"], 6111)
            for bad in ([None], [6111.5], [{"a": 1}], [True], {6111: "x"}, 6111):
                with self.assertRaises(TypeError, msg=repr(bad)):
                    c.score(bad)
            self.assertEqual(c.ping() > 0, True)  # nothing was sent for the refused calls

    def test_missing_binary(self):
        with self.assertRaises(hybridnas.HybridnasError) as e:
            Client(QUICK, binary="/nonexistent/hybridnas")
        self.assertIn("cannot start", str(e.exception))

    def test_startup_failure_carries_the_message(self):
        with self.assertRaises(ServerExited) as e:
            Client(["--backend", "cpu", "--batch", "0"])
        self.assertIn("--batch", str(e.exception))

    def test_timeout(self):
        with Client(quick(128), timeout=0.01) as c:
            with self.assertRaises(ServerTimeout):
                c.score(list(range(300, 340)))

    def test_example_search(self):
        ex = os.path.join(os.path.dirname(__file__), "..", "examples", "evolution.py")
        env = dict(os.environ, HYBRIDNAS_BIN=BIN)
        r = subprocess.run([sys.executable, ex, "--budget", "30", "--population", "10", "--", *QUICK],
                           capture_output=True, text=True, env=env, timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("scored 30 architectures", r.stdout)
        self.assertIn("best by naswot", r.stdout)

    def test_size_space(self):
        """NATS-Bench's size space through the client and the example: width strings and indices,
        the space in the ready record, the other space's encodings as error records."""
        args = ["--space", "nats-sss", "--backend", "cpu", "--proxies", "params,naswot", "--batch", "8", "-q",
                "--data", SAMPLE]
        with Client(args) as c:
            self.assertEqual(c.space, "nats-sss")
            self.assertEqual(c.ready["space"], "nats-sss")
            recs = c.score(["16:32:48:24:56", 5974, 0, A, "8:8:8:8:9"])
            self.assertEqual(recs[0]["index"], 5974)
            self.assertEqual(recs[0]["arch"], recs[1]["arch"])
            self.assertEqual(recs[0]["naswot"], recs[1]["naswot"])
            self.assertEqual(recs[2]["arch"], "8:8:8:8:8")
            self.assertAlmostEqual(recs[2]["params"], 0.011714)
            self.assertIn("--space nb201", recs[3]["error"])
            self.assertIn("error", recs[4])
            widths = c.score([[16, 32, 48, 24, 56], (8, 8, 8, 8, 8), [8, 8, 8, 8]])
            self.assertEqual([w.get("index") for w in widths[:2]], [5974, 0])
            self.assertIn("is a list", widths[2]["error"])
        with Client(QUICK) as c:
            self.assertEqual(c.space, "nb201")
            self.assertIn("--space nats-sss", c.score(["16:32:48:24:56"])[0]["error"])
        ex = os.path.join(os.path.dirname(__file__), "..", "examples", "evolution.py")
        r = subprocess.run([sys.executable, ex, "--budget", "20", "--population", "8", "--proxy", "params", "--",
                            *args], capture_output=True, text=True, env=dict(os.environ, HYBRIDNAS_BIN=BIN),
                           timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("scored 20 architectures", r.stdout)
        self.assertIn("NATS-SSS index", r.stdout)
        best = r.stdout.split("best by params: ")[1].split()[0]
        self.assertEqual(len(best.split(":")), 5, r.stdout)
        # A server that cannot start, and a budget past the space: one line, no traceback.
        for extra, words in (([], "input images"), (["--budget", "40000"], "32768 architectures")):
            bad = args[:-2] if not extra else args
            r = subprocess.run([sys.executable, ex, "--proxy", "naswot" if not extra else "params", *extra, "--", *bad],
                               capture_output=True, text=True, env=dict(os.environ, HYBRIDNAS_BIN=BIN), timeout=600)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(words, r.stderr)
            self.assertNotIn("Traceback", r.stderr)


if __name__ == "__main__":
    unittest.main()
