"""The numpy face encoder's reading of dlib's model file (sentinel/faces/encoder.py): a file that is
not the network is refused when read, never a wrong encoding later. Its numbers against dlib's are
in tests/test_faces_engine.py (they need dlib)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from sentinel.faces.encoder import CHIP_SIZE, EXPECTED, EncoderFileError, ResnetEncoder, read_layers

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("face_recognition_models") is None, reason="face-recognition-models not installed (./install.sh --dev)"
)


@pytest.fixture(scope="module")
def model_bytes():
    from sentinel.faces.engine import model_path

    return model_path("encoder").read_bytes()


def test_the_shipped_file_is_the_network_layer_for_layer(model_bytes):
    layers = read_layers(model_bytes)
    assert [layer.kind for layer in layers] == EXPECTED
    convolutions = [layer.params[0].shape for layer in layers if layer.kind == "con"]
    assert convolutions[0] == (32, 3, 7, 7) and convolutions[-1] == (256, 256, 3, 3) and len(convolutions) == 29
    (fc,) = [layer.params[0].shape for layer in layers if layer.kind == "fc"]
    assert fc == (256, 128)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # cut short: a copy that did not finish
        lambda b: b[:-100],  # the last layer cut
        lambda b: b.replace(b"\x01\x05con_4", b"\x01\x05xxx_4", 1),  # a layer missing
        lambda b: b"not a model file at all" * 100,
        lambda b: b"",
    ],
    ids=["half", "tail", "layer-missing", "garbage", "empty"],
)
def test_a_damaged_file_is_refused_when_read(model_bytes, damage):
    with pytest.raises(EncoderFileError):
        ResnetEncoder(read_layers(damage(model_bytes)))


def test_a_chip_of_another_size_is_refused(model_bytes):
    encoder = ResnetEncoder(read_layers(model_bytes))
    with pytest.raises(ValueError, match="150"):
        encoder(np.zeros((CHIP_SIZE, CHIP_SIZE // 2, 3), np.uint8))
    assert encoder(np.zeros((CHIP_SIZE, CHIP_SIZE, 3), np.uint8)).shape == (128,)


def test_an_encoding_runs_on_one_blas_thread_and_leaves_numpy_as_it_was(model_bytes, monkeypatch):
    """OpenBLAS's workers spin after each product: a kiosk's other threads need those cores."""
    pytest.importorskip("threadpoolctl")
    encoder = ResnetEncoder(read_layers(model_bytes))
    seen = []
    real = encoder._forward
    monkeypatch.setattr(encoder, "_forward", lambda chip: seen.append(encoder.blas_threads) or real(chip))
    before = encoder.blas_threads
    encoder(np.zeros((CHIP_SIZE, CHIP_SIZE, 3), np.uint8))
    assert seen == [1]
    assert encoder.blas_threads == before
