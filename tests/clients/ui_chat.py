"""The chat page (`GET /ui`) end to end in headless Chromium, driven by Playwright:

    python ui_chat.py URL MODEL SCREENSHOT.png

Loads the page, picks MODEL, sets the temperature and a system prompt, sends a message,
sees streamed text appear and grow, presses Stop (the text stops growing, the answer says
"stopped"), sends a second message that runs to its end (its tokens/s shown), checks the
Markdown renderer on a code block, takes a screenshot, reloads and finds the
conversation again. Fails on any request to another origin and on any page error.
Chromium: $HEARTH_CHROMIUM, default /usr/bin/chromium (Debian's `chromium` package).
"""

import os
import sys
import time

from playwright.sync_api import sync_playwright

url, model, shot = sys.argv[1], sys.argv[2], sys.argv[3]
chromium = os.environ.get("HEARTH_CHROMIUM", "/usr/bin/chromium")
if not os.path.exists(chromium):
    sys.exit(f"{chromium} is missing: apt-get install chromium (or set HEARTH_CHROMIUM)")

STORY = "Tell me a very long story about a dragon who learns to write code."


def text_len(page, i):
    return page.evaluate(f"document.querySelectorAll('.msg.assistant')[{i}].innerText.length")


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    # Playwright evaluates its waiting predicates as strings, which the page's policy
    # (no eval) forbids: the policy itself is checked by tests/serve_ui.rs, and requests
    # to other origins are caught below.
    page = browser.new_page(viewport={"width": 1000, "height": 760}, bypass_csp=True)
    elsewhere, errors = [], []
    page.on("request", lambda r: None if r.url.startswith(url) else elsewhere.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    page.goto(url + "/ui")
    page.wait_for_function("[...document.querySelector('#model').options].some(o => o.value)")
    page.select_option("#model", model)
    page.click("summary")
    page.fill("#temperature", "0")
    page.fill("#system", "You are a storyteller who writes long, detailed stories.")

    # A long answer: streamed text appears and grows; Stop ends it where it is.
    page.fill("#input", STORY)
    page.press("#input", "Enter")
    page.wait_for_function(
        "document.querySelectorAll('.msg.assistant').length == 1"
        " && document.querySelector('.msg.assistant').innerText.length > 40",
        timeout=120_000,
    )
    seen = text_len(page, 0)
    page.wait_for_function(
        f"document.querySelector('.msg.assistant').innerText.length > {seen}", timeout=30_000
    )
    assert page.is_visible("#stop"), "no Stop button while streaming"
    page.click("#stop")
    page.wait_for_selector(".msg.assistant .meta", timeout=10_000)
    meta = page.inner_text(".msg.assistant .meta")
    assert "stopped" in meta, meta
    stopped = page.inner_text(".msg.assistant")
    time.sleep(1.5)
    assert page.inner_text(".msg.assistant") == stopped, "the answer kept growing after Stop"
    assert page.is_hidden("#stop")

    # A short answer runs to its end and shows its speed.
    page.fill("#input", "Now say hello in one short sentence.")
    page.click("#send")
    page.wait_for_function(
        "document.querySelectorAll('.msg.assistant').length == 2"
        " && document.querySelectorAll('.msg.assistant')[1].querySelector('.meta')",
        timeout=120_000,
    )
    meta2 = page.inner_text(".msg.assistant >> nth=1 >> .meta")
    assert "tokens/s" in meta2 and "stopped" not in meta2, meta2
    assert text_len(page, 1) > 0

    # Markdown: a fenced code block, inline code, bold; HTML in text stays text.
    html = page.evaluate(
        "markdown('**Hi** `x < 1`\\n```rust\\nfn main() {}\\n```\\n<b>raw</b>')"
    )
    assert "<strong>Hi</strong>" in html and "<code>x &lt; 1</code>" in html, html
    assert '<pre><code data-lang="rust">fn main() {}</code></pre>' in html, html
    assert "&lt;b&gt;raw&lt;/b&gt;" in html, html

    page.screenshot(path=shot, full_page=True)

    # The conversation survives a reload (localStorage), settings too.
    page.reload()
    page.wait_for_selector(".msg.user")
    users = page.locator(".msg.user").all_inner_texts()
    assert users == [STORY, "Now say hello in one short sentence."], users
    assert page.inner_text(".msg.assistant >> nth=0").startswith(stopped[:40])
    assert page.input_value("#temperature") == "0"
    page.wait_for_function("document.querySelector('#model').value !== ''")
    assert page.input_value("#model") == model, page.input_value("#model")

    browser.close()

assert not elsewhere, f"the page requested other origins: {elsewhere}"
assert not errors, f"page errors: {errors}"
print(f"ok: stopped after {len(stopped)} characters ({meta}); second answer: {meta2}")
