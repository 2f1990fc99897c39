"""Two users chat through the web client in headless Chromium (Selenium + Debian's chromedriver).

Run by web-test/run.sh against a running server. Alice uses a desktop-sized window, Bob a
phone-sized one. They chat, Alice downloads her data and then deletes her account, and Bob's
page shows her as "[deleted]" with her messages erased. Steps stop at the first failure;
screenshots are saved either way, and the last line is the pass/fail count.
"""

import argparse
import json
import os
import sys
import tempfile
import time
import traceback

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 20  # seconds for any one thing to show up
PASSWORD = "browser-pass-1"
DELETED = "[deleted]"  # the name a deleted account reads as to everyone else
ERASED = "message deleted"  # the page's placeholder for a message whose sender deleted the account


def browser(width, height, profile, downloads):
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", f"--window-size={width},{height}",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": downloads,
                                              "download.prompt_for_download": False,
                                              "download.directory_upgrade": True})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    # Headless Chromium may ignore the profile's download preference: allow and direct downloads here too.
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
    return driver


class Page:
    """One user's tab, addressed by the page's data-testid attributes."""

    def __init__(self, driver, url, name, downloads):
        self.d, self.url, self.name, self.downloads = driver, url, name, downloads

    def one(self, testid):
        return self.d.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')

    def text(self, testid):
        """textContent, which (unlike .text) does not depend on the element being shown."""
        return self.one(testid).get_attribute("textContent").strip()

    def all(self, selector):
        return self.d.find_elements(By.CSS_SELECTOR, selector)

    def wait(self, what, condition, timeout=WAIT):
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.2,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(lambda _: condition())
        except Exception as error:
            raise AssertionError(f"{self.name}: {what} (not within {timeout} s)") from error

    def visible(self, testid):
        return self.d.execute_script(
            # Laid out at all (offsetParent would be null for the fixed-position modal dialog too).
            "const e = document.querySelector(arguments[0]); return !!e && e.getClientRects().length > 0;",
            f'[data-testid="{testid}"]')

    def type_into(self, testid, text):
        field = self.one(testid)
        field.clear()
        field.send_keys(text)

    def sign_up(self):
        self.d.get(self.url)
        self.wait("the login form", lambda: self.visible("auth-form"))
        self.type_into("auth-username", self.name)
        self.type_into("auth-password", PASSWORD)
        self.one("signup-button").click()
        self.wait("the chat view after sign-up", lambda: self.visible("chat-view"))
        self.wait("my name in the header", lambda: self.text("me-name") == self.name)
        self.wait("a live socket", lambda: self.one("connection-status").get_attribute("data-state") == "open")

    def sees_online(self, other):
        self.wait(f"{other} in the online list",
                  lambda: self.all(f'[data-testid="online-user"][data-username="{other}"]'), timeout=30)

    def messages(self):
        # One script call reads the list at once: the page re-renders it, so element handles go stale.
        rows = self.d.execute_script("""
            return Array.from(document.querySelectorAll('[data-testid="message"]'),
              (m) => [m.dataset.sender, m.querySelector('.text').textContent, m.dataset.state]);""")
        return [tuple(row) for row in rows]

    def erased_flags(self):
        """(sender, data-erased) of every message shown."""
        rows = self.d.execute_script("""
            return Array.from(document.querySelectorAll('[data-testid="message"]'), (m) => [m.dataset.sender, m.dataset.erased]);""")
        return [tuple(row) for row in rows]

    def session_stored(self):
        return self.d.execute_script("return sessionStorage.getItem('chat-es.session')") is not None

    def account_action(self, testid):
        """Opens the header's Account menu and picks an item."""
        if not self.d.execute_script("return document.querySelector('[data-testid=\"account-menu\"]').open"):
            self.one("account-menu-button").click()
        self.wait(f"{testid} in the account menu", lambda: self.visible(testid))
        self.one(testid).click()

    def send(self, text):
        self.type_into("message-input", text)
        self.one("send-button").click()
        self.wait(f"'{text}' acknowledged", lambda: (self.name, text, "sent") in self.messages())

    def shows(self, sender, text, timeout=WAIT):
        self.wait(f"'{text}' from {sender}", lambda: (sender, text, "sent") in self.messages(), timeout)

    def number(self, attribute):
        return int(self.d.execute_script(f"return document.body.dataset.{attribute} || '0'"))

    @staticmethod
    def expected(message):
        # The wrong-password steps' 401 (login) and 403 (account deletion) are logged by Chromium
        # as failed loads; they are the point of those steps.
        return ("/api/login/ - Failed to load resource: the server responded with a status of 401" in message
                or "/api/account/delete/ - Failed to load resource: the server responded with a status of 403" in message)

    def console_problems(self, steps=()):
        """Severe console entries (CSP violations, failed loads, uncaught errors), each with the
        page and the step that was running when it was logged."""
        def during(stamp):
            names = [name for name, started in steps if started <= stamp]
            return names[-1] if names else "?"
        try:
            return [f"{self.name} during '{during(e.get('timestamp', 0))}': {e['message']}"
                    for e in self.d.get_log("browser") if e.get("level") == "SEVERE" and not self.expected(e["message"])]
        except WebDriverException:
            return []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--access-lifetime", type=int, default=20)
    args = parser.parse_args()
    os.makedirs(args.artifacts, exist_ok=True)

    passed, failed, skipped = [], [], []
    profiles = tempfile.TemporaryDirectory(prefix="chat-es-chromium-")
    drivers = []
    try:
        downloads = {name: os.path.join(profiles.name, f"{name}-downloads") for name in ("a", "b")}
        for folder in downloads.values():
            os.makedirs(folder)
        drivers.append(browser(1280, 800, os.path.join(profiles.name, "a"), downloads["a"]))
        drivers.append(browser(420, 860, os.path.join(profiles.name, "b"), downloads["b"]))
        alice = Page(drivers[0], args.url, "alice", downloads["a"])
        bob = Page(drivers[1], args.url, "bob", downloads["b"])
        start = time.monotonic()

        started = []  # (step, wall-clock ms when it started), to place console entries

        def step(name, action):
            if failed:
                skipped.append(name)
                return
            started.append((name, time.time() * 1000))
            try:
                action()
                passed.append(name)
                print(f"  ok    {name}", flush=True)
            except Exception as error:  # report and stop: later steps build on this one
                failed.append(name)
                print(f"  FAIL  {name}: {error}", flush=True)
                traceback.print_exc(limit=3)

        def chat_opens():
            alice.all('[data-testid="online-user"][data-username="bob"] button')[0].click()
            alice.wait("the chat with bob", lambda: alice.text("chat-peer") == "bob")

        def bob_opens_conversation():
            bob.wait("alice's conversation in the list",
                     lambda: bob.all('[data-testid="conversation"][data-username="alice"]'))
            bob.all('[data-testid="conversation"][data-username="alice"] button')[0].click()
            bob.wait("the chat with alice", lambda: bob.visible("message-list") and bob.text("chat-peer") == "alice")
            bob.shows("alice", "Hello Bob, this is Alice")

        def tokens_refresh():
            # Access tokens live args.access_lifetime seconds: the page must rotate them before expiry
            # and reconnect its socket with the new one.
            deadline = max(5, args.access_lifetime * 1.5)
            for page in (alice, bob):
                page.wait("a token refresh", lambda p=page: p.number("tokenRefreshes") >= 1, timeout=deadline)
                page.wait("a reconnected socket", lambda p=page: p.number("socketConnects") >= 2
                          and p.one("connection-status").get_attribute("data-state") == "open")

        def history_after_reload():
            alice.d.refresh()
            alice.wait("the chat view after reload", lambda: alice.visible("chat-view"))
            alice.wait("the reopened chat", lambda: alice.text("chat-peer") == "bob")
            expected = [("alice", "Hello Bob, this is Alice"), ("bob", "Hi Alice! Bob here."),
                        ("alice", "Live both ways: café ✓"), ("bob", "After the token refresh"),
                        ("alice", "Still live after the refresh"), ("alice", "From a duplicated tab")]
            alice.wait("the whole history in order",
                       lambda: [(s, t) for s, t, _ in alice.messages()] == expected)

        def duplicated_tab():
            # A duplicated tab starts with a copy of sessionStorage: two pages, one session, both
            # timed to rotate at the same moment. Spending the same refresh token twice would end
            # the session (reuse detection); the pages must rotate one at a time and share pairs.
            original = alice.d.current_window_handle
            before = alice.number("tokenRefreshes")
            alice.d.execute_script("window.open(location.href, '_blank')")
            alice.d.switch_to.window([h for h in alice.d.window_handles if h != original][0])
            try:
                alice.wait("the duplicate's chat view", lambda: alice.visible("chat-view"))
                deadline = max(5, args.access_lifetime * 2)
                alice.wait("a rotation seen by the duplicate", lambda: alice.number("tokenRefreshes") >= 1, timeout=deadline)
                alice.d.switch_to.window(original)
                alice.wait("a rotation seen by the original", lambda: alice.number("tokenRefreshes") > before, timeout=deadline)
                for handle in (original, [h for h in alice.d.window_handles if h != original][0]):
                    alice.d.switch_to.window(handle)
                    alice.wait("still logged in and live", lambda: alice.visible("chat-view")
                               and alice.one("connection-status").get_attribute("data-state") == "open")
                alice.send("From a duplicated tab")
                bob.shows("alice", "From a duplicated tab")
            finally:
                if alice.d.current_window_handle != original:
                    alice.d.close()
                alice.d.switch_to.window(original)

        def logout():
            alice.one("logout-button").click()
            alice.wait("the login form after logout", lambda: alice.visible("auth-form"))
            assert alice.d.execute_script("return sessionStorage.getItem('chat-es.session')") is None, "tokens kept"
            alice.d.refresh()
            alice.wait("still logged out after reload", lambda: alice.visible("auth-form"))

        def wrong_password_then_login():
            alice.type_into("auth-username", "alice")
            alice.type_into("auth-password", "not-the-password")
            alice.one("login-button").click()
            alice.wait("the contract's error detail",
                       lambda: "No active account" in alice.text("auth-error"))
            alice.type_into("auth-password", PASSWORD)
            alice.one("login-button").click()
            alice.wait("the chat view", lambda: alice.visible("chat-view"))
            alice.wait("the conversation with bob", lambda: alice.all('[data-testid="conversation"][data-username="bob"]'))

        step("alice signs up and connects", alice.sign_up)
        step("bob signs up and connects", bob.sign_up)
        step("bob sees alice online", lambda: bob.sees_online("alice"))
        step("alice sees bob online", lambda: alice.sees_online("bob"))
        step("alice starts a chat with bob", chat_opens)
        step("alice sends; the socket acknowledges", lambda: alice.send("Hello Bob, this is Alice"))
        step("bob gets the chat and the message live", bob_opens_conversation)
        step("bob replies; alice sees it live", lambda: (bob.send("Hi Alice! Bob here."), alice.shows("bob", "Hi Alice! Bob here.")))
        step("alice writes again; bob sees it live", lambda: (alice.send("Live both ways: café ✓"), bob.shows("alice", "Live both ways: café ✓")))
        step("both pages refresh their tokens and reconnect", tokens_refresh)
        step("messages still flow after the refresh", lambda: (
            bob.send("After the token refresh"), alice.shows("bob", "After the token refresh"),
            alice.send("Still live after the refresh"), bob.shows("alice", "Still live after the refresh")))
        step("screenshots", lambda: (drivers[0].save_screenshot(os.path.join(args.artifacts, "web-chat-a.png")),
                                     drivers[1].save_screenshot(os.path.join(args.artifacts, "web-chat-b.png"))))
        step("a duplicated tab shares the session across rotations", duplicated_tab)
        step("history shows after a reload", history_after_reload)
        step("logout ends the session", logout)
        step("a wrong password shows the error; logging in again works", wrong_password_then_login)

        alice_said = ["Hello Bob, this is Alice", "Live both ways: café ✓", "Still live after the refresh",
                      "From a duplicated tab", "Still here after a wrong password"]
        bob_said = ["Hi Alice! Bob here.", "After the token refresh"]

        def download_my_data():
            # "Download my data" fetches the export with the bearer token and saves it through a
            # blob URL under the name the server's Content-Disposition gives.
            path = os.path.join(alice.downloads, "chat-es-export-alice.json")
            alice.account_action("export-button")

            def saved():
                try:
                    with open(path, encoding="utf-8") as file:
                        return json.load(file)
                except (OSError, ValueError):  # not there yet, or still being written
                    return None
            export = alice.wait("the downloaded export " + path, saved)
            assert not [n for n in os.listdir(alice.downloads) if n.endswith(".crdownload")], "a download left unfinished"
            assert export["user"]["username"] == "alice", export["user"]
            assert any(s["how"] == "logout" for s in export["sessions"]), f"the logged-out session is missing: {export['sessions']}"
            assert any(s["ended"] is None for s in export["sessions"]), "the open session is missing"
            chats = [c for c in export["conversations"] if c["with"] == "bob"]
            assert len(chats) == 1, f"conversations: {[c['with'] for c in export['conversations']]}"
            held = [(m["sender"], m["message"]) for m in chats[0]["messages"]]
            for text in alice_said[:-1]:  # the last one is sent after the download
                assert ("alice", text) in held, f"{text!r} is not in the export: {held}"
            for text in bob_said:
                assert ("bob", text) in held, f"{text!r} is not in the export: {held}"
            assert not any(m["erased"] for m in chats[0]["messages"])
            alice.wait("the saved notice", lambda: "chat-es-export-alice.json" in alice.text("notice"))

        def delete_with_wrong_password():
            alice.account_action("delete-button")
            alice.wait("the delete dialog", lambda: alice.visible("delete-dialog"))
            alice.type_into("delete-password", "not-the-password")
            alice.one("delete-confirm").click()
            alice.one("delete-submit").click()
            alice.wait("the wrong-password error", lambda: "wrong password" in alice.text("delete-error").lower())
            assert alice.session_stored() and alice.visible("chat-view"), "a wrong password signed the page out"
            alice.one("delete-cancel").click()
            alice.wait("the dialog closed", lambda: not alice.visible("delete-dialog"))
            # Nothing was deleted: the session still works and Bob still reads Alice's words.
            alice.all('[data-testid="conversation"][data-username="bob"] button')[0].click()
            alice.wait("the chat with bob", lambda: alice.text("chat-peer") == "bob")
            alice.wait("a live socket", lambda: alice.one("connection-status").get_attribute("data-state") == "open")
            alice.send(alice_said[-1])
            bob.shows("alice", alice_said[-1])

        def delete_account():
            alice.account_action("delete-button")
            alice.wait("the delete dialog", lambda: alice.visible("delete-dialog"))
            alice.type_into("delete-password", PASSWORD)
            alice.one("delete-confirm").click()
            alice.one("delete-submit").click()
            alice.wait("the sign-in view after deletion", lambda: alice.visible("auth-form"))
            assert not alice.visible("delete-dialog"), "the dialog stayed open"
            assert not alice.session_stored(), "tokens kept"
            alice.wait("the deletion notice", lambda: "deleted" in alice.text("notice").lower())
            assert alice.one("connection-status").get_attribute("data-state") == "closed", "the socket stayed open"

        def deleted_cannot_log_in():
            alice.type_into("auth-username", "alice")
            alice.type_into("auth-password", PASSWORD)
            alice.one("login-button").click()
            alice.wait("login refused", lambda: "No active account" in alice.text("auth-error"))
            assert not alice.visible("chat-view") and not alice.session_stored()

        def bob_sees_erasure(after):
            # Bob still has the chat open: it now shows "[deleted]", a placeholder for each of her
            # messages, his own messages as they were, and nothing of what she wrote.
            bob.wait(f"the peer named {DELETED} {after}", lambda: bob.text("chat-peer") == DELETED)
            # The exchange in order: alice, bob, alice, bob, alice, alice (duplicate tab), alice.
            expected = [(DELETED, ERASED), ("bob", bob_said[0]), (DELETED, ERASED), ("bob", bob_said[1]),
                        (DELETED, ERASED), (DELETED, ERASED), (DELETED, ERASED)]
            bob.wait(f"erased placeholders in place of alice's messages {after}",
                     lambda: [(s, t) for s, t, _ in bob.messages()] == expected)
            assert all(flag == ("true" if sender == DELETED else "false") for sender, flag in bob.erased_flags())
            page = bob.d.execute_script("return document.body.textContent")
            for text in alice_said:
                assert text not in page, f"{text!r} is still on bob's page {after}"
            assert bob.all(f'[data-testid="conversation"][data-username="{DELETED}"]'), "the conversation list names alice"
            assert not bob.all('[data-username="alice"]'), "alice is still listed"
            assert bob.visible("peer-gone") and not bob.visible("composer"), "bob can still write to a deleted account"

        def bob_sees_erasure_after_reload():
            bob.d.refresh()
            bob.wait("the chat view after reload", lambda: bob.visible("chat-view"))
            bob_sees_erasure("after a reload")

        step("alice downloads her data: a JSON file with her messages", download_my_data)
        step("a wrong password in the delete dialog shows the error and deletes nothing", delete_with_wrong_password)
        step("the right password deletes the account and signs the page out", delete_account)
        step("the deleted account cannot log in", deleted_cannot_log_in)
        step("bob's open chat shows [deleted] and erased messages live", lambda: bob_sees_erasure("live"))
        step("bob's page still shows them so after a reload", bob_sees_erasure_after_reload)
        step("screenshot of the erasure", lambda: drivers[1].save_screenshot(os.path.join(args.artifacts, "web-chat-b-erased.png")))

        def console_clean():
            problems = alice.console_problems(started) + bob.console_problems(started)
            assert not problems, f"console errors: {problems}"
        step("no console errors (CSP, loads, scripts)", console_clean)
        print(f"web-test: took {time.monotonic() - start:.1f} s", flush=True)
    except Exception as error:  # the browsers could not start at all
        failed.append(f"browser start: {error}")
        traceback.print_exc()
    finally:
        if failed and drivers:
            for driver, name in zip(drivers, ("a", "b")):
                try:
                    driver.save_screenshot(os.path.join(args.artifacts, f"web-chat-{name}-failure.png"))
                except WebDriverException:
                    pass
        for driver in drivers:
            try:
                driver.quit()
            except WebDriverException:
                pass
        profiles.cleanup()

    print(f"web-test: {len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
