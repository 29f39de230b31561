"""The web console in a real browser against a real ferryd: every page loads
without errors in the browser's log, and what the operator does in the UI
(create and delete a topic, pause a group, seek it) is what the CLI sees."""
import json
import re
import subprocess
import time
import urllib.request
import uuid

import pytest
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import FERRY, SCREENSHOTS, TOKEN

WAIT = 15


def unique(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:8])


def open_page(browser, node, fragment, element_id):
    """Opens /ui/#<fragment>, waits for the element the page draws from the
    API, and returns it; fails on an error shown on the page."""
    browser.get("%s/ui/#%s" % (node.url, fragment))
    try:
        element = WebDriverWait(browser, WAIT).until(
            ec.presence_of_element_located((By.ID, element_id)))
    except TimeoutException:
        pytest.fail("page %s drew no #%s; on the page: %r; browser log: %s" % (
            fragment, element_id, browser.find_element(By.ID, "page").text[:500],
            browser_errors(browser)))
    assert browser.find_element(By.ID, "page-errors").text == ""
    return element


def browser_errors(browser, ignore=()):
    """SEVERE entries of the browser log since the last call (uncaught
    exceptions, failed requests, console.error), except those matching `ignore`."""
    return [entry["message"] for entry in browser.get_log("browser")
            if entry["level"] == "SEVERE" and not any(re.search(p, entry["message"]) for p in ignore)]


def screenshot(browser, name):
    browser.save_screenshot(str(SCREENSHOTS / ("%s.png" % name)))


def use_token(browser, token):
    """Enters `token` (or forgets the kept one when empty)."""
    field = browser.find_element(By.ID, "token")
    field.clear()
    if token:
        field.send_keys(token)
    browser.find_element(By.ID, "token-save").click()


def wait_notice(browser, text):
    WebDriverWait(browser, WAIT).until(
        ec.text_to_be_present_in_element((By.ID, "notice"), text))
    return browser.find_element(By.ID, "notice").text


def wait_for(condition, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.2)


def lags(browser):
    """The Lag column of the group page's partition table; None while the
    page's auto-refresh replaces the rows under the read."""
    try:
        rows = browser.find_elements(By.CSS_SELECTOR, "#group-partitions tbody tr")
        return [row.find_elements(By.TAG_NAME, "td")[6].text for row in rows]
    except StaleElementReferenceException:
        return None


def bars_drawn(browser):
    """Whether every bar of the lag chart has a visible width (None while the
    chart is redrawn under the read)."""
    try:
        bars = browser.find_elements(By.CSS_SELECTOR, "#lag-chart rect")
        return [int(bar.get_attribute("width")) > 1 for bar in bars]
    except StaleElementReferenceException:
        return None


def describe_group(node, group):
    """(paused, {(topic, partition): committed}) from `ferry groups describe`."""
    out = node.cli("groups", "describe", group).stdout
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["CLUSTER", "TOPIC"])
    columns = lines[header].split()
    committed = {}
    for line in lines[header + 1:]:
        row = dict(zip(columns, line.split()))
        committed[(row["TOPIC"], int(row["PARTITION"]))] = row["COMMITTED"]
    return "PAUSED" in lines[0], committed


@pytest.fixture(scope="module")
def topic_with_group(node):
    """A topic of 2 partitions with 6 messages, and a group that read them all."""
    topic, group = unique("console-orders"), unique("console-billing")
    node.cli("topics", "create", topic, "--partitions", "2")
    lines = "".join("k%d\tvalue-%d\n" % (i, i) for i in range(6))
    node.cli("produce", "--topic", topic, "--key-delimiter", "\t", "--header", "source=console-test",
             stdin=lines)
    node.cli("consume", "--group", group, "--topic", topic, "--from", "earliest", "--count", "6")
    wait_for(lambda: all(c == "3" for c in describe_group(node, group)[1].values()),
             "the group's commits")
    return topic, group


