"""Hostile checkpoints: every crafted file is refused with a message, no code runs, and
nothing is allocated from the numbers it claims before they are checked."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch

from robot_policy_ros.checkpoint.config import CheckpointError, read_checkpoint_config
from robot_policy_ros.checkpoint.files import (
    MAX_CONFIG_BYTES,
    parse_safetensors_header,
)
from robot_policy_ros.checkpoint.weights import file_sha256, load_checkpoint, save_checkpoint
from robot_policy_ros.policies.factory import make_policy

JOINTS = ["shoulder", "elbow", "wrist"]
TINY_MLP = {"vision_backbone": "tiny_cnn", "backbone_width": 4, "hidden_dims": (16,)}


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    policy = make_policy("mlp", JOINTS, {"front": (32, 32)}, fps=30.0, seed=1, **TINY_MLP)
    return save_checkpoint(policy, tmp_path / "ckpt")


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


def _edit_config(path: Path, edit) -> None:
    cfg = json.loads((path / "config.json").read_text())
    edit(cfg)
    (path / "config.json").write_text(json.dumps(cfg))


def _rehash(path: Path) -> None:
    """Record the current weights' sha256, so the refusal under test is not the hash check."""
    digest = file_sha256(path / "model.safetensors")
    _edit_config(path, lambda c: c["weights"].update(sha256=digest))


