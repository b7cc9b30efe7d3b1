"""The HTML report: what a page holds, ``select --html`` and ``run --html``, and one page
rendered by a real headless Chromium (Selenium).

Without Selenium, Chromium or its driver the browser test skips with the reason, unless
``GRAPHSEL_REQUIRE_BROWSER=1`` (set by ``.ci/run``, which installs them), where a missing
one is a failure, so CI cannot pass by skipping it.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from graphsel.cli import cli
from graphsel.transfer.config import ExperimentConfig
from graphsel.transfer.protocol.results import SelectionSummary, StageSummary
from graphsel.viz.report import Section, png_bytes, render_page, run_page, selection_page, write_html
from graphsel.viz.selection import SELECTION_FIGURES, selection_figures
from graphsel.viz.transfer import TRANSFER_FIGURES
from tests.transfer.tiny import TINY_RUN_CONFIG

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """The parts of a page the tests read: tags, images, captions, preformatted blocks."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.captions: list[str] = []
        self.pre: list[str] = []
        self.links: list[str] = []
        self._in: str | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "img":
            self.images.append(attributes)
        self.links += [value or "" for key, value in attrs if key in ("src", "href")]
        if tag in ("figcaption", "pre"):
            self._in = tag
            (self.captions if tag == "figcaption" else self.pre).append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "figcaption":
            self.captions[-1] += data
        elif self._in == "pre":
            self.pre[-1] += data


def _png_of(image: dict[str, str | None]) -> bytes:
    prefix = "data:image/png;base64,"
    source = image["src"] or ""
    assert source.startswith(prefix)
    return base64.b64decode(source[len(prefix):], validate=True)


def _self_contained(page: _Page) -> None:
    """No script and nothing fetched: every src/href is an embedded image."""
    assert "script" not in page.tags and "link" not in page.tags
    assert all(link.startswith("data:image/png;base64,") for link in page.links)


def _tiny_png() -> bytes:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(1, 1))
    figure.add_subplot().plot([0, 1], [0, 1])
    return png_bytes(figure, dpi=20)


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------


def test_render_page_embeds_figures_escapes_text_and_ends_with_the_config():
    png = _tiny_png()
    text = render_page("<report>", [Section("rows & users", "a < b", [("one <fig>", png)])],
                       {"da": {"threshold": 0.5}}, command="graphsel select --html x.html")
    page = _Page(text)
    _self_contained(page)
    assert [_png_of(image) for image in page.images] == [png]
    assert page.images[0]["alt"] == "one <fig>" and page.captions == ["one <fig>"]
    assert page.pre == ["a < b", json.dumps({"da": {"threshold": 0.5}}, indent=2)]
    assert "<title>&lt;report&gt;</title>" in text and "<h2>rows &amp; users</h2>" in text
    assert "<code>graphsel select --html x.html</code>" in text
    assert text.index("Configuration used") > text.index("rows &amp; users")


def test_config_of_a_dataclass_and_of_values_json_cannot_write():
    page = _Page(render_page("t", [], ExperimentConfig(seeds=3)))
    config = json.loads(page.pre[-1])
    assert config["seeds"] == 3 and "lr_grid" in config["protocol"]
    odd = _Page(render_page("t", [], {"array": np.arange(3), "path": Path("a/b")}))
    assert json.loads(odd.pre[-1]) == {"array": [0, 1, 2], "path": "a/b"}


def test_selection_page_holds_the_report_every_figure_and_the_stage_options(fitted):
    selector, truth, _ = fitted
    page = _Page(selection_page(selector, truth=truth))
    _self_contained(page)
    names = [name for name, _ in selection_figures(selector, truth)]
    assert len(names) == 6
    assert page.captions == [SELECTION_FIGURES[name] for name in names]
    for image in page.images:
        assert _png_of(image)[:8] == PNG_MAGIC
    assert page.pre[0].startswith(selector.selection_.report.format())
    options = json.loads(page.pre[-1])
    assert options["stages"] == ["graph", "da", "knn"]
    assert options["knn"] == json.loads(json.dumps(selector.named_stages_["knn"].get_params(),
                                                   default=str))


def test_run_page_holds_the_tables_the_funnel_the_figures_and_the_config(transfer_results):
    selection = SelectionSummary(120, 400, (StageSummary("graph", 300, 0.5),
                                            StageSummary("knn", 120, 1.25)), 0.9, 0.8)
    results = dataclasses.replace(transfer_results, selection=selection)
    page = _Page(run_page(results, ExperimentConfig(seeds=2)))
    _self_contained(page)
    assert page.pre[0] == results.table()
    assert page.pre[1].splitlines() == [
        "selection: 120 of 400 source rows (precision 0.900, recall 0.800)",
        "stage  rows kept  seconds", "-----  ---------  -------",
        "graph        300   0.5000", "knn          120   1.2500"]
    assert page.captions == list(TRANSFER_FIGURES.values())
    assert [_png_of(image)[:8] for image in page.images] == [PNG_MAGIC] * 2
    assert json.loads(page.pre[-1])["seeds"] == 2
    # without a selection (neither strategy needs one): no funnel section
    assert "Selection funnel" not in run_page(transfer_results, {})


