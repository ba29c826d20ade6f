"""The district's fleet dashboard (issue 20), against a real Mosquitto and a real headless chromium.

Simulated sentinels are real `FleetLink`s (sentinel/dashboard/simulate.py) talking to a throwaway
broker on loopback; the collector and the page run as `sentinel fleet dashboard` runs them; the
page is read by Debian's chromium through selenium, as an operator would see it. A device is killed
with SIGKILL in a process of its own so that only the broker's last will can tell the page.

Devices and the dashboard share a settable wall clock (tests/helpers.py WallClock): counters are
sent when the device's minute is over, so the tests move the clock on instead of waiting a minute.
Skips (with the reason) when mosquitto or chromium/chromedriver is not installed.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from sentinel import cli
from sentinel.config import PolicyConfig
from sentinel.fleet.protocol import MinuteCounters, load_public_key, verify_policy
from tests.helpers import PATIENCE_S, T0, WallClock, run_reading, wait_until
from tests.mosquitto import MosquittoBroker, find_mosquitto

pytest.importorskip("paho.mqtt", reason="the fleet extra (paho-mqtt) is not installed")

from sentinel.dashboard.collector import Collector, FleetView
from sentinel.dashboard.mqtt import BrokerAddress, client, connect_and_wait
from sentinel.dashboard.publisher import keygen, publish_policy
from sentinel.dashboard.simulate import SimulatedFleet
from sentinel.dashboard.web import DashboardServer

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
#: a busy 2-core machine: connecting tens of paho clients and a browser polling every second
SLOW = 3 * PATIENCE_S

_binary, _why = find_mosquitto()
needs_broker = pytest.mark.skipif(_binary is None, reason=_why)


def _browser_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.exists(path) and os.access(path, os.X_OK)):
            return f"{path} not installed: apt-get install chromium chromium-driver (install.sh --dev does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (the dev extra)"
    return None


_skip_without_browser = pytest.mark.skipif(_browser_missing() is not None, reason=_browser_missing() or "")


def needs_browser(test):
    """A test that drives headless chromium: skipped where it is not installed, and marked
    `browser` (tools/pi-emulated.sh leaves these out: chromium does not start under qemu-user)."""
    return pytest.mark.browser(_skip_without_browser(test))


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # chromium's sandbox refuses to run as root
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class Dashboard:
    """Broker, collector, page and keys for one test; `fleet(n)` adds simulated devices."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.wall = WallClock()
        self.broker = MosquittoBroker().start()
        self.address = BrokerAddress.parse(self.broker.address)
        self.private, self.public = keygen(tmp / "keys")
        self.view = FleetView(wall=self.wall, public_key=load_public_key(self.public.read_bytes()))
        self.collector = Collector(self.address, self.view)
        self.collector.start()
        self.server = DashboardServer(self.view, port=0)
        self.url = self.server.start()
        self.publisher = client(self.address, "test-publisher")
        connect_and_wait(self.publisher, self.address)
        self.fleets: list[SimulatedFleet] = []

    def fleet(self, n: int, **kw) -> SimulatedFleet:
        kw.setdefault("checks_per_minute", 0.0)
        f = SimulatedFleet(self.address, devices=n, public_key_file=self.public, state_every_s=5, keepalive_s=5, wall=self.wall,
                           state_dir=self.tmp / f"devices{len(self.fleets)}", **kw)  # fmt: skip
        self.fleets.append(f)
        return f.start()

    def api(self) -> dict:
        with urllib.request.urlopen(self.url + "api/fleet", timeout=10) as r:
            return json.loads(r.read())

    def publish(self, site: str, version: int, policy: PolicyConfig, key: Path | None = None) -> None:
        publish_policy(self.publisher, site=site, version=version, private_key_pem=(key or self.private).read_bytes(), policy=policy)

    def close(self) -> None:
        for f in self.fleets:
            f.stop(timeout_s=1.0)
        self.publisher.disconnect()
        self.publisher.loop_stop()
        self.server.stop()
        self.collector.stop()
        self.broker.stop()


