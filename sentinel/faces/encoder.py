"""dlib's ResNet face encoder (`dlib_face_recognition_resnet_model_v1.dat`), run with numpy.

Why: the dlib wheels (dlib-bin) are built without BLAS, so dlib's own forward pass of this
network takes 95-135 ms per face on the bench PC (0.4-0.6 s on a Pi 4) and was most of the time
from a face in view to the relay (issue 18). The same network as im2col + one matrix product per
convolution through numpy's BLAS takes 14-23 ms, single-threaded. dlib still finds the face, its 5
landmarks and cuts the 150×150 chip (`dlib.get_face_chip`, exactly what `compute_face_descriptor`
does inside); only the network runs here. Its weights are read from the model file in
`face-recognition-models` as shipped (no converted copy to keep in step) and kept in half
precision (`HalfMatrix`: 11 MB instead of 22, widened per layer as it runs, 2.5 ms an encoding):
the 128 numbers are dlib's to within 1e-4 and the distance between two faces to within 9e-5 on the
shared portraits (tests/test_faces_engine.py compares them; in float32 they were within 3e-7).

The file is dlib's serialization of the network, input layer first: each layer named by a version
string (`con_4`, `affine_`, `relu_`, `max_pool_2`, `avg_pool_2`, `add_prev_`, `fc_2`) followed by
its fields; a tensor is its shape and 4-byte little-endian floats, other numbers dlib's compact
integers. The network is dlib's `anet_type` from dlib_face_recognition_resnet_model_v1's example
(dnn_face_recognition_ex.cpp): a 7×7 convolution, a 3×3 max pool, 14 residual blocks (each: 3×3
convolution, affine, relu, 3×3 convolution, affine, plus the block's input, a 2×2 average of it
where the block halves the size, zero-padded where channels or sizes differ, as dlib adds), relu
after each, an average over the whole map and a 256→128 matrix without bias.

The products run on one BLAS thread (threadpoolctl, for the duration of an encoding): with
OpenBLAS's default of a thread per core its workers spin after each product, and on the 2-core
bench machine under load an encoding took 72.5 ms of wall time and 188 ms of CPU, against 23.8 and
23.1 ms on one thread; a kiosk's frame loop and uploader need those cores. Without threadpoolctl
installed it runs as numpy's BLAS is set up.

How it fails: a file that is not that network, layer for layer and shape for shape, is
`EncoderFileError` when it is read (never a wrong encoding later); the engine then falls back to
dlib's own encoder for the same file (sentinel/faces/engine.py).
"""

from __future__ import annotations

import math
import mmap
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: the face chip the network reads: dlib.get_face_chip(image, shape, CHIP_SIZE, CHIP_PADDING) is
#: what compute_face_descriptor cuts internally
CHIP_SIZE = 150
CHIP_PADDING = 0.25

_LAYER_NAMES = re.compile(rb"\x01[\x04-\x15](con_4|affine_|relu_|max_pool_2|avg_pool_2|add_prev_|fc_2|fc_3|input_rgb_image_sized)")
# the layer kinds in file order (input first), as dlib_face_recognition_resnet_model_v1 has them:
# B = a residual block keeping the size, D = one halving it (its input averaged 2×2 for the sum)
_B = ["con", "affine", "relu", "con", "affine", "add", "relu"]
_D = ["con", "affine", "relu", "con", "affine", "avg_pool", "add", "relu"]
EXPECTED = (
    ["input", "con", "affine", "relu", "max_pool"]
    + _B * 3 + _D + _B * 3 + _D + _B * 2 + _D + _B * 2 + _D
    + ["avg_pool", "fc"]
)  # fmt: skip


