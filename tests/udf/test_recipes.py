"""The recipes in docs/recipes: their Python compiles, their s1ndvi commands parse, each ends cube → phenology."""

import re
import shlex
from pathlib import Path

import pytest

from udf.cli import build_parser

RECIPES = sorted((Path(__file__).parents[2] / "docs" / "recipes").glob("*.md"))
CHAIN = ["cube", "adapt", "predict", "phenology"]


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_code_compiles_and_commands_parse(recipe):
    text = recipe.read_text(encoding="utf-8")
    for code in _blocks(text, "python"):
        compile(code, str(recipe), "exec")
    shell = _blocks(text, "bash")
    assert shell, f"{recipe.name} has no shell block"
    commands = [shlex.split(c) for c in shell[-1].replace("\\\n", " ").split("&&")]
    assert [c[1] for c in commands] == CHAIN and all(c[0] == "s1ndvi" for c in commands)
    parser = build_parser()
    known = parser._subparsers._group_actions[0].choices  # the registered sub-commands
    for cmd in commands:
        if cmd[1] in known:  # adapt/phenology are checked once their commands exist
            parser.parse_args(cmd[1:])


def test_there_are_three_recipes():
    assert {p.name for p in RECIPES} >= {"gee.md", "planetary_computer.md", "openeo_cloud.md"}
