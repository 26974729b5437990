"""The user's loop on the real data, as the README tells it: repro, edit a param, repro, diff, plots,
experiments. Runs in a temporary git copy whose last commit holds a default run (the baseline)."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_edit_rerun_and_diff(built_copy, real_data, dvc, stages_run, set_params, tmp_path):
    project = built_copy
    set_params(project, train={"learning_rate": 0.003})
    result = dvc(project, "repro", SIGN_DIGITS_DATA=real_data)
    assert stages_run(result.stdout) == ["source", "crossval", "audit", "train", "evaluate"]  # not the data stages

    params_diff = dvc(project, "params", "diff", "--json").stdout
    change = json.loads(params_diff)["params.yaml"]["train.learning_rate"]
    assert (change["old"], change["new"]) == (0.001, 0.003)

    # the declared metrics are the headline figures, each listed once (DVCLive's summary is not declared)
    diff = json.loads(dvc(project, "metrics", "diff", "--all", "--json").stdout)
    assert {path: set(figures) for path, figures in diff.items()} == {
        "reports/crossval.json": {"cv_acc", "cv_loss", "cv_robust"},
        "reports/metrics.json": {"test_acc"},
    }
    loss = diff["reports/crossval.json"]["cv_loss"]
    assert loss["old"] != loss["new"] and loss["diff"] == pytest.approx(loss["new"] - loss["old"], abs=1e-9)

    text = dvc(project, "metrics", "diff", "--all").stdout
    assert "HEAD" in text and "workspace" in text
    names = [line.split()[1] for line in text.splitlines()[1:] if line.strip()]
    assert sorted(names) == ["cv_acc", "cv_loss", "cv_robust", "test_acc"]

    out = project / "plots_diff"
    dvc(project, "plots", "diff", "-o", str(out))
    page = (out / "index.html").read_text()
    assert "Loss per epoch" in page and "Confusion matrix" in page and "loss_curve.png" in page
    assert all(f'"{title}"' in page for title in ("cross-entropy loss", "predicted digit", "true digit"))
    shown = project / "plots_show"
    dvc(project, "plots", "show", "-o", str(shown))
    assert (shown / "index.html").stat().st_size > 1000
    for folder in (out, shown):
        drawn_offline(folder / "index.html", tmp_path)


def chromium() -> str:
    """Debian's Chromium (.ci/run installs it). In CI its absence fails the test; elsewhere it skips."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium not found: CI must install it (.ci/run: apt-get install -y chromium)")
        pytest.skip("chromium not found: install Debian's chromium to check that the plots draw offline")
    return found