def _split(path: Path) -> tuple[dict, bytes]:
    raw = (path / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _write_weights(path: Path, header: dict | bytes, data: bytes, length: int | None = None):
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(text) if length is None else length
    (path / "model.safetensors").write_bytes(struct.pack("<Q", n) + text + data)
    _rehash(path)


def _first_tensor(header: dict) -> str:
    return min(
        (k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0]
    )


# --- pickles, whatever the file is called ----------------------------------------------


def test_pickle_in_weights_file_refused_without_running_it(ckpt: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (ckpt / "model.safetensors").write_bytes(pickle.dumps(_Payload(marker), protocol=4))
    _rehash(ckpt)
    with pytest.raises(CheckpointError, match=r"is a pickle .*never unpickles"):
        load_checkpoint(ckpt)
    assert not marker.exists()


def test_torch_save_archive_in_weights_file_refused(ckpt: Path) -> None:
    torch.save({"w": torch.zeros(2)}, ckpt / "model.safetensors")
    _rehash(ckpt)
    with pytest.raises(CheckpointError, match=r"zip archive .*never unpickles"):
        load_checkpoint(ckpt)


def test_pickle_in_config_json_refused_without_running_it(ckpt: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (ckpt / "config.json").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(CheckpointError, match=r"config\.json is a pickle"):
        read_checkpoint_config(ckpt)
    assert not marker.exists()


# --- absurd sizes in config.json, refused before anything is built ---------------------


def test_million_joints_refused_before_allocating(ckpt: Path) -> None:
    # 10^5 names fit under the size bound, so it is the joint limit that refuses them.
    _edit_config(ckpt, lambda c: c.update(joint_names=[f"j{i}" for i in range(100_000)]))
    with pytest.raises(CheckpointError, match=r"100000 joints \(limit"):
        load_checkpoint(ckpt)
    _edit_config(ckpt, lambda c: c.update(joint_names=[f"j{i}" for i in range(1_000_000)]))
    with pytest.raises(CheckpointError, match="limit"):
        load_checkpoint(ckpt)


def test_trillion_parameter_model_refused_before_allocating(ckpt: Path) -> None:
    # Two hidden layers of 10^6: 10^12 weights. Built on the meta device and counted, never
    # allocated (allocating would take 4 TB and crash the test process).
    _edit_config(ckpt, lambda c: c["hyperparameters"].update(hidden_dims=[1_000_000, 1_000_000]))
    with pytest.raises(
        CheckpointError, match=r"parameters and buffers \(limit .*before allocating"
    ):
        load_checkpoint(ckpt)


def test_huge_chunk_size_refused(ckpt: Path) -> None:
    _edit_config(ckpt, lambda c: c.update(chunk_size=10**12))
    with pytest.raises(CheckpointError, match=r"chunk_size must be an integer in \[1, "):
        load_checkpoint(ckpt)


def test_many_cameras_refused(ckpt: Path) -> None:
    cams = [{"name": f"c{i}", "height": 32, "width": 32} for i in range(1000)]
    _edit_config(ckpt, lambda c: c.update(cameras=cams))
    with pytest.raises(CheckpointError, match=r"1000 cameras \(limit"):
        load_checkpoint(ckpt)


def test_huge_camera_image_refused(ckpt: Path) -> None:
    _edit_config(ckpt, lambda c: c["cameras"][0].update(height=10**6, width=10**6))
    with pytest.raises(CheckpointError, match=r"height must be an int in \[8, 4096\]"):
        load_checkpoint(ckpt)


# --- huge or pathological JSON --------------------------------------------------------


def test_huge_config_json_refused_before_parsing(ckpt: Path) -> None:
    _edit_config(ckpt, lambda c: c["provenance"].update(padding="x" * (MAX_CONFIG_BYTES + 1)))
    with pytest.raises(CheckpointError, match="byte limit for this file; refused before reading"):
        load_checkpoint(ckpt)


def test_deeply_nested_json_refused(ckpt: Path) -> None:
    (ckpt / "config.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(CheckpointError, match=r"config\.json nests JSON too deeply"):
        load_checkpoint(ckpt)


def test_integer_with_a_million_digits_refused(ckpt: Path) -> None:
    text = (ckpt / "config.json").read_text()
    (ckpt / "config.json").write_text(text.replace('"fps": 30.0', '"fps": ' + "9" * 1_000_000))
    with pytest.raises(CheckpointError, match=r"config\.json is not acceptable JSON"):
        load_checkpoint(ckpt)


def test_config_json_not_utf8_refused(ckpt: Path) -> None:
    (ckpt / "config.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(CheckpointError, match="not UTF-8"):
        load_checkpoint(ckpt)


# --- paths: traversal, symlinks, special files ----------------------------------------


@pytest.mark.parametrize(
    "name", ["../model.safetensors", "/etc/passwd", "sub/model.safetensors", "model.pt"]
)
def test_weights_file_name_outside_directory_refused(ckpt: Path, name: str) -> None:
    _edit_config(ckpt, lambda c: c["weights"].update(file=name))
    with pytest.raises(CheckpointError, match=r"weights file must be 'model.safetensors'"):
        load_checkpoint(ckpt)


def test_symlinked_weights_out_of_directory_refused(ckpt: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.safetensors"
    (ckpt / "model.safetensors").rename(outside)
    (ckpt / "model.safetensors").symlink_to(outside)
    with pytest.raises(CheckpointError, match="is a symlink"):
        load_checkpoint(ckpt)


def test_symlinked_config_json_refused(ckpt: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.json"
    (ckpt / "config.json").rename(outside)
    (ckpt / "config.json").symlink_to(outside)
    with pytest.raises(CheckpointError, match="is a symlink"):
        load_checkpoint(ckpt)


def test_config_json_linked_to_dev_zero_refused(ckpt: Path) -> None:
    (ckpt / "config.json").unlink()
    (ckpt / "config.json").symlink_to("/dev/zero")
    with pytest.raises(CheckpointError, match=r"symlink|not a regular file|no config"):
        load_checkpoint(ckpt)


def test_weights_fifo_refused_without_blocking(ckpt: Path) -> None:
    (ckpt / "model.safetensors").unlink()
    os.mkfifo(ckpt / "model.safetensors")
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(ckpt)


# --- safetensors headers that lie ------------------------------------------------------


def test_header_length_past_end_of_file_refused(ckpt: Path) -> None:
    header, data = _split(ckpt)
    _write_weights(ckpt, header, data, length=10**15)
    with pytest.raises(CheckpointError, match=r"header claims 1000000000000000 bytes"):
        load_checkpoint(ckpt)


def test_data_offsets_past_end_of_file_refused(ckpt: Path) -> None:
    header, data = _split(ckpt)
    key = _first_tensor(header)
    begin, end = header[key]["data_offsets"]
    header[key]["data_offsets"] = [begin + 10**9, end + 10**9]
    _write_weights(ckpt, header, data)
    with pytest.raises(CheckpointError, match=r"lie outside the .*data section"):
        load_checkpoint(ckpt)


def test_shape_larger_than_its_bytes_refused(ckpt: Path) -> None:
    header, data = _split(ckpt)
    key = _first_tensor(header)
    header[key]["shape"] = [1000, 1000, 1000]
    _write_weights(ckpt, header, data)
    with pytest.raises(
        CheckpointError, match=r"span \d+ bytes but [A-Z0-9]+ \[1000, 1000, 1000\] needs"
    ):
        load_checkpoint(ckpt)


def test_trillion_element_tensor_in_header_refused(ckpt: Path) -> None:
    header, data = _split(ckpt)
    header[_first_tensor(header)]["shape"] = [10**6, 10**6]
    _write_weights(ckpt, header, data)
    with pytest.raises(CheckpointError, match=r"1000000000000 elements \(limit"):
        load_checkpoint(ckpt)


def test_overlapping_tensors_refused(ckpt: Path) -> None:
    header, data = _split(ckpt)
    keys = sorted(
        (k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0]
    )
    # Point the second tensor at the first one's bytes (same size needed): find a pair.
    sizes = {}
    for k in keys:
        b, e = header[k]["data_offsets"]
        sizes.setdefault(e - b, []).append(k)
    first, second = next(v for v in sizes.values() if len(v) >= 2)[:2]
    header[second]["data_offsets"] = list(header[first]["data_offsets"])
    _write_weights(ckpt, header, data)
    with pytest.raises(CheckpointError, match=r"overlaps the previous tensor|leaves a gap"):
        load_checkpoint(ckpt)


def test_trailing_bytes_after_tensors_refused(ckpt: Path) -> None:
    header, data = _split(ckpt)
    _write_weights(ckpt, header, data + b"\x00" * 64)
    with pytest.raises(CheckpointError, match="trailing or missing bytes"):
        load_checkpoint(ckpt)


def test_unknown_dtype_refused(ckpt: Path) -> None:
    header, data = _split(ckpt)
    header[_first_tensor(header)]["dtype"] = "OBJECT"
    _write_weights(ckpt, header, data)
    with pytest.raises(CheckpointError, match="unknown dtype 'OBJECT'"):
        load_checkpoint(ckpt)


def test_header_that_is_not_json_refused(ckpt: Path) -> None:
    _, data = _split(ckpt)
    _write_weights(ckpt, b"\x00" * 32, data)
    with pytest.raises(CheckpointError, match="header is not a JSON object"):
        load_checkpoint(ckpt)


def test_header_declaring_other_tensors_than_the_model_refused(ckpt: Path) -> None:
    header, data = _split(ckpt)
    key = _first_tensor(header)
    header["renamed." + key] = header.pop(key)
    _write_weights(ckpt, header, data)
    with pytest.raises(CheckpointError, match=r"missing keys .*unexpected keys .*renamed\."):
        load_checkpoint(ckpt)


def test_negative_and_boolean_dimensions_refused() -> None:
    for shape in ([-1, 4], [True, 4], [4.0]):
        header = json.dumps({"t": {"dtype": "F32", "shape": shape, "data_offsets": [0, 16]}})
        with pytest.raises(CheckpointError, match="non-negative integers"):
            parse_safetensors_header(header.encode(), 8 + len(header) + 16, len(header), "x")


def test_valid_header_accepted() -> None:
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]},
            "a": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]},
        }
    ).encode()
    entries = parse_safetensors_header(header, 8 + len(header) + 24, len(header), "x")
    assert entries["a"].shape == (2,) and entries["b"].begin == 16


def test_untouched_checkpoint_still_loads(ckpt: Path) -> None:
    policy = load_checkpoint(ckpt)
    assert policy.joint_names == JOINTS
