"""The project's promises about itself: the README's two commands, DVC's configuration, the CI script."""

import configparser


def test_readme_opens_with_the_two_commands(root):
    lines = (root / "README.md").read_text().splitlines()
    assert lines[0] == "```bash" and lines[3] == "```"
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    assert lines[1] == venv + "pip install -r requirements.txt && dvc repro"  # the runtime lock only
    assert lines[2] == venv + "pip install -r requirements-dev.txt && python -m pytest"  # runtime + test lock
    assert lines[2] + " 2>&1 | tee" in (root / ".ci" / "run").read_text()  # CI runs the test command verbatim


def test_dvc_makes_no_network_calls_of_its_own(root):
    config = configparser.ConfigParser()
    config.read(root / ".dvc" / "config")
    assert config["core"]["analytics"] == "false" and config["core"]["check_update"] == "false"