#: bytes of image patches laid out for one matrix product (im2col), and of the weights widened
#: for it: a convolution's output rows are made in bands, and summed over its weights in pieces,
#: as this size allows.
#: Whole, the first convolution's patches are 3.3 MB and the last ones' weights 2.4 MB, and the
#: heap keeps the largest transient of an encoding for good (a kiosk's RSS); in 0.5 MB pieces,
#: with the affine layers applied in place, an encoding's numpy buffers peak at 1.9 MB, not 3.8.
#: In 0.25 MB pieces the kiosk's RSS with faces on is 1.5 MB lower (108.0-108.2 against
#: 109.5-109.6 MB) for 2 ms more from face to relay (52.3 against 50.2 ms p50); in 0.125 MB pieces
#: 2 MB lower for 8.6 ms more (bench/e2e.py --face-arrivals 20 --rounds 2, docs/benchmarks.md).
WORK_BUDGET = 256 * 1024


class EncoderFileError(ValueError):
    """The model file is not the network this module runs."""


@dataclass(frozen=True)
class _Layer:
    kind: str
    params: tuple = ()


def _int(data: bytes, at: int) -> tuple[int, int]:
    """dlib's integer: a byte holding the length (low 4 bits) and the sign (0x80), then the
    magnitude, little-endian."""
    if at >= len(data):
        raise EncoderFileError("the file ends inside a layer")
    head = data[at]
    size = head & 0x0F
    if not 1 <= size <= 8 or at + 1 + size > len(data):
        raise EncoderFileError(f"not a dlib integer at byte {at}")
    value = int.from_bytes(data[at + 1 : at + 1 + size], "little")
    return (-value if head & 0x80 else value), at + 1 + size


def _float(data: bytes, at: int) -> tuple[float, int]:
    """dlib's float: mantissa and exponent, two integers."""
    mantissa, at = _int(data, at)
    exponent, at = _int(data, at)
    return math.ldexp(mantissa, exponent), at


def _ints(data: bytes, at: int, n: int) -> tuple[list[int], int]:
    out = []
    for _ in range(n):
        value, at = _int(data, at)
        out.append(value)
    return out, at


def _tensor(data: bytes, at: int) -> tuple["np.ndarray", int]:
    """A tensor: version 2, its shape (samples, k, rows, columns), the floats."""
    import numpy as np

    (version, *shape), at = _ints(data, at, 5)
    count = math.prod(shape)
    if version != 2 or count <= 0 or at + 4 * count > len(data):
        raise EncoderFileError(f"not a dlib tensor at byte {at}")
    return np.frombuffer(data, "<f4", count, at), at + 4 * count  # a view: the caller copies what it keeps


def _alias(data: bytes, at: int) -> tuple[list[int], int]:
    """An alias tensor (a view into the parameters): version 1, its shape."""
    (version, *shape), at = _ints(data, at, 5)
    if version != 1:
        raise EncoderFileError(f"not a dlib alias tensor at byte {at}")
    return shape, at


