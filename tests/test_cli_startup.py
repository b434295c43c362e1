"""The command line starts light: `--help` and an option refused as it is parsed import none
of the heavy libraries (the model, LangChain, scipy, the database layer), so they answer at
once; and the demo, the one command that reaches into evals/, loads no benchmark.

Each case runs in a fresh interpreter, since this test process has long imported them all.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
HEAVY = (
    "torch",
    "sentence_transformers",
    "transformers",
    "langchain_core",
    "langchain_openai",
    "openai",
    "scipy",
    "statsmodels",
    "numpy",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "uvicorn",
    "fastapi",
    "procrastinate",
    "evals",
    "spacy",
    "thinc",
    "pysbd",
)
# Runs the CLI's app in-process with the given arguments, then prints on its last line the
# exit code and which of the named top-level modules were imported.
PROBE = """
import json, sys
from service.cli import app
try:
    app(sys.argv[2:], prog_name="fairdraft")
    code = 0
except SystemExit as done:
    code = done.code
loaded = sorted(name for name in json.loads(sys.argv[1]) if name in sys.modules)
print(json.dumps({"code": code, "loaded": loaded}))
"""
CASES = {
    "help": (["--help"], 0, "draft-cycle"),
    "command help": (["draft", "--help"], 0, "--kind"),
    "unknown kind": (
        ["draft", "--person", "E003", "--period", "2026-H1", "--kind", "nonsense"],
        2,
        "error: unknown draft kind 'nonsense'",
    ),
    "unknown kind of a cycle": (
        ["draft-cycle", "--period", "2026-H1", "--kind", "x"],
        2,
        "error: unknown draft kind 'x'",
    ),
    "bad period": (["bias-report", "--cycle", "2026-H9"], 2, "error: '2026-H9' is not a period"),
    "bad token lifetime": (
        ["token", "create", "--person", "E003", "--days", "0"],
        2,
        "error: --days: 0 is not a lifetime",
    ),
    "people help": (["people", "--help"], 0, "--search"),
    "drafts list help": (["drafts", "list", "--help"], 0, "--status"),
    "bad draft status": (
        ["drafts", "list", "--status", "done"],
        2,
        "error: --status: 'done' is not a status",
    ),
    "bad page size": (["token", "list", "--limit", "0"], 2, "error: --limit: 0 is not a page"),
    "bad panel cycle": (["panel", "list", "--cycle", "H1"], 2, "error: 'H1' is not a period"),
}


def _run(code: str, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # Nothing may open; if something did, it would not be a server in the checkout.
        "FAIRDRAFT_HOME": str(tmp_path / "home"),
        "FAIRDRAFT_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "COLUMNS": "60",
    }
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.parametrize("case", CASES)
def test_help_and_a_refused_option_import_no_heavy_module(case: str, tmp_path: Path) -> None:
    args, expected_code, expected_text = CASES[case]

    done = _run(PROBE, [json.dumps(HEAVY), *args], tmp_path)

    assert "Traceback" not in done.stderr, done.stderr
    *shown, last = done.stdout.splitlines()
    assert json.loads(last) == {"code": expected_code, "loaded": []}, done.stdout + done.stderr
    assert expected_text in "\n".join(shown) + done.stderr


def test_the_demo_loads_its_generator_but_no_benchmark(tmp_path: Path) -> None:
    code = (
        "import sys, evals.demo; "
        "print(sorted(m for m in sys.modules if m.startswith(('evals.bench', 'evals.eval'))))"
    )

    done = _run(code, [], tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
