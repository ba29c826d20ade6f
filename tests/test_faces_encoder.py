"""The numpy face encoder's reading of dlib's model file (sentinel/faces/encoder.py): a file that is
not the network is refused when read, never a wrong encoding later. Its numbers against dlib's are
in tests/test_faces_engine.py (they need dlib)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from sentinel.faces.encoder import CHIP_SIZE, EXPECTED, EncoderFileError, HalfMatrix, ResnetEncoder, read_layers

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
    convolutions = [layer.params[0].shape for layer in layers if layer.kind == "con"]  # (rows × cols × inputs, filters)
    assert convolutions[0] == (7 * 7 * 3, 32) and convolutions[-1] == (3 * 3 * 256, 256) and len(convolutions) == 29
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


def test_the_weights_take_half_the_memory_of_float32(model_bytes):
    """Issue 18: 22 MB of float32 weights were a fifth of a kiosk's memory with faces on."""
    encoder = ResnetEncoder(read_layers(model_bytes))
    halves = [params[0] for kind, params in encoder._ops if kind == "con"]
    assert all(isinstance(h, HalfMatrix) for h in halves) and len(halves) == 29
    assert sum(h.bits.nbytes for h in halves) == 2 * sum(h.size for h in halves)
    assert sum(h.size for h in halves) > 5_000_000  # the network's convolutions: 11 MB, not 22


@pytest.mark.parametrize("largest", [1e-3, 0.3, 40.0, 3e4])
def test_a_matrix_widens_back_to_its_numbers_within_half_precision(largest):
    """Small and large matrices alike: each keeps 11 significant bits, its smallest weights too
    (a layer of the shipped network has 89 % of its weights under half's smallest normal)."""
    rng = np.random.default_rng(7)
    weights = (rng.standard_normal((3, 3, 8, 16)) * largest / 4).astype(np.float32)
    weights[0, 0, 0, :4] = [largest, -largest, largest * 1e-4, -largest * 1e-4]
    weights[1, 1, 1, :2] = 0
    half = HalfMatrix(weights)
    wide = half.widen_into(np.empty(half.size + 5, np.int32))
    expected = weights.reshape(-1, 16)
    assert wide.shape == (72, 16) and wide.dtype == np.float32
    kept = np.abs(expected) >= largest * 2.0**-27
    assert np.all(np.abs(wide - expected)[kept] <= np.abs(expected)[kept] * 2.0**-11)
    assert np.all(np.abs(wide[~kept]) <= largest * 2.0**-27) and np.all(np.sign(wide[kept]) == np.sign(expected[kept]))


def test_the_widening_is_numpys_own_cast_of_the_halves():
    finite = np.r_[np.arange(0, 0x7C00), np.arange(0x8000, 0xFC00)].astype(np.uint16)  # every finite half, ±0 to ±65504
    bits = finite.view(np.int16)
    half = HalfMatrix(np.zeros((1, 1)))
    half.bits, half.exponent = bits.reshape(-1, 1), 0
    wide = half.widen_into(np.empty(bits.size, np.int32))
    assert np.array_equal(wide.ravel(), bits.view(np.float16).astype(np.float32))


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_weight_that_is_not_a_number_is_refused(bad):
    weights = np.ones((3, 4), np.float32)
    weights[1, 2] = bad
    with pytest.raises(EncoderFileError):
        HalfMatrix(weights)


def test_the_file_is_read_front_to_back_and_let_go_as_it_goes(model_bytes):
    """from_file maps the 22 MB file and lets each layer's pages go once copied (the kiosk's peak
    memory was 22 MB above its running memory): read_layers says how far it has read, in order."""
    read = []
    read_layers(model_bytes, read.append)
    assert len(read) == len(EXPECTED) and read == sorted(read) and len(model_bytes) - 100 < read[-1] <= len(model_bytes)


@pytest.mark.parametrize("content", [b"", b"garbage" * 1000], ids=["empty", "garbage"])
def test_a_bad_file_on_disk_is_an_encoder_file_error(tmp_path, model_bytes, content):
    path = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    path.write_bytes(content)
    with pytest.raises(EncoderFileError):
        ResnetEncoder.from_file(path)
    path.write_bytes(model_bytes[: len(model_bytes) // 2])  # a copy cut short, views into it alive in the error
    with pytest.raises(EncoderFileError):
        ResnetEncoder.from_file(path)
    path.write_bytes(model_bytes)
    assert ResnetEncoder.from_file(path)(np.zeros((CHIP_SIZE, CHIP_SIZE, 3), np.uint8)).shape == (128,)
