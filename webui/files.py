"""Whole-file writes: a file the app rewrites is either the old one or the new one, never half of either."""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from glob import escape as glob_escape
from pathlib import Path

PARTIAL_SUFFIX = ".partial"
BACKUP_SUFFIX = ".bak"


def _fsync_folder(folder: Path) -> None:
    # The rename itself lives in the folder's entry table; without this a power cut may still lose it.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_target(path: str | Path, *, keep_backup: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `path`; when the block succeeds it is fsynced and renamed over `path`.

    Anything the block writes (with `open`, `safetensors.torch.save_file`, `Image.save`, …) goes to the temporary
    file, so a crash, an exception or a full disk leaves the previous file untouched and no half file under the
    real name. With `keep_backup`, the previous good copy stays as `<name>.bak` for loaders to fall back on.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}{PARTIAL_SUFFIX}.{os.getpid()}")
    try:
        yield partial
        with open(partial, "rb+") as written:
            os.fsync(written.fileno())
        if keep_backup and target.is_file():
            backup = target.with_name(target.name + BACKUP_SUFFIX)
            with atomic_target(backup) as backup_partial:
                shutil.copyfile(target, backup_partial)
        os.replace(partial, target)
        _fsync_folder(target.parent)
    finally:
        partial.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes, *, keep_backup: bool = False) -> None:
    """Replace `path` with `data` as one step (temp file + fsync + rename)."""
    with atomic_target(path, keep_backup=keep_backup) as partial:
        partial.write_bytes(data)


def atomic_write_text(path: str | Path, text: str, *, keep_backup: bool = False, encoding: str = "utf-8") -> None:
    """Replace `path` with `text` as one step (temp file + fsync + rename)."""
    atomic_write_bytes(path, text.encode(encoding), keep_backup=keep_backup)


def remove_stale_partials(path: str | Path) -> int:
    """Delete temporary files of `path` (and of its .bak) left by writers that died (kill -9, power cut)."""
    target = Path(path)
    removed = 0
    for name in (target.name, target.name + BACKUP_SUFFIX):
        for partial in target.parent.glob(f"{glob_escape(name)}{PARTIAL_SUFFIX}.*"):
            pid = partial.name.rsplit(".", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                partial.unlink(missing_ok=True)
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists but belongs to someone else
    return True


def read_with_backup(path: str | Path, parse: Callable[[bytes], object]) -> tuple[object | None, str | None]:
    """Parse `path`, or its `.bak` copy when the main file is missing, empty or unreadable.

    Returns (value, note): value is None when neither parses; note says which copy was used and why, for the log/UI.
    Temporary files of writers that died are removed first.
    """
    target = Path(path)
    remove_stale_partials(target)
    problem = None
    if target.is_file():
        try:
            return parse(target.read_bytes()), None
        except Exception as error:  # noqa: BLE001 - any parse failure means "try the backup"
            problem = f"{target.name} is unreadable ({type(error).__name__}: {error})"
    backup = target.with_name(target.name + BACKUP_SUFFIX)
    if backup.is_file():
        try:
            value = parse(backup.read_bytes())
        except Exception as error:  # noqa: BLE001
            return None, f"{problem or target.name + ' is missing'}; its backup is unreadable too ({error})"
        return value, f"{problem or target.name + ' is missing'}; loaded the previous good copy {backup.name}"
    return None, problem
