"""Drives pagan-serve's page in headless Chromium (Debian `chromium` + `chromium-driver`,
through selenium) and checks what a person would: every page loads without console
errors; gallery images decode; a new seed changes the pixels; the latent walk renders its
frames; a zip scored through the page shows the FID the JSON API gives for the same file;
a pytorch-fid .npz uploaded through the page is stored with pytorch-fid's resize; a bad
upload shows the API's own message; the keyboard alone reaches the upload control; a
server with --token gets it from the page's prompt.
Saves a screenshot of each page into SHOTS.

With TOKEN_URL and TOKEN (a second server started with --token), the page asks for the
token at the first 401 and its gallery then decodes.

usage: browser_check.py URL MODEL REFERENCE ZIP SHOTS [TOKEN_URL TOKEN]
"""
import json
import sys
import time
import urllib.request

import numpy as np

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

url, model, reference, zip_path, shots = sys.argv[1:6]
token_url, token = (sys.argv[6:8] + [None, None])[:2]
checks = []


def check(name, ok, detail=""):
    checks.append((name, ok, detail))
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def api_post(path, body, ctype):
    req = urllib.request.Request(url + path, data=body, method="POST", headers={"content-type": ctype})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


opts = webdriver.ChromeOptions()
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,1400"]:
    opts.add_argument(a)
opts.binary_location = "/usr/bin/chromium"
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
wait = WebDriverWait(d, 60)
js = d.execute_script
mid = model.replace(".", "_")