def read_layers(data: Any, done: Callable[[int], None] | None = None) -> list[_Layer]:
    """The layers in file order (input first), with what the forward pass needs of each; a
    convolution's weights as the `HalfMatrix` it multiplies by. `data` is the file's bytes (or an
    mmap of it); `done(at)` is told after each layer that the file's first `at` bytes are read
    and copied: nothing before it is looked at again."""
    layers: list[_Layer] = []
    at = 0
    while (found := _LAYER_NAMES.search(data, at)) is not None:
        name = found.group(1).decode()
        if data[found.start() + 1] != len(name):  # a string's length, then its bytes
            at = found.start() + 1
            continue
        at = found.end()
        if name == "con_4":
            params, at = _tensor(data, at)
            (filters, rows, cols, stride_y, stride_x, pad_y, pad_x), at = _ints(data, at, 7)
            shape, at = _alias(data, at)
            bias_shape, at = _alias(data, at)
            n = math.prod(shape)
            if shape != [filters, shape[1], rows, cols] or math.prod(bias_shape) != filters or n + filters != params.size:
                raise EncoderFileError(f"convolution at byte {found.start()} does not add up")
            if stride_y != stride_x or pad_y != pad_x or rows != cols:
                raise EncoderFileError(f"convolution at byte {found.start()}: not square, or unequal strides or padding")
            # (rows, cols, inputs) × filters: the order the forward pass lays image patches out in
            weights = HalfMatrix(params[:n].reshape(shape).transpose(2, 3, 1, 0))
            layers.append(_Layer("con", (weights, params[n:].copy(), rows, stride_y, pad_y)))
        elif name == "affine_":
            params, at = _tensor(data, at)
            gamma, at = _alias(data, at)
            _alias(data, at)
            n = math.prod(gamma)
            if 2 * n != params.size:
                raise EncoderFileError(f"affine layer at byte {found.start()} does not add up")
            layers.append(_Layer("affine", (params[:n].copy(), params[n:].copy())))
        elif name in ("max_pool_2", "avg_pool_2"):
            (rows, cols, stride_y, stride_x, pad_y, pad_x), at = _ints(data, at, 6)
            if pad_y or pad_x or rows != cols or stride_y != stride_x:
                raise EncoderFileError(f"pooling at byte {found.start()} is not one this module runs")
            layers.append(_Layer(name[:-2], (rows, stride_y)))
        elif name in ("fc_2", "fc_3"):
            (outputs, inputs), at = _ints(data, at, 2)
            params, at = _tensor(data, at)
            if params.size != inputs * outputs:  # fc_no_bias: the weights only
                raise EncoderFileError(f"fully connected layer at byte {found.start()} does not add up")
            layers.append(_Layer("fc", (params.reshape(inputs, outputs).copy(),)))
        elif name == "input_rgb_image_sized":
            red, at = _float(data, at)
            green, at = _float(data, at)
            blue, at = _float(data, at)
            (rows, cols), at = _ints(data, at, 2)
            if (rows, cols) != (CHIP_SIZE, CHIP_SIZE):
                raise EncoderFileError(f"the network reads {rows}×{cols} chips, not {CHIP_SIZE}×{CHIP_SIZE}")
            layers.append(_Layer("input", ((red, green, blue),)))
        else:
            layers.append(_Layer("add" if name == "add_prev_" else "relu"))
        if done is not None:
            done(at)
    kinds = [layer.kind for layer in layers]
    if kinds != EXPECTED:
        raise EncoderFileError(f"not dlib's face recognition ResNet: {len(kinds)} layers where {len(EXPECTED)} were expected")
    return layers


