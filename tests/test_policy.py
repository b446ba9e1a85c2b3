"""The rules as pure functions: two revisions as dicts in, violations out. No git here."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from envctl import yamlio
from envctl.config import parse_config
from envctl.policy import (
    ZERO_SHA,
    CommitInfo,
    FileChange,
    MemorySnapshot,
    PushContext,
    RefUpdate,
    SignatureCheck,
    Violation,
    check_commit,
    check_ref_update,
    key_fingerprint,
    next_tag,
)
from envctl.testing.handlocks import (
    CHANNEL_URL,
    config_yaml,
    env_yaml,
    lock_files,
    package,
)

CI = "ci@example.org"
KEY = "ssh-ed25519 " + base64.b64encode(b"\0\0\0\x0bssh-ed25519" + b"k" * 36).decode() + " ci"
OTHER_KEY = (
    "ssh-ed25519 " + base64.b64encode(b"\0\0\0\x0bssh-ed25519" + b"o" * 36).decode() + " other"
)
GOOD = SignatureCheck("good", principal=CI, fingerprint=key_fingerprint(KEY))
ENV = "envs/team/app.yaml"
LOCK = "locks/team/app/v1.conda-lock.yml"
META = "locks/team/app/v1.meta.yaml"

Files = dict[str, str]


def base_files(**config: object) -> Files:
    files: Files = {
        "catalog.yaml": config_yaml(signers=[(CI, KEY)], **config),  # type: ignore[arg-type]
        ENV: env_yaml(
            {
                "v1": {"dependencies": ["python=3.11"]},
                "v2": {"dependencies": ["python=3.12"]},
                "stable": {"points_to": "v1"},
            },
            owners=["alice"],
        ),
    }
    files.update(lock_files(files, "team/app:v1"))
    return files


def edit_env(files: Files, path: str = ENV, **tags: object) -> Files:
    """A copy of ``files`` with the env file's tags replaced (None deletes a tag)."""
    data = yamlio.load(files[path])
    for tag, spec in tags.items():
        if spec is None:
            data["tags"].pop(tag, None)
        else:
            data["tags"][tag] = spec
    return {**files, path: yamlio.dump(data)}


def changes_between(before: Mapping[str, str], after: Mapping[str, str]) -> tuple[FileChange, ...]:
    out = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            out.append(FileChange(path, "D", new_mode="000000"))
        elif path not in before:
            out.append(FileChange(path, "A", old_mode="000000", size=len(after[path])))
        elif before[path] != after[path]:
            out.append(FileChange(path, "M", size=len(after[path])))
    return tuple(out)


def judge(
    before: Mapping[str, str],
    after: Mapping[str, str],
    *,
    pusher: str | None = None,
    signature: SignatureCheck | None = GOOD,
    committer: str = CI,
    changes: tuple[FileChange, ...] | None = None,
) -> list[Violation]:
    config = parse_config(yamlio.load(before.get("catalog.yaml") or after["catalog.yaml"]))
    commit = CommitInfo(
        sha="c" * 40,
        parents=("p" * 40,),
        committer_email=committer,
        changes=changes if changes is not None else changes_between(before, after),
        signature=signature,
    )
    return check_commit(
        MemorySnapshot(before), MemorySnapshot(after), commit, PushContext(config, pusher)
    )


def rules(violations: list[Violation]) -> list[str]:
    return [v.rule for v in violations]


@pytest.fixture(scope="module")
def files() -> Files:
    return base_files()


# -- frozen tags --------------------------------------------------------------------------


def test_adding_a_tag_and_an_env_is_accepted(files: Files) -> None:
    after = edit_env(files, v3={"dependencies": ["numpy"]})
    after["envs/team/other.yaml"] = env_yaml({"v1": {"dependencies": ["numpy"]}})
    assert judge(files, after) == []


def test_editing_a_frozen_tag_is_refused_with_a_new_tag_suggested(files: Files) -> None:
    after = edit_env(files, v1={"dependencies": ["python=3.11", "numpy"]})
    [v] = judge(files, after)
    assert (v.rule, v.file, v.tag) == ("frozen-tag", ENV, "v1")
    assert "add tag v3 instead" in v.fix
    # The commit named is the one refused, labelled so: not the commit that locked v1.
    assert v.render() == (
        f"{ENV} [v1]: frozen tag team/app:v1 cannot change: its lock ({LOCK}) is committed "
        f"(refused commit {'c' * 12}) [frozen-tag] — add tag v3 instead (only 'retired:' may "
        "change on a frozen tag)"
    )


