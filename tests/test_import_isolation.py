"""The core runs anywhere (importing it must not pull in a hardware or UI library), and no two
modules import each other (import circles, issue 19)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ["picamera2", "RPi", "lgpio", "gpiozero", "pygame", "cv2"]

CORE_MODULES = [
    "sentinel", "sentinel.cli", "sentinel.config", "sentinel.credentials", "sentinel.decoding", "sentinel.pipeline",
    "sentinel.policy", "sentinel.records", "sentinel.outbox", "sentinel.screens", "sentinel.verifier",
    "sentinel.health", "sentinel.frames", "sentinel.atomic", "sentinel.kiosk", "sentinel.handheld", "sentinel.notify",
    "sentinel.kiosk_parts", "sentinel.ports", "sentinel.settling", "sentinel.loop_screen", "sentinel.binding",
    "sentinel.config_devices", "sentinel.config_section",
]


def test_core_imports_no_hardware_or_ui_library():
    code = (
        "import importlib, sys\n"
        f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"core imported: {result.stdout.strip()}"


def test_the_handheld_and_the_outbox_import_no_hardware_module():
    """The kiosk (the composition root) hands the handheld its battery and camera gate."""
    code = (
        "import sys, sentinel.handheld, sentinel.outbox\n"
        "print(','.join(m for m in sys.modules if m == 'hardware' or m.startswith('hardware.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_check_detects_a_forbidden_import():
    """Guard against a test that cannot fail: the same probe sees gpiozero once it is imported."""
    code = f"import gpiozero, sys\nprint(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "gpiozero" in result.stdout


# --- import circles (issue 19) ---------------------------------------------------------------------
#
# An import circle is two modules that each import the other (at the top, or later inside a
# function: both are edges here; imports under `if TYPE_CHECKING:` are not, as they never run).
# Import circles make a module's behaviour depend on which one was imported first. The ones
# below are still open in modules other work owns (issue 19); the list may only shrink.

PACKAGES = ("sentinel", "hardware", "ui")
KNOWN_CIRCLES: list[list[str]] = []
#: modules split or moved to break their circles: each must import on its own, first, in a fresh interpreter
UNTANGLED = [
    "hardware.scanner", "hardware.scanner.base", "hardware.scanner.text", "hardware.scanner.hid",
    "hardware.scanner.serial", "hardware.gate", "hardware.inputs", "hardware.pins", "hardware.backoff",
    "sentinel.outbox", "sentinel.outbox.store", "sentinel.outbox.health", "sentinel.outbox.files", "sentinel.outbox.salvage", "sentinel.outbox.sqlite",
    "sentinel.atomic", "hardware.battery", "sentinel.handheld", "sentinel.handheld.controller", "sentinel.handheld.screens",
    "sentinel.handheld.record", "sentinel.handheld.parts", "sentinel.handheld.cards", "sentinel.service.state", "sentinel.service.app", "sentinel.service.api_v1",
    "sentinel.ports", "sentinel.settling", "sentinel.loop_screen", "sentinel.binding_http", "sentinel.binding_toml", "sentinel.kiosk_parts",
    "sentinel.decoding", "sentinel.decoding.base", "sentinel.decoding.text", "sentinel.decoding.zxing", "sentinel.decoding.zbar",
    "sentinel.decoding.wechat", "sentinel.decoding.cascade",
    "ui.display", "ui.errors", "ui.console", "ui.fonts", "ui.render", "ui.pygame_display",
    "sentinel.fleet.protocol", "sentinel.fleet.config", "sentinel.fleet.link", "sentinel.fleet.kiosk", "sentinel.fleet.mqtt",
    "sentinel.state_lock", "sentinel.systemd_credentials", "sentinel.worker",
]  # fmt: skip


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    found = {}
    for top in packages:
        for path in (root / top).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """module -> the modules of this tree it imports (absolute imports; TYPE_CHECKING blocks skipped)."""
    modules = module_files(root, packages)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = {
            id(sub)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for sub in ast.walk(node)
        }
        edges = set()
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    if target in modules:
                        edges.add(target)
                    elif node.module in modules:
                        edges.add(node.module)
        edges.discard(name)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_import_circle():
    found = circles(import_graph(ROOT))
    new = [c for c in found if c not in KNOWN_CIRCLES]
    assert not new, f"import circles: {new}"
    assert not [m for c in found for m in c if m in UNTANGLED or m.startswith(("hardware.scanner", "sentinel.outbox"))]


def test_the_circle_check_finds_a_circle(tmp_path):
    """Guard against a check that cannot fail: a base class next to its factory, as the scanner was."""
    pkg = tmp_path / "hardware"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "scanner.py").write_text("class Base: ...\ndef open_scanner():\n    from hardware.scanner_hid import Hid\n    return Hid()\n")
    (pkg / "scanner_hid.py").write_text("from hardware.scanner import Base\nclass Hid(Base): ...\n")
    (pkg / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from hardware.scanner import Base\n")
    assert circles(import_graph(tmp_path, ("hardware",))) == [["hardware.scanner", "hardware.scanner_hid"]]


def test_each_untangled_module_imports_first_in_a_fresh_interpreter():
    code = (
        "import importlib, subprocess, sys\n"
        f"for m in {UNTANGLED!r}:\n"
        "    r = subprocess.run([sys.executable, '-c', f'import {m}'], capture_output=True, text=True)\n"
        "    print(m, r.returncode, r.stderr.strip().splitlines()[-1:] if r.returncode else '')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    failed = [line for line in result.stdout.splitlines() if " 0 " not in line]
    assert not failed, failed


def test_moved_names_are_still_importable_from_their_old_homes():
    from hardware.gate import (
        describe_pin_factory,
        make_pin_factory,
        prepare_lgpio_workdir,
    )
    from hardware.pins import make_pin_factory as pins_make
    from hardware.scanner import (
        KeyboardWedge,
        LineSplitter,
        NoScanner,
        ScannerError,
        ScannerSource,
        open_scanner,
    )
    from sentinel.outbox import (
        ALARM_TEXT,
        Outbox,
        OutboxError,
        OutboxLimits,
        inspect,
        iter_file_rows,
        scan_bodies,
        wal_damage,
    )

    assert make_pin_factory is pins_make and callable(describe_pin_factory) and callable(prepare_lgpio_workdir)
    assert issubclass(ScannerError, Exception) and open_scanner is not None
    assert {KeyboardWedge, LineSplitter, NoScanner, ScannerSource, Outbox, OutboxLimits, OutboxError}
    assert callable(inspect) and callable(iter_file_rows) and callable(scan_bodies) and callable(wal_damage)
    assert set(ALARM_TEXT) >= {"outbox_full", "outbox_overdue"}


def test_names_moved_by_the_splits_keep_their_old_homes():
    """The splits of pipeline.py, kiosk.py, binding.py, outbox/store.py, config.py and the service's
    app state: names many callers import stay importable where they were, as the same objects."""
    from hardware.backoff import Backoff
    from hardware.camera.base import Backoff as CameraBackoff
    from sentinel import binding, binding_http, binding_toml, kiosk, kiosk_parts, pipeline, ports, settling
    from sentinel.config import ASSETS, GpioGateConfig, InputsConfig, ReplayCameraConfig
    from sentinel.config_devices import ASSETS as DEVICE_ASSETS
    from sentinel.config_devices import GpioGateConfig as DeviceGate
    from sentinel.outbox import SCHEMA_VERSION, OutboxError
    from sentinel.outbox.sqlite import SCHEMA_VERSION as FILE_SCHEMA
    from sentinel.outbox.sqlite import OutboxError as FileOutboxError
    from sentinel.service import app, state

    assert pipeline.CheckOutcome is ports.CheckOutcome and pipeline.State is not None
    assert settling.Settler is not None
    for name in ("NotBound", "check_bound", "make_client", "open_outbox", "open_status_cache", "make_uploader"):
        assert getattr(kiosk, name) is getattr(kiosk_parts, name), name
    assert binding.BindError is binding_http.BindError and binding.request_binding is binding_http.request_binding
    assert binding.update_config is binding_toml.update_config and binding.write_secret_file is binding_toml.write_secret_file
    assert OutboxError is FileOutboxError and SCHEMA_VERSION == FILE_SCHEMA
    assert ASSETS == DEVICE_ASSETS and GpioGateConfig is DeviceGate and InputsConfig and ReplayCameraConfig
    assert app.PURGE_EVERY == state.PURGE_EVERY
    assert CameraBackoff is Backoff
