"""What `sentinel demo` needs for its resident let in by face (the shipped NASA portrait)."""

from __future__ import annotations

from pathlib import Path

from sentinel.config import ASSETS, FacesConfig
from sentinel.faces.engine import available

FACE_SCENES = ASSETS / "face_scenes"
#: the reference service's seed with the resident enrolled in the demo site's face gallery
DEMO_FACES_SEED = "demo-faces"


def demo_faces_config() -> FacesConfig:
    """Face matching on wherever the engine is installed (./install.sh --dev installs it).

    The demo's scenes are still pictures played as a camera, and a still picture never shows a
    sign of life (sentinel/faces/liveness.py): that is the point of the check. So the demo turns
    liveness off, which a site must not do, and the kiosk says so in its log; the resident is let
    in by a picture here, as only a demo may."""
    return FacesConfig(enabled=available(), liveness="off")


def demo_scene_folder(state_dir: Path, qr_scenes: Path = ASSETS / "scenes") -> Path:
    """The QR scenes, then the face scenes (11_empty, 12_face, 13_two_people), as one folder of
    links in `state_dir`: a replay plays a folder in name order."""
    folder = Path(state_dir) / "demo-scenes"
    folder.mkdir(exist_ok=True)
    for source in (qr_scenes, FACE_SCENES):
        for path in sorted(source.iterdir()):
            if path.suffix.lower() in (".png", ".jpg") and not (folder / path.name).exists():
                (folder / path.name).symlink_to(path.resolve())
    return folder