@pytest.mark.parametrize("how", ["delete", "rename"])
def test_deleting_or_renaming_a_frozen_tag_is_refused(files: Files, how: str) -> None:
    after = edit_env(files, v1=None, stable={"points_to": "v2"})
    if how == "rename":
        after = edit_env(after, **{"v1-renamed": {"dependencies": ["python=3.11"]}})
    assert rules(judge(files, after)) == ["frozen-tag"]


def test_deleting_the_env_file_of_a_frozen_tag_is_refused(files: Files) -> None:
    after = {k: v for k, v in files.items() if k != ENV}
    assert "frozen-tag" in rules(judge(files, after))


def test_retired_is_the_one_allowed_change(files: Files) -> None:
    after = edit_env(files, v1={"dependencies": ["python=3.11"], "retired": "CVE-2024-1"})
    assert judge(files, after) == []
    again = edit_env(after, v1={"dependencies": ["python=3.11"], "retired": "superseded by v2"})
    assert judge(after, again) == []


def test_reformatting_a_frozen_tag_is_accepted(files: Files) -> None:
    after = {**files, ENV: "# a comment\n" + files[ENV]}
    assert judge(files, after) == []


def test_pending_tags_may_be_fixed_and_deleted(files: Files) -> None:
    fixed = edit_env(files, v2={"dependencies": ["python=3.12", "numpy"]})
    assert judge(files, fixed) == []
    assert judge(files, edit_env(files, v2=None)) == []


@pytest.mark.parametrize("path", [LOCK, META])
def test_frozen_lock_and_meta_are_byte_for_byte_frozen(files: Files, path: str) -> None:
    changed = {**files, path: files[path] + "# touched\n"}
    assert rules(judge(files, changed)) == ["frozen-lock"]
    deleted = {k: v for k, v in files.items() if k != path}
    assert rules(judge(files, deleted)) == ["frozen-lock"]


def test_config_is_read_before_the_push(files: Files) -> None:
    """Making v1 mutable and editing it in one commit: judged by the old patterns."""
    after = edit_env(files, v1={"dependencies": ["numpy"]})
    after["catalog.yaml"] = config_yaml(signers=[(CI, KEY)], mutable_tags=["stable", "v*"])
    assert set(rules(judge(files, after))) == {"frozen-tag", "immutable-stays-immutable"}


def test_mutable_tags_cannot_unfreeze_a_frozen_tag(files: Files) -> None:
    after = {**files, "catalog.yaml": config_yaml(signers=[(CI, KEY)], mutable_tags=["*"])}
    [v] = judge(files, after)
    assert v.rule == "immutable-stays-immutable" and "team/app:v1" in v.message
    harmless = {**files, "catalog.yaml": config_yaml(signers=[(CI, KEY)],
                                                      mutable_tags=["stable", "dev-*"])}
    assert judge(files, harmless) == []


# -- locks --------------------------------------------------------------------------------


def _with_v2_lock(files: Files, **kwargs: object) -> Files:
    return {**files, **lock_files(files, "team/app:v2", **kwargs)}  # type: ignore[arg-type]


def test_a_signed_lock_that_matches_its_spec_is_accepted(files: Files) -> None:
    assert judge(files, _with_v2_lock(files)) == []


@pytest.mark.parametrize(
    ("signature", "committer", "rule"),
    [
        (None, CI, "unsigned-lock"),
        (SignatureCheck("none"), CI, "unsigned-lock"),
        (SignatureCheck("unknown-key", fingerprint="SHA256:x"), CI, "unknown-signer"),
        (SignatureCheck("good", principal="bob@example.org", fingerprint="SHA256:x"), CI,
         "unknown-signer"),
        (SignatureCheck("good", principal=CI, fingerprint=key_fingerprint(OTHER_KEY)), CI,
         "unknown-signer"),
        (GOOD, "mallory@example.org", "forged-signer"),
        (SignatureCheck("bad", detail="tampered"), CI, "bad-signature"),
    ],
)
def test_lock_commits_must_be_signed_by_an_allowed_committer(
    files: Files, signature: SignatureCheck | None, committer: str, rule: str
) -> None:
    violations = judge(files, _with_v2_lock(files), signature=signature, committer=committer)
    assert rules(violations) == [rule]


