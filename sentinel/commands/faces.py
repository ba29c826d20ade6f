"""`sentinel faces enroll|list|remove|match|sync`: the site's face gallery, for technicians.

- `enroll --person-id ID --name NAME IMAGE...`: enrol a person from photos. Each photo must show
  exactly one face at least 80 px wide; otherwise nothing is enrolled and each problem is named.
  The name is masked (王*明) before it is stored; photos are not kept unless `--keep-image`.
- `list`: who is enrolled (masked names), from where (local, service), how many encodings.
- `remove ID`: remove a person's encodings and kept images.
- `match IMAGE...`: one JSON line per image: what the kiosk would decide on it (match with person
  id and distance, unknown, no_face, too_small, several) and the face box.
- `sync`: fetch the site's gallery from the service now (`GET /v1/faces`).

The gallery is `<state_dir>/faces/gallery.sqlite3` of the config (or `--gallery FILE`); changes are
seen by a running kiosk within one detection. Needs the face extra (dlib, face-recognition-models).

Run with sudo, it reads the config, the device token and the face engine as root, then works on
the gallery as the kiosk's `sentinel` user where one exists (so the files stay the kiosk's, 0600,
and the kernel refuses what that user could not do), and never through a symbolic link: a linked
`faces/` or `images/` folder or gallery file is refused (sentinel/state_files.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sentinel.commands._config import load_or_report
from sentinel.config import SentinelConfig

NAME = "faces"
HELP = "the face gallery: enroll, list, remove, match, sync"
DEFAULT_CONFIG = "/etc/sentinel/sentinel.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help=f"config file (default {DEFAULT_CONFIG})")
    common.add_argument("--gallery", type=Path, metavar="FILE", help="use this gallery file instead of the configured one")

    p = sub.add_parser("enroll", parents=[common], help="enrol a person from photos (one face each)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos of the person (jpg, png, …), one face each")
    p.add_argument("--person-id", required=True, help="the person's id at the health-status service")
    p.add_argument("--name", required=True, help="the person's name; only its masked form (王*明) is stored")
    p.add_argument("--face-id", help="the id the service knows this face by, sent as the face credential (default: the person id)")
    p.add_argument("--keep-image", action="store_true", help="keep a crop of each face next to the gallery (default: photos are not kept)")
    p.add_argument("--allow-similar", action="store_true", help="enrol even if the person looks like someone already enrolled")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")

    p = sub.add_parser("list", parents=[common], help="who is enrolled")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    p = sub.add_parser("remove", parents=[common], help="remove a person's encodings (and kept images)")
    p.add_argument("person_id", metavar="ID", help="person id")

    p = sub.add_parser("match", parents=[common], help="match photos against the gallery; one JSON line per image")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos or camera frames")

    sub.add_parser("sync", parents=[common], help="fetch the site's gallery from the service now")


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return 2
    engine = None
    if args.action in ("enroll", "match"):  # before any file is made: without the engine nothing can be done
        engine = _engine()
        if engine is None:
            return 3
    client = None
    if args.action == "sync":  # the device token is root's: read it before dropping to the kiosk's user
        client = _client(config)
        if client is None:
            return 1
    from sentinel.state_files import as_state_owner

    try:
        with as_state_owner(state_dir=config.device.state_dir):
            return _on_gallery(args, config, engine, client)
    finally:
        if client is not None:
            client.close()


def _on_gallery(args: argparse.Namespace, config: SentinelConfig, engine, client) -> int:
    from sentinel.faces.gallery import Gallery, GalleryError, gallery_path

    path = args.gallery or gallery_path(config)
    missing = not path.exists()
    if args.action in ("list", "remove", "match") and missing:
        if args.action == "match":
            print(f"sentinel faces: no gallery at {path}: every face will be unknown", file=sys.stderr)
        else:
            print(f"sentinel faces: no gallery at {path} (nobody enrolled, never synced)", file=sys.stderr)
            return 1 if args.action == "remove" else 0
    try:
        gallery = Gallery(None if args.action == "match" and missing else path)  # looking creates no file
    except (OSError, GalleryError) as e:
        print(f"sentinel faces: cannot open the gallery {path}: {e}", file=sys.stderr)
        return 1
    try:
        if args.action == "sync":
            return _sync(args, config, gallery, client)
        action = {"enroll": _enroll, "list": _list, "remove": _remove, "match": _match}[args.action]
        return action(args, config, gallery, engine)
    finally:
        gallery.close()


def _config(args: argparse.Namespace) -> SentinelConfig | None:
    name = args.config or DEFAULT_CONFIG
    if args.config is None and args.gallery is not None and not Path(name).exists():
        return SentinelConfig()  # a gallery file on a technician's laptop: the default settings
    return load_or_report(name)


def _engine():
    from sentinel.faces.engine import EngineUnavailable, FaceEngine

    try:
        return FaceEngine()
    except EngineUnavailable as e:
        print(f"sentinel faces: {e}", file=sys.stderr)
        return None


def _enroll(args, config: SentinelConfig, gallery, engine) -> int:
    from sentinel.faces.enrol import EnrolmentRefused, enrol_images
    from sentinel.faces.gallery import GalleryError

    try:
        done = enrol_images(
            gallery, engine, args.person_id, args.name, args.images,
            face_id=args.face_id, tolerance=config.faces.tolerance, keep_images=args.keep_image, allow_similar=args.allow_similar,
        )
    except EnrolmentRefused as e:
        print("sentinel faces enroll: refused, nothing enrolled:", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except GalleryError as e:
        print(f"sentinel faces enroll: refused, nothing enrolled: {e}", file=sys.stderr)
        return 1
    person = next(p for p in gallery.people() if p.person_id == args.person_id)
    if args.json:
        _emit(json.dumps({**person.as_dict(), "enrolled": done}, ensure_ascii=False))
    else:
        kept = f", {len(done)} face images kept" if args.keep_image else ", no images kept"
        _emit(f"enrolled {person.person_id} ({person.name_masked}): {len(done)} new encodings, {person.encodings} in all{kept}")
    return 0


def _list(args, config: SentinelConfig, gallery, engine=None) -> int:
    people = gallery.people()
    if args.json:
        for p in people:
            _emit(json.dumps(p.as_dict(), ensure_ascii=False))
        return 0
    if not people:
        _emit(f"nobody enrolled in {gallery.path}")
        return 0
    pid = max(9, *(len(p.person_id) for p in people))
    fid = max(7, *(len(p.face_id) for p in people))
    name = max(4, *(_width(p.name_masked) for p in people))
    _emit(f"{'person id':<{pid}}  {'name':<{name}}  {'face id':<{fid}}  {'encodings':>9}  {'source':<13}  updated")
    for p in people:
        pad = " " * (name - _width(p.name_masked))
        _emit(
            f"{p.person_id:<{pid}}  {p.name_masked}{pad}  {p.face_id:<{fid}}  {p.encodings:>9}  {'+'.join(p.sources):<13}  "
            f"{p.updated_at.astimezone():%Y-%m-%d %H:%M}"
        )
    _emit(f"{len(people)} people, {sum(p.encodings for p in people)} encodings")
    return 0


def _remove(args, config: SentinelConfig, gallery, engine=None) -> int:
    synced = any("service" in p.sources for p in gallery.people() if p.person_id == args.person_id)
    removed = gallery.remove(args.person_id)
    if not removed:
        print(f"sentinel faces remove: no person {args.person_id} in the gallery", file=sys.stderr)
        return 1
    note = " (synced from the service: back at the next full sync while the service lists them for this site)" if synced else ""
    _emit(f"removed {removed} encodings of {args.person_id}{note}")
    return 0


def _match(args, config: SentinelConfig, gallery, engine) -> int:
    from sentinel.faces.engine import ImageError, load_rgb
    from sentinel.faces.enrol import STILL_DETECT_WIDTH, STILL_UPSAMPLE
    from sentinel.faces.matcher import FaceMatcher

    matcher = FaceMatcher(gallery, config.faces, engine=engine)
    failed = False
    for name in args.images:
        try:
            rgb = load_rgb(name)
        except ImageError as e:
            _emit(json.dumps({"image": name, "error": e.reason}, ensure_ascii=False))
            failed = True
            continue
        grey = _grey(rgb)
        # A photo is not a camera frame: search all of it, as enrolment does, with the kiosk's
        # smallest face and tolerance deciding.
        seen = matcher.analyse(grey, rgb, detect_width=STILL_DETECT_WIDTH, upsample=STILL_UPSAMPLE)
        out = {"image": name, **seen.as_dict()}
        if len(seen.boxes) > 1:
            out["boxes"] = [b.as_dict() for b in seen.boxes]
        _emit(json.dumps(out, ensure_ascii=False))
    return 1 if failed else 0


def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _grey(rgb):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).convert("L"))


def _client(config: SentinelConfig):
    from sentinel.client import ClientError
    from sentinel.kiosk import make_client

    try:
        return make_client(config)
    except ClientError as e:
        print(f"sentinel faces sync: {e}", file=sys.stderr)
        return None


def _sync(args, config: SentinelConfig, gallery, client) -> int:
    from sentinel.faces.sync import GallerySync

    result = GallerySync(gallery, client, config.device.site_id).sync_once(full=True)
    if not result.ok:
        print(f"sentinel faces sync: failed: {result.error}", file=sys.stderr)
        return 1
    _emit(f"synced the gallery of site {config.device.site_id}: {result.stored} entries from the service, {result.removed} removed")
    return 0


def _emit(line: str) -> None:
    """UTF-8 whatever the locale says (masked names are Chinese)."""
    out = getattr(sys.stdout, "buffer", None)
    if out is None:
        print(line, flush=True)
        return
    sys.stdout.flush()
    out.write(line.encode("utf-8") + b"\n")
    out.flush()
