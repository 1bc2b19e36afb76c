"""The auditor's web page in a real browser (headless Chromium through Selenium) against a
seeded service on loopback: sign in once, posture to a failing resource and back in time,
in-page verification, window-scoped tokens, hostile names, accessibility."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.wait import WebDriverWait

from collector import attestations, tokens
from collector.schema import now
from collector.store import compress
from tests.web_support import OUTPUT, Seeded, axe_source, chromium, seeded_service


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with seeded_service(tmp_path_factory.mktemp("web")) as seeded:
        yield seeded


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def _sign_in(browser: Any, service: Seeded, token: str, path: str = "/") -> None:
    browser.get(service.url + "/login")  # cookies are deleted for the page's own origin
    browser.delete_all_cookies()
    browser.get(service.url + path)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"
    browser.find_element(By.ID, "token").send_keys(token)
    _follow(browser, browser.find_element(By.CSS_SELECTOR, "form.login button"))


def _follow(browser: Any, element: Any) -> None:
    """Click a link or submit button and wait for the page it leads to."""
    element.click()

    def left(_driver: Any) -> bool:
        try:
            element.is_enabled()
        except WebDriverException:  # stale; chromedriver sometimes says so in other words
            return True
        return False

    WebDriverWait(browser, 30).until(left)
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


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

    browser.get(f"{service.url}/?status=fail&source=aws&at={at}")
    shown = browser.find_elements(By.CSS_SELECTOR, "table.controls tbody .status")
    assert shown and {s.text for s in shown} == {"fail"}, "filters by status and source"
    assert "A.8.24" in [r.get_attribute("id") for r in browser.find_elements(
        By.CSS_SELECTOR, "table.controls tbody tr")]

    browser.get(f"{service.url}/?at={service.first_finished.isoformat().replace('+00:00', 'Z')}")
    assert _status_of(browser, "A.8.24") != "fail", "before run 2 the bucket was encrypted"


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _steps(browser: Any, version_id: int) -> dict[str, str]:
    """Click "verify" on a version and wait for the page's own verdict."""
    browser.find_element(By.CSS_SELECTOR, f"#v{version_id} button.verify").click()
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(
        By.CSS_SELECTOR, f"#steps-{version_id} li.summary"))
    browser.execute_script("arguments[0].scrollIntoView()", browser.find_element(
        By.CSS_SELECTOR, f"#v{version_id} button.verify"))
    items = browser.find_elements(By.CSS_SELECTOR, f"#steps-{version_id} li[data-step]")
    return {li.get_attribute("data-step"): li.get_attribute("data-state") for li in items}


def _summary(browser: Any, version_id: int) -> str:
    return browser.find_element(By.CSS_SELECTOR, f"#steps-{version_id} li.summary").text


def _version_ids(browser: Any) -> list[int]:
    return [int(a.get_attribute("id")[1:]) for a in browser.find_elements(
        By.CSS_SELECTOR, "article.version")]


def test_posture_to_a_failing_resource_and_back_in_time(browser, service):
    _sign_in(browser, service, service.token())
    now_at = _at(browser)
    _follow(browser, browser.find_element(By.LINK_TEXT, "A.8.24"))
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("A.8.24 ")
    assert _at(browser) == now_at, "links keep the instant"
    assert len(browser.find_elements(By.CSS_SELECTOR, ".timeline li")) == 12
    _shot(browser, "control")
    failing = browser.find_elements(By.CSS_SELECTOR, "table.failures a.resource")
    assert [a.text for a in failing] == ["arn:aws:s3:::logs"]
    _follow(browser, failing[0])
    assert browser.find_element(By.TAG_NAME, "h1").text == "arn:aws:s3:::logs"
    assert _at(browser) == now_at
    versions = _version_ids(browser)
    assert len(versions) == 2, "encrypted in run 1, not in run 2"
    newest = browser.find_element(By.ID, f"v{versions[0]}")
    assert "no default encryption" in newest.text
    newest.find_element(By.TAG_NAME, "summary").click()  # the diff to the previous version
    removed = newest.find_elements(By.CSS_SELECTOR, "pre.diff .removed")
    assert any('"SSEAlgorithm": "aws:kms"' in line.text for line in removed)
    _shot(browser, "resource")

    # Back in time: the older version's own instant, then the posture as it stood then.
    _follow(browser, browser.find_element(By.CSS_SELECTOR, f"#v{versions[1]} a.as-of"))
    then = _at(browser)
    assert datetime.fromisoformat(then) == service.first_finished
    assert _version_ids(browser) == [versions[1]], "the later version did not exist yet"
    _follow(browser, browser.find_element(By.LINK_TEXT, "← Posture"))
    assert _at(browser) == then
    assert _status_of(browser, "A.8.24") == "pass"

    # The picker takes a UTC date-time and puts it into the URL as RFC 3339.
    picker = browser.find_element(By.ID, "pick")
    browser.execute_script("arguments[0].value = arguments[1]", picker,
                           _stamp(service.second_finished + timedelta(seconds=1))[:19])
    _follow(browser, browser.find_element(By.CSS_SELECTOR, "form.picker button"))
    assert _at(browser) == _stamp(service.second_finished + timedelta(seconds=1))[:19] + "Z"
    assert _status_of(browser, "A.8.24") == "fail"