def test_an_unsigned_lock_says_how_to_take_it_out_of_the_commit(files: Files) -> None:
    [v] = judge(files, _with_v2_lock(files), signature=None)
    assert v.rule == "unsigned-lock"
    assert v.fix == (
        "locks are written by CI; drop them from your commit: git rm --cached "
        "locks/team/app/v2.conda-lock.yml locks/team/app/v2.meta.yaml && git commit --amend"
    )


def test_a_signer_added_in_the_same_push_does_not_count(files: Files) -> None:
    after = _with_v2_lock(files)
    after["catalog.yaml"] = config_yaml(signers=[(CI, KEY), ("bob@example.org", OTHER_KEY)])
    bob = SignatureCheck("good", principal="bob@example.org",
                         fingerprint=key_fingerprint(OTHER_KEY))
    assert rules(judge(files, after, signature=bob, committer="bob@example.org")) == [
        "unknown-signer"
    ]


def test_req_id_must_match_the_spec(files: Files) -> None:
    after = _with_v2_lock(files, req_ids={"linux-64": "f" * 40})
    assert rules(judge(files, after)) == ["req-id-mismatch"]
    # The spec changed after the lock was made: the lock no longer matches.
    stale = {**after, **lock_files(files, "team/app:v2")}
    stale = edit_env(stale, v2={"dependencies": ["python=3.12", "pandas"]})
    assert rules(judge(files, stale)) == ["req-id-mismatch"]


def test_packages_must_come_from_allowed_channels(files: Files) -> None:
    evil = package("python", "linux-64", url="https://evil.example.com/main/linux-64/x.conda")
    sneaky = package("numpy", "linux-64", url=f"{CHANNEL_URL}/../evil/linux-64/y.conda")
    pip = package("requests", "linux-64", manager="pip",
                  url="https://elsewhere.example.com/requests-2.0-py3-none-any.whl")
    after = _with_v2_lock(files, packages=[evil, sneaky, pip, package("ok", "linux-64")])
    assert rules(judge(files, after)) == ["channel-not-allowed"] * 3


def test_every_package_needs_a_sha256(files: Files) -> None:
    after = _with_v2_lock(files, packages=[package("python", "linux-64", sha256=None)])
    [v] = judge(files, after)
    assert v.rule == "missing-sha256" and "python=1.0" in v.message


def test_lock_hash_orphans_and_halves(files: Files) -> None:
    after = _with_v2_lock(files)
    lock2 = "locks/team/app/v2.conda-lock.yml"
    tampered = {**after, lock2: after[lock2].replace("name: python\n", "name: pythom\n")}
    assert rules(judge(files, tampered)) == ["lock-hash-mismatch"]
    # A package swapped, and the meta's lock hash updated to match: full_id catches it.
    swapped = after[lock2].replace("python-1.0-0.conda", "python-6.6-0.conda")
    meta2 = after["locks/team/app/v2.meta.yaml"].replace(
        hashlib.sha256(after[lock2].encode()).hexdigest(),
        hashlib.sha256(swapped.encode()).hexdigest(),
    )
    swap = {**after, lock2: swapped, "locks/team/app/v2.meta.yaml": meta2}
    assert rules(judge(files, swap)) == ["full-id-mismatch"]
    orphan = {**files, **lock_files(edit_env(files, v9={"dependencies": ["x"]}), "team/app:v9")}
    assert rules(judge(files, orphan)) == ["orphan-lock"]
    half = {k: v for k, v in after.items() if k != "locks/team/app/v2.meta.yaml"}
    assert rules(judge(files, half)) == ["invalid-lockfile"]


def test_a_rolling_mutable_tag_may_be_relocked() -> None:
    files = base_files(mutable_tags=["stable", "nightly"])
    nightly = edit_env(files, nightly={"dependencies": ["python"]})
    nightly = {**nightly, **lock_files(nightly, "team/app:nightly")}
    relocked = {
        **nightly,
        **lock_files(nightly, "team/app:nightly", exclude_newer="2024-02-01T00:00:00Z"),
    }
    assert judge(nightly, relocked) == []


# -- pointers -------------------------------------------------------------------------------


def test_moving_a_pointer_is_accepted(files: Files) -> None:
    assert judge(files, edit_env(files, stable={"points_to": "v2"})) == []


