"""What the browser tests share: the write token the live server runs with, and logging in."""

TOKEN = "browser-test-token-0123456789"


def log_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/login")
    page.fill("input[name=token]", TOKEN)
    page.click("button:has-text('Log in')")
    page.wait_for_selector("text=logged in")
