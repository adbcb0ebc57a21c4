"""Every text file the harness reads or writes names its encoding.

Without `encoding=`, Python uses the locale's: a record written as UTF-8 on one
machine is read back as ASCII or Latin-1 on another (see the locale test in
test_leaderboard.py). This scan finds any call site that forgot, in all of harness/.
"""

from __future__ import annotations

import ast

from conftest import ROOT

# sandbox_boot.py talks only to kernel files under /proc (uid_map, mountinfo, status), never to project files
NOT_PROJECT_FILES = {"harness/sandbox_boot.py"}


def calls_without_encoding(path) -> list[int]:
    """Line numbers of text-mode open/read_text/write_text calls without `encoding=`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if any(k.arg == "encoding" for k in node.keywords):
            continue
        if name == "read_text" and not node.args or name == "write_text" and len(node.args) < 2:
            found.append(node.lineno)
        elif name == "open" and not (isinstance(func, ast.Attribute) and getattr(func.value, "id", "") == "os"):
            modes = [a for a in node.args[1:2]] + [k.value for k in node.keywords if k.arg == "mode"]
            mode = modes[0].value if modes and isinstance(modes[0], ast.Constant) else "r"
            if "b" not in mode:
                found.append(node.lineno)
    return sorted(found)


def test_every_text_read_and_write_in_the_harness_names_its_encoding():
    files = [p for p in sorted((ROOT / "harness").rglob("*.py")) if str(p.relative_to(ROOT)) not in NOT_PROJECT_FILES]
    assert len(files) > 50
    missing = [f"{path.relative_to(ROOT)}:{line}" for path in files for line in calls_without_encoding(path)]
    assert missing == [], "name the encoding (encoding=\"utf-8\"):\n" + "\n".join(missing)


def test_the_scan_finds_what_it_is_meant_to_find(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('open(p)\nopen(p, "w")\nopen(p, "rb")\nopen(p, encoding="utf-8")\nP.read_text()\n'
                      'P.read_text(encoding="utf-8")\nP.write_text(s)\nP.write_text(s, "utf-8")\n'
                      'os.open(p, 0)\nP.open(mode="a")\n', encoding="utf-8")
    assert calls_without_encoding(sample) == [1, 2, 5, 7, 10]
