"""Amazon's DynamoDB Local on loopback: the engine of record for the tests and benchmarks.

`make dynamodb-local` unpacks the pinned npm package `amplify-dynamodb-simulator`, which
carries the `DynamoDBLocal.jar` AWS ships (with its licence and native SQLite libraries),
into build/dynamodb-local; it runs on Java 17. One server per test session: in memory,
one database for every credential and region (-sharedDb), no telemetry.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOME = os.path.join(ROOT, "build", "dynamodb-local")
HOW_TO_GET_IT = "`make dynamodb-local` fetches it (needs npm and Java 17; `make test` runs it)"


class Unavailable(RuntimeError):
    """DynamoDB Local is not installed here, or would not start."""


def _emulator_dir(home):
    return os.path.join(home, "package", "emulator")


def describe(home=HOME):
    """One line naming the engine and its version, for test and benchmark headers."""
    try:
        with open(os.path.join(home, "package", "package.json")) as f:
            package = json.load(f)
    except OSError:
        return f"Amazon DynamoDB Local is not installed: {HOW_TO_GET_IT}"
    return (f"Amazon DynamoDB Local from npm {package['name']}@{package['version']}, "
            f"in memory on loopback")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url):
    """True once DynamoDB answers there (an unsigned request gets DynamoDB's own 400)."""
    request = urllib.request.Request(url, data=b"{}", method="POST", headers={
        "X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        body = error.read()
    except OSError:
        return False
    return b"com.amazonaws.dynamodb" in body or b"TableNames" in body


def _die_with_parent():
    """In the child: be terminated if the test run is killed, so no JVM is left behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class DynamoDBLocal:
    """One DynamoDB Local process on a free loopback port."""

    def __init__(self, home=HOME, java=None):
        self.home = home
        self.java = java or shutil.which("java")
        self.process = None
        self.url = None
        self._log = None

    def start(self, timeout=180.0):
        """Start it and wait until it answers; raises Unavailable with the reason."""
        emulator = _emulator_dir(self.home)
        if not os.path.exists(os.path.join(emulator, "DynamoDBLocal.jar")):
            raise Unavailable(f"DynamoDB Local is not in {self.home}: {HOW_TO_GET_IT}")
        if not self.java:
            raise Unavailable(f"no `java` on PATH for DynamoDB Local: {HOW_TO_GET_IT}")
        atexit.register(self.stop)
        for _ in range(3):  # another process may take the free port before Java binds it
            port = _free_port()
            self._log = tempfile.TemporaryFile()
            self.process = subprocess.Popen(
                # A test run is minutes long on two shared cores: the JIT's quick tier alone
                # halves the JVM's CPU time, and the serial collector needs no extra threads.
                [self.java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
                 "-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar",
                 "-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(port)],
                cwd=emulator, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent)
            self.url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + timeout
            while (time.monotonic() < deadline and self.process.poll() is None
                   and "BindException" not in self._output()):
                if _answers(self.url):
                    return self
                time.sleep(0.2)
            output = self._output()
            self.stop()
            if "BindException" not in output:
                raise Unavailable(f"DynamoDB Local did not answer within {timeout:.0f} s:\n{output}")
        raise Unavailable("DynamoDB Local found no free port")

    def _output(self):
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-3000:]

    def stop(self):
        """Stop the server (idempotent)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
