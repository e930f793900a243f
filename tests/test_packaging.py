"""environment.yml mirrors the pins of pyproject.toml."""

import re
import tomllib

from conftest import REPO


def test_environment_yml_mirrors_pyproject():
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = (REPO / "environment.yml").read_text()
    mirrored = set(re.findall(r"^\s+- ([A-Za-z0-9_.\-]+==[^\s]+)$", env, flags=re.M))
    assert set(pins) == mirrored
    assert "torch==2.13.0" in pins
    assert not any(p.startswith(("torchvision", "torchaudio", "braindecode")) for p in pins)
