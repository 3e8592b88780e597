"""The house's import layering holds (scripts/check_layers.py, also run by `make lint`), and
the check itself sees an upward import, a sibling import and a cycle, even inside a
function."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_checker():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("check_layers", ROOT / "scripts/check_layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_layers"] = module
    spec.loader.exec_module(module)
    return module


def test_kanal_imports_only_downward_and_has_no_cycle():
    assert load_checker().check(ROOT) == []


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_check_finds_upward_and_sibling_imports_and_cycles(tmp_path):
    write(
        tmp_path,
        {
            "gateway/__init__.py": "",
            "gateway/store/__init__.py": "",
            "gateway/store/a.py": "def f():\n    from gateway.web import app\n",
            "gateway/web/__init__.py": "",
            "gateway/web/app.py": "from gateway.store import a\n",
            "gateway/intake/__init__.py": "",
            "gateway/intake/hooks.py": "from gateway.notify import worker\n",
            "gateway/notify/__init__.py": "",
            "gateway/notify/worker.py": "",
            "connectors/__init__.py": "",
            "connectors/sms.py": "from normalizers.phone import x\n",
            "normalizers/__init__.py": "",
            "normalizers/phone.py": "x = 1\n",
            "crm_client/__init__.py": "",
            "gateway/web/old.py": "def f():\n    from gateway.enrich import rules\n",
            "gateway/web/gone.py": "from gateway import media_fetch\n",
        },
    )
    problems = load_checker().check(tmp_path)
    assert any(
        "gateway/store/a.py:2" in p and "higher layer: gateway.web.app" in p for p in problems
    )
    assert any("sibling room: gateway.notify.worker" in p for p in problems)
    assert any("higher layer: normalizers.phone" in p for p in problems)
    assert any(p.startswith("import cycle:") and "gateway.store.a" in p for p in problems)
    assert any(
        "gateway/web/old.py:2" in p and "does not exist: gateway.enrich" in p for p in problems
    )
