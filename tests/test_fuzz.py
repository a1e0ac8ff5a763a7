"""Random and mutated YAML fed to every loader: a HitError or a result, never anything else."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hdmodules.config import load_home
from hdmodules.errors import HitError
from hdmodules.profiles import load_profile
from hdmodules.recipes import load_recipe
from hdmodules.resolve import resolve
from tests.conftest import DEMO

SEEDS = [
    (DEMO / "pkgs" / "app.yaml").read_text(),
    (DEMO / "pkgs" / "libcore.yaml").read_text(),
    (DEMO / "default.yaml").read_text(),
    "extends: [a.yaml]\nparameters: {x: 1}\npackages:\n  a: {parameters: {y: [1, 2]}}\n",
    "store: bld\nmirrors: [a, 'http://x']\njobs: 2\nhost_libs: [libz.so.1]\n",
    "&a [*a]\n",
    "a: &x {b: *x}\n",
]

settings.register_profile("hd", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("hd")


def _mutate(text: str, edits: list[tuple[int, int, str]]) -> str:
    for pos, cut, insert in edits:
        pos %= len(text) + 1
        text = text[:pos] + insert + text[pos + cut :]
    return text


yaml_chars = st.sampled_from(list(":-[]{}&*!|>'\"#%@`,? \n\t") + ["  ", "\n  ", "a", "1", "null"])
insertions = st.lists(yaml_chars, max_size=3).map("".join)
mutations = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 5), insertions), max_size=6)


def _try_all(tmp: Path, text: str) -> None:
    (tmp / "pkgs").mkdir(exist_ok=True)
    for f in ("app", "liba", "libb", "libcore"):
        (tmp / "pkgs" / f"{f}.yaml").write_text((DEMO / "pkgs" / f"{f}.yaml").read_text())
    (tmp / "fuzz.yaml").write_text(text, encoding="utf-8")
    (tmp / "pkgs" / "app.yaml").write_text(text, encoding="utf-8")
    (tmp / "config.yaml").write_text(text, encoding="utf-8")
    for load in (
        lambda: load_recipe(tmp / "pkgs" / "app.yaml"),
        lambda: resolve(load_profile(tmp / "fuzz.yaml")),
        lambda: load_home(tmp),
    ):
        try:
            load()
        except HitError as e:
            assert str(e) and "\n" not in str(e).strip()


@given(st.sampled_from(SEEDS), mutations)
def test_mutated_yaml_never_crashes(tmp_path_factory, seed, edits):
    _try_all(tmp_path_factory.mktemp("fz"), _mutate(seed, edits))


@given(st.text(max_size=200))
def test_random_text_never_crashes(tmp_path_factory, text):
    _try_all(tmp_path_factory.mktemp("fz"), text)