def test_verification_in_the_page_passes_and_names_the_step_that_tampering_broke(
        browser, service):
    _sign_in(browser, service, service.token(),
             "/resource?" + urlencode({"source": "aws-prod", "key": "arn:aws:s3:::logs"}))
    assert "Ed25519" in browser.find_element(By.ID, "crypto-support").text
    browser.find_element(By.ID, "public-key").send_keys(service.public_pem)
    newest, oldest = _version_ids(browser)
    assert _steps(browser, newest) == dict.fromkeys(
        ("digest", "proof", "header", "link", "signature"), "ok")
    assert _summary(browser, newest) == "Intact: every step holds"
    assert _steps(browser, oldest)["link"] == "ok", "run #1 starts from the genesis hash"
    _shot(browser, "verified")

    with service.engine.begin() as conn:
        digest, run = conn.execute(sa.text(
            "SELECT digest, valid_from_run FROM resource_versions WHERE id = :v"),
            {"v": newest}).one()
        body = conn.scalar(sa.text("SELECT body FROM blobs WHERE digest = :d"), {"d": digest})
        root = conn.scalar(sa.text("SELECT merkle_root FROM runs WHERE id = :r"), {"r": run})
    try:
        with service.engine.begin() as conn:
            conn.execute(sa.text("UPDATE blobs SET body = :b WHERE digest = :d"),
                         {"b": compress(b'{"Name":"logs","encryption":"on"}'), "d": digest})
        steps = _steps(browser, newest)
        assert steps["digest"] == "broken"
        assert {k for k, v in steps.items() if v != "ok"} == {"digest"}
        assert _summary(browser, newest) == "Broken at: Evidence digest"
        _shot(browser, "tampered")
        with service.engine.begin() as conn:
            conn.execute(sa.text("UPDATE blobs SET body = :b WHERE digest = :d"),
                         {"b": body, "d": digest})
            conn.execute(sa.text("UPDATE runs SET merkle_root = :m WHERE id = :r"),
                         {"m": "0" * 64, "r": run})
        steps = _steps(browser, newest)
        assert (steps["digest"], steps["proof"], steps["header"]) == ("ok", "broken", "broken")
        assert _summary(browser, newest).startswith("Broken at: Inclusion proof")
    finally:
        with service.engine.begin() as conn:
            conn.execute(sa.text("UPDATE blobs SET body = :b WHERE digest = :d"),
                         {"b": body, "d": digest})
            conn.execute(sa.text("UPDATE runs SET merkle_root = :m WHERE id = :r"),
                         {"m": root, "r": run})

    # Another key than the one that signed: the signature step says so.
    other = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    box = browser.find_element(By.ID, "public-key")
    box.clear()
    box.send_keys(other)
    assert _steps(browser, newest)["signature"] == "broken"
    assert "not by the pasted key" in browser.find_element(
        By.CSS_SELECTOR, f"#steps-{newest} li[data-step='signature']").text


