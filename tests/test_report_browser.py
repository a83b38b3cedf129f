"""The smoke run's `snakemake --report`, opened in a real headless browser (Debian's `chromium`
and `chromium-driver`, through selenium): the report is a page built by JavaScript, which a
grep of its HTML (tests/test_report.py) cannot show rendered. Skipped where no browser is
installed, which fails under CI (tests/conftest.py); `.ci/run` installs it where it runs as root.
"""

from __future__ import annotations

import base64
import re
import shutil
import struct
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SMOKE, copy_of_smoke_run, report_html, snakemake

try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # the `test` extra brings it; without it the test says how to get it
    webdriver = None

WAIT_SECONDS = 20  # for the page's scripts to draw what a click asks for; a view takes ~0.1 s
INSTALL = "as root: apt-get install chromium chromium-driver (.ci/run does so)"


def browser_unavailable() -> str | None:
    """Why no headless browser can be started here, or None."""
    if webdriver is None:
        return "selenium is not installed: pip install -e '.[test]'"
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        return f"no {' and no '.join(missing)} on PATH: {INSTALL}"
    return None


# Decided before any fixture: the shared smoke run is not started for a test that cannot run.
pytestmark = pytest.mark.skipif(
    browser_unavailable() is not None, reason=str(browser_unavailable())
)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium driven by the system's chromedriver (named, so that selenium never
    downloads one), logging the page's console."""
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    # --no-sandbox: Chromium's sandbox refuses to run as root (CI) or in most containers;
    # the page is a local file of this test. /dev/shm is small in containers.
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    except WebDriverException as error:
        pytest.fail(f"chromium is installed but did not start under chromedriver: {error.msg}")
    yield driver
    driver.quit()


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, from its header."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def data_uri_bytes(uri: str) -> bytes:
    """The bytes a `data:` URI carries (Snakemake's report embeds every file as one)."""
    head, _, data = uri.partition(",")
    if head.endswith(";base64"):
        return base64.b64decode(data)
    return urllib.parse.unquote_to_bytes(data)


class Report:
    """The report in the browser, worked as a reader does: by clicking its menus."""

    def __init__(self, driver: webdriver.Chrome, path: Path) -> None:
        self.driver = driver
        driver.get(path.as_uri())
        self.wait = WebDriverWait(driver, WAIT_SECONDS)

    def until(self, condition: Callable[[webdriver.Chrome], object], what: str):
        """Wait for `condition` to hold (be truthy); fail naming `what` was not drawn."""
        try:
            return self.wait.until(condition)
        except TimeoutException:
            pytest.fail(f"the report did not show {what} within {WAIT_SECONDS} s")

    def click(self, element: WebElement) -> None:
        """A real click, after scrolling the element to the middle of the window (the
        menu's sticky header would otherwise cover it)."""
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def menu_item(self, label: str) -> WebElement:
        """The entry `label` of the menu (a category or subcategory), once drawn."""
        xpath = f"//nav//ul/li/a[span[normalize-space()={xpath_literal(label)}]]"
        return self.until(lambda d: d.find_element(By.XPATH, xpath), f"the menu entry {label!r}")

    def open_menu(self, *labels: str) -> None:
        """Back to the start, then through the menu entries `labels`."""
        home = "//nav//nav//ol/li[1]/a"
        self.click(self.until(lambda d: d.find_element(By.XPATH, home), "the home button"))
        for label in labels:
            self.click(self.menu_item(label))

    def rows(self, what: str) -> list[WebElement]:
        """The rows of the result list the menu shows."""
        return self.until(lambda d: d.find_elements(By.XPATH, "//nav//table/tbody/tr"), what)

    def image_after(self, previous: str | None) -> tuple[str, WebElement]:
        """(file name, element) of the image in the content pane once it is another than the
        one whose `src` was `previous` and has loaded (or failed to)."""

        def loaded(driver: webdriver.Chrome) -> tuple[str, WebElement] | None:
            for image in driver.find_elements(By.XPATH, "//nav/following-sibling::div//img"):
                src = image.get_attribute("src") or ""
                name = re.search(r";filename=([^;,]+)", src[:300])
                done = driver.execute_script("return arguments[0].complete", image)
                if name and src != previous and done:
                    return name[1], image
            return None

        return self.until(loaded, "the figure asked for")

    def console_errors(self) -> list[str]:
        """The errors the page's console printed since the last call."""
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]


def xpath_literal(text: str) -> str:
    """`text` as an XPath string literal (the labels hold no double quote; checked)."""
    assert '"' not in text, text
    return f'"{text}"'


def test_report_renders_in_a_browser(smoke_run, tmp_path, browser):
    workdir = copy_of_smoke_run(smoke_run, tmp_path / "run")
    overlay = str(workdir / "stories.yaml")
    result = snakemake(workdir, "--configfile", SMOKE, overlay, "--report", "results/report.html")
    report_html(result, workdir / "results" / "report.html")  # it rendered every caption
    report = Report(browser, workdir / "results" / "report.html")
    categories = browser.execute_script("return categories")  # what the report holds, by menu

    # Results at a glance: its entry, its caption in the entry's description, and the table.
    report.open_menu("Results at a glance")
    (row,) = report.rows("the entry of Results at a glance")
    assert row.text.strip() == "results/at_a_glance.csv", row.text
    view, info = row.find_elements(By.XPATH, "./td[last()]//a")
    table = data_uri_bytes(view.get_attribute("href"))
    assert table == (workdir / "results" / "at_a_glance.csv").read_bytes()
    report.click(info)
    report.until(
        lambda d: "Results at a glance." in d.find_element(By.TAG_NAME, "nav").text,
        "the caption of Results at a glance",
    )

    # Every category and subcategory lists each of its files: the report keys its list by
    # the files' labels, and shows one of several files with the same labels.
    for category, subcategories in sorted(categories.items()):
        for subcategory, paths in sorted(subcategories.items()):
            # A category with one subcategory opens on its list.
            report.open_menu(category, *([subcategory] if len(subcategories) > 1 else []))
            rows = report.rows(f"the list of {category} / {subcategory}")
            assert len(rows) == len(paths), (
                f"{category} / {subcategory} lists {len(rows)} entries for {len(paths)} files "
                f"({[Path(p).name for p in paths]}): files with the same labels hide each other"
            )

    # Every figure: reached through its subcategory's list, drawn, the size of its PNG file.
    figures_on_disk = {p.name for p in (workdir / "results" / "figures").glob("*.png")}
    in_report = {Path(p).name for paths in categories["Figures"].values() for p in paths}
    assert in_report == figures_on_disk, "the report's figures are not the run's"
    shown: dict[str, tuple[int, int]] = {}
    previous = None
    for subcategory in sorted(categories["Figures"]):
        report.open_menu("Figures", subcategory)
        for row in report.rows(f"the figures of {subcategory}"):
            report.click(row.find_element(By.XPATH, "./td[last()]//a[1]"))
            name, image = report.image_after(previous)
            previous = image.get_attribute("src")
            shown[name] = tuple(
                browser.execute_script(
                    "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image
                )
            )
            assert shown[name][0] > 0, f"{name} did not load in the browser"
    assert set(shown) == figures_on_disk, f"figures never shown: {figures_on_disk - set(shown)}"
    for name, size in sorted(shown.items()):
        expected = png_size(workdir / "results" / "figures" / name)
        assert size == expected, f"{name} shown at {size} pixels, its file has {expected}"

    assert not report.console_errors(), "the browser's console shows errors"
