"""Two users chat through the web client in headless Chromium (Selenium + Debian's chromedriver).

Run by web-test/run.sh against a running server. Alice uses a desktop-sized window, Bob a
phone-sized one. Steps stop at the first failure; screenshots are saved either way, and the
last line is the pass/fail count.
"""

import argparse
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


def browser(width, height, profile):
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", f"--window-size={width},{height}",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


class Page:
    """One user's tab, addressed by the page's data-testid attributes."""

    def __init__(self, driver, url, name):
        self.d, self.url, self.name = driver, url, name

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
            "const e = document.querySelector(arguments[0]); return !!e && e.offsetParent !== null;",
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
        # The wrong-password step's 401 is logged by Chromium as a failed load; it is the point of that step.
        return "/api/login/ - Failed to load resource: the server responded with a status of 401" in message

    def console_problems(self):
        """Severe console entries: CSP violations, failed loads, uncaught errors."""
        try:
            return [e["message"] for e in self.d.get_log("browser") if e.get("level") == "SEVERE"
                    and not self.expected(e["message"])]
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
        drivers.append(browser(1280, 800, os.path.join(profiles.name, "a")))
        drivers.append(browser(420, 860, os.path.join(profiles.name, "b")))
        alice = Page(drivers[0], args.url, "alice")
        bob = Page(drivers[1], args.url, "bob")
        start = time.monotonic()

        def step(name, action):
            if failed:
                skipped.append(name)
                return
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

        def console_clean():
            problems = alice.console_problems() + bob.console_problems()
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
