"""The README and docs/ say only what the tool does: every ``medfuse ...`` command they show names a subcommand,
flags that exist on it and values it accepts; every method or network they name is one ``--method`` takes; the
quick start holds no placeholder and keeps its two commands (demo, tests)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from medfuse.cli import build_parser
from medfuse.fusion import available_methods

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: a value that stands for the user's own (FILE, N, ADDRESS, <pair>, my_pairs/...): not checked against choices
_PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*$|[<>\[\]{}$]|/|\.")


def _subparsers() -> dict:
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices


def _commands(text: str) -> list[str]:
    """Every ``medfuse ...`` command line shown in ``text``: in fenced code blocks (continuation lines joined,
    comments dropped) and in inline code spans."""
    found = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s#.*$", "", line)
            found += [m.group(1) for m in re.finditer(_COMMAND + r"(?=&&|\|\||;|\s\|\s|$)", line)]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for span in re.findall(r"`([^`\n]+)`", prose):
        found += [m.group(1) for m in re.finditer(_COMMAND + r"(?=&&|;|$)", span)]  # a|b: alternatives
    return found


#: ``medfuse ARGS`` where a shell command starts: at the line's start or after ``&&``, ``||``, ``;``, ``|``, ``(``
_COMMAND = r"(?:^|&&|\|\||;|\||\()\s*medfuse (\S.*?)"


def _tokens(rest: str) -> list[str]:
    try:
        tokens = shlex.split(rest)
    except ValueError:
        tokens = rest.split()
    out = []
    for token in tokens:
        out += [t for t in re.split(r"[\[\]]", token) if t]  # [--workers N | --scheduler ADDRESS]
    return out


def _options(parser) -> dict[str, object]:
    return {opt: action for action in parser._actions for opt in action.option_strings}


def _check_command(command: str, where: str, problems: list[str]) -> None:
    subs = _subparsers()
    tokens = _tokens(command)
    if not tokens:
        return
    name, args = tokens[0], tokens[1:]
    if name.startswith("-"):  # `medfuse --version`
        name, args = None, tokens
    elif name not in subs:
        problems.append(f"{where}: `medfuse {command}`: no subcommand {name!r}")
        return
    options = _options(build_parser())
    if name:
        options.update(_options(subs[name]))
    methods = set(available_methods())
    for k, token in enumerate(args):
        if not token.startswith("--"):
            continue
        flag, _, value = token.partition("=")
        if flag not in options:
            problems.append(f"{where}: `medfuse {command}`: {flag} does not exist on medfuse {name}")
            continue
        if not value and k + 1 < len(args) and not args[k + 1].startswith("-"):
            value = args[k + 1]
        if not value or value == "|" or _PLACEHOLDER.search(value):
            continue
        action = options[flag]
        allowed = set(action.choices) if action.choices else (methods if flag == "--method" else None)
        if allowed is None or action.nargs == 0:
            continue
        for alternative in value.split("|"):
            if alternative not in allowed:
                problems.append(f"{where}: `medfuse {command}`: {flag} {alternative} is not accepted "
                                f"(expected one of {sorted(allowed)})")


def test_every_medfuse_command_in_the_docs_exists():
    problems: list[str] = []
    seen = 0
    for path in DOCS:
        for command in _commands(path.read_text()):
            seen += 1
            _check_command(command, path.name, problems)
    assert seen > 20  # the extraction works
    assert not problems, "\n".join(problems)


def _tables(text: str):
    """``(header, body rows)`` of each markdown table."""
    lines = text.splitlines()
    k = 0
    while k < len(lines) - 1:
        if lines[k].startswith("|") and re.match(r"^\|[\s:|-]+\|$", lines[k + 1].strip()):
            body = []
            j = k + 2
            while j < len(lines) and lines[j].startswith("|"):
                body.append(lines[j])
                j += 1
            yield lines[k], body
            k = j
        else:
            k += 1


def test_every_method_the_docs_name_is_one_method_takes():
    methods = set(available_methods())
    problems = []
    for path in DOCS:
        text = path.read_text()
        # tables about methods or networks: each name in code is a method
        for header, body in _tables(text):
            heads = [h.strip() for h in header.strip().strip("|").split("|")]
            columns = [k for k, h in enumerate(heads) if re.match(r"(default |best )?(method|network|family)\b", h)]
            for row in body:
                cells = [c.strip() for c in row.strip().strip("|").split("|")]
                for k in columns:
                    for name in re.findall(r"`([a-z][a-z0-9_-]*)`", cells[k] if k < len(cells) else ""):
                        if name not in methods:
                            problems.append(f"{path.name}: table row {row[:60]!r} names `{name}`, not a --method")
        # a variant spelled like a method (`light-anchor`, `fmmf-grad`) must be one, or be said not to be
        for name in set(re.findall(r"`([a-z]+-[a-z0-9-]+)`", text)):
            if name.split("-")[0] in methods and name not in methods:
                problems.append(f"{path.name}: `{name}` reads as a method, which --method rejects")
        # `--method a|b|c` in prose
        for value in re.findall(r"--method ([a-z][a-z|-]*[a-z])", text):
            problems += [f"{path.name}: --method {m} is not accepted" for m in value.split("|") if m not in methods]
    assert not problems, "\n".join(problems)


def _quick_start() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("## Quick start", 1)[1].split("\n## ", 1)[0]


def test_quick_start_has_no_placeholder_and_its_two_commands():
    quick = _quick_start()
    assert not re.search(r"<[^>]*(URL|url|repository)[^>]*>", quick), "the clone command holds a placeholder"
    blocks = re.findall(r"```bash\n(.*?)```", quick, flags=re.S)
    clone = [b for b in blocks if "git clone" in b]
    assert clone and re.search(r"git clone https://\S+", clone[0])
    demo = [b for b in blocks if "medfuse demo" in b]
    tests = [b for b in blocks if "python -m pytest" in b]
    assert len(demo) == 1 and "pip install" in demo[0]
    assert len(tests) == 1 and '".[test]"' in tests[0]
    # the demo needs no torch: its command installs none (PyPI's Linux torch is a multi-GB CUDA build)
    assert "torch" not in demo[0]
    # .ci/run runs the README's test command
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[test]"' in ci and "python -m pytest" in ci


def test_torch_claims_name_what_each_command_installs():
    quick = _quick_start()
    assert "takes the CPU wheel" not in (ROOT / "README.md").read_text()
    assert "download.pytorch.org/whl/cpu" in quick  # how a CPU-only user avoids the CUDA build
    assert re.search(r"CUDA", quick) and re.search(r"PyPI", quick)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_docs_install_from_the_source_tree(path):
    """medfuse is not on PyPI: `pip install "medfuse[...]"` would fetch another project or fail."""
    text = path.read_text()
    assert not re.search(r"pip install [\"']?medfuse\b", text), path.name


def test_the_command_check_finds_what_a_reader_would_trip_on():
    cases = {"fuse --methd max": "--methd", "fuse --method light-anchor": "light-anchor",
             "demo --modality mri": "mri", "batch --dataset harvard|oasis ROOT --out OUT": "oasis",
             "infos FILE": "infos"}
    for command, culprit in cases.items():
        problems: list[str] = []
        _check_command(command, "x", problems)
        assert len(problems) == 1 and culprit in problems[0], (command, problems)
    problems = []
    for command in ("batch --dataset harvard|brats|adni ROOT --out OUT [--workers N | --scheduler ADDRESS]",
                    "fuse --reference t1.nii.gz --moving pet/ --out f.nii.gz --method max --registration=affine"):
        _check_command(command, "x", problems)
    assert problems == []


def test_batch_docs_state_the_default_method_batch_uses():
    """docs/batch.md once said batch used 'the shipped network of each pair' while every case ran `max`: the
    default is the pipeline's, per pair, from medfuse/weights/defaults.json."""
    import json

    text = (ROOT / "docs" / "batch.md").read_text()
    line = next(x for x in text.split("\n\n") if "`--method M`" in x)
    assert "shipped network" not in line and "defaults.json" in line
    defaults = json.loads((ROOT / "medfuse" / "weights" / "defaults.json").read_text())["method"]
    for pair, method in defaults.items():
        assert f"`{method}`" in line, (pair, method)


def test_every_repository_path_the_docs_name_exists():
    problems = []
    for path in DOCS:
        for name in set(re.findall(r"`((?:medfuse|tests|benchmarks|docs|bundles|slicer_extension|\.ci)/[^`\s]*)`",
                                   path.read_text())):
            if re.search(r"[<>{}*|]", name):  # a pattern (`bundles/<pair>_fusion`), not one path
                continue
            target = name.split("::")[0].rstrip("/")
            if not (ROOT / target).exists():
                problems.append(f"{path.name}: `{name}` does not exist")
    assert not problems, "\n".join(problems)
