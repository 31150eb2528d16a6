"""Which filesystem holds the routing log, to say when it is a network or FUSE one.

SQLite's WAL page (https://www.sqlite.org/wal.html): "All processes using a database must be on the same host
computer; WAL does not work over a network filesystem." Users of SQLite-backed tools see it as 'disk I/O error' or
'database is locked' on NFS, SMB/CIFS, FUSE cloud folders and Docker Desktop bind mounts (dockhand#454,
thepopebot#135; Sonarr/Sonarr#1886: Docker for Windows mounts host folders over CIFS with ``nobrl``), and were told to
check that they can write the file. ``os.statvfs`` has no filesystem type, so on Linux the type is read from
/proc/self/mountinfo (man 5 proc); elsewhere it is unknown and nothing is said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: where the kernel lists this process's mounts (tests point it at a fixture)
MOUNTINFO = Path("/proc/self/mountinfo")

#: filesystem types on another host, or behind a FUSE daemon or hypervisor share, where WAL's shared memory and
#: locks do not hold; any ``fuse.*`` type is FUSE too (fuse.sshfs, fuse.rclone, fuse.grpcfuse, fuse.gcsfuse …)
NETWORK = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs", "osxfs", "ceph", "glusterfs",
                     "davfs", "fuse", "fuseblk", "afs", "lustre", "gpfs", "vboxsf", "vmhgfs", "prl_fs", "ncpfs"})


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str

    @property
    def remote(self) -> bool:
        return self.fstype in NETWORK or self.fstype.startswith("fuse.")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes (\\040 …)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """Each line: id parent major:minor root mount-point options [optional fields…] - fstype source super-options;
    the optional fields end at the lone '-' (man 5 proc). Lines that do not fit are skipped."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        if "-" not in fields[6:] or len(fields) < 7:
            continue
        dash = fields.index("-", 6)
        if dash + 1 < len(fields):
            mounts.append(Mount(_unescape(fields[4]), fields[dash + 1]))
    return mounts


def containing(mounts: list[Mount], path: Path) -> Mount | None:
    """The longest mount point above ``path`` (whole components: /mnt/x does not hold /mnt/xy), the later of two
    equal ones (a mount over another hides it)."""
    best: Mount | None = None
    for mount in mounts:
        if path.is_relative_to(mount.point) and (best is None or len(mount.point) >= len(best.point)):
            best = mount
    return best


def mount_of(path: Path) -> Mount | None:
    """The mount holding ``path`` (its nearest existing folder, links resolved); None where there is no mountinfo
    (macOS, Windows: the type is unknown there, and nothing is said)."""
    try:
        mounts = parse_mountinfo(MOUNTINFO.read_text(errors="replace"))
    except OSError:
        return None
    where = Path(path).absolute()
    return containing(mounts, next((p for p in (where, *where.parents) if p.exists()), where).resolve())


def on_network(path: Path) -> str | None:
    """What to say when the log's folder is on a network or FUSE filesystem, else None."""
    mount = mount_of(path)
    if mount is None or not mount.remote:
        return None
    return (f"the routing log is on a network filesystem ({mount.fstype} at {mount.point}): SQLite's write-ahead log "
            "needs a local disk — set log.path to a local folder, or log.url to PostgreSQL for a shared log")
