"""Browser tests of the admin UI (issue 14) against a running 5-node dev
cluster on full_mesh ($TOPOD_UI_URL, started by tests/ui/run.sh).

Selenium drives Debian's headless Chromium. Tests run in name order: the
full-mesh checks and the screenshots come before the switch to
client_server. Screenshots go to $UI_ARTIFACTS (paths printed). A
JavaScript console error fails a test; an API's error answer is logged by
Chromium as a "network" entry and is only allowed where a test provokes it.
"""
import json
import os
import time
import unittest
import ssl
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

URL = os.environ.get("TOPOD_UI_URL", "https://127.0.0.1:7101")
# The dev cluster's CA (its API is HTTPS); unset: plain HTTP.
CA = os.environ.get("TOPOD_UI_CA")
SSL = ssl.create_default_context(cafile=CA) if CA else None
ARTIFACTS = os.environ.get("UI_ARTIFACTS", "target/ui-artifacts")
DEADLINE = 40  # seconds, for anything that waits on the cluster
PANELS = ["overview", "history", "node", "policy", "monitor"]
# The dev cluster's admin token (tests/ui/run.sh reads it from the dev
# data dir): sent on every API call here, and typed into the page.
TOKEN = os.environ.get("TOPOD_UI_TOKEN", "")


def api(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    if TOKEN:
        req.add_header("authorization", "Bearer " + TOKEN)
    try:
        with urllib.request.urlopen(req, timeout=10, context=SSL) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def make_driver():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--disable-gpu",
                # The dev CA is not in the browser's store (the Python
                # calls above check it).
                "--ignore-certificate-errors"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=opts)


