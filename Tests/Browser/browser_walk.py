"""What the browser walks share: headless Chromium profiles and the checks' tally.

Debian packages: chromium, chromium-driver, python3-selenium (run with
/usr/bin/python3).
"""
import os
import sys
import tempfile

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
except ImportError:
    print("selenium is missing: apt-get install python3-selenium (and run with /usr/bin/python3)")
    sys.exit(2)


class BrowserWalk:
    """Counts checks; opens Chromium profiles of its own; screenshots go to artifacts."""

    def __init__(self, artifacts, insecure=False, window="900,760"):
        self.artifacts = artifacts
        self.insecure = insecure
        self.window = window
        self.passed = 0
        self.failed = []
        self.step = 0
        os.makedirs(artifacts, exist_ok=True)

    def check(self, condition, what):
        if condition:
            self.passed += 1
        else:
            self.failed.append(what)
            print("FAILED: " + what, flush=True)

    def browser(self):
        """A new headless Chromium with a profile of its own (its own cookies)."""
        for path, package in [("/usr/bin/chromium", "chromium"), ("/usr/bin/chromedriver", "chromium-driver")]:
            if not os.path.exists(path):
                print(f"{path} is missing: apt-get install {package}")
                sys.exit(2)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        profile = tempfile.mkdtemp(prefix="gimlet-chromium-")
        for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--no-first-run", "--window-size=" + self.window, "--user-data-dir=" + profile]:
            options.add_argument(argument)
        if self.insecure:
            options.add_argument("--ignore-certificate-errors")
            options.accept_insecure_certs = True
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.set_page_load_timeout(30)
        return driver

    def shot(self, driver, name):
        self.step += 1
        driver.save_screenshot(os.path.join(self.artifacts, f"{self.step:02d}-{name}.png"))

    def summary(self):
        """Prints the closing line; the exit status (0 when every check passed)."""
        print(f"{self.passed} passed, {len(self.failed)} failed", flush=True)
        return 0 if not self.failed else 1