@pytest.fixture
def dash(tmp_path):
    if _binary is None:
        pytest.skip(_why)
    d = Dashboard(tmp_path)
    try:
        yield d
    finally:
        d.close()


#: the page's tables and cards read in one go (the page redraws every second: elements found one by
#: one could be replaced in between), as rendered text (innerText: what the operator sees)
READ_PAGE = """
const cells = (tr) => Array.from(tr.querySelectorAll("td")).map((td) => [td.className, td.innerText]);
return {
  devices: Array.from(document.querySelectorAll("#devices-body tr")).map((tr) => [tr.dataset.device, tr.dataset.status, tr.innerText, cells(tr)]),
  sites: Array.from(document.querySelectorAll("#sites-body tr")).map((tr) => [tr.dataset.site, tr.innerText]),
  cards: Array.from(document.querySelectorAll("#cards .card")).map((c) => [c.querySelector(".k").textContent, c.querySelector(".v").innerText]),
  verdicts: document.getElementById("verdicts").innerText,
};
"""


def page(driver) -> dict:
    return driver.execute_script(READ_PAGE)


def rows(driver) -> dict[str, dict]:
    """The devices table as the operator reads it, in its order: {site/device: {status, text, alarms,
    policy, refusal, numbers}}; numbers are the right-aligned cells (last seen, backlog, checks today,
    pass, deny, staff, offline, unread)."""
    out = {}
    for key, status, text, cells in page(driver)["devices"]:
        named = {cls.split()[0]: t for cls, t in cells if cls and cls.split()[0] in ("alarms", "policy", "refusal")}
        out[key] = {"status": status, "text": text, "numbers": [t for cls, t in cells if cls.split()[:1] == ["n"]], **named}
    return out


def card(driver, label: str) -> str:
    cards = dict(page(driver)["cards"])
    assert label in cards, f"no card {label!r} in {list(cards)}"
    return cards[label]


def site_row(driver, site: str) -> str:
    return dict(page(driver)["sites"])[site]


# -- the page ----------------------------------------------------------------------------------------


@needs_broker
@needs_browser
def test_simulated_devices_appear_on_the_page_with_their_state(dash, browser):
    fleet = dash.fleet(8)
    ids = {f"{d.site}/{d.device}" for d in fleet.devices}
    troubled = {d.trouble: f"{d.site}/{d.device}" for d in fleet.devices if d.trouble}
    browser.get(dash.url)
    wait_until(lambda: set(rows(browser)) == ids and all(r["status"] == "online" for r in rows(browser).values()), SLOW,
               "every simulated device online on the page")  # fmt: skip
    assert card(browser, "devices deployed") == "8"
    assert card(browser, "online now") == "8 / 8"
    assert card(browser, "sites covered") == str(len(fleet.sites))
    wait_until(lambda: "gate_fault" in rows(browser)[troubled["gate"]]["alarms"], SLOW, "the gate fault on the page")
    r = rows(browser)
    assert "camera_fault" in r[troubled["camera"]]["alarms"]
    assert "oldest" in r[troubled["backlog"]]["text"]  # the backlog's depth and oldest age
    healthy = next(i for i in ids if i not in troubled.values())
    assert r[healthy]["alarms"] == ""
    # trouble first: the rows needing attention are at the top of the table
    order = list(rows(browser))
    assert set(order[:3]) == set(troubled.values())
    assert card(browser, "need attention") == "3"


