"""What an install brings: exactly one TensorFlow per install command and per conda environment."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement

from support import ROOT

TENSORFLOW_DISTRIBUTIONS = {"tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly", "tensorflow-intel"}
LINUX_X86 = {"platform_machine": "x86_64", "sys_platform": "linux", "platform_system": "Linux"}
LINUX_ARM = {"platform_machine": "aarch64", "sys_platform": "linux", "platform_system": "Linux"}


def resolved(extras: set[str], platform: dict[str, str]) -> list[Requirement]:
    """The project's direct requirements that pip installs for ``.[extras]`` on ``platform``.

    As pip does: a base requirement's marker is evaluated with ``extra == ""``, an optional one's with
    its extra's name.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    chosen = [(Requirement(text), "") for text in project["dependencies"]]
    for extra in sorted(extras):
        chosen += [(Requirement(text), extra) for text in project["optional-dependencies"][extra]]
    return [req for req, extra in chosen if req.marker is None or req.marker.evaluate({**platform, "extra": extra})]


def tensorflows(requirements: list[Requirement]) -> list[str]:
    """The TensorFlow distributions among ``requirements``, with their extras (``tensorflow[and-cuda]``)."""
    return sorted(
        req.name + (f"[{','.join(sorted(req.extras))}]" if req.extras else "")
        for req in requirements
        if req.name.lower() in TENSORFLOW_DISTRIBUTIONS
    )


@pytest.mark.parametrize(
    ("extras", "platform", "expected"),
    [
        (set(), LINUX_X86, []),
        ({"cpu"}, LINUX_X86, ["tensorflow-cpu"]),
        ({"cpu", "test"}, LINUX_X86, ["tensorflow-cpu"]),
        ({"cpu"}, LINUX_ARM, ["tensorflow"]),
        ({"gpu"}, LINUX_X86, ["tensorflow[and-cuda]"]),
        ({"gpu", "test"}, LINUX_X86, ["tensorflow[and-cuda]"]),
    ],
)
def test_each_install_brings_exactly_the_intended_tensorflow(extras, platform, expected):
    assert tensorflows(resolved(extras, platform)) == expected


def test_no_base_requirement_depends_on_the_chosen_extras():
    for text in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        assert "extra" not in str(Requirement(text).marker or ""), text


def readme_commands() -> list[str]:
    """The shell lines of the README's ```bash blocks."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_installs_name_one_tensorflow_extra_and_uninstall_nothing():
    installs = [line for line in readme_commands() if "pip install" in line]
    assert installs
    for line in installs:
        extras = set(re.search(r'-e "?\.\[([^\]]*)\]', line).group(1).split(","))
        assert len(extras & {"cpu", "gpu"}) == 1, line
    assert not [line for line in readme_commands() if "pip uninstall" in line]


def test_ci_runs_the_readmes_test_command():
    ci_command = (ROOT / ".ci/run").read_text().strip().splitlines()[-1]
    assert ci_command in readme_commands()


# ------------------------------------------------------------------ conda environments


def env_file(name: str) -> dict:
    return yaml.safe_load((ROOT / "workflow/envs" / name).read_text())


def env_packages(env: dict) -> list[str]:
    """Every package an environment file names, conda and pip."""
    packages = []
    for dep in env["dependencies"]:
        packages += dep["pip"] if isinstance(dep, dict) else [dep]
    return packages


def env_tensorflows(env: dict) -> list[str]:
    names = []
    for spec in env_packages(env):
        match = re.match(r"[A-Za-z0-9_.-]+(\[[^\]]*\])?", spec)
        if match and match.group(0).split("[")[0].lower().replace("_", "-") in TENSORFLOW_DISTRIBUTIONS:
            names.append(match.group(0))
    return names


def test_tensorflow_env_holds_the_cuda_build_only():
    assert env_tensorflows(env_file("tensorflow.yaml")) == ["tensorflow[and-cuda]"]


def test_data_env_holds_no_tensorflow():
    packages = env_packages(env_file("data.yaml"))
    assert env_tensorflows(env_file("data.yaml")) == []
    assert not [p for p in packages if p.split(">")[0].split("=")[0] in ("keras", "tensorflow")]


@pytest.mark.parametrize("name", ["data.yaml", "tensorflow.yaml"])
def test_env_files_resolve_from_any_conda_prefix(name):
    """No editable or path installs: Snakemake copies env files under --conda-prefix, where `../..` is elsewhere."""
    for spec in env_packages(env_file(name)):
        assert not spec.startswith(("-e", ".", "/", "file:")) and "../" not in spec, spec


def rule_envs() -> dict[str, tuple[str, str]]:
    """rule name -> (conda env file, script), from workflow/rules/*.smk."""
    found = {}
    for smk in sorted((ROOT / "workflow/rules").glob("*.smk")):
        text = smk.read_text()
        for match in re.finditer(r"^\s*rule (\w+):(.*?)(?=^\s*rule |\Z)", text, re.S | re.M):
            env = re.search(r'conda:\s*\n\s*"\.\./envs/([^"]+)"', match.group(2))
            script = re.search(r'script:\s*\n\s*"\.\./scripts/([^"]+)"', match.group(2))
            if env and script:
                found[match.group(1)] = (env.group(1), script.group(1))
    return found


# Imports of a script run with TensorFlow and Keras made unimportable.
_BLOCKED_IMPORTS = """
import importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras"):
            raise ImportError(f"{name} imported where TensorFlow must not start")
sys.meta_path.insert(0, Blocked())
sys.path.insert(0, sys.argv[1])
"""


def test_data_env_rules_import_no_tensorflow():
    rules = {rule: script for rule, (env, script) in rule_envs().items() if env == "data.yaml"}
    assert {"check_images", "cache_task3_set", "mask_images", "score_masks"} <= set(rules)
    imports = []
    for script in sorted(set(rules.values())):
        tree = ast.parse((ROOT / "workflow/scripts" / script).read_text())
        imports += [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    code = _BLOCKED_IMPORTS + "\n".join(sorted(set(imports)))
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "src")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_network_rules_use_the_tensorflow_env():
    for rule, (env, script) in rule_envs().items():
        if "device.configure" in (ROOT / "workflow/scripts" / script).read_text():
            assert env == "tensorflow.yaml", rule


def test_network_scripts_import_no_tensorflow_before_their_gpu_claim():
    """A network job claims its GPU before TensorFlow starts, so its module-level imports must not start it."""
    scripts = sorted({script for env, script in rule_envs().values() if env == "tensorflow.yaml"})
    assert {"train_segmentation.py", "predict_classes.py", "predict_folder_masks.py"} <= set(scripts)
    imports = []
    for script in scripts:
        tree = ast.parse((ROOT / "workflow/scripts" / script).read_text())
        imports += [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    code = _BLOCKED_IMPORTS + "\n".join(sorted(set(imports)))
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "src")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