class AdminUi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(ARTIFACTS, exist_ok=True)
        cls.d = make_driver()
        # The page keeps its token in sessionStorage (per origin and tab):
        # set it on a static asset of the origin first, so that the page's
        # very first API calls carry it.
        cls.d.get(URL + "/ui/features.json")
        cls.d.execute_script("sessionStorage.setItem('topod.token', arguments[0])", TOKEN)
        cls.d.get_log("browser")
        cls.d.get(URL + "/ui/")

    @classmethod
    def tearDownClass(cls):
        cls.d.quit()

    # ---- helpers ----
    def wait(self, what, cond, timeout=DEADLINE):
        return WebDriverWait(self.d, timeout, poll_frequency=0.2).until(
            lambda d: cond(), message="waiting for " + what)

    def logs(self):
        return self.d.get_log("browser")

    def assert_no_js_errors(self, allow_network=False):
        bad = [e for e in self.logs() if e["level"] == "SEVERE"
               and not (allow_network and e.get("source") == "network")]
        self.assertEqual(bad, [], "console errors")

    def members(self):
        return self.d.find_elements(By.CSS_SELECTOR, "#graph .member")

    def links(self):
        # One script call: the graph may be redrawn between element reads.
        pairs = self.d.execute_script(
            "return [...document.querySelectorAll('#graph .link')]"
            ".map(l => [+l.getAttribute('data-a'), +l.getAttribute('data-b')])")
        return [tuple(p) for p in pairs]

    def tab(self, name):
        self.d.find_element(By.ID, "tab-" + name).click()
        self.wait(name + " panel", lambda: self.d.find_element(By.ID, "panel-" + name).is_displayed())

    def shot(self, name):
        path = os.path.abspath(os.path.join(ARTIFACTS, "ui-%s.png" % name))
        self.d.execute_script("window.scrollTo(0, 0)")
        self.d.save_screenshot(path)
        print("screenshot:", path)
        return path

    def text(self, el_id):
        return self.d.find_element(By.ID, el_id).text

    # ---- tests ----
    def test_1_full_mesh_graph_has_5_members_and_10_links(self):
        self.wait("5 members and 10 links", lambda: len(self.members()) == 5 and len(self.links()) == 10)
        ids = sorted(int(m.get_attribute("data-node-id")) for m in self.members())
        self.assertEqual(ids, [1, 2, 3, 4, 5])
        self.assertEqual(sorted(self.links()), [(a, b) for a in range(1, 6) for b in range(a + 1, 6)])
        classes = {int(m.get_attribute("data-node-id")): m.get_attribute("class").split() for m in self.members()}
        self.assertEqual(sum("leader" in c for c in classes.values()), 1)
        self.assertEqual(sorted(i for i, c in classes.items() if "voter" in c), [1, 2, 3])
        self.assertEqual(sorted(i for i, c in classes.items() if "learner" in c), [4, 5])
        self.assertFalse(any("unreachable" in c for c in classes.values()))
        self.assertEqual(self.text("s-topology"), "full_mesh")
        first = self.d.execute_script("return window.topoUi.firstGraphMs")
        print("time to first graph (5 nodes): %s ms" % first)
        self.assertIsNotNone(first)
        self.assert_no_js_errors()

    def test_2_every_panel_renders_without_console_errors(self):
        self.tab("overview")
        self.wait("topology info", lambda: "full_mesh" in self.text("topo-info"))
        self.shot("overview")
        self.tab("history")
        self.wait("history rows", lambda: self.d.find_elements(By.CSS_SELECTOR, "#history tbody tr"))
        self.shot("history")
        self.tab("node")
        self.wait("peer table", lambda: len(self.d.find_elements(By.CSS_SELECTOR, "#peers tbody tr")) == 4)
        self.shot("node")
        self.tab("policy")
        self.wait("policy fields", lambda: self.d.find_elements(By.ID, "pol-cooldown_ms")
                  and self.d.find_elements(By.ID, "pol-thresholds.min_connectivity"))
        self.shot("policy")
        self.tab("monitor")
        self.wait("monitor round", lambda: "Evaluation" in self.text("monitor"))
        self.shot("monitor")
        self.assert_no_js_errors()

    def test_3_keyboard_moves_between_tabs_and_opens_a_member(self):
        self.tab("overview")
        self.d.find_element(By.ID, "tab-overview").send_keys(Keys.ARROW_RIGHT)
        self.wait("history by arrow key", lambda: self.d.find_element(By.ID, "panel-history").is_displayed())
        self.assertEqual(self.d.switch_to.active_element.get_attribute("id"), "tab-history")
        self.d.switch_to.active_element.send_keys(Keys.ARROW_LEFT)
        self.wait("overview by arrow key", lambda: self.d.find_element(By.ID, "panel-overview").is_displayed())
        member = self.d.find_element(By.CSS_SELECTOR, '#graph .member[data-node-id="4"]')
        self.assertEqual(member.get_attribute("tabindex"), "0")
        member.send_keys(Keys.ENTER)
        self.wait("node 4's detail", lambda: self.d.find_element(By.ID, "panel-node").is_displayed()
                  and Select(self.d.find_element(By.ID, "node-select")).first_selected_option.text == "node 4")
        self.assert_no_js_errors()

    def test_4_switch_to_client_server_through_the_page(self):
        self.tab("overview")
        self.d.execute_script("window.__notReloaded = true")
        Select(self.d.find_element(By.ID, "switch-target")).select_by_value("client_server")
        self.d.find_element(By.ID, "switch-btn").click()
        self.wait("confirmation", lambda: self.d.find_element(By.ID, "confirm").is_displayed())
        self.assertIn("client_server", self.text("confirm-text"))
        self.assertIn("not available", self.text("confirm-prediction"))
        self.d.find_element(By.ID, "confirm-ok").click()
        accepted = self.wait("the switch accepted", lambda: self.d.find_element(By.ID, "action-result").text
                             if "transition #" in self.text("action-result") else None)
        tid = accepted.split("#")[1].split()[0]

        def client_server_drawn():
            if self.text("s-topology") != "client_server":
                return False
            servers = {int(m.get_attribute("data-node-id"))
                       for m in self.d.find_elements(By.CSS_SELECTOR, "#graph .member.server")}
            links = self.links()
            if not servers or not links:
                return False
            clients = set(range(1, 6)) - servers
            linked = {x for l in links for x in l}
            # no link between two clients (servers also link to each other);
            # every client is linked
            return all(a in servers or b in servers for a, b in links) and clients <= linked
        self.wait("clients linked only to servers", client_server_drawn)
        self.shot("client-server")
        self.tab("history")
        self.wait("history row of transition #" + tid, lambda: any(
            "full_mesh \u2192 client_server" in r.text and "committed" in r.text
            for r in self.d.find_elements(By.CSS_SELECTOR, '#history tr[data-transition-id="%s"]' % tid)))
        self.assertTrue(self.d.execute_script("return window.__notReloaded === true"), "page was reloaded")
        self.shot("history-after-switch")
        self.assert_no_js_errors()

    def test_5_rejected_switch_shows_the_api_error(self):
        self.tab("overview")
        self.wait("client_server current", lambda: self.text("s-topology") == "client_server")
        status, body = api("POST", "/v1/topology/switch", {"topology": "client_server"})
        self.assertEqual(body["error"]["code"], "already_current", body)
        Select(self.d.find_element(By.ID, "switch-target")).select_by_value("client_server")
        self.d.find_element(By.ID, "switch-btn").click()
        self.wait("confirmation", lambda: self.d.find_element(By.ID, "confirm").is_displayed())
        self.d.find_element(By.ID, "confirm-ok").click()
        self.wait("the error", lambda: self.d.find_element(By.ID, "alert").is_displayed())
        shown = self.text("alert-text")
        self.assertIn("%d already_current: %s" % (status, body["error"]["message"]), shown)
        self.shot("rejected-switch")
        self.assert_no_js_errors(allow_network=True)
        self.d.find_element(By.ID, "alert-close").click()

    def test_6_policy_edits_are_saved_and_refusals_shown(self):
        self.tab("policy")
        field = self.wait("cooldown field", lambda: self.d.find_element(By.ID, "pol-cooldown_ms"))
        _, before = api("GET", "/v1/policy")
        new = before["cooldown_ms"] + 1000
        field.clear()
        field.send_keys(str(new))
        self.d.find_element(By.ID, "policy-save").click()
        self.wait("saved", lambda: "saved: cooldown_ms" in self.text("policy-result"))
        _, after = api("GET", "/v1/policy")
        self.assertEqual(after["cooldown_ms"], new)
        self.assertEqual(after["thresholds"], before["thresholds"])
        bad = self.d.find_element(By.ID, "pol-thresholds.min_connectivity")
        bad.clear()
        bad.send_keys("7")
        self.d.find_element(By.ID, "policy-save").click()
        self.wait("the refusal", lambda: self.d.find_element(By.ID, "alert").is_displayed())
        self.assertIn("min_connectivity", self.text("alert-text"))
        _, unchanged = api("GET", "/v1/policy")
        self.assertEqual(unchanged["thresholds"], before["thresholds"])
        self.assert_no_js_errors(allow_network=True)

    def test_7_demo_of_100_members_animates(self):
        self.d.get(URL + "/ui/?demo=100")
        self.wait("100 members", lambda: len(self.members()) == 100)
        time.sleep(3)  # a measurement window, not a synchronisation
        fps = self.d.execute_script("return window.topoUi.fps")
        frames = self.d.execute_script("return window.topoUi.frames")
        print("frame rate, 100-node graph animating: %s fps (%s frames)" % (fps, frames))
        self.assertGreaterEqual(fps, 10)
        self.assertGreater(len(self.links()), 100)
        self.shot("demo-100")
        self.d.get(URL + "/ui/?demo=400")
        self.wait("aggregate view", lambda: self.d.find_elements(By.CSS_SELECTOR, "#graph .agg"))
        self.assertEqual(len(self.members()), 0)
        self.assertIn("aggregate view: 400 members", self.text("graph-note"))
        self.shot("demo-400-aggregate")
        self.assert_no_js_errors()

    def test_7b_the_token_stays_in_the_tab_and_is_never_shown(self):
        self.d.get(URL + "/ui/")
        stored = self.d.execute_script("return sessionStorage.getItem('topod.token')")
        self.assertEqual(stored, TOKEN)
        shown = self.d.find_element(By.ID, "token").get_attribute("value")
        if TOKEN:
            self.assertNotIn(TOKEN, shown)
        self.assertEqual(self.d.execute_script("return localStorage.getItem('topod.token')"), None)
        self.assert_no_js_errors()

    def test_8_page_weight(self):
        total = 0
        for path in ("/ui/", "/ui/app.css", "/ui/app.js", "/ui/features.json"):
            with urllib.request.urlopen(URL + path, timeout=10, context=SSL) as resp:
                total += len(resp.read())
        print("page weight: %d bytes (all assets, uncompressed)" % total)
        self.assertLessEqual(total, 100 * 1024)


if __name__ == "__main__":
    unittest.main()