@needs_broker
@needs_browser
def test_a_killed_device_goes_offline_on_the_page(dash, browser):
    """SIGKILL: no goodbye from the device; the broker's last will is all the page can learn."""
    fleet = dash.fleet(3, trouble=False)
    victim = fleet.devices[0]
    # its twin in a process of its own (the same layout, one device id), killed mid-run
    other = SimulatedFleet(dash.address, devices=4, trouble=False, seed=99).devices[-1]
    child, out, _err = run_reading([sys.executable, "-m", "sentinel.dashboard.simulate", "--broker", dash.broker.address,
                                   "--devices", "4", "--seed", "99", "--only", other.device, "--checks-per-minute", "0"],
                                  cwd=ROOT)  # fmt: skip
    try:
        assert out.next_line(SLOW).startswith("started ")
        key = f"{other.site}/{other.device}"
        browser.get(dash.url)
        wait_until(lambda: rows(browser).get(key, {}).get("status") == "online", SLOW, "the child's device online")
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
        wait_until(lambda: rows(browser)[key]["status"] == "offline", SLOW, "the killed device offline on the page")
        assert "OFFLINE" in rows(browser)[key]["text"]
        assert card(browser, "online now") == "3 / 4"
        assert rows(browser)[f"{victim.site}/{victim.device}"]["status"] == "online"  # the others stay online
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)


@needs_broker
@needs_browser
def test_counters_add_up_into_checks_today(dash, browser):
    fleet = dash.fleet(6, trouble=False)
    a, b, c = fleet.devices[0], fleet.devices[1], fleet.devices[-1]
    browser.get(dash.url)
    wait_until(lambda: len(rows(browser)) == 6, SLOW, "six devices on the page")
    for kind, n in (("pass", 5), ("deny", 2), ("manual", 1)):
        for _ in range(n):
            a.link.count(kind)
    for _ in range(3):
        b.link.count("pass")
    b.link.count("deny", offline=True)
    c.link.count("decode_failure")
    dash.wall.advance(61)  # the minute is over: each device sends its counters
    # 12 checks: a code that could not be read is counted apart, not as a check
    wait_until(lambda: card(browser, "scans today") == "12", SLOW, "12 checks today on the page")
    r = rows(browser)
    ka, kb = f"{a.site}/{a.device}", f"{b.site}/{b.device}"
    assert r[ka]["numbers"][2:8] == ["8", "5", "2", "1", "0", "0"]  # checks, pass, deny, staff, offline, unread
    assert r[kb]["numbers"][2:8] == ["4", "3", "1", "0", "1", "0"]
    assert r[f"{c.site}/{c.device}"]["numbers"][2:8] == ["0", "0", "0", "0", "0", "1"]
    assert r[ka]["status"] == "online"
    verdicts = page(browser)["verdicts"]
    assert "pass 8" in verdicts and "deny 3" in verdicts and "staff check 1" in verdicts and "unreadable codes 1" in verdicts
    # the same minute sent again (as after a reconnect) replaces, never adds; yesterday's counts go to date only
    resent = MinuteCounters(site=a.site, device=a.device, minute=T0, checks=8, passed=5, denied=2, manual=1)
    dash.publisher.publish(f"sentinel/{a.site}/{a.device}/counters", resent.model_dump_json(), qos=1).wait_for_publish(10)
    old = MinuteCounters(site=a.site, device=a.device, minute=T0 - timedelta(days=1), checks=100, passed=100)
    dash.publisher.publish(f"sentinel/{a.site}/{a.device}/counters", old.model_dump_json(), qos=1).wait_for_publish(10)
    wait_until(lambda: card(browser, "scans to date") == "112", SLOW, "yesterday's 100 in the scans to date")
    assert card(browser, "scans today") == "12"


@needs_broker
@needs_browser
def test_a_policy_signed_with_the_fleet_key_is_acknowledged_by_every_device(dash, browser):
    fleet = dash.fleet(10, trouble=False)
    browser.get(dash.url)
    wait_until(lambda: len(rows(browser)) == 10, SLOW, "ten devices on the page")
    assert all(r["policy"] == "config file" for r in rows(browser).values())
    stricter = PolicyConfig(allowed_colours=["green"], yellow="deny", nat_window_h=24, offline="deny")
    for site, _ in fleet.sites:
        dash.publish(site, 3, stricter)
    wait_until(lambda: all(r["policy"] == "v3" for r in rows(browser).values()), SLOW, "every device running v3 on the page")
    for site, devices in fleet.sites:
        assert f"v3 · {len(devices)}/{len(devices)} running it" in site_row(browser, site)
    assert all(d.policies and d.policies[-1][1] == stricter for d in fleet.devices)  # applied, not only acknowledged


