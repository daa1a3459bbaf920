#!/usr/bin/python3
"""Walks examples/notes in headless Chromium, as a person would.

Make an account with a password, add notes, see one appear live in a
second window, attach a file through the file input and download it, see
each flash message once,
reload, have a wrong and a missing CSRF token refused, sign out and find the
notes kept, have a wrong password refused, sign in again; in a second
browser profile see nothing of the first, then sign in to the same account,
see its notes, list both sessions and sign the first profile out from the
second ("sign out everywhere else"); have the sixth wrong password refused
by the throttle. At each step read the cookies the browser holds and check
them against the README (names, HttpOnly, Secure over HTTPS only,
SameSite=Lax, a 400-day permanent cookie, a browser-session cookie without
expiry). Screenshots of each step go to --artifacts.

Debian packages: chromium, chromium-driver, python3-selenium (run with
/usr/bin/python3). Exits 0 when every check passed; prints one line per
failed check and a closing 'N passed, N failed'.
"""
import argparse
import os
import sys
import tempfile
import time

from browser_walk import BrowserWalk
from selenium.webdriver.common.by import By
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

PERMANENT_MAX_AGE = 400 * 86400
NAME = "Ada <Lovelace>"
PASSWORD = "correct horse battery"
NOTES = ["first note", "second <b>note</b>"]