class HalfMatrix:
    """A float32 matrix kept in half the memory: IEEE half precision (11 significant bits) times a
    power of two of its own, widened back to float32 into a caller's buffer before each product.

    Why: the network's 5.6 million weights are 22 MB as float32, a fifth of a kiosk's memory with
    faces on (issue 18's goal is 110 MB). Kept this way they move an encoding by at most 7.7e-5
    and the distance between two faces by at most 8.7e-5 on the shared portraits (tests/
    test_faces_engine.py), against a match tolerance of 0.4-0.6 and an ambiguity margin of 0.05.

    How: the power of two puts the matrix's largest weight near 2^14, so its small weights stay
    normal halves (in the last layer 89 % of them are under half's smallest normal, 6.1e-5); what
    is still under it then, 2^-28 of the largest, is stored as 0, so the widening never multiplies
    a denormal float (slow on x86). Flushing half's denormals to 0 without the scaling moved
    encodings 10× more (7.1e-4); keeping them unscaled gave the same numbers as now, with denormal
    multiplies. numpy's own float16 -> float32 cast takes 2.8 ns a number on the bench PC (a second
    encoding's worth of time); the four integer passes of `widen_into` take 0.45 ns, 2.5 ms an
    encoding. A matrix with a weight that is not a finite number is refused with
    EncoderFileError: the engine then falls back to dlib's encoder.
    """

    #: the smallest normal half-precision number
    SMALLEST = 2.0**-14

    def __init__(self, weights: "np.ndarray") -> None:
        """`weights` (any layout, a view into the model file's bytes is fine): its last axis is
        the matrix's columns, the others together its rows. Written straight into half precision,
        without a float32 copy on the way (copies of 2.4 MB per layer left holes in the heap)."""
        import numpy as np

        largest = max(abs(float(weights.max())), abs(float(weights.min())))
        if not math.isfinite(largest):
            raise EncoderFileError("a weight is not a finite number")
        # a power of two per matrix (exact, undone by the widening's multiply) that puts its
        # largest weight near 2^14: the small ones stay normal halves instead of losing digits
        self.exponent = 14 - math.frexp(largest)[1] if largest else 0
        half = np.empty(weights.shape, np.float16)
        np.multiply(weights, np.float32(2.0**self.exponent), out=half, casting="same_kind")
        half[np.abs(half) < self.SMALLEST] = 0  # 2^-28 of the largest and less
        self.bits = half.reshape(-1, weights.shape[-1]).view(np.int16)

    @property
    def shape(self) -> tuple[int, int]:
        return self.bits.shape

    @property
    def size(self) -> int:
        return self.bits.size

    def widen_into(self, buffer: "np.ndarray", first: int = 0, stop: int | None = None) -> "np.ndarray":
        """Rows `first` to `stop` (all by default) of the float32 matrix, written into (the start
        of) `buffer`, an int32 array large enough; exactly numpy's `astype(np.float32)` of the
        stored halves."""
        import numpy as np

        rows = self.bits[first:stop]
        out = buffer[: rows.size].reshape(rows.shape)
        np.copyto(out, rows)  # sign-extended: bits 31-16 all hold the sign
        np.left_shift(out, 13, out=out)  # exponent and mantissa to float32's places, sign in 31-28
        np.bitwise_and(out, np.int32(-0x70000001), out=out)  # 0x8FFFFFFF: the sign in bit 31 only
        wide = out.view(np.float32)
        # half's exponent bias (15) to float32's (127), and the matrix's own power of two undone
        np.multiply(wide, np.float32(2.0 ** (112 - self.exponent)), out=wide)
        return wide


