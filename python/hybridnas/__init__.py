"""Python client of ``hybridnas serve``: training-free NAS scores from a long-running scorer.

Standard library only. The server loads its data and backend once; every call after that costs
the scoring itself. The protocol is documented in docs/serve.md.

    from hybridnas import Client

    with Client(["--preset", "cpu-quick"]) as hn:            # starts `hybridnas serve`
        records = hn.score(["|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", 6111])
        print(records[0]["naswot"])

    with Client.connect("/tmp/hybridnas.sock") as hn:         # a server started with --socket
        print(hn.info()["proxies"])
"""

from __future__ import annotations

import json
import operator
import os
import select
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Iterable, List, Optional, Sequence, Union

__all__ = ["Client", "HybridnasError", "ServerError", "ServerExited", "ServerTimeout", "find_binary"]
__version__ = "0.1"

Arch = Union[str, int, Sequence[float]]


class HybridnasError(Exception):
    """Base class of every error this client raises."""


class ServerError(HybridnasError):
    """The server answered a request with an error; ``message`` is the server's text."""

    def __init__(self, message: str, request_id: Any = None):
        super().__init__(message)
        self.message = message
        self.request_id = request_id


class ServerExited(HybridnasError):
    """The server is gone (it exited, or closed the connection); ``stderr`` holds its last words."""

    def __init__(self, message: str, returncode: Optional[int] = None, stderr: str = ""):
        super().__init__(message + (": " + stderr.strip() if stderr.strip() else ""))
        self.returncode = returncode
        self.stderr = stderr


class ServerTimeout(HybridnasError, TimeoutError):
    """No response within the client's timeout."""


def _arch_json(a: Any) -> Union[str, int, list]:
    """One architecture as the protocol takes it: a string, an integer (anything with __index__,
    numpy integers included), or a list of numbers (any sequence or array of them)."""
    if isinstance(a, str):
        return a
    if isinstance(a, (bytes, bytearray)):
        return a.decode("utf-8")
    if isinstance(a, bool) or a is None or isinstance(a, (dict, set, frozenset)):
        raise TypeError("an architecture is an arch string (an NB201 cell, or NATS-SSS widths "
                        "c1:c2:c3:c4:c5), a benchmark index or a list of NASLib numbers, not %r" % (a,))
    try:
        return operator.index(a)  # int, numpy integer
    except TypeError:
        pass
    if isinstance(a, float):
        if a.is_integer():
            return int(a)
        raise TypeError("a benchmark index is an integer, not %r" % (a,))
    if hasattr(a, "tolist"):  # a numpy array
        a = a.tolist()
    try:
        items = list(a)
    except TypeError:
        raise TypeError("an architecture is an arch string (an NB201 cell, or NATS-SSS widths "
                        "c1:c2:c3:c4:c5), a benchmark index or a list of NASLib numbers, not %r" % (a,)) from None
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            try:
                v = operator.index(v)
            except TypeError:
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    raise TypeError("a NASLib encoding is a list of numbers, not %r" % (items,)) from None
        out.append(v)
    return out


def find_binary() -> str:
    """Path of the ``hybridnas`` executable: $HYBRIDNAS_BIN, else ``hybridnas`` on PATH, else the
    build tree next to this module (``build/cli/hybridnas`` of a source checkout)."""
    env = os.environ.get("HYBRIDNAS_BIN")
    if env:
        return env
    found = shutil.which("hybridnas")
    if found:
        return found
    here = os.path.dirname(os.path.abspath(__file__))
    candidate = os.path.join(here, "..", "..", "build", "cli", "hybridnas")
    if os.access(candidate, os.X_OK):
        return os.path.normpath(candidate)
    raise HybridnasError("hybridnas not found: put it on PATH (cmake --install) or set HYBRIDNAS_BIN")