def test_a_window_scoped_token_is_refused_outside_its_window(browser, service):
    middle = service.first_finished + (service.second_finished - service.first_finished) / 2
    start = service.first_finished - timedelta(hours=1)
    scoped = service.token(window_start=start, window_end=middle)
    after = _stamp(service.second_finished + timedelta(seconds=1))
    before = _stamp(start - timedelta(days=1))
    _sign_in(browser, service, scoped)
    assert datetime.fromisoformat(_at(browser)) == middle, "by default the window's end"
    assert _status_of(browser, "A.8.24") == "pass"
    browser.get(f"{service.url}/?at={after}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Not allowed (403)"
    assert "outside this token's window" in browser.find_element(By.CSS_SELECTOR,
                                                                  ".problem").text
    _shot(browser, "refused")

    cookies = {"annexa_session": scoped}
    logs = urlencode({"source": "aws-prod", "key": "arn:aws:s3:::logs"})
    for path in ("/", "/control/A.8.24", f"/resource?{logs}&", "/soa", "/due",
                 "/run/1", "/run/2", "/proof/1"):
        sep = "&" if "?" in path else "?"
        path = path.rstrip("&")
        for when in (after, before):
            answer = requests.get(f"{service.url}{path}{sep}at={when}", cookies=cookies,
                                  timeout=60, allow_redirects=False)
            assert answer.status_code == 403, (path, when, answer.status_code)
    inside = requests.get(f"{service.url}/run/1?at={_stamp(middle)}", cookies=cookies,
                          timeout=60)
    assert inside.status_code == 200
    hidden = requests.get(f"{service.url}/run/2?at={_stamp(middle)}", cookies=cookies,
                          timeout=60)
    assert hidden.status_code == 404, "run 2 finished after the window"

    for outside in ({"from": after, "to": after}, {"from": before, "to": before}):
        page = requests.get(f"{service.url}/downloads", params=outside, cookies=cookies,
                            timeout=60)
        assert page.status_code == 403
        for export in ("bundle", "oscal", "ocsf"):
            refused = requests.get(f"{service.url}/exports/{export}", params=outside,
                                   cookies=cookies, timeout=60)
            assert refused.status_code == 403, (export, refused.text)
    browser.get(f"{service.url}/downloads")
    _shot(browser, "downloads")
    for name in ("dl-bundle", "dl-oscal", "dl-ocsf"):
        href = browser.find_element(By.ID, name).get_attribute("href")
        query = parse_qs(urlsplit(href).query)
        assert datetime.fromisoformat(query["from"][0]) == start
        assert datetime.fromisoformat(query["to"][0]) == middle
        assert requests.get(href, cookies=cookies, timeout=120).status_code == 200, name

    with service.engine.connect() as conn:
        logged = conn.execute(sa.text(
            "SELECT target, status FROM api_access_log WHERE token_name = 'web-test' "
            "AND target LIKE :t"), {"t": f"/?at={after}%"}).all()
    assert (f"/?at={after}", 403) in [tuple(r) for r in logged], "page views are logged"


def _no_injection(browser: Any) -> None:
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.accept()
    assert browser.find_elements(By.TAG_NAME, "img") == []
    scripts = [s.get_attribute("src") for s in browser.find_elements(By.TAG_NAME, "script")]
    assert all(src and src.startswith(service_origin(browser) + "/static/") for src in scripts)


def service_origin(browser: Any) -> str:
    parts = urlsplit(browser.current_url)
    return f"{parts.scheme}://{parts.netloc}"


def test_a_hostile_resource_name_is_shown_as_text_and_runs_nothing(browser, service,
                                                                      tmp_path):
    _sign_in(browser, service, service.token(), "/control/A.5.33")
    links = browser.find_elements(By.CSS_SELECTOR, "table.failures a.resource")
    assert len(links) == 1
    shown = links[0].text
    assert "<script>alert(1)</script>\"><img src=x onerror=alert(2)>" in shown
    assert "\\u001b[31m\\u202eevil" in shown, "control characters shown as escapes"
    _no_injection(browser)
    _follow(browser, links[0])
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("arn:aws:s3:::<script>")
    _no_injection(browser)
    _shot(browser, "hostile")

    # The bundle's report.html shows it as text too, when opened in the browser.
    bundle = requests.get(f"{service.url}/exports/bundle", cookies={
        "annexa_session": service.token()}, timeout=120, params={
        "from": _stamp(service.first_finished - timedelta(hours=1)),
        "to": _stamp(service.second_finished)})
    assert bundle.status_code == 200, bundle.text
    (tmp_path / "bundle.zip").write_bytes(bundle.content)
    with zipfile.ZipFile(tmp_path / "bundle.zip") as zf:
        report = zf.read("report.html").decode()
    assert "<script>alert(1)" not in report and "&lt;script&gt;alert(1)" in report
    (tmp_path / "report.html").write_text(report)
    browser.get((tmp_path / "report.html").as_uri())
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.accept()
    assert browser.find_elements(By.TAG_NAME, "img") == []


def test_the_main_pages_have_no_serious_accessibility_violation(browser, service):
    axe = axe_source(OUTPUT / "axe")
    _sign_in(browser, service, service.token())
    at = _at(browser)
    logs = urlencode({"source": "aws-prod", "key": "arn:aws:s3:::logs", "at": at})
    problems = {}
    for path in ("/", f"/?status=fail&at={at}", f"/control/A.8.24?at={at}", f"/resource?{logs}",
                 f"/run/1?at={at}", f"/soa?at={at}", f"/due?at={at}", "/downloads", "/login"):
        browser.get(service.url + path)
        # Injected through the driver, not the page: the page's CSP allows no inline script.
        browser.execute_script(axe)
        result = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document).then(r => done(r.violations.map(v => [v.id, v.impact])))")
        serious = [v for v in result if v[1] in ("serious", "critical")]
        if serious:
            problems[path] = serious
    assert problems == {}


