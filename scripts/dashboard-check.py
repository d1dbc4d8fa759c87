#!/usr/bin/env python3
"""Loads weft's dashboard in headless Chromium and checks it like a user would.

Usage: dashboard-check.py URL --screenshot OUT.png --expect TEXT [--expect TEXT ...] [--wait S]

Fails (exit 1) on any console error or warning, uncaught exception or failed request, when an
expected text is missing from the rendered page, or when the screenshot is missing or tiny.
Exit 77 when chromium is not installed. Drives Chromium over the DevTools protocol on a pipe
(--remote-debugging-pipe: commands on fd 3, answers and events on fd 4), stdlib only.
"""
import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, profile):
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
            pass_fds=(3, 4), preexec_fn=wire, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
            raise RuntimeError("chromium closed the pipe")
        self.buffer += chunk
        messages = []
        while b"\0" in self.buffer:
            raw, self.buffer = self.buffer.split(b"\0", 1)
            message = json.loads(raw)
            if "method" in message:
                self.events.append(message)
            messages.append(message)
        return messages

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


def problems_in(events):
    """Console errors and warnings, exceptions and failed requests, as readable lines."""
    found = []
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
            found.append(f"log {entry['level']}: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            found.append(f"request failed: {params.get('errorText')}")
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--expect", action="append", default=[])
    parser.add_argument("--wait", type=float, default=4)
    args = parser.parse_args()
    if not CHROMIUM:
        print("dashboard-check: chromium not installed", file=sys.stderr)
        sys.exit(77)
    profile = tempfile.mkdtemp(prefix="weft-dashboard-")
    browser = None
    try:
        browser = Browser(profile)
        targets = browser.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        session = browser.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        started = len(browser.events)
        navigation = browser.send("Page.navigate", {"url": args.url}, session=session)
        if navigation.get("errorText"):
            raise RuntimeError(f"cannot load {args.url}: {navigation['errorText']}")
        browser.pump(args.wait)
        status = [e for e in browser.events[started:] if e["method"] == "Network.responseReceived"
                  and e["params"]["type"] in ("Document", "Fetch", "XHR") and e["params"]["response"]["status"] >= 400]
        problems = problems_in(browser.events[started:])
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
    except (RuntimeError, StopIteration, OSError) as e:
        print(f"dashboard-check: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        if browser:
            browser.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