def console_errors():
    return [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE"]


def pixels_of_first_image():
    # A digest of the decoded pixels of the gallery's first image.
    return js("""const img = document.querySelector('#gallery-' + arguments[0] + ' img');
        const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
        const x = c.getContext('2d'); x.drawImage(img, 0, 0);
        return Array.from(x.getImageData(0, 0, c.width, c.height).data).join(',');""", mid)


try:
    # Models: gallery decodes; a new seed changes the pixels; the walk renders.
    d.get(url + "/#models")
    wait.until(lambda _: js("const g = document.querySelector('#gallery-' + arguments[0]); return g && g.querySelectorAll('img').length >= 8 && Array.from(g.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0);", mid))
    widths = js("return Array.from(document.querySelectorAll('#gallery-' + arguments[0] + ' img')).map(i => i.naturalWidth);", mid)
    check("gallery images decode (natural width > 0)", all(w > 0 for w in widths), f"widths {widths}")
    before = pixels_of_first_image()
    seed0 = js("return document.querySelector('#gallery-' + arguments[0]).dataset.seed;", mid)
    d.find_element(By.ID, f"new-seed-{mid}").click()
    wait.until(lambda _: js("const g = document.querySelector('#gallery-' + arguments[0]); return g.dataset.seed !== arguments[1] && Array.from(g.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0);", mid, seed0))
    check("a new seed changes the pixels", pixels_of_first_image() != before)
    d.find_element(By.ID, f"walk-go-{mid}").click()
    wait.until(lambda _: js("return document.getElementById('walk-' + arguments[0]).dataset.frames;", mid))
    frames = js("""const cs = Array.from(document.querySelectorAll('#walk-' + arguments[0] + ' canvas'));
        return cs.map(c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s; });""", mid)
    steps = int(d.find_element(By.ID, f"walk-steps-{mid}").get_attribute("value"))
    check("the latent walk renders its frames", len(frames) == steps and frames[0] != frames[-1] and all(f > 0 for f in frames),
          f"{len(frames)} frames of {steps}, pixel sums first {frames[0] if frames else None} last {frames[-1] if frames else None}")
    d.save_screenshot(f"{shots}/models.png")
    errs = console_errors()
    check("models page: no console errors", not errs, "; ".join(errs))

    # Score: a zip through the page == the JSON API for the same file.
    with open(zip_path, "rb") as f:
        zip_bytes = f.read()
    status, want = api_post(f"/v1/fid?reference={reference}&kid=true&prdc=true", zip_bytes, "application/zip")
    if status == 202:
        # A job (the server's threshold is under the set's size): poll it as the page does.
        href = want["href"]
        deadline = time.monotonic() + 300
        while True:
            assert time.monotonic() < deadline, f"job {href} not done in 300 s"
            time.sleep(0.3)
            with urllib.request.urlopen(url + href) as r:
                job = json.load(r)
            assert job["status"] != "failed", job
            if job["status"] == "done":
                status, want = 200, job["result"]
                break
    assert status == 200, want
    d.get(url + "/#score")
    wait.until(lambda _: js("return document.getElementById('reference').options.length > 0;"))
    d.find_element(By.ID, "reference").send_keys(reference)
    d.find_element(By.ID, "files").send_keys(zip_path)
    d.find_element(By.ID, "score-button").click()
    wait.until(lambda _: js("const r = document.getElementById('result'); return !r.hidden && r.dataset.fid;"))
    got = float(js("return document.getElementById('result').dataset.fid;"))
    check("a zip scored through the page shows the JSON API's FID", got == want["fid"], f"page {got!r}, API {want['fid']!r}")
    precision = js("return document.getElementById('result').dataset.precision;")
    check("the page shows the API's precision (k = 3)", precision == repr(want["prdc"]["precision"]) or float(precision) == want["prdc"]["precision"],
          f"page {precision!r}, API {want['prdc']['precision']!r}")
    cached = js("return document.getElementById('result').dataset.cached;")
    check("the same pixels again come from the feature cache", cached == "true", f"cached = {cached!r}")
    rows = js("return document.querySelectorAll('#history tbody tr').length;")
    check("the score is kept in this browser's history", rows >= 1, f"{rows} row(s)")
    d.save_screenshot(f"{shots}/score.png")
    errs = console_errors()
    check("score page: no console errors (besides the refused upload below)", not errs, "; ".join(errs))

    # A pytorch-fid .npz (mu and sigma only: no resize convention recorded) uploaded through
    # the page is stored with pytorch-fid's resize, half_pixel (the page's default).
    npz = zip_path + ".pytorch-fid.npz"
    rng = np.random.default_rng(0)
    np.savez(npz, mu=rng.standard_normal(2048).astype(np.float32), sigma=np.eye(2048, dtype=np.float32))
    js("document.getElementById('ref-upload').closest('details').open = true;")
    d.find_element(By.ID, "ref-name").send_keys("browser-pytorch-fid")
    d.find_element(By.ID, "ref-file").send_keys(npz)
    d.find_element(By.ID, "ref-upload").click()
    wait.until(lambda _: js("return Array.from(document.getElementById('reference').options)"
                            ".some((o) => o.value === 'browser-pytorch-fid');"))
    with urllib.request.urlopen(url + "/v1/references") as r:
        refs = {x["name"]: x for x in json.load(r)["references"]}
    got = refs.get("browser-pytorch-fid", {}).get("resize_mode")
    check("a pytorch-fid .npz uploaded through the page is stored as half_pixel", got == "half_pixel", f"resize_mode {got!r}")

    # A bad upload shows the API's message.
    bad = zip_path + ".bad.png"
    with open(bad, "wb") as f:
        f.write(b"this is not a PNG")
    # The page sends it as one multipart file; the same request to the API directly:
    boundary = "browser-check-7f3a"
    name = bad.rsplit("/", 1)[-1]
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: image/png\r\n\r\nthis is not a PNG\r\n--{boundary}--\r\n").encode()
    status, api_err = api_post(f"/v1/fid?reference={reference}&kid=true", form, f"multipart/form-data; boundary={boundary}")
    d.find_element(By.ID, "files").send_keys(bad)
    d.find_element(By.ID, "score-button").click()
    wait.until(lambda _: js("return !document.getElementById('error').hidden;"))
    shown = d.find_element(By.ID, "error").text
    check("a bad upload shows the API's message", status >= 400 and shown == api_err["error"]["message"],
          f"page {shown!r}, API {api_err['error']['message']!r} ({status})")
    d.get_log("browser")  # the refused request is logged as a failed fetch: expected

    # Keyboard only: Tab from the top reaches the file input.
    d.get(url + "/#score")
    wait.until(lambda _: js("return document.getElementById('reference').options.length > 0;"))
    js("document.activeElement && document.activeElement.blur();")
    reached = None
    for k in range(40):
        ActionChains(d).send_keys(Keys.TAB).perform()
        if js("return document.activeElement && document.activeElement.id;") == "files":
            reached = k + 1
            break
    check("keyboard-only navigation reaches the upload control", reached is not None, f"after {reached} Tab presses")

    # Status.
    d.get(url + "/#status")
    wait.until(lambda _: js("return document.getElementById('ready');"))
    text = d.find_element(By.ID, "status").text
    check("status page shows readiness and the providers", "Ready." in text and model in text, text.splitlines()[0] if text else "")
    d.save_screenshot(f"{shots}/status.png")
    errs = console_errors()
    check("status page: no console errors", not errs, "; ".join(errs))

    # A server with --token: the page asks for it once, then generates with it.
    if token_url:
        d.get(token_url + "/#models")
        alert = WebDriverWait(d, 30).until(expected_conditions.alert_is_present())
        asked = "token" in alert.text
        alert.send_keys(token)
        alert.accept()
        wait.until(lambda _: js("const g = document.querySelector('#gallery-' + arguments[0]); return g && g.querySelectorAll('img').length >= 8 && Array.from(g.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0);", mid))
        check("with --token: the page asks for the token once and the gallery decodes", asked, "")
        d.get_log("browser")  # the first, refused requests are logged as failed fetches: expected
        d.get(url + "/#models")

    # Phone width: the models page lays out without horizontal scrolling.
    d.set_window_size(390, 844)
    d.get(url + "/#models")
    wait.until(lambda _: js("const g = document.querySelector('#gallery-' + arguments[0]); return g && g.querySelectorAll('img').length > 0;", mid))
    overflow = js("return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
    check("phone width: no horizontal scrolling", overflow <= 0, f"{overflow} px too wide")
    d.save_screenshot(f"{shots}/models-phone.png")
finally:
    d.quit()

failed = [c for c in checks if not c[1]]
print(f"{len(checks) - len(failed)} of {len(checks)} browser checks passed")
sys.exit(1 if failed else 0)
