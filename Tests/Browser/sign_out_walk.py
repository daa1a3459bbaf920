#!/usr/bin/python3
"""Signs out everywhere else with two headless Chromiums on session-lab.

A laptop and a phone (two browser profiles) sign in as one user; the phone
keeps a client-side key. The laptop lists the user's sessions, then signs
out everywhere else. The phone's next page finds its session gone, the
client-side key too (with --check next-server-access: its first page that
reads a server-side key), and the browser no longer holds its cookies; the
laptop stays signed in. Screenshots of each step go to --artifacts.

Debian packages: chromium, chromium-driver, python3-selenium (run with
/usr/bin/python3). Exits 0 when every check passed; prints one line per
failed check and a closing 'N passed, N failed'.
"""
import argparse
import sys

from browser_walk import BrowserWalk
from selenium.webdriver.common.by import By


class Walk(BrowserWalk):
    def __init__(self, base, artifacts, check):
        super().__init__(artifacts, window="900,500")
        self.base = base.rstrip("/")
        self.revocation_check = check

    def page(self, driver, name, path):
        """The text of the page at path, as the browser shows it."""
        driver.get(self.base + path)
        self.shot(driver, name)
        return driver.find_element(By.TAG_NAME, "body").text.strip()

    @staticmethod
    def cookies(driver):
        return {cookie["name"]: cookie["value"] for cookie in driver.get_cookies()}

    def run(self):
        laptop, phone = self.browser(), self.browser()
        try:
            self.check(self.page(laptop, "laptop-login", "/login/42") == "ok", "the laptop signs in")
            self.check(self.page(phone, "phone-login", "/login/42") == "ok", "the phone signs in")
            self.check(self.page(phone, "phone-theme", "/set/theme/dark?clientside=1") == "ok", "the phone keeps a client-side key")
            self.check(self.page(phone, "phone-theme-read", "/get/theme") == "dark", "and reads it")
            self.check(self.page(phone, "phone-cart", "/set/cart/ring?clientside=0") == "ok", "and a server-side one")
            held = self.cookies(phone)
            self.check("gimlet-p" in held and "gimlet-n" in held, f"the phone holds both cookies: {sorted(held)}")

            listed = self.page(laptop, "laptop-sessions", "/sessions/42").splitlines()
            self.check(len(listed) == 2, f"the laptop lists two sessions: {listed}")
            self.check(all("HeadlessChrome" in line for line in listed), f"each with its user agent: {listed}")
            self.check(sum(line.startswith("*") for line in listed) == 1, f"the laptop's own marked: {listed}")

            self.check(self.page(laptop, "laptop-logout-elsewhere", "/logout-everywhere/42?keep_current=1") == "1",
                       "signing out everywhere else revokes one session")
            if self.revocation_check == "next-server-access":
                self.check(self.page(phone, "phone-unchecked", "/get/theme") == "dark",
                           "next-server-access: a client-side read is not checked")
                self.check(self.page(phone, "phone-server-read", "/get/cart") != "ring",
                           "next-server-access: a server-side read finds the session revoked")
            after = self.page(phone, "phone-after", "/get/theme")
            self.check(after != "dark", f"the phone's client-side key is gone: {after!r}")
            left = self.cookies(phone)
            self.check(held.get("gimlet-p") != left.get("gimlet-p") and "gimlet-n" not in left,
                       f"the phone's browser dropped its session cookies: {sorted(left)}")
            self.check(self.page(phone, "phone-whoami", "/whoami") != "42", "the phone is signed out")
            self.check(self.page(laptop, "laptop-whoami", "/whoami") == "42", "the laptop is still signed in")
            self.check(len(self.page(laptop, "laptop-sessions-after", "/sessions/42").splitlines()) == 1,
                       "the laptop lists itself only")
        finally:
            laptop.quit()
            phone.quit()
        return self.summary()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="session-lab behind the web server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--artifacts", required=True, help="where the screenshots go")
    parser.add_argument("--check", default="every-request", choices=["every-request", "next-server-access"],
                        help="the app's GIMLET_REVOCATION_CHECK")
    arguments = parser.parse_args()
    sys.exit(Walk(arguments.base, arguments.artifacts, arguments.check).run())


if __name__ == "__main__":
    main()