def test_write_html_is_atomic(tmp_path, monkeypatch):
    path = write_html("<p>x</p>", tmp_path / "page.html")
    assert path.read_text() == "<p>x</p>"

    def broken(self, *args, **kw):
        Path.write_bytes(self, b"<p>half")
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", broken)
    with pytest.raises(OSError, match="disk full"):
        write_html("<p>y</p>", tmp_path / "page.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]
    assert (tmp_path / "page.html").read_bytes() == b"<p>x</p>"


# --------------------------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------------------------

SELECT_CONFIG = "da: {model: logistic, cv: 2}\n"
RUN_CONFIG = TINY_RUN_CONFIG


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "demo"
    result = CliRunner().invoke(cli, ["datasets", "prepare", "synthetic", "--scale", "0.1",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    (out.parent / "select.yaml").write_text(SELECT_CONFIG)
    return out


def _select(demo: Path, tmp_path: Path, *extra: str):
    return CliRunner().invoke(cli, [
        "select", "--source", str(demo / "source.parquet"), "--target",
        str(demo / "target.parquet"), "--out", str(tmp_path / "selected.parquet"),
        "--config", str(demo.parent / "select.yaml"), *extra])


@pytest.fixture(scope="module")
def select_page(demo, tmp_path_factory) -> Path:
    """The page of one ``graphsel select --html`` run (also rendered by the browser test)."""
    tmp_path = tmp_path_factory.mktemp("select")
    page, report = tmp_path / "report.html", tmp_path / "report.json"
    result = _select(demo, tmp_path, "--html", str(page), "--report", str(report), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["html"] == str(page)
    return page


def test_select_html_writes_one_self_contained_page(select_page):
    page = _Page(select_page.read_text())
    _self_contained(page)
    assert page.captions == list(SELECTION_FIGURES.values())
    assert "planted truth: precision" in page.pre[0]  # truth.parquet beside the source
    assert json.loads(page.pre[-1])["da"]["model"] == "logistic"


def test_select_html_refuses_to_overwrite_an_input(demo, tmp_path):
    source = demo / "source.parquet"
    before = source.read_bytes()
    result = _select(demo, tmp_path, "--html", str(source))
    assert result.exit_code == 2
    assert f"--html {source} is the input --source" in result.output
    assert source.read_bytes() == before
    spark = _select(demo, tmp_path, "--engine", "spark", "--stages", "graph", "--html",
                    str(tmp_path / "x.html"))
    assert spark.exit_code == 2 and "--html is not supported with --engine spark" in spark.output


def test_run_html_writes_the_page_and_refuses_to_overwrite_its_config(tmp_path):
    config = tmp_path / "exp.yaml"
    config.write_text(RUN_CONFIG)
    result = CliRunner().invoke(cli, ["run", "--config", str(config), "--html", str(config)])
    assert result.exit_code == 2 and f"--html {config} is the input --config" in result.output
    assert config.read_text() == RUN_CONFIG
    page_path = tmp_path / "run.html"
    result = CliRunner().invoke(cli, ["run", "--config", str(config), "--html", str(page_path),
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["html"] == str(page_path)
    page = _Page(page_path.read_text())
    _self_contained(page)
    assert page.pre[0].splitlines()[1].split()[:6] == ["strategy", "AUC", "GAUC", "LogLoss",
                                                        "ECE", "pred"]
    assert "Selection funnel" in page_path.read_text()
    assert page.captions == list(TRANSFER_FIGURES.values())
    assert json.loads(page.pre[-1])["strategies"] == ["target_only", "selected_weighted"]


# --------------------------------------------------------------------------------------------
# A real browser
# --------------------------------------------------------------------------------------------


def _browser_missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "Chromium is not installed (apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "chromedriver is not installed (apt-get install chromium-driver)"
    return None


def _skip_without_browser() -> None:
    reason = _browser_missing()
    if reason is None:
        return
    if os.environ.get("GRAPHSEL_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " and GRAPHSEL_REQUIRE_BROWSER=1", pytrace=False)
    pytest.skip(reason)


def test_a_headless_chromium_shows_the_page(select_page, tmp_path):
    _skip_without_browser()
    from matplotlib.image import imread
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1200,2400"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options,
                              service=Service(shutil.which("chromedriver"),
                                              log_output=str(tmp_path / "chromedriver.log")))
    try:
        driver.get(select_page.resolve().as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, "
            "i.naturalHeight]);")
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        screenshot = driver.get_screenshot_as_png()
        title = driver.title
    finally:
        driver.quit()
    assert title == "graphsel select"
    assert errors == []
    assert len(images) == len(SELECTION_FIGURES)
    assert all(complete and width > 0 and height > 0 for complete, width, height in images)
    pixels = imread(io.BytesIO(screenshot), format="png")[..., :3]
    assert pixels.shape[1] == 1200 and pixels.shape[0] > 1000  # the viewport of the window
    # not blank: the page's text and figures make many distinct colours, white is not all
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    assert np.mean(np.all(pixels > 0.98, axis=-1)) < 0.97
    assert html.escape("graphsel select") in select_page.read_text()


def test_readme_describes_every_figure_and_the_html_flag():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name in [*SELECTION_FIGURES, *TRANSFER_FIGURES]:
        assert f"- `{name}`: " in readme, name
    assert readme.count("`--html FILE` writes one self-contained page") == 2