@needs_broker
@needs_browser
def test_a_policy_signed_with_another_key_is_refused_and_the_page_says_so(dash, browser):
    fleet = dash.fleet(4, trouble=False)
    site = fleet.sites[0][0]
    browser.get(dash.url)
    wait_until(lambda: len(rows(browser)) == 4, SLOW, "four devices on the page")
    good = PolicyConfig(allowed_colours=["green"], nat_window_h=48)
    dash.publish(site, 1, good)
    wait_until(lambda: all(r["policy"] == "v1" for r in rows(browser).values()), SLOW, "v1 everywhere")
    rogue_private, _ = keygen(dash.tmp / "rogue")
    dash.publish(site, 2, good.model_copy(update={"allowed_colours": ["green", "yellow"]}), key=rogue_private)
    wait_until(lambda: all("refused v2" in r["refusal"] for r in rows(browser).values()), SLOW, "every device refusing v2")
    r = rows(browser)
    assert all(x["policy"] == "v1" for x in r.values())  # the last good policy stays in force
    assert all(x["refusal"] == "refused v2: wrong signing key" for x in r.values())
    assert "NOT signed by the fleet key" in site_row(browser, site)
    assert "4 refused" in site_row(browser, site)
    assert all(d.policies[-1][1] == good for d in fleet.devices)


# -- the JSON API, the collector and the commands, without a browser ---------------------------------


@needs_broker
def test_the_collector_drops_what_does_not_validate_and_keeps_running(dash):
    fleet = dash.fleet(2, trouble=False)
    wait_until(lambda: len(dash.api()["devices"]) == 2, SLOW, "two devices in /api/fleet")
    d = fleet.devices[0]
    pub = dash.publisher
    pub.publish(f"sentinel/{d.site}/{d.device}/state", b"{not json", qos=1).wait_for_publish(10)
    pub.publish(f"sentinel/{d.site}/{d.device}/counters", b'{"v":1,"site":"x","device":"y","minute":"2026-11-25T08:00:00Z"}',
                qos=1).wait_for_publish(10)  # fmt: skip
    pub.publish("sentinel/evil \u202eetis/dev/state", b"{}", qos=1).wait_for_publish(10)
    pub.publish(f"sentinel/{d.site}/{d.device}/counters", b"x" * 70_000, qos=1).wait_for_publish(10)
    wait_until(lambda: sum(dash.api()["messages"]["dropped"].values()) >= 4, SLOW, "four messages dropped")
    snap = dash.api()
    assert snap["messages"]["dropped"] == {"invalid": 1, "mismatch": 1, "unknown_topic": 1, "too_large": 1}
    assert {x["device"] for x in snap["devices"]} == {x.device for x in fleet.devices}
    assert all(x["status"] == "online" for x in snap["devices"])
    with urllib.request.urlopen(dash.url, timeout=10) as r:
        assert "script-src 'sha256-" in r.headers["Content-Security-Policy"]
        body = r.read()
    assert b"http://" not in body and b"https://" not in body  # nothing fetched from elsewhere