@pytest.mark.parametrize(
    ("tags", "rule"),
    [
        ({"stable": {"points_to": "v7"}}, "pointer-missing"),
        ({"stable": {"points_to": "other/env:v1"}}, "pointer-other-env"),
        ({"latest": {"points_to": "v1"}, "stable": {"points_to": "latest"}},
         "pointer-to-mutable"),
        ({"v3": {"points_to": "v1"}}, "pointer-immutable"),
        ({"v2": None}, None),  # deleting a pending tag nobody points to is fine
        ({"v2": None, "stable": {"points_to": "v2"}}, "pointer-missing"),
    ],
)
def test_pointer_rules(files: Files, tags: dict[str, object], rule: str | None) -> None:
    assert rules(judge(files, edit_env(files, **tags))) == ([rule] if rule else [])


# -- names and paths -------------------------------------------------------------------------


def test_near_duplicate_tags_and_names_are_refused(files: Files) -> None:
    tag = edit_env(files, **{"v1_0": {"dependencies": ["a"]}, "v1-0": {"dependencies": ["b"]}})
    assert rules(judge(files, tag)) == ["name-collision", "name-collision"]
    env = {**files, "envs/Team/app.yaml": files[ENV]}
    assert rules(judge(files, env)) == ["invalid-name"]
    fine = {**files, "envs/team_x/app.yaml": files[ENV], "envs/team/a.pp.yaml": files[ENV]}
    assert judge(files, fine) == []  # "a.pp" is not "app": separators fold, they do not vanish
    ml = {**files, "envs/ml-team/my-env.yaml": env_yaml({"v1": {"dependencies": ["a"]}})}
    assert judge(ml, {**ml, "envs/ml-team/my-env/sub.yaml": ml[ENV]}) == []
    for path in ("envs/ml_team/new.yaml", "envs/ml-team/my_env/x.yaml", "envs/ml.team.yaml"):
        [v] = judge(ml, {**ml, path: env_yaml({"v1": {"dependencies": ["a"]}})})
        assert v.rule == "name-collision", path


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("setup.py", "path-not-allowed"),
        ("scripts/x.sh", "path-not-allowed"),
        ("envs/team/app.yml", "invalid-name"),
        ("envs/team/Bad.yaml", "invalid-name"),
        ("locks/team/app/v1.txt", "invalid-name"),
        ("README.md", None),
        ("docs/guide/x.png", None),
        (".github/workflows/envctl-check.yml", None),
        ("CODEOWNERS", None),
        ("envs/.gitkeep", None),
        ("locks/team/.gitkeep", None),
    ],
)
def test_path_allow_list(files: Files, path: str, rule: str | None) -> None:
    assert rules(judge(files, {**files, path: "x: y\n"})) == ([rule] if rule else [])


def test_symlinks_and_submodules_are_refused(files: Files) -> None:
    for mode, expected in (("120000", "symlink"), ("160000", "not-a-file")):
        change = FileChange("envs/team/link.yaml", "A", old_mode="000000", new_mode=mode)
        assert rules(judge(files, files, changes=(change,))) == [expected]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("tags:\n  v3: {dependencies: [a]}\n  v3: {dependencies: [b]}\n", "duplicate-key"),
        ("tags:\n  v3: &x {dependencies: [a]}\n  v4: *x\n", "yaml-alias"),
        ("tags: {v3: {dependencies: [a]}}\n" + "#" * 1_000_001, "file-too-large"),
        ("tags:\n  v3: {dependencies: [a], bogus: 1}\n", "schema"),
    ],
)
def test_unsafe_yaml_is_refused(files: Files, text: str, rule: str) -> None:
    assert rules(judge(files, {**files, "envs/team/new.yaml": text})) == [rule]


def test_big_non_yaml_files_are_refused(files: Files) -> None:
    big = FileChange("docs/huge.bin", "A", old_mode="000000", size=6_000_000)
    assert rules(judge(files, files, changes=(big,))) == ["file-too-large"]


# -- owners and config ---------------------------------------------------------------------


def test_owners(files: Files) -> None:
    after = edit_env(files, v3={"dependencies": ["numpy"]})
    assert judge(files, after, pusher="alice") == []
    assert judge(files, after, pusher=None) == []  # no identity: CODEOWNERS/review decides
    [v] = judge(files, after, pusher="mallory")
    assert v.rule == "not-owner" and "owners: alice" in v.message
    # Adding yourself as an owner is itself a change by a non-owner.
    data = yamlio.load(after[ENV])
    data["owners"] = ["alice", "mallory"]
    assert rules(judge(files, {**after, ENV: yamlio.dump(data)}, pusher="mallory")) == [
        "not-owner"
    ]