def test_the_posture_page_fits_a_phone_and_starts_with_a_skip_link(browser, service):
    _sign_in(browser, service, service.token())
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.text == "Skip to content" and focused.get_attribute("href").endswith("#main")
    browser.set_window_size(390, 844)
    try:
        browser.refresh()
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth")
        _shot(browser, "posture-phone")
    finally:
        browser.set_window_size(1280, 800)


def test_pages_carry_a_strict_content_security_policy(service):
    answer = requests.get(f"{service.url}/login", timeout=60)
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "<script" not in answer.text.replace('<script src="/static/', "")


def test_an_owner_attests_through_the_form_which_refuses_a_post_without_its_csrf_token(
        browser, service):
    owner, _ = tokens.create(service.engine, role="owner", name="web-owner", controls=["A.5.1"])
    cookies = {"annexa_session": owner}
    form = {"control": "A.5.1", "statement": "policies approved", "owner": "kim@example.com",
            "review_every": "365d"}
    forged = requests.post(f"{service.url}/attest", data=form, cookies=cookies, timeout=60,
                           allow_redirects=False)
    assert forged.status_code == 403 and "CSRF" in forged.text
    _sign_in(browser, service, owner)
    assert urlsplit(browser.current_url).path == "/due"
    token = browser.find_element(By.NAME, "csrf").get_attribute("value")
    elsewhere = requests.post(f"{service.url}/attest", data={**form, "csrf": token},
                              cookies=cookies, headers={"Origin": "https://evil.example"},
                              timeout=60, allow_redirects=False)
    assert elsewhere.status_code == 403, "a form posted from another origin is refused"
    with service.engine.connect() as conn:
        assert attestations.latest_at(conn, now()) == {}, "nothing refused was stored"
    browser.find_element(By.ID, "a-statement").send_keys("<b>policies</b> approved by the board")
    browser.find_element(By.ID, "a-owner").send_keys("kim@example.com")
    _follow(browser, browser.find_element(By.CSS_SELECTOR, "form.stack button"))
    assert "The attestation of A.5.1 was recorded and sealed." in browser.page_source
    assert browser.find_elements(By.TAG_NAME, "b") == []
    with service.engine.connect() as conn:
        held = attestations.latest_at(conn, now())
    assert held["A.5.1"].statement == "<b>policies</b> approved by the board"
    assert "web page" in held["A.5.1"].submitted_by
    assert requests.get(f"{service.url}/?at={_stamp(now())}", cookies=cookies,
                        timeout=60).status_code == 403, "an owner token reads no posture"