def test_every_page_loads_without_browser_errors(browser, node, topic_with_group):
    topic, group = topic_with_group
    browser.get(node.url + "/ui/")
    browser_errors(browser)  # the log starts here
    pages = [("overview", "/", "clusters"), ("topics", "/topics", "topics"),
             ("topic", "/topics/" + topic, "messages"), ("groups", "/groups", "groups"),
             ("group", "/groups/" + group, "group-partitions"), ("routes", "/routes", "routes"),
             ("migrations", "/migrations", "migrations")]
    for name, fragment, element_id in pages:
        open_page(browser, node, fragment, element_id)
        time.sleep(0.3)  # let the page's other requests finish
        screenshot(browser, name)
        assert browser_errors(browser) == [], "page " + fragment

    open_page(browser, node, "/", "clusters")
    assert "local" in browser.find_element(By.ID, "clusters").text
    WebDriverWait(browser, WAIT).until(  # the second refresh has a rate
        ec.text_to_be_present_in_element((By.ID, "card-publish"), "/s"))
    open_page(browser, node, "/topics/" + topic, "messages")
    messages = browser.find_element(By.ID, "messages").text
    for i in range(6):
        assert "value-%d" % i in messages and "k%d" % i in messages
    assert "source=console-test" in messages
    open_page(browser, node, "/groups/" + group, "lag-chart")
    assert browser_errors(browser) == []


def test_topic_created_in_the_ui_exists_for_the_cli(browser, node):
    topic = unique("console-created")
    open_page(browser, node, "/topics", "create-topic-form")
    use_token(browser, "")

    def submit():
        browser.find_element(By.ID, "new-topic-name").clear()
        browser.find_element(By.ID, "new-topic-name").send_keys(topic)
        browser.find_element(By.ID, "new-topic-partitions").clear()
        browser.find_element(By.ID, "new-topic-partitions").send_keys("3")
        browser.find_element(By.ID, "create-topic").click()

    submit()
    refused = wait_notice(browser, "enter the admin token")
    assert "PERMISSION_DENIED" in refused
    assert node.cli("topics", "describe", topic, check=False).returncode != 0
    screenshot(browser, "writes-refused")

    use_token(browser, TOKEN)
    submit()
    wait_notice(browser, "Created topic " + topic)
    described = node.cli("topics", "describe", topic).stdout
    assert len(re.findall(r"^\s*\d+\s", described, re.M)) == 3, described
    WebDriverWait(browser, WAIT).until(
        ec.text_to_be_present_in_element((By.ID, "topics"), topic))
    assert browser_errors(browser, ignore=[r"status of 403"]) == []


def test_topic_deleted_in_the_ui_after_confirming(browser, node):
    topic = unique("console-doomed")
    node.cli("topics", "create", topic, "--partitions", "1")
    open_page(browser, node, "/topics", "topics")
    use_token(browser, TOKEN)
    button = WebDriverWait(browser, WAIT).until(ec.element_to_be_clickable(
        (By.CSS_SELECTOR, 'button[data-topic="%s"]' % topic)))
    button.click()
    alert = WebDriverWait(browser, WAIT).until(ec.alert_is_present())
    assert topic in alert.text
    alert.dismiss()
    time.sleep(0.5)
    assert node.cli("topics", "describe", topic, check=False).returncode == 0

    browser.find_element(By.CSS_SELECTOR, 'button[data-topic="%s"]' % topic).click()
    WebDriverWait(browser, WAIT).until(ec.alert_is_present()).accept()
    wait_notice(browser, "Deleted topic " + topic)
    assert node.cli("topics", "describe", topic, check=False).returncode != 0
    assert browser_errors(browser) == []


def test_pause_and_resume_in_the_ui_show_in_the_cli(browser, node, topic_with_group):
    _, group = topic_with_group
    open_page(browser, node, "/groups/" + group, "group-partitions")
    use_token(browser, TOKEN)
    WebDriverWait(browser, WAIT).until(ec.element_to_be_clickable((By.ID, "pause-group"))).click()
    wait_notice(browser, "Paused " + group)
    assert describe_group(node, group)[0] is True
    WebDriverWait(browser, WAIT).until(
        ec.text_to_be_present_in_element((By.ID, "group-paused"), "paused"))
    screenshot(browser, "group-paused")

    WebDriverWait(browser, WAIT).until(ec.element_to_be_clickable((By.ID, "resume-group"))).click()
    wait_notice(browser, "Resumed " + group)
    assert describe_group(node, group)[0] is False
    assert browser_errors(browser) == []