def test_admins_may_change_envs_and_config() -> None:
    files = base_files(admins=["root"])
    after = edit_env(files, v3={"dependencies": ["numpy"]})
    assert judge(files, after, pusher="@Root") == []
    config = {**files, "catalog.yaml": config_yaml(signers=[(CI, KEY)], admins=["root", "bob"])}
    assert judge(files, config, pusher="root") == []
    assert rules(judge(files, config, pusher="alice")) == ["not-owner"]
    assert rules(judge(files, {k: v for k, v in files.items() if k != "catalog.yaml"})) == [
        "config-deleted"
    ]


def test_an_invalid_config_change_is_refused(files: Files) -> None:
    broken = {**files, "catalog.yaml": files["catalog.yaml"] + "bogus: 1\n"}
    assert rules(judge(files, broken)) == ["schema"]
    dup = {**files, "catalog.yaml": files["catalog.yaml"] + "branch: other\n"}
    assert rules(judge(files, dup)) == ["duplicate-key"]


# -- the ref -------------------------------------------------------------------------------


def test_ref_updates() -> None:
    config = parse_config(yamlio.load(config_yaml()))
    main = "refs/heads/main"
    a, b = "a" * 40, "b" * 40
    assert check_ref_update(RefUpdate(main, a, b, fast_forward=True), config) == []
    assert check_ref_update(RefUpdate(main, ZERO_SHA, b), config) == []
    assert rules(check_ref_update(RefUpdate(main, a, b, fast_forward=False), config)) == [
        "force-push"
    ]
    assert rules(check_ref_update(RefUpdate(main, a, ZERO_SHA), config)) == ["branch-deletion"]
    assert check_ref_update(RefUpdate("refs/heads/dev", a, ZERO_SHA), config) == []
    assert check_ref_update(RefUpdate("refs/tags/main", a, b, fast_forward=False), config) == []


def test_next_tag_and_to_dict() -> None:
    assert next_tag(["v1", "v10", "stable"]) == "v11"
    assert next_tag(["stable"]) == "v1"
    v = Violation("m", commit="c" * 40, file="f", tag="t", rule="r", fix="x")
    assert v.to_dict()["commit"] == "c" * 40
    assert v.render() == "f [t]: m (refused commit cccccccccccc) [r] — x"


# -- requirements -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "rule", "says"),
    [
        ({"dependencies": ["tinynum>=>5"]}, "invalid-requirement", "'tinynum>=>5'"),
        ({"pypi": ["itsdangerous=>2"]}, "invalid-requirement", "'itsdangerous=>2'"),
        ({"dependencies": ["python"], "target": {"linux-64": {"dependencies": ["numpy >=>1"]}}},
         "invalid-requirement", "'numpy >=>1'"),
        ({"dependencies": ["elsewhere::numpy"]}, "unknown-channel", "'elsewhere'"),
        ({"channels": ["main", "elsewhere"], "dependencies": ["numpy"]}, "unknown-channel",
         "'elsewhere'"),
    ],
)
def test_a_new_tag_must_be_resolvable(files: Files, spec: dict[str, object], rule: str,
                                      says: str) -> None:
    [v] = judge(files, edit_env(files, v3=spec))
    assert (v.rule, v.file, v.tag) == (rule, ENV, "v3")
    assert says in v.message and v.line is not None and v.fix


def test_changing_a_pending_tag_checks_only_what_it_gains(files: Files) -> None:
    # v2 is pending: fixing it is allowed, and a good change is accepted...
    assert judge(files, edit_env(files, v2={"dependencies": ["python=3.12", "numpy>=1"]})) == []
    # ...a broken requirement is not, with the line of that requirement.
    after = edit_env(files, v2={"dependencies": ["python=3.12", "numpy>=>1"]})
    [v] = judge(files, after)
    assert v.rule == "invalid-requirement" and v.tag == "v2"
    assert yamlio.load(after[ENV])["tags"]["v2"]["dependencies"].item_lines[1] == v.line


