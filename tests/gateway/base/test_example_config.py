"""config/kanal.example.toml documents every key the settings model knows, every connector
section's included (CONTRACT §3), and nothing the model does not know."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from gateway.base.config import SECTION_NAMES, Settings

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "kanal.example.toml"


def model_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            keys |= model_keys(kind, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


def documented_keys(text: str) -> set[str]:
    """Keys set or shown commented out (`# key = …`) under their [section] (a table of
    tables like [offices.NAME] counts for its parent key)."""
    keys, section = set(), ""
    for line in text.splitlines():
        header = re.match(r"^#?\s*\[([^\]]+)\]", line)
        if header:
            section = re.split(r'\."', header.group(1))[0]
            continue
        assignment = re.match(r"^#?\s*([a-z_0-9]+)\s*=", line)
        if assignment and section:
            keys.add(f"{section}.{assignment.group(1)}")
    return keys


def test_the_example_documents_every_key_of_the_settings_model():
    documented = documented_keys(EXAMPLE.read_text())
    known = model_keys(Settings)
    assert {f"channels.{name}.enabled" for name in SECTION_NAMES} <= known

    def is_documented(key: str) -> bool:
        # A secret is shown as its `<key>_file` (the example keeps secrets out of the file).
        return (
            key in documented
            or f"{key}_file" in documented
            or any(d.startswith(key + ".") for d in documented)
        )

    assert sorted(k for k in known if not is_documented(k)) == []
    parents = {k.rsplit(".", 1)[0] for k in known}
    unknown = [
        d
        for d in documented
        if d not in known and not any(d.startswith(k + ".") for k in known | parents)
    ]
    assert unknown == []


def test_the_comparison_sees_a_missing_key():
    text = EXAMPLE.read_text().replace("resend_when_unsure", "# (removed)")
    assert "notify.resend_when_unsure" not in documented_keys(text)
    assert "notify.resend_when_unsure" in model_keys(Settings)
