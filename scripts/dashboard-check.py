#!/usr/bin/env python3
"""Loads weft's dashboard in headless Chromium and checks it like a user would.

Usage: dashboard-check.py URL --screenshot OUT.png --expect TEXT [--expect TEXT ...] [--wait S]
                          [--steps STEPS.json] [--allow-status CODE ...]

Fails (exit 1) on any console error or warning, uncaught exception or failed request, when an
expected text is missing from the rendered page, or when the screenshot is missing or tiny.

--steps drives the page like a user, after the first --wait, one step after another (a JSON list):
  {"click": CSS}                   a real mouse click at the element's centre
  {"fill": CSS, "text": T}         focuses the field, clears it and types T
  {"select": CSS, "value": V}      picks an option (a change event, as a user's pick)
  {"waitText": T, "in": CSS}       waits (up to "timeout" s, default 20) until the element shows T
  {"waitGone": T, "in": CSS}       waits until it no longer does
  {"waitFor": CSS}                 waits until that element exists and is shown
  {"waitFocus": CSS}               waits until that element has the focus
  {"screenshot": PATH}             a screenshot, checked to be a PNG of the window's size
Each step is printed as it passes; the first that fails stops the run with what the page showed.
--allow-status lets answers with that HTTP status pass (a form's refused request, say).
Exit 77 when chromium is not installed. Drives Chromium over the DevTools protocol on a pipe
(--remote-debugging-pipe: commands on fd 3, answers and events on fd 4), stdlib only.
"""
import argparse
import base64
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, profile):
        self.log = tempfile.TemporaryFile()
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()

        def wire():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--metrics-recording-only", "--mute-audio",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "--window-size=1280,900", "about:blank"],
            pass_fds=(3, 4), preexec_fn=wire, stdout=subprocess.DEVNULL, stderr=self.log)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.out, self.inp = to_chrome_w, from_chrome_r
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None, timeout=20):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            for reply in self.read(deadline - time.time()):
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
            if time.time() > deadline:
                raise RuntimeError(f"{method}: no answer in {timeout} s")

    def read(self, timeout):
        """Messages that arrive within `timeout` s; events are kept in self.events."""
        ready, _, _ = select.select([self.inp], [], [], max(0.0, timeout))
        if not ready:
            return []
        chunk = os.read(self.inp, 1 << 20)
        if not chunk:
            raise RuntimeError(f"chromium closed the pipe; its last words: {self.last_words()}")
        self.buffer += chunk
        messages = []
        while b"\0" in self.buffer:
            raw, self.buffer = self.buffer.split(b"\0", 1)
            message = json.loads(raw)
            if "method" in message:
                self.events.append(message)
            messages.append(message)
        return messages

    def last_words(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-1500:].strip() or "(nothing)"

    def page_session(self, timeout=20):
        """Attaches to the browser's page, waiting for it to exist."""
        deadline = time.time() + timeout
        while True:
            targets = self.send("Target.getTargets")["targetInfos"]
            page = next((t for t in targets if t["type"] == "page"), None)
            if page:
                return self.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
            if time.time() > deadline:
                raise RuntimeError(f"chromium opened no page in {timeout} s")
            self.pump(0.2)

    def pump(self, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            self.read(deadline - time.time())

    def close(self):
        try:
            os.write(self.out, json.dumps({"id": 999999, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=5)
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def problems_in(events, allowed_status=()):
    """Console errors and warnings, exceptions and failed requests, as readable lines."""
    found = []
    allowed = re.compile(r"status of (%s)\b" % "|".join(str(c) for c in allowed_status)) if allowed_status else None
    for event in events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            found.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            found.append("uncaught exception: " + details.get("exception", {}).get("description", details.get("text", "?")))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
            entry = params["entry"]
            if allowed and entry.get("source") == "network" and allowed.search(entry.get("text", "")):
                continue
            found.append(f"log {entry['level']}: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"request failed: {params.get('errorText')}")
    return found


class Page:
    """One page of the browser, driven like a user: real mouse clicks and typed text."""

    def __init__(self, browser, session):
        self.browser, self.session = browser, session

    def evaluate(self, expression):
        result = self.browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                        "awaitPromise": True}, session=self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script error: {result['exceptionDetails'].get('text')} in {expression[:80]}")
        return result["result"].get("value")

    def element(self, css):
        return f"document.querySelector({json.dumps(css)})"

    def visible(self, css):
        """A script expression: the element exists and is shown."""
        return f"(e => !!e && e.offsetParent !== null)({self.element(css)})"

    def text_of(self, css):
        return self.evaluate(f"(e => e ? e.innerText : null)({self.element(css)})")

    def wait(self, condition, timeout, what):
        """Waits for `condition`; `what` (text, or a function called on failure) says what failed."""
        deadline = time.time() + timeout
        while True:
            if self.evaluate(condition):
                return
            if time.time() > deadline:
                raise RuntimeError(f"{what() if callable(what) else what}: not within {timeout:g} s")
            self.browser.pump(0.2)

    def click(self, css, timeout):
        """Clicks where the element is, once it is there and nothing covers it (the page may
        move between finding it and clicking: a notice shown, a table drawn again)."""
        found = f"""(e => {{ if (!e || e.offsetParent === null) return null;
            e.scrollIntoView({{block: "center"}});
            const r = e.getBoundingClientRect(), x = r.x + r.width / 2, y = r.y + r.height / 2;
            const top = document.elementFromPoint(x, y);
            return top && (top === e || e.contains(top)) ? [x, y] : null; }})({self.element(css)})"""
        self.wait(f"!!{found}", timeout, f"no visible, uncovered {css}")
        box = self.evaluate(found)
        if box is None:
            raise RuntimeError(f"{css} moved away before the click")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.browser.send("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left",
                                                           "clickCount": 0 if kind == "mouseMoved" else 1},
                              session=self.session)

    def fill(self, css, text, timeout):
        self.click(css, timeout)
        self.evaluate(f"(e => {{ e.select && e.select(); }})({self.element(css)})")
        self.browser.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": "Delete", "code": "Delete",
                                                     "windowsVirtualKeyCode": 46}, session=self.session)
        self.browser.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Delete", "code": "Delete",
                                                     "windowsVirtualKeyCode": 46}, session=self.session)
        if text:
            self.browser.send("Input.insertText", {"text": text}, session=self.session)
        value = self.evaluate(f"{self.element(css)}.value")
        if value != text:
            raise RuntimeError(f"typed {text!r} into {css}, it holds {value!r}")

    def select(self, css, value, timeout):
        self.wait(f"!!{self.element(css)}", timeout, f"no {css}")
        self.evaluate(f"""(e => {{ e.focus(); e.value = {json.dumps(value)};
            e.dispatchEvent(new Event("input", {{bubbles: true}})); e.dispatchEvent(new Event("change", {{bubbles: true}})); }})({self.element(css)})""")
        if self.evaluate(f"{self.element(css)}.value") != value:
            raise RuntimeError(f"{css} has no option {value!r}")

    def screenshot(self, path):
        data = base64.b64decode(self.browser.send("Page.captureScreenshot", {"format": "png"}, session=self.session)["data"])
        with open(path, "wb") as f:
            f.write(data)
        if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 10_000:
            raise RuntimeError(f"the screenshot {path} is not a PNG of a drawn page ({len(data)} bytes)")
        width, height = struct.unpack(">II", data[16:24])
        if (width, height) != (1280, 900):
            raise RuntimeError(f"the screenshot {path} is {width}×{height}, not the window's 1280×900")
        return len(data)

    def run(self, step):
        timeout = step.get("timeout", 20)
        if "click" in step:
            self.click(step["click"], timeout)
        elif "fill" in step:
            self.fill(step["fill"], step["text"], timeout)
        elif "select" in step:
            self.select(step["select"], step["value"], timeout)
        elif "waitText" in step:
            css = step.get("in", "body")
            self.wait(f"(e => !!e && e.innerText.includes({json.dumps(step['waitText'])}))({self.element(css)})",
                      timeout, lambda: f"{step['waitText']!r} never showed in {css} (it shows {self.text_of(css)!r})")
        elif "waitGone" in step:
            css = step.get("in", "body")
            self.wait(f"(e => !e || !e.innerText.includes({json.dumps(step['waitGone'])}))({self.element(css)})",
                      timeout, f"{step['waitGone']!r} still shows in {css}")
        elif "waitFor" in step:
            self.wait(self.visible(step["waitFor"]), timeout,
                      f"{step['waitFor']} never showed")
        elif "waitFocus" in step:
            self.wait(f"document.activeElement === {self.element(step['waitFocus'])}", timeout,
                      f"{step['waitFocus']} never had the focus")
        elif "screenshot" in step:
            size = self.screenshot(step["screenshot"])
            return f"{size // 1024} KiB"
        else:
            raise RuntimeError(f"unknown step {step}")
        return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--expect", action="append", default=[])
    parser.add_argument("--wait", type=float, default=4)
    parser.add_argument("--steps", help="a JSON list of steps that drive the page (see above)")
    parser.add_argument("--allow-status", type=int, action="append", default=[])
    args = parser.parse_args()
    steps = []
    if args.steps:
        with open(args.steps) as f:
            steps = json.load(f)
    if not CHROMIUM:
        print("dashboard-check: chromium not installed", file=sys.stderr)
        sys.exit(77)
    profile = tempfile.mkdtemp(prefix="weft-dashboard-")
    browser = None
    try:
        browser = Browser(profile)
        session = browser.page_session()
        for domain in ("Runtime", "Log", "Network", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        started = len(browser.events)
        navigation = browser.send("Page.navigate", {"url": args.url}, session=session)
        if navigation.get("errorText"):
            raise RuntimeError(f"cannot load {args.url}: {navigation['errorText']}")
        browser.pump(args.wait)
        page = Page(browser, session)
        for number, step in enumerate(steps, 1):
            try:
                extra = page.run(step)
            except RuntimeError as e:
                raise RuntimeError(f"step {number} {json.dumps(step)}: {e}")
            print(f"dashboard-check: step {number} ok: {json.dumps(step)} {extra}".rstrip())
        status = [e for e in browser.events[started:] if e["method"] == "Network.responseReceived"
                  and e["params"]["type"] in ("Document", "Fetch", "XHR") and e["params"]["response"]["status"] >= 400
                  and e["params"]["response"]["status"] not in args.allow_status]
        problems = problems_in(browser.events[started:], args.allow_status)
        problems += [f"HTTP {e['params']['response']['status']} for {e['params']['response']['url']}" for e in status]
        text = browser.send("Runtime.evaluate", {"expression": "document.body ? document.body.innerText : ''",
                                                 "returnByValue": True}, session=session)["result"].get("value", "")
        missing = [t for t in args.expect if t not in text]
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        with open(args.screenshot, "wb") as f:
            f.write(base64.b64decode(shot))
        size = os.path.getsize(args.screenshot)
        requests = sum(1 for e in browser.events[started:] if e["method"] == "Network.requestWillBeSent")
        if problems or missing or size < 10_000:
            for line in problems:
                print(f"dashboard-check: {line}", file=sys.stderr)
            if missing:
                print(f"dashboard-check: missing from the page: {missing}\n--- page text ---\n{text[:2000]}",
                      file=sys.stderr)
            if size < 10_000:
                print(f"dashboard-check: the screenshot is only {size} bytes", file=sys.stderr)
            sys.exit(1)
        print(f"dashboard-check: ok: {requests} requests in {args.wait:g} s, no console errors, "
              f"found {args.expect}, screenshot {args.screenshot} ({size // 1024} KiB)")
    except Exception as e:  # every failure is a clear line and exit 1, not a traceback
        print(f"dashboard-check: {type(e).__name__ + ': ' if not isinstance(e, RuntimeError) else ''}{e}",
              file=sys.stderr)
        sys.exit(1)
    finally:
        if browser:
            browser.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