def test_requirements_already_there_are_not_parsed_again() -> None:
    """A bad requirement that is already on the branch (say from before this rule) does not
    block an unrelated change to its tag; the push that adds one is what is refused."""
    files = base_files()
    files = edit_env(files, v2={"dependencies": ["python=3.12", "bad>=>1"]})
    after = edit_env(files, v2={"dependencies": ["python=3.12", "bad>=>1"], "description": "x"})
    assert judge(files, after) == []


@settings(max_examples=400, deadline=None)
@given(kind=st.sampled_from(["conda", "pypi"]), data=st.data())
def test_the_parser_free_shapes_are_accepted_by_the_parsers(kind: str, data: st.DataObject) -> None:
    """surely_valid is a strict subset of what envctl.spec's parsers accept: a requirement it
    lets through without rattler could otherwise be one CI cannot resolve."""
    from envctl.policy import _SURELY_CONDA, _SURELY_PYPI, surely_valid
    from envctl.spec import normalize_conda_spec, normalize_pypi_requirement

    pattern = _SURELY_CONDA if kind == "conda" else _SURELY_PYPI
    text = data.draw(st.from_regex(pattern, fullmatch=True))
    assert surely_valid(kind, text)
    if kind == "conda":
        normalize_conda_spec(text, channels=["main"])
    else:
        normalize_pypi_requirement(text)


@pytest.mark.parametrize(
    ("kind", "text"),
    [("conda", "numpy"), ("conda", "python=3.11"), ("conda", "numpy >=1.26,<2"),
     ("conda", "python 3.11.*"), ("conda", "libgcc-ng>=12"), ("pypi", "itsdangerous==2.1.2"),
     ("pypi", "rich[jupyter]>=13.7,<14"), ("pypi", "requests")],
)
def test_common_requirements_need_no_parser(kind: str, text: str) -> None:
    from envctl.policy import surely_valid

    assert surely_valid(kind, text)


def test_a_push_that_changes_no_requirement_does_not_import_rattler(
    files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "rattler", None)  # any import of it now fails
    assert judge(files, edit_env(files, stable={"points_to": "v2"})) == []
    retired = {"dependencies": ["python=3.11"], "retired": "use v2"}
    assert judge(files, edit_env(files, v1=retired)) == []
    # Nor does a new tag with common requirements...
    assert judge(files, edit_env(files, v3={"dependencies": ["python=3.12", "numpy >=1.26,<2"],
                                            "pypi": ["rich==13.7.1"]})) == []
    with pytest.raises(ImportError):  # ...only an unusual one goes to rattler's parser
        judge(files, edit_env(files, v3={"dependencies": ["numpy[build=py_0]"]}))


# -- random edit sequences -------------------------------------------------------------------

FROZEN_SPEC = {"dependencies": ["python=3.11"]}