@needs_broker
def test_demo_fleet_prints_the_dashboard_url_and_the_devices_fill_it():
    """`sentinel demo --fleet 6`: its own broker, six devices, policy v1 then the change to v2."""
    import io
    import threading

    from sentinel.dashboard.simulate import run_demo

    out, stop, result = io.StringIO(), threading.Event(), []
    thread = threading.Thread(target=lambda: result.append(run_demo(6, listen="127.0.0.1:0", change_after_s=3, stop=stop, out=out)))
    thread.start()
    try:
        wait_until(lambda: "fleet dashboard: http://127.0.0.1:" in out.getvalue(), SLOW, "the dashboard URL")
        url = out.getvalue().split("fleet dashboard: ", 1)[1].split()[0]

        def fleet() -> dict:
            with urllib.request.urlopen(url + "api/fleet", timeout=10) as r:
                return json.loads(r.read())

        wait_until(lambda: fleet()["headline"]["online"] == 6, SLOW, "six devices online")
        wait_until(lambda: {d["policy_version"] for d in fleet()["devices"]} == {2}, SLOW, "the policy change acknowledged")
        assert "published policy v2" in out.getvalue()
    finally:
        stop.set()
        thread.join(60)
    assert result == [0]


def _fleet_cli(argv: list[str], monkeypatch) -> int:
    monkeypatch.setitem(cli.COMMANDS, "fleet", ("fleet", "the district's side"))
    return cli.main(["fleet", *argv])


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path, monkeypatch, capsys):
    assert _fleet_cli(["keygen", "--out", str(tmp_path / "k")], monkeypatch) == 0
    private = tmp_path / "k" / "fleet-policy.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    load_public_key((tmp_path / "k" / "fleet-policy.pub").read_bytes())
    before = private.read_bytes()
    assert _fleet_cli(["keygen", "--out", str(tmp_path / "k")], monkeypatch) == 2
    assert "exists" in capsys.readouterr().err
    assert private.read_bytes() == before


@needs_broker
def test_publish_policy_signs_a_valid_policy_and_refuses_an_invalid_one(tmp_path, monkeypatch, capsys):
    from paho.mqtt import subscribe

    with MosquittoBroker() as broker:
        assert _fleet_cli(["keygen", "--out", str(tmp_path / "k")], monkeypatch) == 0
        key = tmp_path / "k" / "fleet-policy.key"
        bad = tmp_path / "bad.toml"
        bad.write_text('[policy]\nallowed_colours = ["green", "red"]\nnat_window_h = 36\n')
        common = ["--broker", broker.address, "--site", "mall-01", "--key", str(key)]
        assert _fleet_cli(["publish-policy", *common, "--version", "1", "--policy", str(bad)], monkeypatch) == 2
        err = capsys.readouterr().err
        assert "policy.allowed_colours" in err and "policy.nat_window_h" in err
        good = tmp_path / "good.toml"
        good.write_text('[policy]\nallowed_colours = ["green"]\nnat_window_h = 24\nyellow = "deny"\n')
        assert _fleet_cli(["publish-policy", *common, "--version", "7", "--policy", str(good)], monkeypatch) == 0
        retained = subscribe.simple("sentinel/mall-01/policy", hostname=broker.host, port=broker.port, retained=True)
        public = load_public_key((tmp_path / "k" / "fleet-policy.pub").read_bytes())
        version, policy = verify_policy(public, retained.payload, site="mall-01", current_version=None)
        assert (version, policy.nat_window_h, policy.yellow) == (7, 24, "deny")
        assert _fleet_cli(["publish-policy", *common[:-2], "--key", str(tmp_path / "k" / "fleet-policy.pub"), "--version", "8",
                           "--policy", str(good)], monkeypatch) == 2  # a public key cannot sign  # fmt: skip


def test_the_kiosk_never_imports_the_dashboard():
    import subprocess

    code = "import sys, sentinel.kiosk, sentinel.fleet.link\nprint([m for m in sys.modules if m.startswith('sentinel.dashboard')])"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_page_fetches_nothing_from_elsewhere_and_escapes_what_devices_say():
    from sentinel.dashboard.web import PAGE

    assert "http://" not in PAGE and "https://" not in PAGE and "@import" not in PAGE
    assert "innerHTML" not in PAGE and "insertAdjacentHTML" not in PAGE and "document.write" not in PAGE