class ResnetEncoder:
    """`ResnetEncoder.from_file(path)(chip)`: the 128 numbers for a 150×150×3 uint8 RGB face chip.
    Safe to call from several threads (one encoding at a time: they share a buffer)."""

    def __init__(self, layers: list[_Layer]) -> None:
        import numpy as np

        self._blas = _blas_controller()
        self._lock = threading.Lock()
        self._mean = np.asarray(layers[0].params[0], np.float32)
        self._ops: list[tuple[str, Any]] = []
        channels = 3
        for layer in layers[1:]:  # the channels checked layer to layer
            if layer.kind == "con":
                matrix, _, size, _, _ = layer.params
                inputs, filters = matrix.shape[0] // (size * size), matrix.shape[1]
                if inputs != channels:
                    raise EncoderFileError(f"a convolution reads {inputs} channels where {channels} arrive")
                channels = filters
            elif layer.kind == "fc" and layer.params[0].shape[0] != channels:
                raise EncoderFileError(f"the last layer reads {layer.params[0].shape[0]} numbers where {channels} arrive")
            self._ops.append((layer.kind, layer.params))
        self._widened = np.empty(WORK_BUDGET // 4, np.int32)  # a convolution's weights, some rows at a time

    @classmethod
    def from_file(cls, path: str | Path) -> "ResnetEncoder":
        """Read through a memory map, each layer's pages let go once its weights are copied: the
        file is 22 MB and its weights 11 MB in half precision, and reading it whole first put a
        kiosk's peak memory 22 MB above where it then runs."""
        with open(path, "rb") as file:
            try:
                data = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
            except ValueError as exc:  # an empty file cannot be mapped
                raise EncoderFileError(f"not dlib's face recognition ResNet: {exc}") from None

        def done(at: int) -> None:
            if at >= mmap.PAGESIZE:  # whole pages only, from the start
                data.madvise(mmap.MADV_DONTNEED, 0, at - at % mmap.PAGESIZE)

        try:
            return cls(read_layers(data, done))
        finally:
            try:
                data.close()
            except BufferError:  # a failed read's traceback still holds a view: the mapping goes with it
                pass

    def __call__(self, chip: "np.ndarray") -> "np.ndarray":
        if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"a face chip is {CHIP_SIZE}×{CHIP_SIZE}×3, not {chip.shape}")
        with self._lock:
            if self._blas is None:
                return self._forward(chip)
            with self._blas.limit(limits=1, user_api="blas"):
                return self._forward(chip)

    @property
    def blas_threads(self) -> int | None:
        """How many threads numpy's BLAS uses now (None: threadpoolctl is not installed)."""
        if self._blas is None:
            return None
        return max((lib["num_threads"] for lib in self._blas.info() if lib["user_api"] == "blas"), default=None)

    def _forward(self, chip: "np.ndarray") -> "np.ndarray":
        import numpy as np
        from numpy.lib.stride_tricks import sliding_window_view

        x = (chip.astype(np.float32) - self._mean) / np.float32(256.0)  # as dlib's input layer
        block_input = x  # what the next residual block adds back
        after_add = False
        for kind, params in self._ops:
            if kind == "con":
                matrix, bias, size, stride, pad = params
                if pad:
                    x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
                patches = sliding_window_view(x, (size, size), axis=(0, 1))[::stride, ::stride]  # H, W, C, size, size
                rows, cols = patches.shape[:2]
                inputs, filters = matrix.shape
                x = np.empty((rows, cols, filters), np.float32)
                band = max(1, WORK_BUDGET // (cols * inputs * 4))  # output rows at a time
                depth = max(1, WORK_BUDGET // (filters * 4))  # weight rows (patch numbers) at a time
                for top in range(0, rows, band):
                    part = patches[top : top + band]
                    flat = part.transpose(0, 1, 3, 4, 2).reshape(part.shape[0] * cols, -1)  # the one copy: im2col
                    out = x[top : top + band].reshape(-1, filters)
                    np.matmul(flat[:, :depth], matrix.widen_into(self._widened, 0, depth), out=out)
                    for first in range(depth, inputs, depth):  # the last layers' weights, in pieces
                        out += flat[:, first : first + depth] @ matrix.widen_into(self._widened, first, first + depth)
                x += bias
            elif kind == "affine":
                gamma, beta = params
                x *= gamma  # in place: x is the convolution's own output
                x += beta
            elif kind == "relu":
                x = np.maximum(x, 0, out=x)
                if after_add:
                    block_input, after_add = x, False
            elif kind == "max_pool":
                size, stride = params
                x = sliding_window_view(x, (size, size), axis=(0, 1))[::stride, ::stride].max(axis=(3, 4))
                block_input = x
            elif kind == "avg_pool" and params == (0, 1):  # the whole map
                x = x.mean(axis=(0, 1))
            elif kind == "avg_pool":  # a halving block's input, for its sum
                size, stride = params
                block_input = sliding_window_view(block_input, (size, size), axis=(0, 1))[::stride, ::stride].mean(axis=(3, 4))
            elif kind == "add":
                x = _padded_sum(x, block_input)
                after_add = True
            elif kind == "fc":
                x = x @ params[0]
        return x.astype(np.float64)


def _blas_controller() -> Any:
    """threadpoolctl's view of the BLAS numpy loaded (None where threadpoolctl is missing)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def _padded_sum(a: "np.ndarray", b: "np.ndarray") -> "np.ndarray":
    """a + b, each zero-padded at the end of every axis to the larger size (dlib's add_prev)."""
    import numpy as np

    if a.shape == b.shape:
        return a + b
    out = np.zeros(tuple(max(m, n) for m, n in zip(a.shape, b.shape)), np.float32)
    out[: a.shape[0], : a.shape[1], : a.shape[2]] += a
    out[: b.shape[0], : b.shape[1], : b.shape[2]] += b
    return out
