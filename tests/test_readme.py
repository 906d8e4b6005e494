"""Every Python code block of the README runs as written (in a scratch folder)."""
import os
import re
import textwrap

import pytest

README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")


def _blocks():
    text = open(README, encoding="utf-8").read()
    found = re.findall(r"^( *)```python\n(.*?)^\1```", text, flags=re.S | re.M)
    return [textwrap.dedent(code) for _, code in found]


def test_the_readme_has_code_blocks():
    assert len(_blocks()) >= 3


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_code_block_runs(index, tmp_path, monkeypatch):
    code = _blocks()[index]
    if "dask" in code:
        pytest.importorskip("dask.distributed")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md block {index}", "exec"), {"__name__": "__readme__"})