class Client:
    """A connection to one ``hybridnas serve`` process.

    ``Client(args)`` starts ``hybridnas serve ARGS`` with pipes (the server lives as long as the
    client); ``Client.connect(path)`` talks to a server listening on a Unix socket (several clients
    may share it). ``timeout`` (seconds, None for no limit) bounds the wait for the server to become
    ready and for each response.

    Attributes: ``ready`` is the server's ready record (version, backend, device, space, proxies,
    settings, input hash); ``space`` is the search space the server scores, ``"nb201"`` or
    ``"nats-sss"`` (its ``--space``).
    """

    def __init__(self, args: Iterable[str] = (), binary: Optional[str] = None,
                 timeout: Optional[float] = 600.0, startup_timeout: Optional[float] = 600.0,
                 _sock: Optional[socket.socket] = None):
        self.timeout = timeout
        self._next_id = 1
        self._buf = b""
        self._proc: Optional[subprocess.Popen] = None
        self._sock = _sock
        self._stderr = None
        self._closed = False
        if _sock is None:
            cmd = [binary or find_binary(), "serve", *[str(a) for a in args]]
            self._stderr = tempfile.TemporaryFile()
            try:
                self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                              stderr=self._stderr, bufsize=0)
            except OSError as e:
                self._stderr.close()
                self._closed = True
                raise HybridnasError("cannot start %s: %s" % (cmd[0], e)) from e
            self._rfd = self._proc.stdout.fileno()
        else:
            self._rfd = _sock.fileno()
        try:
            ready = self._read_record(startup_timeout, "the server to start")
            if not ready.get("ready"):
                raise ServerError(ready.get("error", "unexpected first line from the server: %r" % ready),
                                  ready.get("id"))
        except BaseException:
            self.close()
            raise
        self.ready = ready
        self.space = ready.get("space", "nb201")

    @classmethod
    def connect(cls, path: str, timeout: Optional[float] = 600.0) -> "Client":
        """Connects to ``hybridnas serve --socket PATH``."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except OSError as e:
            s.close()
            raise HybridnasError("cannot connect to %s: %s" % (path, e)) from e
        return cls(timeout=timeout, startup_timeout=timeout, _sock=s)

    # -- requests ---------------------------------------------------------------------------

    def score(self, archs: Sequence[Arch], proxies: Optional[Sequence[str]] = None) -> List[dict]:
        """Scores ``archs`` and returns one record per item, in order, exactly as ``hybridnas
        score`` writes them: ``arch``, ``index``, a value per proxy (``"-inf"``/``"+inf"`` for
        flagged worst values), ``flags``, ``seconds``; an item that names no architecture gives a
        record with ``input`` and ``error`` instead. ``proxies``: a subset of the server's (default: all).
        Raises ServerError when the server refuses the request.

        Architectures, in the server's space: NB201 arch strings, NB201 indices (0..15624, through
        its table), NASLib op-index lists or one-hot lists; NATS-SSS width strings
        ``c1:c2:c3:c4:c5`` (each of 8, 16, ..., 64; a sequence or array of 5 integers is taken as
        one) or NATS-SSS indices (0..32767)."""
        if isinstance(archs, (str, bytes, dict)) or not hasattr(archs, "__iter__"):
            raise TypeError("score() takes a list of architectures; wrap a single one in [...]")
        req = {"archs": [self._widths_string(a) or _arch_json(a) for a in archs]}
        if proxies is not None:
            req["proxies"] = list(proxies) if not isinstance(proxies, str) else [proxies]
        return self._call(req)["results"]

    def _widths_string(self, a: Any) -> Optional[str]:
        """In the NATS-SSS space, a sequence of 5 integers (a list, tuple or numpy array of layer
        widths) as the width string c1:c2:c3:c4:c5; None for anything else."""
        if self.space != "nats-sss" or isinstance(a, (str, bytes, bytearray, dict)):
            return None
        if hasattr(a, "tolist"):
            a = a.tolist()
        try:
            items = list(a)
        except TypeError:
            return None
        if len(items) != 5 or any(isinstance(v, bool) for v in items):
            return None
        try:
            return ":".join(str(operator.index(v)) for v in items)
        except TypeError:  # floats and the like: the server names the formats
            return None

    def info(self) -> dict:
        """The server's description and counters (requests, archs_scored, uptime_s, ...)."""
        return self._call({"op": "info"})["info"]

    def ping(self) -> float:
        """Round-trip time in seconds."""
        t0 = time.perf_counter()
        self._call({"op": "ping"})
        return time.perf_counter() - t0

    def shutdown(self) -> None:
        """Asks the server to finish the work in flight and exit (every client's)."""
        self._call({"op": "shutdown"})
        self.close()

    # -- plumbing -----------------------------------------------------------------------------

    def _call(self, req: dict) -> dict:
        if self._closed:
            raise HybridnasError("the client is closed")
        rid = self._next_id
        self._next_id += 1
        req = {"id": rid, **req}
        data = (json.dumps(req) + "\n").encode()
        try:
            if self._sock is not None:
                self._sock.sendall(data)
            else:
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
        except OSError as e:
            raise self._exited("the server stopped reading requests (%s)" % e) from e
        while True:
            resp = self._read_record(self.timeout, "the response to request %d" % rid)
            if resp.get("id") == rid:
                break
            if resp.get("id") is None and "error" in resp:
                raise ServerError(resp["error"], None)
        if "error" in resp:
            raise ServerError(resp["error"], rid)
        return resp

    def _read_record(self, timeout: Optional[float], what: str) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ServerTimeout("no answer from hybridnas serve after %g s waiting for %s"
                                    % (timeout, what))
            r, _, _ = select.select([self._rfd], [], [], left)
            if not r:
                continue
            chunk = os.read(self._rfd, 1 << 16)
            if not chunk:
                raise self._exited("the server closed the connection while %s was awaited" % what)
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line.decode("utf-8"))

    def _exited(self, message: str) -> ServerExited:
        rc, err = None, ""
        if self._proc is not None:
            try:
                rc = self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            if self._stderr is not None:
                self._stderr.seek(0)
                err = self._stderr.read().decode("utf-8", "replace")[-4000:]
        return ServerExited(message, rc, err)

    def close(self) -> None:
        """Ends the connection; a server this client started finishes its work and exits."""
        if self._closed:
            return
        self._closed = True
        if self._sock is not None:
            self._sock.close()
        if self._proc is not None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=self.timeout if self.timeout else None)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc.stdout.close()
            if self._stderr is not None:
                self._stderr.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
