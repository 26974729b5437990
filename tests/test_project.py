"""The project's promises about itself: the README's two commands, DVC's configuration, the CI script, and
dvc.yaml's dependencies matching what each stage imports."""

import ast
import configparser

import yaml


def test_readme_opens_with_the_title_pitch_and_the_two_commands(root):
    title, pitch, block, note, *_ = (root / "README.md").read_text().split("\n\n")
    assert title.startswith("# ") and "\n" not in title and not pitch.startswith(("#", "```"))
    venv = "python3 -m venv .venv && . .venv/bin/activate && "
    pipeline = venv + "pip install -r requirements.txt && dvc repro"  # the runtime lock only
    tests = venv + "pip install -r requirements-dev.txt && python -m pytest"  # + the test lock
    assert block.splitlines() == ["```bash", pipeline, tests, "```"]
    assert "SIGN_DIGITS_DATA" in note  # the offline note, next to them
    assert tests + " 2>&1 | tee" in (root / ".ci" / "run").read_text()  # CI runs it verbatim


def test_dvc_makes_no_network_calls_of_its_own(root):
    config = configparser.ConfigParser()
    config.read(root / ".dvc" / "config")
    assert config["core"]["analytics"] == "false" and config["core"]["check_update"] == "false"


def project_imports(path, root):
    """The signdigits modules (as file paths relative to ``root``) that the script or module at ``path`` imports,
    directly or through other signdigits modules: read from the source with ast, not by running it."""
    found, todo = set(), [path]
    while todo:
        tree = ast.parse(todo.pop().read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                module = root / (name.replace(".", "/") + ".py")
                if name.startswith("signdigits.") and module.exists() and module not in found:
                    found.add(module)
                    todo.append(module)
    return {module.relative_to(root).as_posix() for module in found}


def test_each_stage_declares_exactly_the_project_files_it_imports(root):
    """dvc.yaml's promise: editing a module reruns exactly the stages whose scripts import it (the package's
    __init__.py, run by every import, holds only its docstring and version, so no stage lists it)."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        script = f"stages/{name}.py"
        assert stage["cmd"] == f"python {script}"
        code = {dep for dep in stage["deps"] if dep.endswith(".py")}
        expected = {script} | project_imports(root / script, root)
        assert code == expected, f"stage {name}: missing {sorted(expected - code)}, extra {sorted(code - expected)}"
    package = ast.parse((root / "signdigits/__init__.py").read_text()).body
    assert [type(node) for node in package] == [ast.Expr, ast.Assign]  # the docstring and __version__


def paths_in_script(path):
    """(read, written): the data/, models/ and reports/ paths written as literals in a stage script; written are
    the keys of a dict given to write_outputs, read are all the others."""
    tree = ast.parse(path.read_text())
    written = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "write_outputs":
            for argument in node.args:
                if isinstance(argument, ast.Dict):
                    written |= {key.value for key in argument.keys if isinstance(key, ast.Constant)}
    literals = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.split("/")[0] in ("data", "models", "reports")
    }
    return literals - written, written


def test_the_paths_a_stage_script_names_are_declared_in_dvc_yaml(root):
    """The scripts name their files literally, for the reader; dvc.yaml must declare each: a file read is (in) a
    dep, a file written is (in) an out."""

    def declared(path, entries):
        names = [next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries]
        return any(path == name or path.startswith(name.rstrip("/") + "/") for name in names)

    for name, stage in yaml.safe_load((root / "dvc.yaml").read_text())["stages"].items():
        read, written = paths_in_script(root / f"stages/{name}.py")
        outs = stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", [])
        assert all(declared(path, stage["deps"]) for path in read), (name, sorted(read), stage["deps"])
        assert all(declared(path, outs) for path in written), (name, sorted(written), outs)


def test_no_module_imports_itself_back(root):
    """The package's imports form no cycle: no module reaches itself through the modules it imports."""
    for module in sorted((root / "signdigits").glob("*.py")):
        name = module.relative_to(root).as_posix()
        assert name not in project_imports(module, root), f"{name} imports itself back"
