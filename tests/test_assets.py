"""The pages' scripts share one DOM module and keep their words in strings files (docs/dashboard.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import ROOT

ASSETS = ROOT / "dashboard" / "assets"
SCRIPTS = sorted(ASSETS.glob("*.js"))
PAGE_SCRIPTS = [s for s in SCRIPTS if s.name != "dom.js"]  # every script but the shared DOM module itself
HELPERS = ("$", "el", "put", "toast", "frameLoop")
DEFINES = re.compile(r"(?:\bfunction\s+|\b(?:const|let|var)\s+)(\$|el|put|toast|frameLoop)\s*[=(]")
DOM_IMPORT = re.compile(r'import\s*\{([^}]*)\}\s*from\s*"\./dom\.js"')


def _uses(source: str, helper: str) -> bool:
    return re.search(rf"(?<![\w.$]){re.escape(helper)}\(", source) is not None


@pytest.mark.parametrize("script", PAGE_SCRIPTS, ids=lambda s: s.name)
def test_only_dom_js_defines_the_dom_helpers(script: Path) -> None:
    source = script.read_text(encoding="utf-8")
    own = DEFINES.findall(source)
    assert not own, f"{script.name} defines its own {own}; import them from dom.js"
    assert "requestAnimationFrame" not in source, f"{script.name} schedules its own frames; use dom.js frameLoop"


@pytest.mark.parametrize("script", PAGE_SCRIPTS, ids=lambda s: s.name)
def test_a_script_using_a_dom_helper_imports_it_from_dom_js(script: Path) -> None:
    source = script.read_text(encoding="utf-8")
    imported = {name.strip() for names in DOM_IMPORT.findall(source) for name in names.split(",")}
    used = {helper for helper in HELPERS if _uses(source, helper)}
    assert used <= imported, f"{script.name} uses {sorted(used - imported)} without importing them from dom.js"


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s.name != "i18n.js"], ids=lambda s: s.name)
def test_words_live_in_strings_files(script: Path) -> None:
    """A page registers the table its `<page>-strings.js` exports; only i18n.js keeps the words every page shares."""
    source = script.read_text(encoding="utf-8")
    assert "register({" not in source, f"{script.name} keeps its strings inline; move them to a -strings.js file"
    if script.name.endswith("-strings.js"):
        assert source.count("export const strings = {") == 1