def rendered_dom(page: Path, profile: Path) -> str:
    """The DOM of ``page`` after headless Chromium ran its scripts, with every host name unresolvable: no
    network."""
    command = [
        chromium(),
        "--headless=new",
        "--no-sandbox",  # as root, in CI
        "--disable-gpu",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=15000",
        "--dump-dom",
        page.as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "</html>" in result.stdout, result.stderr[-2000:]
    return result.stdout


def plot_divs(html: str) -> dict[str, str]:
    """{id: content up to the next plot} of the page's plot divs."""
    parts = re.split(r'<div id\s*=\s*"([^"]+)"', html)
    return dict(zip(parts[1::2], parts[2::2]))


def drawn_offline(page: Path, tmp_path: Path) -> None:
    """Every interactive plot of DVC's page ``page`` draws in Chromium with the network off: an SVG of marks with
    drawn shapes in each plot's div; the page names no address to load from; its PNG plots are beside it. And
    DVC's own page, whose scripts come from a CDN, draws none of them there (the network really is off)."""
    html = page.read_text()
    assert not re.search(r"<script[^>]+src=", html) and "cdn.jsdelivr" not in html
    expected = [name for name, content in plot_divs(html).items() if "vegaEmbed(" in content]  # interactive
    titles = ("Loss_per_epoch", "Accuracy_per_epoch", "Confusion_matrix", "ROC_curve")
    assert all(any(name.startswith(title) for name in expected) for title in titles), list(expected)
    dom = plot_divs(rendered_dom(page, tmp_path / "profile"))
    for name in expected:
        content = dom[name]
        assert "<svg" in content and 'class="marks"' in content, name
        marks = re.findall(r'<g class="mark-(\w+) role-mark[^"]*"[^>]*>(.*?)</g>', content, re.S)
        assert any(re.search(r'<path[^>]* d="M|<text', body) for _, body in marks), name
    for image in re.findall(r'<img src="([^"]+)"', html.split("</head>", 1)[1]):  # the page's, not the bundle's
        assert (page.parent / image).is_file(), image
    from dvc_render.vega import VegaRenderer

    online = page.with_name("online.html")
    online.write_text(re.sub(r"<script>.*?</script>", lambda _: VegaRenderer.SCRIPTS, html, count=1, flags=re.S))
    assert 'class="marks"' not in rendered_dom(online, tmp_path / "profile")


def changed_lines(git, project, path):
    """The lines `git diff` shows removed or added in ``path``."""
    diff = git(project, "diff", "--unified=0", "--", path).splitlines()
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_experiment_run_and_show(built_copy, real_data, dvc, git):
    project = built_copy
    dvc(project, "exp", "run", "-n", "lr-high", "-S", "train.learning_rate=0.01", SIGN_DIGITS_DATA=real_data)
    # DVC rewrote params.yaml with the new value; the layout makes that the only line it changed
    assert changed_lines(git, project, "params.yaml") == ["-  learning_rate: 0.001", "+  learning_rate: 0.01"]
    table = json.loads(dvc(project, "exp", "show", "--json").stdout)
    experiments = [exp for commit in table for exp in (commit.get("experiments") or [])]
    names = [exp.get("name") for exp in experiments]
    assert "lr-high" in names
    run = next(exp for exp in experiments if exp.get("name") == "lr-high")["revs"][0]["data"]
    assert run["params"]["params.yaml"]["data"]["train"]["learning_rate"] == 0.01
    assert "test_acc" in run["metrics"]["reports/metrics.json"]["data"]
    assert "lr-high" in dvc(project, "exp", "show", "--no-pager", "--csv").stdout


def flat(tree: dict, prefix: str = "") -> dict:
    """{"train": {"epochs": 5}} → {"train.epochs": 5}, as `dvc exp show` names the params."""
    items = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            items |= flat(value, f"{prefix}{key}.")
        else:
            items[f"{prefix}{key}"] = value
    return items


HEADLINE = {"reports/crossval.json": ("cv_acc", "cv_loss", "cv_robust"), "reports/metrics.json": ("test_acc",)}
TABLE = "dvc exp show --only-changed --drop Created"  # the workflow's table


def test_the_experiment_table_fits_120_columns(built_copy, real_data, dvc, git):
    """Two experiments as the README runs them (auto-named, one parameter each, the other reset), then the README's
    table, `dvc exp show --only-changed --drop Created`, rendered at COLUMNS=120: within 120 columns, a row per
    experiment with its name, a column for every parameter that differs between the rows (and none for the others)
    and one for each headline metric (dropped only where every row has the same value: what --only-changed means),
    each with the row's value; the params and metrics columns are not cut to `…`."""
    project = built_copy
    changes = ("train.hidden_units=4", "train.learning_rate=0.003")
    for change in changes:
        dvc(project, "exp", "run", "-S", change, SIGN_DIGITS_DATA=real_data)
        git(project, "checkout", "--", "params.yaml")
    commands = [line.split("  #")[0].strip() for line in README.read_text().splitlines()]
    assert TABLE in commands  # run here as the README gives it; without a terminal DVC writes the whole table for its
    # pager (`less -S` then cuts it at the screen's edge): --no-pager renders it as 120 columns show it
    table = dvc(project, *TABLE.split()[1:], "--no-pager", COLUMNS=120).stdout
    print(table)
    lines = table.splitlines()
    assert lines and max(map(len, lines)) <= 120, table
    (header,) = [line.split() for line in lines if line.split()[:1] == ["Experiment"]]

    rows = {"workspace": None}
    for commit in json.loads(dvc(project, "exp", "show", "--json").stdout):
        rows[commit["name"] if commit["rev"] != "workspace" else "workspace"] = commit["data"]
        for exp in commit.get("experiments") or []:
            rows[exp["name"]] = exp["revs"][0]["data"]
    runs = [name for name in rows if name not in ("workspace", "main")]
    assert len(runs) == 2 and len(rows) == 4, list(rows)
    params = {name: flat(data["params"]["params.yaml"]["data"]) for name, data in rows.items()}
    differing = {key for key in params["main"] if len({str(p[key]) for p in params.values()}) > 1}
    assert differing == {"train.hidden_units", "train.learning_rate"}
    assert sorted(column for column in header if column.startswith("train.")) == sorted(differing)
    metrics = {name: {} for name in rows}
    for name, data in rows.items():
        for path, names in HEADLINE.items():
            metrics[name] |= {key: data["metrics"][path]["data"][key] for key in names}
    for key in [key for names in HEADLINE.values() for key in names]:
        if len({m[key] for m in metrics.values()}) > 1:
            assert key in header, (key, table)
        else:
            assert key not in header, (key, table)  # the same in every row: --only-changed drops it
    shown = [column for column in header if column in metrics["main"]]
    for name in rows:
        (line,) = [line for line in lines if line.split()[:1] == [name] or f"[{name}]" in line]
        cells = line.split("]", 1)[1].split() if "[" in line else line.split()[1:]
        assert all(str(params[name][key]) in cells for key in differing), (name, line)
        assert all(f"{metrics[name][key]:.5g}" in cells for key in shown), (name, line)
    columns = [column for column in header if column != "…"]
    assert columns[: 1 + len(shown)] == ["Experiment", *shown], table
    assert set(columns[1 + len(shown) : 1 + len(shown) + len(differing)]) == differing, table
