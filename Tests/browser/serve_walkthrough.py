#!/usr/bin/env python3
"""A walk through `pipeline serve` in real headless Chromium (selenium + Debian's chromium-driver).

Usage: serve_walkthrough.py BASE_URL PASSWORD ARTIFACTS_DIR

dave (deployer) signs in and starts a staging run from the environments page; the run page shows the build
stage's log lines while the stage runs (server-sent events), then the run succeeded without a reload. dave
starts prod, which waits at its gate. carol (a viewer) opens the approval: no Approve button, and a forged
approval POST from her session is refused with 403. bob (an approver) signs in, approves with a comment, and
watches prod finish. Screenshots of the approval page and the run page are kept in ARTIFACTS_DIR.
Exits 0 when every check holds; otherwise prints what failed and exits 1.
"""
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

base, password, artifacts = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(artifacts, exist_ok=True)


def fail(message):
    print(f"FAILED: {message}")
    sys.exit(1)


def wait_for(what, check, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception:  # the page is between loads: look again
            pass
        time.sleep(0.1)
    fail(f"timed out waiting for {what}; page: {driver.current_url}\n{driver.page_source[:3000]}")


options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000"]:
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_page_load_timeout(240)  # the first run compiles the pipeline (cold in CI)


def sign_in(user):
    driver.delete_all_cookies()
    driver.get(base + "/signin")
    driver.find_element(By.NAME, "user").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form[action='/signin'] button").click()
    wait_for(f"{user} signed in", lambda: f"{user} ·" in driver.find_element(By.CSS_SELECTOR, ".who").text)


def click_button(text):
    for button in driver.find_elements(By.TAG_NAME, "button"):
        if button.text == text:
            button.click()
            return
    fail(f"no button '{text}' on {driver.current_url}")


def run_status():
    return driver.find_element(By.ID, "run-status").text


try:
    # dave starts staging; the build stage's lines appear while it runs.
    sign_in("dave")
    driver.get(base + "/environments")
    click_button("Run staging")
    wait_for("the run page", lambda: "/runs/" in driver.current_url, seconds=240)
    run_url = driver.current_url
    pane = driver.find_element(By.CSS_SELECTOR, "pre[data-log-src$='/stages/build/log']")
    seen_live = wait_for(
        "a log line while the build runs",
        lambda: "out line 2" in pane.text and run_status() == "running" and "out line 10" not in pane.text,
    )
    if not seen_live:
        fail("no line appeared while the stage ran")
    wait_for("the run to succeed without a reload", lambda: run_status() == "succeeded")
    if driver.current_url != run_url:
        fail("the page reloaded")
    if "out line 10" not in pane.text:
        fail(f"the log pane lacks the last line: {pane.text}")
    build_row = driver.find_element(By.CSS_SELECTOR, "tr[data-stage='build'] .status")
    if build_row.text != "succeeded":
        fail(f"the build row says {build_row.text}")

    # dave starts prod; it waits at its gate.
    driver.get(base + "/environments")
    click_button("Run prod")
    wait_for("the prod run page", lambda: "/runs/" in driver.current_url and driver.current_url != run_url)
    prod_url = driver.current_url
    prod_id = prod_url.rstrip("/").split("/")[-1]
    wait_for("prod to wait", lambda: run_status() == "waiting", seconds=90)

    # carol, a viewer: no Approve button, and a forged approval is refused.
    sign_in("carol")
    driver.get(f"{base}/runs/{prod_id}/approval")
    if any(b.text == "Approve" for b in driver.find_elements(By.TAG_NAME, "button")):
        fail("a viewer who is not an approver sees Approve")
    status = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "csrf=forged"})
          .then(r => done(r.status)).catch(e => done(String(e)));
        """,
        f"{base}/runs/{prod_id}/approve",
    )
    if status != 403:
        fail(f"a forged approval answered {status}, not 403")
    driver.get(f"{base}/api/v1/runs/{prod_id}")
    if json.loads(driver.find_element(By.TAG_NAME, "body").text)["status"] != "waiting":
        fail("the forged approval changed the run")

    # bob, an approver, approves and watches prod finish.
    sign_in("bob")
    driver.get(f"{base}/runs/{prod_id}/approval")
    driver.save_screenshot(os.path.join(artifacts, "approval.png"))
    driver.find_element(By.CSS_SELECTOR, f"form[action='/runs/{prod_id}/approve'] input[name='comment']").send_keys("looks good")
    click_button("Approve")
    wait_for("the run page after approving", lambda: driver.current_url.rstrip("/") == prod_url.rstrip("/"))
    wait_for("prod to succeed", lambda: run_status() == "succeeded", seconds=90)
    driver.save_screenshot(os.path.join(artifacts, "run.png"))
    print("ok: staging followed live, forged approval refused, prod approved by bob and finished")
finally:
    driver.quit()
