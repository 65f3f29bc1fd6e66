"""Every config default is written once: on its dataclass field, and nowhere else.

The parser takes defaults from the dataclasses, ``config/engine.yaml`` (the
annotated file operators start from) shows those same defaults, and the
did-you-mean hint is one function.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import MISSING, fields
from pathlib import Path
from typing import get_type_hints

import pytest
import yaml

import tornado_engine
from tornado_engine.config import EngineConfig, PluginsConfig, TokenConfig, load_config
from tornado_engine.config.hints import did_you_mean
from tornado_engine.config.loader import BUILT_IN_CONFIG_DIR, ENGINE_SECTIONS, resolve_config_dir
from tornado_engine.config.settings import setting_fields

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_ENGINE_YAML = ROOT / "config" / "engine.yaml"
CONFIG_PACKAGE = Path(tornado_engine.__file__).parent / "config"
# Every dataclass whose fields are read from YAML, by the section they are read from.
SETTINGS_CLASSES = {**ENGINE_SECTIONS, "plugins": PluginsConfig}

VENUES = """\
tokens:
  SOL: {reference_price: 150}
  USDC: {reference_price: 1}
venues:
  raydium:
    plugin: mock-raydium
"""


@pytest.fixture
def config_dir(tmp_path: Path):
    """``config_dir(engine_text)``: a config directory with that engine.yaml and a small venues.yaml."""

    def make(engine: str) -> Path:
        (tmp_path / "engine.yaml").write_text(textwrap.dedent(engine), encoding="utf-8")
        (tmp_path / "venues.yaml").write_text(VENUES, encoding="utf-8")
        return tmp_path

    return make


def settings_in(directory: Path) -> EngineConfig:
    """The config in ``directory``, with all that is not an engine.yaml setting put back to the default.

    (The venues come from venues.yaml; ``plugins.file`` and ``.line`` say where ``disabled`` was written.)
    """
    config = load_config(directory)
    plugins = PluginsConfig(disabled=config.plugins.disabled)
    return config.replace(venues=EngineConfig().venues, plugins=plugins)


EVERY_SECTION_EMPTY = "".join(f"{name}:\n" for name in SETTINGS_CLASSES)


@pytest.mark.parametrize("engine", ["", EVERY_SECTION_EMPTY], ids=["empty file", "empty sections"])
def test_an_empty_engine_yaml_gives_exactly_the_dataclass_defaults(config_dir, engine):
    assert settings_in(config_dir(engine)) == EngineConfig()


def test_every_section_of_engine_yaml_is_read_from_its_dataclass():
    declared = get_type_hints(EngineConfig)
    assert set(declared) - set(SETTINGS_CLASSES) == {"venues"}  # venues.yaml, read on its own
    assert {name: declared[name] for name in SETTINGS_CLASSES} == SETTINGS_CLASSES


@pytest.mark.parametrize("cls", [*SETTINGS_CLASSES.values(), TokenConfig], ids=lambda cls: cls.__name__)
def test_every_field_of_a_settings_dataclass_is_a_setting(cls):
    """A plain field would need its default repeated in the parser; only provenance is exempt."""
    provenance = {"file", "line"} if cls is PluginsConfig else set()
    assert {f.name for f in fields(cls)} - {f.name for f in setting_fields(cls)} == provenance


def test_the_shipped_engine_yaml_lists_every_setting():
    written = yaml.safe_load(SHIPPED_ENGINE_YAML.read_text(encoding="utf-8"))
    assert {section: sorted(keys) for section, keys in written.items()} == {
        section: sorted(f.name for f in setting_fields(cls)) for section, cls in SETTINGS_CLASSES.items()
    }


def test_the_shipped_engine_yaml_holds_the_dataclass_defaults(tmp_path):
    (tmp_path / "engine.yaml").write_text(SHIPPED_ENGINE_YAML.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "venues.yaml").write_text(VENUES, encoding="utf-8")
    assert settings_in(tmp_path) == EngineConfig()


def default_literals() -> set[tuple[type, object]]:
    """The numbers and strings written as setting defaults in model.py (type-exact: 2 is not 2.0)."""
    found: set[tuple[type, object]] = set()
    for cls in [*SETTINGS_CLASSES.values(), TokenConfig]:
        for f in setting_fields(cls):
            values = f.default if isinstance(f.default, tuple) else (f.default,)
            found |= {(type(v), v) for v in values if v is not MISSING and type(v) in (int, float, str)}
    return found


# A default is repeated when a literal equal to one is passed to a getter of ConfigSection or to a
# settings dataclass (``get_number("port", 3000)``, ``ServerConfig(port=3000)``).
READERS = {"raw", "get_str", "get_bool", "get_number", "get_range", "get_str_list"} | {
    cls.__name__ for cls in [*SETTINGS_CLASSES.values(), TokenConfig]
}


def literals_passed_to_readers(path: Path) -> set[tuple[type, object]]:
    found: set[tuple[type, object]] = set()
    for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(call, ast.Call):
            continue
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        if name in READERS:
            for argument in [*call.args, *(keyword.value for keyword in call.keywords)]:
                found |= {(type(n.value), n.value) for n in ast.walk(argument) if isinstance(n, ast.Constant)}
    return found


@pytest.mark.parametrize(
    "module", sorted(p.name for p in CONFIG_PACKAGE.glob("*.py") if p.name != "model.py"), ids=str
)
def test_no_config_module_repeats_a_default_from_the_model(module):
    assert literals_passed_to_readers(CONFIG_PACKAGE / module) & default_literals() == set()


def test_the_duplicate_check_catches_a_repeated_default(tmp_path):
    """The check above must fail the day someone writes a default in a parser again."""
    parser = tmp_path / "parser.py"
    parser.write_text(
        'port = section.get_number("port", 3000, minimum=0)\n'
        'routing = RoutingConfig(intermediate_tokens=("USDC", "SOL"), max_requotes=rt.get_number("x", 2))\n',
        encoding="utf-8",
    )
    assert literals_passed_to_readers(parser) & default_literals() == {
        (int, 3000),
        (str, "USDC"),
        (str, "SOL"),
        (int, 2),
    }


def test_did_you_mean_names_the_closest_choice():
    assert did_you_mean("concurency", ["max_attempts", "concurrency"]) == "; did you mean 'concurrency'?"


def test_did_you_mean_is_empty_when_nothing_is_close():
    assert did_you_mean("colour", ["port", "max_body_bytes"]) == ""


def test_did_you_mean_is_written_once():
    package = Path(tornado_engine.__file__).parent
    users = [
        path.relative_to(package).as_posix()
        for path in sorted(package.rglob("*.py"))
        if "difflib" in path.read_text(encoding="utf-8")
    ]
    assert users == ["config/hints.py"]


def test_the_package_ships_the_repository_config_unchanged() -> None:
    """An installed wheel starts on the same defaults a user copies from ``config/``."""
    repo_config = Path(__file__).resolve().parent.parent / "config"
    for name in ("engine.yaml", "venues.yaml"):
        shipped = (BUILT_IN_CONFIG_DIR / name).read_text(encoding="utf-8")
        assert shipped == (repo_config / name).read_text(encoding="utf-8"), (
            f"tornado_engine/config/defaults/{name} differs from config/{name}: copy it over"
        )


def test_without_a_config_directory_the_built_in_one_is_used(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_config_dir(None) == BUILT_IN_CONFIG_DIR
    assert load_config(None).venues.venues  # the bundled venues, as in config/venues.yaml
    (tmp_path / "config").mkdir()
    assert resolve_config_dir(None) == Path("config")
