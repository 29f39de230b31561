"""Fixtures for the console's browser tests: a real ferryd (embedded store, or
Kafka started by scripts/kafka/kafka), the ferry CLI, and a headless Chromium
from Debian driven by Selenium whose browser log the tests read.

Binaries come from build/ (scripts/build); FERRYD_BIN and FERRY_CLI override.
Screenshots go to build/console-screenshots (CONSOLE_SCREENSHOTS overrides).
"""
import os
import pathlib
import socket
import subprocess
import time
import urllib.request
import uuid

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

REPO = pathlib.Path(__file__).resolve().parents[2]
FERRYD = pathlib.Path(os.environ.get("FERRYD_BIN") or REPO / "build/src/server/ferryd")
FERRY = pathlib.Path(os.environ.get("FERRY_CLI") or REPO / "build/src/cli/ferry")
SCREENSHOTS = pathlib.Path(os.environ.get("CONSOLE_SCREENSHOTS") or REPO / "build/console-screenshots")
TOKEN = "console-test-token-0123456789"


def unused_port(count=1):
    """A free port on 127.0.0.1 followed by count - 1 more free ones (a Kafka
    broker takes the next port for its controller)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            for extra in range(1, count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + extra))
            return port
        except OSError:
            continue
    raise RuntimeError("no %d free consecutive ports" % count)


class Node:
    """One ferryd process with writes over HTTP only by TOKEN."""

    def __init__(self, work, cluster_args):
        self.grpc = "127.0.0.1:%d" % unused_port()
        self.url = "http://127.0.0.1:%d" % unused_port()
        self.log = work / "ferryd.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(FERRYD), *cluster_args, "--set", "listen.grpc=" + self.grpc,
                 "--set", "listen.http=" + self.url.removeprefix("http://"),
                 "--set", "node.id=console-test", "--set", "admin.http.token=" + TOKEN,
                 "--set", "subscribe.commit_interval=100ms", "--set", "shutdown.grace=1s"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "ferryd exited:\n" + self.log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("ferryd did not become healthy:\n" + self.log.read_text()[-3000:])

    def cli(self, *args, stdin=None, check=True):
        result = subprocess.run([str(FERRY), "--server", self.grpc, *args], input=stdin,
                                capture_output=True, text=True, timeout=60)
        if check:
            assert result.returncode == 0, "ferry %s: %s%s" % (args, result.stdout, result.stderr)
        return result

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def node(tmp_path_factory):
    work = tmp_path_factory.mktemp("embedded")
    started = Node(work, ["--set", "clusters.local.type=embedded",
                          "--set", "clusters.local.path=%s" % (work / "store")])
    yield started
    started.stop()


@pytest.fixture(scope="session")
def kafka_node(tmp_path_factory):
    kafka = REPO / "scripts/kafka/kafka"
    name = "console-%s" % uuid.uuid4().hex[:6]
    port = unused_port(2)
    subprocess.run([str(kafka), "start", name, str(port)], check=True,
                   stdout=subprocess.DEVNULL, timeout=180)
    try:
        started = Node(tmp_path_factory.mktemp("kafka"),
                       ["--set", "clusters.main.type=kafka",
                        "--set", "clusters.main.bootstrap=127.0.0.1:%d" % port])
        yield started
        started.stop()
    finally:
        subprocess.run([str(kafka), "wipe", name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)


@pytest.fixture(scope="session")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--disable-gpu"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(20)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()
