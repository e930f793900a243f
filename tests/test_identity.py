from dataclasses import dataclass

import numpy as np

from eegdm_utils.core.identity import array_fingerprint, differences, fingerprint


@dataclass
class _Config:
    lr: float = 1e-3
    layers: int = 2


def test_differences_names_nested_keys_and_dataclass_fields():
    assert differences({"a": 1, "b": {"c": 2, "d": 3}}, {"a": 1, "b": {"c": 2, "d": 4}, "e": 0}) == ["b.d", "e"]
    assert differences(_Config(), _Config(layers=3)) == ["layers"]
    assert differences(_Config(), _Config()) == []


def test_fingerprints_follow_content_not_order():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1}) != fingerprint({"a": 1, "b": 3})
    x = np.arange(6, dtype=np.float32)
    assert array_fingerprint(x) == array_fingerprint(x.copy())
    assert array_fingerprint(x) != array_fingerprint(x.reshape(2, 3))  # the shape counts
    assert array_fingerprint(x) != array_fingerprint(x.astype(np.float64))  # so does the dtype
