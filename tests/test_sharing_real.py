"""A grid across machines, as docs/sharing.md tells it: each machine runs its share with `dvc exp run` and pushes
it (`dvc exp push`) to the team's git remote, a local bare repository here, with the artifacts in the DVC
remote, a local folder here; any machine then pulls them all (`dvc exp pull`) into one `dvc exp show`, and
`dvc exp apply` + `dvc pull` give the chosen model without recomputing it."""

import json
import subprocess


def test_a_grid_shared_across_machines(built_copy, real_data, tmp_path, git, dvc, stages_run):
    def clone(origin, target):
        subprocess.run(["git", "clone", "-q", str(origin), str(target)], check=True)
        git(target, "config", "user.email", "test@example.com")
        git(target, "config", "user.name", "test")
        return target

    origin, storage = tmp_path / "origin.git", tmp_path / "storage"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    team = built_copy
    dvc(team, "remote", "add", "-d", "team", str(storage))
    git(team, "add", ".dvc/config")
    git(team, "commit", "-q", "-m", "team remote")
    git(team, "remote", "add", "origin", str(origin))
    git(team, "push", "-q", "origin", "main")
    dvc(team, "push")

    shares = {
        "machine-1": ("lr-0.003", "train.learning_rate=0.003"),
        "machine-2": ("hidden-64", "train.hidden_units=64"),
    }
    models = {}
    for machine, (name, change) in shares.items():
        here = clone(origin, tmp_path / machine)
        dvc(here, "pull")
        dvc(here, "exp", "run", "-n", name, "-S", change, SIGN_DIGITS_DATA=real_data)
        models[name] = (here / "models/model.npz").read_bytes()
        dvc(here, "exp", "push", "origin", name)

    anywhere = clone(origin, tmp_path / "machine-3")
    dvc(anywhere, "exp", "pull", "origin", *models)
    table = json.loads(dvc(anywhere, "exp", "show", "--json").stdout)
    table = {exp["name"]: exp["revs"][0] for commit in table for exp in (commit.get("experiments") or [])}
    assert set(models) <= set(table)
    for name in models:
        cv = table[name]["data"]["metrics"]["reports/crossval.json"]["data"]
        assert set(cv) == {"cv_acc", "cv_loss", "cv_robust"} and 0.9 < cv["cv_acc"] <= 1
    chosen = max(models, key=lambda n: table[n]["data"]["metrics"]["reports/crossval.json"]["data"]["cv_acc"])
    dvc(anywhere, "exp", "apply", chosen)
    dvc(anywhere, "pull")
    assert (anywhere / "models/model.npz").read_bytes() == models[chosen]
    result = dvc(anywhere, "repro", SIGN_DIGITS_DATA=real_data)
    assert stages_run(result.stdout) == ["source"]  # nothing recomputed: every artifact came from the remotes
