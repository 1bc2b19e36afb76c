"""The auditor's web page in a real browser (headless Chromium through Selenium) against a
seeded service on loopback: sign in once, posture to a failing resource and back in time,
in-page verification, window-scoped tokens, hostile names, accessibility."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.webdriver.common.by import By

from tests.web_support import OUTPUT, Seeded, chromium, seeded_service


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with seeded_service(tmp_path_factory.mktemp("web")) as seeded:
        yield seeded


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def _sign_in(browser: Any, service: Seeded, token: str, path: str = "/") -> None:
    browser.delete_all_cookies()
    browser.get(service.url + path)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()


def _at(browser: Any) -> str:
    return parse_qs(urlsplit(browser.current_url).query)["at"][0]


def _shot(browser: Any, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    browser.save_screenshot(str(OUTPUT / f"web-{name}.png"))


def _status_of(browser: Any, control: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, f"tr[id='{control}'] .status").text


def test_signing_in_once_shows_the_posture_at_an_instant_kept_in_the_url(browser, service):
    _sign_in(browser, service, service.token())
    at = _at(browser)
    assert at.endswith("Z"), "the instant is RFC 3339 UTC in the URL"
    assert browser.find_element(By.TAG_NAME, "h1").text == f"Posture as of {at}"
    assert _status_of(browser, "A.8.24") == "fail"
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.controls tbody tr")) == 93
    cookie = browser.get_cookie("annexa_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == "", "scripts cannot read it"
    _shot(browser, "posture")

    browser.get(f"{service.url}/?at={service.first_finished.isoformat().replace('+00:00', 'Z')}")
    assert _status_of(browser, "A.8.24") != "fail", "before run 2 the bucket was encrypted"