def test_group_page_shows_the_members_on_each_node(browser, node, topic_with_group):
    topic = topic_with_group[0]
    group = unique("console-live")
    consumer = subprocess.Popen(
        [str(FERRY), "--server", node.grpc, "consume", "--group", group, "--topic", topic,
         "--from", "latest"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: group in node.cli("groups", "list").stdout, "the consumer to join")
        open_page(browser, node, "/groups/" + group, "group-partitions")
        WebDriverWait(browser, WAIT).until(
            ec.text_to_be_present_in_element((By.ID, "group-members"), "console-test"))
        members = browser.find_element(By.ID, "group-members").text
        assert "(ipv4:127.0.0.1:" in members and "outstanding" in members, members
        screenshot(browser, "group-members")
    finally:
        consumer.terminate()
        consumer.wait(10)
    assert browser_errors(browser) == []


def test_seek_in_the_ui_moves_the_group(browser, node, topic_with_group):
    topic, group = topic_with_group
    assert set(describe_group(node, group)[1].values()) == {"3"}
    open_page(browser, node, "/groups/" + group, "group-partitions")
    use_token(browser, TOKEN)
    Select(browser.find_element(By.ID, "seek-kind")).select_by_value("earliest")
    browser.find_element(By.ID, "seek-group").click()
    alert = WebDriverWait(browser, WAIT).until(ec.alert_is_present())
    assert group in alert.text
    alert.accept()
    wait_notice(browser, "Moved " + group)
    assert describe_group(node, group)[1] == {(topic, 0): "0", (topic, 1): "0"}
    WebDriverWait(browser, WAIT).until(lambda b: lags(b) == ["3", "3"])
    WebDriverWait(browser, WAIT).until(lambda b: bars_drawn(b) == [True, True])

    Select(browser.find_element(By.ID, "seek-kind")).select_by_value("latest")
    browser.find_element(By.ID, "seek-group").click()
    WebDriverWait(browser, WAIT).until(ec.alert_is_present()).accept()
    wait_notice(browser, "Moved " + group)
    assert set(describe_group(node, group)[1].values()) == {"3"}

    # A time before every message: back to the first of each partition.
    Select(browser.find_element(By.ID, "seek-kind")).select_by_value("time")
    browser.execute_script("arguments[0].value = '2000-01-01T00:00:00'",
                           browser.find_element(By.ID, "seek-time"))
    browser.find_element(By.ID, "seek-group").click()
    alert = WebDriverWait(browser, WAIT).until(ec.alert_is_present())
    assert "at or after 2000-01-01T00:00" in alert.text
    alert.accept()
    wait_notice(browser, "Moved " + group)
    assert describe_group(node, group)[1] == {(topic, 0): "0", (topic, 1): "0"}
    assert browser_errors(browser) == []


def test_a_page_that_fails_says_what_to_do(browser, node):
    missing = unique("console-missing")
    browser.get("%s/ui/#/topics/%s" % (node.url, missing))
    errors = WebDriverWait(browser, WAIT).until(
        lambda b: b.find_element(By.ID, "page-errors").text or None)
    assert "NOT_FOUND" in errors and missing in errors, errors
    assert "go back to the list" in errors, errors
    screenshot(browser, "error-state")
    # The failed request is the only entry in the browser's log.
    assert browser_errors(browser, ignore=[r"status of 404"]) == []


def test_pages_on_kafka(browser, kafka_node):
    topic = unique("console-kafka")
    kafka_node.cli("topics", "create", topic, "--partitions", "2")
    kafka_node.cli("produce", "--topic", topic, stdin="on-kafka\n")
    browser.get(kafka_node.url + "/ui/")
    browser_errors(browser)
    open_page(browser, kafka_node, "/", "clusters")
    assert "kafka" in browser.find_element(By.ID, "clusters").text
    messages = open_page(browser, kafka_node, "/topics/" + topic, "messages")
    assert "on-kafka" in messages.text
    screenshot(browser, "kafka-topic")
    assert browser_errors(browser) == []


def test_console_files_are_cached_by_etag(node):
    with urllib.request.urlopen(node.url + "/ui/app.js") as response:
        etag = response.headers["ETag"]
        assert response.headers["Content-Type"].startswith("text/javascript")
    request = urllib.request.Request(node.url + "/ui/app.js", headers={"If-None-Match": etag})
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(request)
    assert not_modified.value.code == 304
    with urllib.request.urlopen(node.url + "/ui") as redirected:  # follows the 301
        assert redirected.url.endswith("/ui/")
    with urllib.request.urlopen(node.url + "/api/v1/topics") as response:
        assert "topics" in json.load(response)
