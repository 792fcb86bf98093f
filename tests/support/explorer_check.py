#!/usr/bin/env python3
"""The explorer page of `postmark serve` in headless Chromium (Selenium).

    explorer_check.py URL TRACES.json ARTIFACTS_DIR

Loads GET /, searches each stamp of the traces file (the vectors' expected
`trace --json` answers) with the page's search box and checks that the
owners the timeline shows, in order, are the trace's owners; follows the
current owner's link to the holdings page and checks the stamp is listed
there. Screenshots of the pages at desktop and phone widths are written to
ARTIFACTS_DIR (explorer*.png). Prints one line per failed check and a last
line "N passed, N failed"; exit 1 on any failure.
"""
import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tally import check, summary  # noqa: E402

url, traces_path, artifacts = sys.argv[1:4]
os.makedirs(artifacts, exist_ok=True)
traces = [t for t in json.load(open(traces_path)) if "events" in t]
# The stamp with the longest history first: it shows the order best.
traces.sort(key=lambda t: -len(t["events"]))



opts = webdriver.ChromeOptions()
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars",
          "--window-size=1200,1000"):
    opts.add_argument(a)
opts.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
wait = WebDriverWait(driver, 20)


def shot(name, width):
    """A full-page screenshot at this window width."""
    driver.set_window_size(width, 800)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(max(height, 600), 6000))
    driver.save_screenshot(os.path.join(artifacts, name))
    # Nothing may stick out sideways on a phone: one column.
    overflow = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    check(overflow <= 0, "%s: the page is %dpx wider than the %dpx window" % (name, overflow, width))


try:
    driver.get(url + "/")
    check("Postmark explorer" in driver.title or driver.find_elements(By.TAG_NAME, "h1"),
          "GET / has no title")
    text = driver.find_element(By.TAG_NAME, "main").text
    check("Recent blocks" in text and "Rejects by reason" in text and "Throughput" in text,
          "GET / lacks its sections")
    check(len(driver.find_elements(By.CSS_SELECTOR, "svg rect.bar")) > 0, "GET / has no chart")
    shot("explorer.png", 1200)
    shot("explorer-phone.png", 390)
    driver.set_window_size(1200, 1000)

    for i, t in enumerate(traces):
        driver.get(url + "/")
        box = driver.find_element(By.CSS_SELECTOR, "input[name=id]")
        box.send_keys(t["stamp"])
        box.submit()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "ol.timeline")))
        check(driver.current_url.endswith("/explorer/stamp?id=" + t["stamp"].replace(":", "%3A")),
              "search went to %s" % driver.current_url)
        shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "li.event .owner")]
        want = [e["owner"] for e in t["events"]]
        check(shown == want, "stamp %s: owners shown %s, trace says %s" % (t["stamp"], shown, want))
        if i == 0:
            shot("explorer-stamp.png", 1200)
            shot("explorer-stamp-phone.png", 390)
            driver.set_window_size(1200, 1000)
        # The current owner's holdings, by following its link.
        driver.find_elements(By.CSS_SELECTOR, "li.event .owner a")[-1].click()
        wait.until(EC.url_contains("/explorer/holdings?key="))
        check(driver.current_url.endswith("key=" + t["owner"]),
              "the owner's link went to %s" % driver.current_url)
        stamps = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "main td a")]
        check(t["stamp"] in stamps, "holdings of %s lack %s (%s)" % (t["owner"], t["stamp"], stamps))
        if i == 0:
            shot("explorer-holdings-phone.png", 390)
            driver.set_window_size(1200, 1000)

    # A bad stamp in the box: a message page, not a crash.
    driver.get(url + "/")
    box = driver.find_element(By.CSS_SELECTOR, "input[name=id]")
    box.send_keys("not-a-stamp")
    box.submit()
    wait.until(EC.url_contains("/explorer/stamp"))
    check("Bad stamp" in driver.find_element(By.TAG_NAME, "main").text, "a bad stamp: no message")
finally:
    driver.quit()

sys.exit(summary())
