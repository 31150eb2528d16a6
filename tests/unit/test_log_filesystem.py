"""A routing log on NFS, SMB, a FUSE cloud folder or a Docker Desktop bind mount failed with 'disk I/O error' or
'database is locked' and was told to 'check that this user can write the file and its directory' (dockhand#454,
thepopebot#135); SQLite's WAL page says "WAL does not work over a network filesystem"
(https://www.sqlite.org/wal.html). NFS cannot be mounted here, so the parser reads mountinfo lines in the format of
man 5 proc (/proc/[pid]/mountinfo), and the message path is checked by pointing the parser at such a fixture."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import tmpfs

from modelyard.ledger import filesystem
from modelyard.ledger.filesystem import Mount, containing, mount_of, on_network, parse_mountinfo
from modelyard.ledger.store import LogStore, LogUnavailable
from modelyard.ledger.writer import LogWriter

#: mount id, parent id, major:minor, root, mount point, options, optional fields, '-', type, source, super options
MOUNTINFO = "\n".join([
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro",
    "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue",  # man 5 proc's own example
    "120 22 0:52 / /mnt/x rw,relatime shared:65 - nfs4 10.0.0.5:/export rw,vers=4.2,rsize=1048576,wsize=1048576,"
    "namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.9,local_lock=none,addr=10.0.0.5",
    "121 120 0:53 / /mnt/x/scratch rw,relatime shared:66 - tmpfs tmpfs rw,size=1024k",
    "130 22 0:60 / /mnt/share rw,relatime shared:70 - cifs //nas/share rw,vers=3.1.1,cache=strict,username=me,"
    "uid=0,noforceuid,gid=0,noforcegid,addr=192.168.1.2,file_mode=0755,dir_mode=0755,nobrl,rsize=4194304",
    "140 22 0:70 / /home/me/My\\040Drive rw,nosuid,nodev,relatime shared:80 - fuse.rclone gdrive: "
    "rw,user_id=1000,group_id=1000",
    # Docker Desktop bind mounts, as seen inside the container (macOS: grpcfuse or virtiofs; old: osxfs)
    "612 600 0:130 /Users/me/proj /app rw,relatime - fuse.grpcfuse grpcfuse rw,user_id=0,group_id=0,allow_other",
    "613 600 0:131 /Users/me/data /data rw,relatime - virtiofs mount0 rw",
    "150 22 0:80 / /mnt/xy rw,relatime shared:90 - ext4 /dev/sdb1 rw",
    "not a mountinfo line",
])


@pytest.mark.parametrize(("path", "point", "fstype", "remote"), [
    ("/mnt/x/logs/routing.sqlite3", "/mnt/x", "nfs4", True),
    ("/mnt/x/scratch/routing.sqlite3", "/mnt/x/scratch", "tmpfs", False),  # the longest mount point wins
    ("/mnt/xy/routing.sqlite3", "/mnt/xy", "ext4", False),  # /mnt/x does not hold /mnt/xy
    ("/mnt/share/routing.sqlite3", "/mnt/share", "cifs", True),
    ("/home/me/My Drive/routing.sqlite3", "/home/me/My Drive", "fuse.rclone", True),  # \040 is a space
    ("/app/routing.sqlite3", "/app", "fuse.grpcfuse", True),
    ("/data/routing.sqlite3", "/data", "virtiofs", True),
    ("/mnt2/routing.sqlite3", "/mnt2", "ext3", False),
    ("/var/lib/modelyard/routing.sqlite3", "/", "ext4", False),
])
def test_the_mount_holding_a_path_is_read_from_mountinfo(path: str, point: str, fstype: str, remote: bool) -> None:
    mount = containing(parse_mountinfo(MOUNTINFO), Path(path))
    assert mount == Mount(point, fstype)
    assert mount.remote is remote


@pytest.fixture
def read_only_tmpfs(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "nas", "size=1m,ro") as mount:
        yield mount


def test_a_tmpfs_is_not_a_network_filesystem(read_only_tmpfs: Path) -> None:
    """Read from this machine's real /proc/self/mountinfo."""
    path = read_only_tmpfs / "routing.sqlite3"
    assert mount_of(path) == Mount(str(read_only_tmpfs.resolve()), "tmpfs")
    assert on_network(path) is None


def as_nfs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, folder: Path) -> None:
    """This machine's mounts, with ``folder`` shown as an NFS mount over them."""
    fixture = tmp_path / "mountinfo"
    fixture.write_text(Path("/proc/self/mountinfo").read_text() + f"999 22 0:99 / {folder.resolve()} rw,relatime "
                       "shared:99 - nfs4 10.0.0.5:/export rw,vers=4.2,addr=10.0.0.5\n")
    monkeypatch.setattr(filesystem, "MOUNTINFO", fixture)


def test_a_log_that_cannot_be_opened_on_nfs_says_so(tmp_path: Path, read_only_tmpfs: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    as_nfs(monkeypatch, tmp_path, read_only_tmpfs)
    path = read_only_tmpfs / "routing.sqlite3"
    said = (f"the routing log is on a network filesystem (nfs4 at {read_only_tmpfs.resolve()}): SQLite's write-ahead "
            "log needs a local disk — set log.path to a local folder, or log.url to PostgreSQL for a shared log")
    for opening in (lambda: LogWriter(path), lambda: LogStore(path).local()):
        with pytest.raises(LogUnavailable) as refused:
            opening()
        assert str(refused.value).startswith(f"routing log {path}: cannot be opened (")
        assert said in str(refused.value)
        assert "check that this user can write" not in str(refused.value)


def test_a_log_that_opens_on_nfs_is_warned_about(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "share").mkdir()
    as_nfs(monkeypatch, tmp_path, tmp_path / "share")
    with caplog.at_level(logging.WARNING, logger="modelyard.ledger.writer"):
        LogWriter(tmp_path / "share" / "routing.sqlite3").close()
    assert any("the routing log is on a network filesystem (nfs4 at" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="modelyard.ledger.writer"):
        LogWriter(tmp_path / "routing.sqlite3").close()  # the folder beside it is local: nothing said
    assert not any("network filesystem" in r.getMessage() for r in caplog.records)
