"""The dashboard in a real browser (headless Chromium, installed by `make browser`)."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from playwright.async_api import Page, async_playwright

CHROMIUM = "/usr/bin/chromium"


async def wait_until(page: Page, expression: str, timeout: float = 30.0) -> None:
    """Poll a JS expression until it is truthy. Not `page.wait_for_function`: that evaluates
    its predicate with `eval` inside the page, which the API's CSP (rightly) refuses."""
    deadline = time.monotonic() + timeout
    while not await page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        await asyncio.sleep(0.1)


@asynccontextmanager
async def dashboard(base: str, api_key: str | None = None) -> AsyncIterator[tuple[Page, list[str]]]:
    """The dashboard of the API at `base`, signed in with `api_key` when given, and the
    list the page's uncaught errors are collected into (a test asserts it stays empty)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{base}/dashboard")
            if api_key is not None:
                await page.fill("#api-key", api_key)
                await page.click("#key-form button")
            yield page, errors
        finally:
            await browser.close()
