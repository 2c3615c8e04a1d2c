"""What the browser tests share: the write token the live server runs with, and logging in."""

TOKEN = "browser-test-token-0123456789"


def wait_for_true(page, expression: str, arg=None, timeout: float = 60) -> None:
    """Poll a JavaScript expression from here until it is true. Playwright's own
    wait_for_function polls inside the page through `new Function`, which the pages' CSP
    (no 'unsafe-eval') refuses whenever the first check is false; evaluate() is not affected."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.2)


def log_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=token]", TOKEN)
    page.click("button:has-text('Log in')")
    page.wait_for_selector("text=logged in")
