"""The import rules of STYLE.md hold: pure domain, layers only point down."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

def test_import_linter_contracts_are_kept() -> None:
    result = subprocess.run(
        [Path(sys.executable).with_name("lint-imports"), "--config", ROOT / "pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

def test_a_domain_module_importing_sqlalchemy_breaks_the_contract(tmp_path: Path) -> None:
    offender = ROOT / "domain" / f"_offender_{tmp_path.name}.py"
    offender.write_text("import sqlalchemy\n")
    try:
        result = subprocess.run(
            [Path(sys.executable).with_name("lint-imports"), "--config", ROOT / "pyproject.toml", "--no-cache"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        offender.unlink()
    assert result.returncode != 0
    assert "domain is pure" in result.stdout
