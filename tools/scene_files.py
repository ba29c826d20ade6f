"""What the scene generators (tools/make_demo_scenes.py, make_vehicle_scenes.py,
make_face_scenes.py) share: their command line, writing the scenes and their manifest, and the
closing report (each file, its size, what it shows; then every problem the self-check found, and
exit status 1 if there was one).

Imported as `tools.scene_files` (each generator puts the repository on sys.path first).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np


def parser(doc: str, default_out: Path, what: str = "output folder") -> argparse.ArgumentParser:
    """The generator's command line: `--out DIR` (default `default_out`); `doc` is its module docstring."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--out", type=Path, default=default_out, help=f"{what} (default {default_out})")
    return p


def write_manifest(out: Path, manifest: dict, ensure_ascii: bool = False) -> None:
    text = json.dumps(manifest, indent=2, ensure_ascii=ensure_ascii) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")


def render_scenes(out: Path, scenes: Iterable[Any], backdrop: np.ndarray, render: Callable[..., Any], seed: int,
                  **save: Any) -> dict[str, str | None]:
    """Each scene drawn over `backdrop` with its own random generator (seed + 1 + its index, so
    a scene's noise does not change when another is added after it), saved as `scene.file` with
    `save` (PIL's options), and the manifest (file → payload) written beside them."""
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, str | None] = {}
    for index, scene in enumerate(scenes):
        rng = np.random.default_rng(seed + 1 + index)
        render(scene, backdrop, rng).save(out / scene.file, **save)
        manifest[scene.file] = scene.payload
    write_manifest(out, manifest)
    return manifest


def report(out: Path, manifest: dict, problems: list[str], shows: Callable[[Any], str], name_width: int = 18,
           size_width: int = 6) -> int:
    """Print each file with its size and what it shows, then the problems; the exit status."""
    for name, want in manifest.items():
        size = (out / name).stat().st_size
        print(f"{name:{name_width}} {size / 1000:{size_width}.0f} kB  {shows(want)}")
    for problem in problems:
        print(f"FAILED {problem}", file=sys.stderr)
    return 1 if problems else 0
