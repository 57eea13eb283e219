"""The HTML report opened in a real (headless) Chromium with the network cut off.

CI installs Chromium (``.ci/run``), so there this test runs and fails when the browser is
missing; elsewhere it skips. It checks what a reader sees after the page's scripts ran:
the figures, the tables and the plotly Sankeys drawn as SVG from the inlined plotly.js.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_report import PNG_MAGIC, embedded_pngs, result_dir  # noqa: F401  (fixture)

from bayesmfa.cases import ree_figures
from bayesmfa.reporting.report import write_report

#: no name resolves and every proxied request goes to a closed port: the page must render offline
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9"]


def chromium() -> str:
    """Path of the Chromium binary; CI must have one (it installs it), elsewhere the test skips."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed on CI (.ci/run installs the Debian package)")
        pytest.skip("chromium is not installed")
    return found


def browse(page: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000",
           *OFFLINE, *args, page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def test_report_renders_offline_in_chromium(result_dir, tmp_path):  # noqa: F811
    page = write_report(result_dir, figures=ree_figures.summary_figures)
    html = page.read_text(encoding="utf-8")
    n_png = len(embedded_pngs(html))
    assert n_png >= 8

    dom = browse(page, "--dump-dom").stdout
    assert "<html" in dom, "chromium returned no DOM"
    # the figures: every embedded PNG is still an <img> after rendering
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', dom)) == n_png
    # the tables: key intervals, diagnostics and data coverage, with their rows
    for cls in ("key-intervals", "coverage"):
        table = dom[dom.index(f'class="{cls}"'):]
        table = table[: table.index("</table>")]
        assert table.count("<tr") >= 3, cls
    assert 'class="banner pass"' in dom and "flow_smuggling" in dom
    assert dom.index('id="verdict"') < dom.index("<h2")  # the diagnostics verdict opens the report
    # the Sankeys: plotly.js ran (inlined, no network) and drew nodes and links as SVG in both figures
    figures = re.findall(r'<figure class="sankey">(.*?)</figure>', dom, flags=re.S)
    assert len(figures) == 2
    for fig in figures:
        assert 'class="main-svg"' in fig
        assert len(re.findall(r'class="sankey-node"', fig)) >= 6
        assert len(re.findall(r'class="sankey-link"', fig)) >= 6
        # colours are explained by a legend, and no two node labels sit at the same place
        assert "(domestic)" in fig and "(trade)" in fig
        spots = re.findall(r'class="sankey-node" transform="translate\(([-\d.]+),([-\d.]+)\)', fig)
        assert len(spots) == len(set(spots)) >= 6
        assert all(float(y) >= 0 for _, y in spots)  # no node pushed above the plot

    shot = tmp_path / "report.png"
    browse(page, f"--screenshot={shot}", "--window-size=1200,2400")
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC)
    from matplotlib.image import imread

    img = imread(str(shot))
    assert img.shape[:2] == (2400, 1200)
    assert float(np.std(img[..., :3])) > 0.02  # not a blank page