class Walk(BrowserWalk):
    def __init__(self, base, artifacts, insecure, cookie_prefix=""):
        super().__init__(artifacts, insecure=insecure)
        self.base = base.rstrip("/")
        self.secure = base.startswith("https://")
        # The app's cookie names (__Host-gimlet-p with --cookie-prefix __Host-).
        self.permanent = cookie_prefix + "gimlet-p"
        self.browser_session = cookie_prefix + "gimlet-n"

    @staticmethod
    def texts(driver, selector):
        return [element.text for element in driver.find_elements(By.CSS_SELECTOR, selector)]

    def cookies(self, driver):
        return {cookie["name"]: cookie for cookie in driver.get_cookies()}

    def check_cookie(self, driver, name, permanent, where):
        cookie = self.cookies(driver).get(name)
        self.check(cookie is not None, f"{where}: the browser holds {name}")
        if cookie is None:
            return
        self.check(cookie.get("httpOnly") is True, f"{where}: {name} is HttpOnly")
        self.check(cookie.get("secure") is self.secure, f"{where}: {name} Secure={self.secure}, got {cookie.get('secure')}")
        self.check(cookie.get("sameSite") == "Lax", f"{where}: {name} SameSite=Lax, got {cookie.get('sameSite')}")
        self.check(cookie.get("path") == "/", f"{where}: {name} Path=/, got {cookie.get('path')}")
        if permanent:
            remaining = cookie.get("expiry", 0) - time.time()
            self.check(abs(remaining - PERMANENT_MAX_AGE) < 86400,
                       f"{where}: {name} lasts 400 days, got {remaining / 86400:.1f} days")
        else:
            self.check("expiry" not in cookie, f"{where}: {name} is a browser-session cookie (no expiry), got {cookie.get('expiry')}")

    def submit(self, driver, form_selector, fields=None):
        """Fills `fields` (name: value) and submits the form, then waits for
        the next page (after the redirect) to have replaced this one and
        finished loading."""
        driver.execute_script("window.gimletWalkOldPage = true")
        form = driver.find_element(By.CSS_SELECTOR, form_selector)
        for field, value in (fields or {}).items():
            box = form.find_element(By.NAME, field)
            box.clear()
            box.send_keys(value)
        form.find_element(By.TAG_NAME, "button").click()
        # A new document lacks the old one's marker. Chromium answers some
        # commands with errors while it swaps documents: those are retried.
        WebDriverWait(driver, 30, ignored_exceptions=[WebDriverException]).until(lambda d: d.execute_script(
            "return window.gimletWalkOldPage !== true && document.readyState === 'complete'"))

    def run(self):
        driver = self.browser()
        try:
            self.walk(driver)
        finally:
            driver.quit()
        print(f"browser walk on {self.base}: {self.passed} passed, {len(self.failed)} failed", flush=True)
        return 0 if not self.failed else 1

    def walk(self, driver):
        # A visitor: the sign-in and sign-up forms, no note form.
        driver.get(self.base + "/")
        self.check(driver.title == "Notes", f"the page is titled Notes, got {driver.title!r}")
        self.check(len(driver.find_elements(By.CSS_SELECTOR, "form.signin")) == 1, "a visitor sees the sign-in form")
        self.check(len(driver.find_elements(By.CSS_SELECTOR, "form.signup")) == 1, "a visitor sees the sign-up form")
        self.check(not driver.find_elements(By.CSS_SELECTOR, "form.add"), "a visitor sees no note form")
        styled = driver.execute_script(
            "return getComputedStyle(document.querySelector('h1')).color")
        self.check(styled not in ("rgb(0, 0, 0)", ""), f"the stylesheet is applied (h1 colour {styled})")
        self.check_cookie(driver, self.browser_session, False, "visitor (CSRF token in the browser-session channel)")
        self.check(self.permanent not in self.cookies(driver), "a visitor has no permanent cookie yet")
        self.shot(driver, "visitor")

        # Sign up: one flash, a permanent cookie.
        self.submit(driver, "form.signup", {"name": NAME, "password": PASSWORD})
        self.check(self.texts(driver, ".flash") == [f"Welcome, {NAME}. Your account is ready."],
                   f"the welcome flash, escaped: {self.texts(driver, '.flash')}")
        self.check(NAME in driver.find_element(By.CSS_SELECTOR, "form.signout").text, "signed in as Ada")
        self.check_cookie(driver, self.permanent, True, "signed in")
        self.check_cookie(driver, self.browser_session, False, "signed in")
        self.shot(driver, "signed-up")
        driver.refresh()
        self.check(self.texts(driver, ".flash") == [], "the flash is shown once, gone on reload")

        # Notes.
        for note in NOTES:
            self.submit(driver, "form.add", {"text": note})
            self.check(self.texts(driver, ".flash") == ["Noted."], f"'Noted.' after adding {note!r}")
        self.check(self.texts(driver, "ul.notes li") == NOTES, f"both notes listed, escaped: {self.texts(driver, 'ul.notes li')}")
        self.shot(driver, "notes")
        driver.refresh()
        self.check(self.texts(driver, ".flash") == [], "no flash after reload")
        self.check(self.texts(driver, "ul.notes li") == NOTES, "the notes survive a reload")

        # Live updates: a second window of the same account gets a note added
        # in the first without a reload (server-sent events, /notes/live).
        first_window = driver.current_window_handle
        driver.switch_to.new_window("tab")
        driver.get(self.base + "/")
        driver.execute_script("window.gimletWalkNotReloaded = true")
        second_window = driver.current_window_handle
        driver.switch_to.window(first_window)
        self.submit(driver, "form.add", {"text": "live <note>"})
        driver.switch_to.window(second_window)
        try:
            WebDriverWait(driver, 15, ignored_exceptions=[WebDriverException]).until(
                lambda d: "live <note>" in self.texts(d, "ul.notes li"))
        except Exception:
            pass
        self.check(self.texts(driver, "ul.notes li") == NOTES + ["live <note>"],
                   f"the other window got the note live: {self.texts(driver, 'ul.notes li')}")
        self.check(driver.execute_script("return window.gimletWalkNotReloaded === true"), "without a reload")
        self.shot(driver, "live-update")
        driver.close()
        driver.switch_to.window(first_window)
        NOTES.append("live <note>")

        # An attachment through the file input (a multipart form with its CSRF
        # token), listed, and downloaded through the link (the web server's
        # offload sends it).
        attachment = os.path.join(tempfile.mkdtemp(prefix="walk-"), "report 1.txt")
        content = "attached by Chromium, line {}\n"
        content = "".join(content.format(number) for number in range(2000))
        with open(attachment, "w") as f:
            f.write(content)
        driver.execute_script("window.gimletWalkOldPage = true")
        form = driver.find_element(By.CSS_SELECTOR, "form.attach")
        form.find_element(By.NAME, "file").send_keys(attachment)
        form.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(driver, 30, ignored_exceptions=[WebDriverException]).until(lambda d: d.execute_script(
            "return window.gimletWalkOldPage !== true && document.readyState === 'complete'"))
        self.check(self.texts(driver, ".flash") == ["Attached report 1.txt."], f"the attach flash: {self.texts(driver, '.flash')}")
        links = driver.find_elements(By.CSS_SELECTOR, "ul.attachments li a")
        self.check([link.text for link in links] == ["report 1.txt"], f"the attachment listed: {[link.text for link in links]}")
        self.shot(driver, "attached")
        attachment_url = links[0].get_attribute("href") if links else self.base + "/attachments/none"
        fetched = driver.execute_async_script("""
            const done = arguments[arguments.length - 1];
            fetch(arguments[0]).then(r => r.text().then(t => done([r.status, t, r.headers.get('content-disposition') || ''])))
                .catch(e => done([0, String(e), '']));
        """, attachment_url)
        self.check(fetched[0] == 200 and fetched[1] == content,
                   f"the attachment downloads whole: status {fetched[0]}, {len(fetched[1])} of {len(content)} characters")
        self.check(fetched[2].startswith('attachment; filename="report 1.txt"'), f"as a download: {fetched[2]!r}")

        # A wrong and a missing CSRF token are refused with an HTML error page.
        driver.execute_script(
            "document.querySelector('form.add input[name=csrf_token]').value = '0'.repeat(40)")
        self.submit(driver, "form.add", {"text": "forged with a wrong token"})
        self.check(driver.title == "403 Forbidden", f"a wrong token: 403 page, got {driver.title!r}")
        self.check("CSRF" in driver.page_source, "the 403 page says why")
        self.shot(driver, "wrong-csrf-token")
        driver.get(self.base + "/")
        driver.execute_script("document.querySelector('form.add input[name=csrf_token]').remove()")
        self.submit(driver, "form.add", {"text": "forged with no token"})
        self.check(driver.title == "403 Forbidden", f"a missing token: 403 page, got {driver.title!r}")
        driver.get(self.base + "/")
        self.check(self.texts(driver, "ul.notes li") == NOTES, "no forged note was stored")
        signed_in_cookies = {name: cookie["value"] for name, cookie in self.cookies(driver).items()}

        # Sign out: the notes stay with the account, and the page says so.
        self.submit(driver, "form.signout")
        flash = self.texts(driver, ".flash")
        self.check(len(flash) == 1 and "notes and attachments are kept" in flash[0], f"the sign-out flash says what happened: {flash}")
        self.check(len(driver.find_elements(By.CSS_SELECTOR, "form.signin")) == 1, "signed out: the sign-in form")
        self.check(not driver.find_elements(By.CSS_SELECTOR, "ul.notes li"), "signed out: no notes shown")
        self.check(self.permanent not in self.cookies(driver), "signed out: the permanent cookie is gone")
        self.check_cookie(driver, self.browser_session, False, "signed out")
        self.check(self.cookies(driver).get(self.browser_session, {}).get("value") != signed_in_cookies.get(self.browser_session),
                   "signed out: a new browser-session cookie")
        self.shot(driver, "signed-out")

        # A wrong password is refused on the page; the right one brings the notes back.
        self.submit(driver, "form.signin", {"name": NAME, "password": PASSWORD + "!"})
        self.check(self.texts(driver, ".problem") == ["Wrong name or password."],
                   f"a wrong password: the reason on the page, got {self.texts(driver, '.problem')}")
        self.check(not driver.find_elements(By.CSS_SELECTOR, "form.signout"), "a wrong password signs nobody in")
        self.shot(driver, "wrong-password")
        self.submit(driver, "form.signin", {"name": NAME, "password": PASSWORD})
        self.check(self.texts(driver, ".flash") == [f"Welcome back, {NAME}."], f"welcome back: {self.texts(driver, '.flash')}")
        self.check(self.texts(driver, "ul.notes li") == NOTES, "the notes survived sign-out")
        first_cookies = {name: cookie["value"] for name, cookie in self.cookies(driver).items()}

        # A second profile sees nothing of the first, then signs in to the same account.
        other = self.browser()
        try:
            other.get(self.base + "/")
            self.check(len(other.find_elements(By.CSS_SELECTOR, "form.signin")) == 1, "a second profile is a visitor")
            self.check(not other.find_elements(By.CSS_SELECTOR, "ul.notes li"), "a second profile sees no notes")
            self.check("Ada" not in other.page_source, "a second profile sees nothing of Ada")
            other_fetch = other.execute_async_script("""
                const done = arguments[arguments.length - 1];
                fetch(arguments[0]).then(r => done(r.status)).catch(e => done(0));
            """, attachment_url)
            self.check(other_fetch == 404, f"a visitor's request for Ada's attachment is a 404, got {other_fetch}")
            theirs = {name: cookie["value"] for name, cookie in self.cookies(other).items()}
            self.check(all(theirs.get(name) != value for name, value in first_cookies.items()),
                       "a second profile holds other cookies")
            self.submit(other, "form.signin", {"name": NAME, "password": PASSWORD})
            self.check(self.texts(other, "ul.notes li") == NOTES, "the account's notes in the second profile")
            self.check(self.texts(other, "ul.attachments li a") == ["report 1.txt"], "and its attachment")

            # Its sessions page lists both, marks its own, and signs the other out.
            other.find_element(By.LINK_TEXT, "Where you are signed in").click()
            WebDriverWait(other, 30, ignored_exceptions=[WebDriverException]).until(
                lambda d: d.title == "Your sessions" and d.execute_script("return document.readyState") == "complete")
            listed = other.find_elements(By.CSS_SELECTOR, "ul.sessions li")
            current = other.find_elements(By.CSS_SELECTOR, "ul.sessions li.current")
            self.check(len(listed) == 2, f"the sessions page lists both profiles: {[item.text for item in listed]}")
            self.check(len(current) == 1 and "This browser" in current[0].text, "this profile's session is marked")
            self.shot(other, "sessions")
            self.submit(other, "form.others")
            self.check(self.texts(other, ".flash") == ["Signed out 1 other session."], f"{self.texts(other, '.flash')}")
            self.check(len(other.find_elements(By.CSS_SELECTOR, "ul.sessions li")) == 1, "one session left")
            self.check(not other.find_elements(By.CSS_SELECTOR, "form.others"), "nothing else to sign out")
            other.get(self.base + "/")
            self.check(self.texts(other, "ul.notes li") == NOTES, "the second profile is still signed in")
        finally:
            other.quit()

        # The first profile was signed out from the second.
        driver.refresh()
        self.check(len(driver.find_elements(By.CSS_SELECTOR, "form.signin")) == 1,
                   "signed out everywhere else: the first profile sees the sign-in form")
        self.check("Ada" not in driver.page_source, "and nothing of Ada")
        self.shot(driver, "signed-out-elsewhere")

        # Five wrong passwords, then the throttle refuses even the right one.
        for attempt in range(5):
            self.submit(driver, "form.signin", {"name": NAME, "password": f"wrong guess {attempt}"})
        self.check(self.texts(driver, ".problem") == ["Wrong name or password."], "five wrong passwords, refused one by one")
        self.submit(driver, "form.signin", {"name": NAME, "password": PASSWORD})
        problem = self.texts(driver, ".problem")
        self.check(len(problem) == 1 and "too many sign-in attempts" in problem[0], f"the sixth is throttled: {problem}")
        self.check(not driver.find_elements(By.CSS_SELECTOR, "form.signout"), "throttled: nobody signed in")
        self.shot(driver, "throttled")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the app's URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--artifacts", required=True, help="directory for screenshots")
    parser.add_argument("--insecure", action="store_true", help="accept a self-signed certificate")
    parser.add_argument("--cookie-prefix", default="", help="the prefix of the app's cookie names, e.g. __Host-")
    arguments = parser.parse_args()
    sys.exit(Walk(arguments.base, arguments.artifacts, arguments.insecure, arguments.cookie_prefix).run())


if __name__ == "__main__":
    main()
