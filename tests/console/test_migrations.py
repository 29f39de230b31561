"""The console's migrations page in a real browser while `ferry migrate` moves
a topic between two embedded stores of one ferryd: each stage shows on the
page as it is reached, with the moved group's position on the new cluster,
and the browser logs no errors."""
import re

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import Node
from test_console import WAIT, browser_errors, describe_group, open_page, screenshot, unique, wait_for

TWO_STORES = """
clusters:
  a: {{ type: embedded, path: {work}/a }}
  b: {{ type: embedded, path: {work}/b }}
routes:
  - {{ topic: "moved-*", write: [a], read: [a] }}
control: {{ cluster: a, heartbeat_interval: 200ms, node_timeout: 2s }}
"""


@pytest.fixture(scope="module")
def two_store_node(tmp_path_factory):
    work = tmp_path_factory.mktemp("two-stores")
    config = work / "ferry.yaml"
    config.write_text(TWO_STORES.format(work=work))
    started = Node(work, ["--config", str(config)])
    yield started
    started.stop()


def cells(browser, table_id):
    """The text of each row's cells of a table; None while the page's
    auto-refresh replaces the rows under the read."""
    try:
        return [[td.text for td in row.find_elements(By.TAG_NAME, "td")]
                for row in browser.find_elements(By.CSS_SELECTOR, "#%s tbody tr" % table_id)]
    except StaleElementReferenceException:
        return None


def committed_total(node, group):
    return sum(int(c) for c in describe_group(node, group)[1].values() if c.isdigit())


def wait_stage(browser, topic, stage):
    """Waits until the migrations table shows `topic` at `stage` (Topic is
    the first column, Stage the fourth); returns that row."""
    def row(b):
        for found in cells(b, "migrations") or []:
            if found[0] == topic and found[3] == stage:
                return found
        return None
    return WebDriverWait(browser, WAIT).until(row, "stage %s on the page" % stage)


def test_migration_stages_show_on_the_migrations_page(browser, two_store_node):
    node = two_store_node
    topic, group = unique("moved-orders"), unique("moved-readers")
    node.cli("topics", "create", topic, "--partitions", "2")
    node.cli("produce", "--topic", topic, stdin="".join("m%d\n" % i for i in range(4)))
    node.cli("consume", "--group", group, "--topic", topic, "--from", "earliest", "--count", "4")
    wait_for(lambda: committed_total(node, group) == 4, "the group's commits on a")

    browser.get(node.url + "/ui/")
    browser_errors(browser)  # the log starts here
    empty = open_page(browser, node, "/migrations", "migrations")
    assert "No migrations" in empty.text
    screenshot(browser, "migrations-empty")

    node.cli("migrate", "start", "--topic", topic, "--from", "a", "--to", "b")
    row = wait_stage(browser, topic, "mirroring")
    assert row[1:3] == ["a", "b"] and row[6] != "-" and row[7] != "-", row
    mirrors = browser.find_element(By.ID, "mirrors").text
    assert "migrate." + topic in mirrors

    node.cli("migrate", "consumers", "--topic", topic)
    row = wait_stage(browser, topic, "consumers")
    assert row[5] == group, row
    # The group's position on a, and on b where the consumer stage
    # translated and committed it.
    WebDriverWait(browser, WAIT).until(
        lambda b: (rows := cells(b, "migration-groups")) and len(rows) == 4 and
        sorted(r[2] for r in rows) == ["a", "a", "b", "b"] and
        all(r[1] == group and r[4] != "-" for r in rows) and
        sum(int(r[4]) for r in rows if r[2] == "b") == 4, "the group's offsets on a and b")
    screenshot(browser, "migration-consumers")

    node.cli("migrate", "producers", "--topic", topic)
    node.cli("migrate", "finish", "--topic", topic)
    wait_stage(browser, topic, "finished")
    assert "No migration under way" in browser.find_element(By.ID, "migration-groups").text
    screenshot(browser, "migration-finished")
    assert browser_errors(browser) == []

    status = node.cli("migrate", "status", "--topic", topic).stdout
    assert re.search(r"started +\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ, last change \d{4}-", status), status
    listed = node.cli("migrate", "list").stdout
    assert topic in listed and "finished" in listed, listed
    assert "no migrations at stage mirroring" in node.cli("migrate", "list", "--stage", "mirroring").stdout
    refused = node.cli("migrate", "list", "--stage", "done", check=False)
    assert refused.returncode != 0 and "unknown stage" in refused.stderr, refused
