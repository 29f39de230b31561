"""Fixtures: a real Kafka broker (scripts/kafka/kafka) and real ferryd processes.

The ferryd binary is the repository's own ``build/src/server/ferryd`` (built by
``scripts/build``); ``FERRYD_BIN`` overrides it. Brokers get a unique name and
free ports and are wiped at the end of the session.
"""
import os
import pathlib
import signal
import ssl
import socket
import subprocess
import time
import urllib.request
import uuid

import grpc
import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
KAFKA_SCRIPT = REPO / "scripts" / "kafka" / "kafka"


def ferryd_binary() -> pathlib.Path:
    return pathlib.Path(os.environ.get("FERRYD_BIN") or REPO / "build" / "src" / "server" / "ferryd")


def free_port(consecutive: int = 1) -> int:
    """A free TCP port on 127.0.0.1 (with `consecutive - 1` free ports after it)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + consecutive > 65535:
            continue
        ok = True
        for extra in range(1, consecutive):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + extra))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no free port")


class KafkaBroker:
    def __init__(self, name, port):
        self.name = name
        self.port = port
        self.bootstrap = "127.0.0.1:%d" % port

    def start(self):
        subprocess.run([str(KAFKA_SCRIPT), "start", self.name, str(self.port)], check=True,
                       stdout=subprocess.DEVNULL, timeout=180)

    def wipe(self):
        subprocess.run([str(KAFKA_SCRIPT), "wipe", self.name], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


class Ferryd:
    """A real ferryd process on free ports."""

    def __init__(self, bootstrap, log_dir, name, store=None, settings=(), extra_args=(),
                 https=None):
        """On Kafka at `bootstrap`, or, with `store`, on an embedded store there;
        `settings`: more config keys, "key=value".

        With `https` (ca, cert, key; the node has listen.tls via `extra_args`),
        the health check trusts that CA and presents that certificate."""
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.endpoint = "127.0.0.1:%d" % self.grpc_port
        self.log_path = pathlib.Path(log_dir) / ("ferryd-%s.log" % name)
        if store is None:
            cluster = ["--set", "clusters.main.type=kafka",
                       "--set", "clusters.main.bootstrap=" + bootstrap]
        else:
            cluster = ["--set", "clusters.main.type=embedded",
                       "--set", "clusters.main.path=" + str(store)]
        self.args = [str(ferryd_binary())] + cluster + [
                     "--set", "node.id=" + name,
                     "--set", "subscribe.commit_interval=100ms",
                     "--set", "subscribe.session_timeout=6s",
                     "--set", "shutdown.grace=2s"] + list(extra_args)
        for setting in settings:
            self.args += ["--set", setting]
        self.https = https
        self.proc = None
        self.started = False

    def start(self, timeout=30.0):
        """Starts the node and waits until it is healthy. A free port can be
        taken by another process between free_port() and ferryd's bind (CI runs
        suites side by side), so a first start refused its listen address picks
        new ports and tries again; a restart keeps its ports, which clients know."""
        deadline = time.monotonic() + timeout
        for attempt in range(1, 4):
            exited = self._start_once(deadline)
            if exited is None:
                self.started = True
                return self
            log = self.log_path.read_text()[-3000:]
            if self.started or "cannot listen on" not in log or attempt == 3:
                raise RuntimeError("ferryd exited with %s; log %s:\n%s" % (
                    exited, self.log_path, log))
            self.grpc_port, self.http_port = free_port(), free_port()
            self.endpoint = "127.0.0.1:%d" % self.grpc_port

    def _start_once(self, deadline):
        """None once healthy, else the exit code of a ferryd that stopped first."""
        listen = ["--set", "listen.grpc=" + self.endpoint,
                  "--set", "listen.http=127.0.0.1:%d" % self.http_port]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args + listen, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return self.proc.returncode
            try:
                scheme, context = "http", None
                if self.https:
                    scheme = "https"
                    context = ssl.create_default_context(cafile=self.https[0])
                    context.load_cert_chain(self.https[1], self.https[2])
                with urllib.request.urlopen("%s://127.0.0.1:%d/healthz" % (scheme, self.http_port),
                                            timeout=1, context=context) as r:
                    if r.status == 200:
                        return None
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("ferryd did not become healthy; log:\n" + self.log_path.read_text()[-3000:])

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()


@pytest.fixture(scope="session")
def kafka():
    if not ferryd_binary().exists():
        pytest.fail("ferryd not built: run scripts/build (looked for %s)" % ferryd_binary())
    broker = KafkaBroker("pysdk-%d-%s" % (os.getpid(), uuid.uuid4().hex[:6]), free_port(2))
    broker.start()
    yield broker
    broker.wipe()


@pytest.fixture(scope="session")
def node(kafka, tmp_path_factory):
    """One ferryd shared by the session's tests."""
    proc = Ferryd(kafka.bootstrap, tmp_path_factory.mktemp("ferryd"), "py-node-1").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def embedded_node(tmp_path_factory):
    """One ferryd on an embedded store, shared by the session's tests."""
    if not ferryd_binary().exists():
        pytest.fail("ferryd not built: run scripts/build (looked for %s)" % ferryd_binary())
    work = tmp_path_factory.mktemp("ferryd-embedded")
    proc = Ferryd(None, work, "py-embedded-1", store=work / "store").start()
    yield proc
    proc.stop()


@pytest.fixture
def node_pair(kafka, tmp_path_factory):
    """Two fresh ferryd nodes (a test may kill them)."""
    yield from started_pair(kafka, tmp_path_factory, "py")


def started_pair(kafka, tmp_path_factory, prefix, settings_of=lambda suffix: ()):
    """Starts two fresh ferryd nodes named prefix-SUFFIX-N, yields them and
    stops them; ``settings_of(suffix)``: more config keys."""
    log_dir = tmp_path_factory.mktemp("ferryd-" + prefix)
    suffix = uuid.uuid4().hex[:4]
    nodes = [Ferryd(kafka.bootstrap, log_dir, "%s-%s-%d" % (prefix, suffix, i),
                    settings=settings_of(suffix)) for i in range(2)]
    try:
        for n in nodes:
            n.start()
        yield nodes
    finally:
        for n in nodes:
            n.stop()


def create_topic(endpoint, name, partitions=3, credentials=None):
    from ferry.v1 import admin_pb2, admin_pb2_grpc
    channel = (grpc.insecure_channel(endpoint) if credentials is None
               else grpc.secure_channel(endpoint, credentials))
    with channel:
        admin_pb2_grpc.AdminStub(channel).CreateTopic(
            admin_pb2.CreateTopicRequest(name=name, partitions=partitions), timeout=30)
    return name


@pytest.fixture
def topic_factory(node):
    def make(partitions=3, endpoint=None):
        return create_topic(endpoint or node.endpoint, "py-" + uuid.uuid4().hex[:10], partitions)
    return make


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


@pytest.fixture(params=["native", "pure"])
def subscriber_path(request, monkeypatch):
    """Runs a test on both subscriber paths; its value is the ``native`` a
    subscriber built in the test must have. The native one is skipped where
    the extension is off (FERRY_NATIVE=0 runs, no build)."""
    import ferry
    native = request.param == "native"
    if native and not ferry.native_available():
        pytest.skip("native path off")
    if not native:
        monkeypatch.setenv("FERRY_NATIVE", "0")
    return native
