"""``envctl kernel install|list|remove``: kernelspecs Jupyter finds, pointing into locked
environments."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envctl.kernel import default_kernel_name, has_ipykernel, kernel_spec
from envctl.lookup import ResolvedRef
from envctl.resolve.lockfile import LockData, LockedPackage

from .conftest import Resolved, envctl, one_error_line


@pytest.fixture
def jupyter_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "jupyter-data"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(path))
    monkeypatch.setenv("JUPYTER_PATH", "")
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "0")
    return path


@pytest.mark.slow
def test_kernel_install_writes_a_kernelspec_jupyter_finds(
    resolved_catalog: Resolved, jupyter_dir: Path, warm_home: Path
) -> None:
    # The local channel has no ipykernel: refused before anything is created, with the fix.
    refused = envctl("-C", resolved_catalog.root, "kernel", "install", "team/app:stable")
    assert one_error_line(refused) == (
        "error: team/app:v1 does not contain ipykernel, so Jupyter could list the "
        "kernel but not start it [no-ipykernel] — add it in a new tag (envctl extend "
        "team/app:v1 --add ipykernel --name team/app:<new tag>) and install the kernel for "
        "that tag, or pass --without-ipykernel to register it anyway")
    assert not jupyter_dir.exists()

    result = envctl("-C", resolved_catalog.root, "kernel", "install", "team/app:stable",
                    "--without-ipykernel")
    assert result.exit_code == 0, result.output
    env_id = resolved_catalog.ids["v1"]["linux-64"]
    req, full = env_id.split(":")
    prefix = warm_home / "by-id" / full
    directory = jupyter_dir / "kernels" / "envctl-team-app-v1"
    assert result.stdout.splitlines()[:2] == [
        f"installed kernel envctl-team-app-v1 (team/app:v1 ({req[:8]}:{full[:8]})) in "
        f"{directory}",
        f"  id       {env_id}",
    ]
    # --without-ipykernel registers it anyway, with a clear warning and fix.
    assert result.stderr.strip() == (
        "warning: team/app:v1 does not contain ipykernel, so Jupyter lists the kernel but "
        "cannot start it; add it in a new tag (envctl extend team/app:v1 --add ipykernel "
        "--name team/app:<new tag>) and install the kernel for that tag")

    spec = json.loads((directory / "kernel.json").read_text())
    assert spec["argv"] == [str(prefix / "bin/python"), "-m", "ipykernel_launcher", "-f",
                            "{connection_file}"]
    assert spec["display_name"] == f"team/app:v1 ({req[:8]}:{full[:8]})"
    assert spec["language"] == "python"
    assert spec["env"]["CONDA_PREFIX"] == str(prefix)
    assert spec["env"]["PATH"] == f"{prefix}/bin:${{PATH}}"
    assert spec["metadata"]["envctl"] == {"alias": "team/app:v1", "id": env_id,
                                          "platform": "linux-64", "prefix": str(prefix)}
    assert (prefix / "conda-meta/envctl.json").is_file()  # the env was created
    assert (prefix / "bin/python").exists()

    from jupyter_client.kernelspec import KernelSpecManager

    manager = KernelSpecManager()
    assert manager.find_kernel_specs()["envctl-team-app-v1"] == str(directory)
    found = manager.get_kernel_spec("envctl-team-app-v1")
    assert found.argv[0] == str(prefix / "bin/python")
    assert found.display_name == spec["display_name"]

    again = envctl("-C", resolved_catalog.root, "kernel", "install", "team/app:v1", "--json",
                   "--without-ipykernel")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert (data["replaced"], data["created_env"], data["id"]) == (True, False, env_id)

    # list: envctl's kernels only, with the environment each runs in.
    (jupyter_dir / "kernels" / "theirs").mkdir()
    (jupyter_dir / "kernels" / "theirs" / "kernel.json").write_text(
        '{"argv": ["python"], "display_name": "Theirs"}')
    listed = envctl("kernel", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == [{
        "name": "envctl-team-app-v1", "directory": str(directory),
        "display_name": spec["display_name"], "alias": "team/app:v1", "id": env_id,
        "platform": "linux-64", "prefix": str(prefix), "env_exists": True}]
    table = envctl("kernel", "list")
    assert table.stdout.splitlines()[1].split() == [
        "envctl-team-app-v1", "team/app:v1", f"{req[:8]}:{full[:8]}", "linux-64", "ok"]

    # remove: only what envctl wrote, unless forced; a clear error for an unknown name.
    gone = envctl("kernel", "remove", "envctl-team-app-v1")
    assert gone.exit_code == 0, gone.output
    assert gone.stdout == f"removed kernel envctl-team-app-v1 from {directory.parent}\n"
    assert not directory.exists()
    assert json.loads(envctl("kernel", "list", "--json").stdout) == []
    missing = envctl("kernel", "remove", "envctl-team-app-v1")
    assert one_error_line(missing) == (
        f"error: {directory}: no kernel 'envctl-team-app-v1' in {directory.parent} "
        "[not-found] — 'envctl kernel list' shows the kernels envctl installed (--prefix DIR "
        "for a shared Jupyter)")
    theirs = envctl("kernel", "remove", "theirs")
    assert "[foreign-kernel] — remove it with 'jupyter kernelspec remove', or pass --force" \
        in one_error_line(theirs)
    assert envctl("kernel", "remove", "theirs", "--force").exit_code == 0
    assert not (jupyter_dir / "kernels" / "theirs").exists()


@pytest.mark.slow
def test_kernel_install_into_a_prefix_with_a_name(
    resolved_catalog: Resolved, jupyter_dir: Path, warm_home: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "hub"
    result = envctl("-C", resolved_catalog.root, "kernel", "install", "team/app:v2",
                    "--name", "App-Two", "--display-name", "App two", "--prefix", shared,
                    "--without-ipykernel")
    assert result.exit_code == 0, result.output
    spec = json.loads((shared / "share/jupyter/kernels/app-two/kernel.json").read_text())
    assert spec["display_name"] == "App two"
    assert not jupyter_dir.exists()
    listed = envctl("kernel", "list", "--prefix", shared, "--json")
    assert [k["name"] for k in json.loads(listed.stdout)] == ["app-two"]
    assert envctl("kernel", "list").stdout.startswith("no kernels installed by envctl in ")

    both = envctl("-C", resolved_catalog.root, "kernel", "install", "team/app:v2", "--user",
                  "--prefix", shared)
    assert "give --user or --prefix, not both [invalid-arguments]" in one_error_line(both)


@pytest.mark.slow
def test_a_kernel_envctl_did_not_write_is_kept_unless_forced(
    resolved_catalog: Resolved, jupyter_dir: Path, warm_home: Path
) -> None:
    theirs = jupyter_dir / "kernels" / "mine"
    theirs.mkdir(parents=True)
    (theirs / "kernel.json").write_text('{"argv": ["python"], "display_name": "Mine"}')
    refused = envctl("-C", resolved_catalog.root, "kernel", "install", "team/app:v1",
                     "--name", "mine", "--without-ipykernel")
    line = one_error_line(refused)
    assert f"a kernel 'mine' that envctl did not write exists at {theirs}" in line
    assert "[kernel-exists] — choose another --name, or pass --force to replace it" in line
    assert json.loads((theirs / "kernel.json").read_text())["display_name"] == "Mine"
    forced = envctl("-C", resolved_catalog.root, "kernel", "install", "team/app:v1",
                    "--name", "mine", "--force", "--without-ipykernel")
    assert forced.exit_code == 0 and "replaced kernel mine" in forced.stdout
    assert not list(theirs.parent.glob(".mine*"))  # no temp folders left


def _resolved(*names: str, alias: str | None = "team/nb:v1") -> ResolvedRef:
    packages = tuple(
        LockedPackage(manager="conda", name=n, version="1", platform="linux-64",
                      url=f"https://example.invalid/c/linux-64/{n}-1-0.conda", sha256="0" * 64)
        for n in names)
    lock = LockData(platforms=("linux-64",), channels=(), packages=packages)
    return ResolvedRef(asked="x", alias=alias, req_id="a" * 40, full_id="b" * 40,
                       platform="linux-64", lock=lock)


def test_ipykernel_is_read_from_the_lock(tmp_path: Path) -> None:
    assert has_ipykernel(_resolved("python", "ipykernel"))
    assert not has_ipykernel(_resolved("python", "ipython"))


def test_kernelspec_names_and_activation(tmp_path: Path) -> None:
    assert default_kernel_name("team/app:v1.2", "b" * 40) == "envctl-team-app-v1.2"
    assert default_kernel_name(None, "0123456789ab" + "c" * 28) == "envctl-0123456789ab"
    prefix = tmp_path / "env"
    (prefix / "conda-meta").mkdir(parents=True)
    (prefix / "conda-meta/state").write_text('{"env_vars": {"MY_VAR": "1"}}')
    spec = kernel_spec(_resolved("ipykernel", alias=None), prefix)
    assert spec["display_name"] == "envctl (aaaaaaaa:bbbbbbbb)"
    assert spec["env"]["MY_VAR"] == "1"
    assert spec["argv"][0] == str(prefix / "bin/python")
    # activate.d scripts run first, as 'envctl run' runs them.
    (prefix / "etc/conda/activate.d").mkdir(parents=True)
    (prefix / "etc/conda/activate.d/java.sh").write_text("export JAVA_HOME=$CONDA_PREFIX\n")
    wrapped = kernel_spec(_resolved("ipykernel"), prefix)["argv"]
    assert wrapped[:2] == ["bash", "-c"] and wrapped[-5:] == [
        str(prefix / "bin/python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
