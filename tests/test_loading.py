"""Loading YAML: line-aware errors, unknown keys, extends, parameters, cycles."""

import pytest
import yaml

from hdmodules.errors import ConfigError, HitError
from hdmodules.spec.profiles import load_profile
from hdmodules.spec.recipes import load_recipe
from hdmodules.spec.resolve import resolve
from tests.conftest import write_profile, write_recipe

BUILD = "build: |\n  true\n"


def test_malformed_yaml_names_file_and_line(tmp_path):
    f = write_profile(tmp_path / "p.yaml", "packages:\n  a:\n   - [unclosed\n")
    with pytest.raises(HitError, match=rf"{f}:\d+: malformed YAML"):
        load_profile(f)


def test_unknown_key_is_an_error_with_its_line(tmp_path):
    f = write_recipe(tmp_path, "a", 'version: "1"\nbuild: "true"\ndepends: [b]\n')
    with pytest.raises(HitError, match=rf"{f}:3: unknown key 'depends'"):
        load_recipe(f)
    p = write_profile(tmp_path / "p.yaml", "packages: {}\npackage_dir: [x]\n")
    with pytest.raises(HitError, match=rf"{p}:2: unknown key 'package_dir'"):
        load_profile(p)


def test_duplicate_key_and_unquoted_float_version(tmp_path):
    f = write_recipe(tmp_path, "a", 'version: "1"\nversion: "2"\nbuild: x\n')
    with pytest.raises(HitError, match=rf"{f}:2: duplicate key 'version'"):
        load_recipe(f)
    f = write_recipe(tmp_path, "b", "version: 1.10\nbuild: x\n")
    with pytest.raises(HitError, match="write the version in quotes"):
        load_recipe(f)


def test_url_source_needs_sha256(tmp_path):
    f = write_recipe(tmp_path, "a", 'version: "1"\nsources:\n  - url: http://x/a.tgz\n' + BUILD)
    with pytest.raises(HitError, match=r"a.yaml:3: the source http://x/a.tgz needs a sha256"):
        load_recipe(f)


def test_unknown_package_names_where_it_was_asked_for(tmp_path):
    write_recipe(tmp_path / "pkgs", "a", 'version: "1"\ndependencies: [nope]\n' + BUILD)
    p = write_profile(tmp_path / "p.yaml", "package_dirs: [pkgs]\npackages:\n  a:\n")
    with pytest.raises(HitError, match=r"a.yaml:2: unknown package 'nope'"):
        resolve(load_profile(p))


def test_dependency_cycle_is_printed(tmp_path):
    for name, dep in (("a", "b"), ("b", "c"), ("c", "a")):
        write_recipe(tmp_path / "pkgs", name, f'version: "1"\ndependencies: [{dep}]\n' + BUILD)
    p = write_profile(tmp_path / "p.yaml", "package_dirs: [pkgs]\npackages: [a]\n")
    with pytest.raises(HitError, match=r"dependency cycle: a -> b -> c -> a"):
        resolve(load_profile(p))


def _pkgs(tmp_path):
    write_recipe(tmp_path / "pkgs", "base", 'version: "1"\nparameters: {opt: 1}\n' + BUILD)
    write_recipe(tmp_path / "pkgs", "top", 'version: "2"\ndependencies: [base]\n' + BUILD)


def test_hash_follows_inputs_not_metadata(tmp_path):
    _pkgs(tmp_path)
    p = write_profile(tmp_path / "p.yaml", "package_dirs: [pkgs]\npackages: [top]\n")
    first = resolve(load_profile(p))
    again = resolve(load_profile(p))
    assert first.nodes["top"].ref == again.nodes["top"].ref
    # description does not change what is built
    f = tmp_path / "pkgs" / "top.yaml"
    f.write_text(f.read_text() + "description: something new\n")
    assert resolve(load_profile(p)).nodes["top"].ref == first.nodes["top"].ref
    # a dependency's parameter changes the dependency and everything above it
    p.write_text("package_dirs: [pkgs]\nparameters: {opt: 2}\npackages: [top]\n")
    changed = resolve(load_profile(p))
    assert changed.nodes["base"].ref != first.nodes["base"].ref
    assert changed.nodes["top"].ref != first.nodes["top"].ref
    assert changed.nodes["top"].spec.dependencies["base"] == changed.nodes["base"].ref.id
    # the build script changes the hash
    f.write_text(f.read_text().replace("true", "make"))
    assert resolve(load_profile(p)).nodes["top"].ref != changed.nodes["top"].ref


def test_unknown_parameter_override_is_an_error(tmp_path):
    _pkgs(tmp_path)
    p = write_profile(
        tmp_path / "p.yaml", "package_dirs: [pkgs]\npackages:\n  base:\n    parameters: {nope: 1}\n"
    )
    with pytest.raises(HitError, match=r"p.yaml:4: package base has no parameter 'nope'"):
        resolve(load_profile(p))
    p.write_text("package_dirs: [pkgs]\nparameters: {nope: 1}\npackages: [base]\n")
    with pytest.raises(HitError, match="no package of this profile has the parameter"):
        resolve(load_profile(p))


def test_extends_merges_and_later_wins(tmp_path):
    _pkgs(tmp_path)
    write_recipe(tmp_path / "mine", "top", 'version: "3"\n' + BUILD)
    write_profile(
        tmp_path / "base.yaml",
        "package_dirs: [pkgs]\nparameters: {opt: 5}\n"
        "packages:\n  base:\n    parameters: {opt: 7}\n",
    )
    (tmp_path / "sub").mkdir()
    p = write_profile(
        tmp_path / "sub" / "p.yaml",
        "extends: [../base.yaml]\npackage_dirs: [../mine]\npackages: [top]\n",
    )
    spec = load_profile(p)
    assert spec.package_dirs == [tmp_path / "mine", tmp_path / "pkgs"]
    assert list(spec.packages) == ["base", "top"]
    r = resolve(spec)
    assert r.nodes["top"].recipe.version == "3"  # own package_dirs are searched first
    assert r.nodes["base"].parameters == {"opt": 7}  # per-package beats profile-wide


def test_extends_cycle(tmp_path):
    write_profile(tmp_path / "a.yaml", "extends: [b.yaml]\n")
    write_profile(tmp_path / "b.yaml", "extends: [a.yaml]\n")
    with pytest.raises(HitError, match="extend each other in a cycle"):
        load_profile(tmp_path / "a.yaml")


def test_the_loader_gives_what_yaml_safe_load_gives_aliases_merges_and_tags_too(tmp_path):
    from hdmodules.spec import yamlfile

    text = (
        "a: &x 1\nb: *x\nc: !!str 12\nd: 2001-12-14\ne: ~\nf: [1, *x, {g: h}]\n"
        "base: &base {k1: v1, k2: 2}\nmerged:\n  <<: *base\n  k3: 3\n"
        "bin: !!binary aGVsbG8=\nt: yes\nfl: 1.10\nq: '0755'\n"
    )
    f = tmp_path / "x.yaml"
    f.write_text(text)
    assert yamlfile.load(f) == yaml.safe_load(text)
    f.write_text("a: !!python/name:os.system x\n")
    with pytest.raises(ConfigError, match="x.yaml:1: .*could not determine a constructor"):
        yamlfile.load(f)