class FrozenTagMachine(RuleBasedStateMachine):
    """Random edits pushed one after another; whatever policy accepts becomes the branch.

    Invariant: v1 (frozen at the start) keeps its spec (up to retired:) and its lock bytes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.files: Files = dict(FILES)
        self.accepted = 0

    def push(self, after: Files) -> None:
        if not judge(self.files, after):
            self.files = after
            self.accepted += 1

    def tags(self) -> dict[str, object]:
        return dict(yamlio.load(self.files[ENV])["tags"]) if ENV in self.files else {}

    @rule(dep=st.sampled_from(["numpy", "python=3.12", "pandas", "python=3.11"]),
          tag=st.sampled_from(["v1", "v2", "v3", "stable", "nightly"]))
    def add_dependency(self, dep: str, tag: str) -> None:
        spec = dict(self.tags().get(tag) or {"dependencies": []})
        spec.pop("points_to", None)
        spec["dependencies"] = [*spec.get("dependencies", []), dep]
        self.push(edit_env(self.files, **{tag: spec}) if ENV in self.files else self.files)

    @rule(tag=st.sampled_from(["v1", "v2", "v3", "stable"]))
    def delete_tag(self, tag: str) -> None:
        if ENV in self.files:
            self.push(edit_env(self.files, **{tag: None}))

    @rule(old=st.sampled_from(["v1", "v2"]), new=st.sampled_from(["v1-0", "v1_0", "v9"]))
    def rename_tag(self, old: str, new: str) -> None:
        tags = self.tags()
        if old in tags:
            self.push(edit_env(self.files, **{old: None, new: tags[old]}))

    @rule(field=st.sampled_from(["channels", "platforms", "description", "retired"]),
          value=st.sampled_from(["main", "linux-64", "osx-arm64", "why"]))
    def set_field(self, field: str, value: str) -> None:
        spec = dict(self.tags().get("v1") or {})
        spec.pop("points_to", None)
        spec[field] = [value] if field in ("channels", "platforms") else value
        if ENV in self.files:
            self.push(edit_env(self.files, v1=spec))

    @rule(to=st.sampled_from(["v1", "v2", "v7", "stable"]))
    def move_pointer(self, to: str) -> None:
        if ENV in self.files:
            self.push(edit_env(self.files, stable={"points_to": to}))

    @rule(patterns=st.lists(st.sampled_from(["stable", "v*", "*", "v1", "dev-*", "nightly"]),
                            min_size=1, max_size=3))
    def change_mutable_tags(self, patterns: list[str]) -> None:
        self.push({**self.files, "catalog.yaml": config_yaml(signers=[(CI, KEY)],
                                                            mutable_tags=patterns)})

    @rule(path=st.sampled_from([LOCK, META, ENV]), delete=st.booleans())
    def touch_file(self, path: str, delete: bool) -> None:
        if path not in self.files:
            return
        if delete:
            self.push({k: v for k, v in self.files.items() if k != path})
        else:
            self.push({**self.files, path: self.files[path] + "# x\n"})

    @rule(tag=st.sampled_from(["v1", "v2", "nightly"]))
    def relock(self, tag: str) -> None:
        if tag in self.tags():
            try:
                locks = lock_files(self.files, f"team/app:{tag}",
                                   exclude_newer="2030-01-01T00:00:00Z")
            except Exception:
                return  # the spec cannot be built (e.g. unknown channel): CI would fail too
            self.push({**self.files, **locks})

    @invariant()
    def v1_is_frozen(self) -> None:
        assert ENV in self.files
        v1 = dict(self.tags()["v1"])  # type: ignore[arg-type]
        v1.pop("retired", None)
        assert v1 == FROZEN_SPEC
        assert self.files[LOCK] == FILES[LOCK] and self.files[META] == FILES[META]


FILES = base_files(mutable_tags=["latest", "stable", "nightly"])
FrozenTagMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_policy_never_accepts_a_change_to_a_frozen_tag = FrozenTagMachine.TestCase


# -- lock details ----------------------------------------------------------------------------


def test_extends_pins_the_base_full_id(files: Files) -> None:
    after = edit_env(files, v3={"extends": "v1", "dependencies": ["numpy"]})
    locked = {**after, **lock_files(after, "team/app:v3")}
    assert judge(files, locked) == []
    # Resolved against another base lock than the committed one.
    other_base = yamlio.load(files[META])
    other_base["platforms"]["linux-64"]["full_id"] = "0" * 40
    forged = {**after, **lock_files({**after, META: yamlio.dump(other_base)}, "team/app:v3")}
    assert rules(judge(files, forged)) == ["base-mismatch"]


@pytest.mark.parametrize(
    ("url", "values", "ok"),
    [
        ("https://conda.example.org/main/linux-64/a-1-0.conda", ["https://conda.example.org/main"],
         True),
        ("https://conda.example.org/mainx/linux-64/a.conda", ["https://conda.example.org/main"],
         False),
        ("https://conda.example.org/main/../x/linux-64/a.conda", ["https://conda.example.org/main"],
         False),
        ("https://conda.example.org/main/linux-64/a.conda?x=1", ["https://conda.example.org/main"],
         False),
        # credentials are never recorded in a lock: the value's are removed before comparing
        ("https://repo.example.org/main/noarch/a.conda",
         ["https://user:${TOKEN}@repo.example.org/t/${T}/main"], True),
        ("https://conda.anaconda.org/conda-forge/noarch/a.conda", ["conda-forge"], True),
        ("file:///home/ci/catalog/.channel/noarch/a.conda", ["./.channel"], True),
        ("file:///home/ci/.channel2/noarch/a.conda", ["./.channel"], False),
        ("file:///srv/channel/linux-64/a.conda", ["/srv/channel"], True),
        ("file:///srv/channel/sub/linux-64/a.conda", ["/srv/channel"], False),
        ("https://evil.example.com/home/ci/.channel/noarch/a.conda", ["./.channel"], False),
    ],
)
def test_conda_url_allowed(url: str, values: list[str], ok: bool) -> None:
    from envctl.lockcheck import conda_url_allowed

    assert conda_url_allowed(url, values) is ok
