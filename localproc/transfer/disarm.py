"""What a container leaves in the job's folder is data, never a privilege: once the containers
are gone, every setuid/setgid bit is taken off the files they wrote and every device node they
made is removed, so neither the owner reading the outputs nor anyone else can run a program
with the container's root or open a raw disk through them.

Containers cannot make device nodes in the first place (they run without CAP_MKNOD) and the job's
folder is 0700, out of every other user's reach; this is the last of those walls: it holds even
for an image run with extra privileges or a folder whose mode was changed."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

PRIVILEGE_BITS = stat.S_ISUID | stat.S_ISGID


@dataclass
class DisarmReport:
    stripped: list[str] = field(default_factory=list)  # files whose setuid/setgid was removed
    removed: list[str] = field(default_factory=list)  # device nodes removed
    # What could not be disarmed, with why: a non-root localproc cannot change a file the
    # container's root owns, nor enter a folder it made 0700 (the job's folder is 0700 and
    # the user's own, so no other user reaches them; the owner is told).
    failed: list[str] = field(default_factory=list)


def disarm_tree(root: Path) -> DisarmReport:
    """Strip setuid/setgid from every file below `root` and remove every device node, never
    following a symlink, at any depth and path length. Call it only once nothing writes there
    any more (the containers are gone): the paths are then stable between looking and changing.

    GNU find does the walk where it exists (it always does on Linux): it walks with directory
    descriptors (fts), so neither a folder nested 5,000 deep (Python's walks recurse) nor a path
    longer than PATH_MAX (path strings fail with ENAMETOOLONG) hides a file from it."""
    report = DisarmReport()
    if not root.is_dir():
        return report
    if shutil.which("find") is None:
        return _disarm_walking(root, report)
    # One walk does both (a run pays it once): device nodes are printed with a D and deleted,
    # privileged files printed with an S and stripped in their own folder (-execdir: short
    # names, whatever the depth). A second walk only checks the stripping where there was any.
    for entry in _find(
        root,
        "(", "(", "-type", "b", "-o", "-type", "c", ")", "-printf", "D%p\\0", "-delete", ")",
        "-o",
        "(", "-type", "f", "-perm", "/6000", "-printf", "S%p\\0",
        "-execdir", "chmod", "u-s,g-s", "--", "{}", "+", ")",
    ):  # fmt: skip
        (report.removed if entry[0] == "D" else report.stripped).append(entry[1:])
    if report.stripped:
        left = set(_find(root, "-type", "f", "-perm", "/6000", "-print0"))
        report.failed = [f"{path}: could not remove its setuid/setgid bit" for path in sorted(left)]
        report.stripped = [path for path in report.stripped if path not in left]
    if os.geteuid() != 0:  # root enters every folder; anyone else may have been kept out
        report.failed += [f"{path}: could not be read" for path in _unreadable(root)]
    return report


def _find(root: Path, *expression: str) -> list[str]:
    """Paths `find` prints (NUL-separated) for `expression` below `root`, on its filesystem."""
    done = subprocess.run(
        ["find", str(root), "-xdev", *expression], capture_output=True, check=False
    )
    return [os.fsdecode(path) for path in done.stdout.split(b"\0") if path]


def _unreadable(root: Path) -> list[str]:
    """Folders that the walk could not enter (a non-root localproc, a folder the container's
    root made 0700): whatever is inside was not checked."""
    done = subprocess.run(
        ["find", str(root), "-xdev", "-type", "d", "!", "-executable", "-print0"],
        capture_output=True,
        check=False,
    )
    return [os.fsdecode(path) for path in done.stdout.split(b"\0") if path]


def _disarm_walking(root: Path, report: DisarmReport) -> DisarmReport:
    """Without find: Python's own walk (deep nesting beyond its recursion is reported)."""

    def unreadable(err: OSError) -> None:
        report.failed.append(f"{err.filename}: {err.strerror or err}")

    try:
        for folder, folders, files in os.walk(root, onerror=unreadable, followlinks=False):
            for name in files + folders:
                path = os.path.join(folder, name)
                try:
                    _disarm_one(path, report)
                except FileNotFoundError:
                    continue
                except OSError as err:
                    report.failed.append(f"{path}: {err.strerror or err}")
    except RecursionError:
        report.failed.append(f"{root}: folders nested too deep to be walked")
    return report


def _disarm_one(path: str, report: DisarmReport) -> None:
    mode = os.lstat(path).st_mode
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        report.removed.append(path)
    elif stat.S_ISREG(mode) and mode & PRIVILEGE_BITS:
        os.chmod(path, stat.S_IMODE(mode) & ~PRIVILEGE_BITS)
        report.stripped.append(path)


def describe(report: DisarmReport, where: Path) -> list[str]:
    """The lines to tell the user: what was disarmed, and what could not be."""
    lines = []
    if report.stripped or report.removed:
        lines.append(
            f"removed setuid/setgid bits from {len(report.stripped)} file(s) and "
            f"{len(report.removed)} device node(s) the containers left in {where}"
        )
    if report.failed:
        shown = "; ".join(report.failed[:3]) + (
            f"; and {len(report.failed) - 3} more" if len(report.failed) > 3 else ""
        )
        lines.append(
            f"warning: could not check or disarm {len(report.failed)} item(s) the containers "
            f"left in {where} (run localproc as root, or remove them with sudo): {shown}"
        )
    return lines
