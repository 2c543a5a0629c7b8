"""What keeps the embedded servers to themselves: their system users, owner-only directories and files,
a clean environment, and where their data lives.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import stat
import subprocess
from pathlib import Path

from vsmmon.errors import EmbeddedServerError

ROOT_SERVER_BASE = Path("/var/lib/vsmmon")
_PASSED_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ")


def server_home(data_dir: Path) -> Path:
    """Where the embedded servers of `data_dir` keep their data.

    Started by an ordinary user, the servers run as that user and keep their data in `data_dir` itself.
    Started by root, they run as system users (`vsmmon-pg`, `vsmmon-redis`), who cannot enter root's own
    directories (`/root` and pytest's `/tmp/pytest-of-root` are 0700) — and vsmmon never opens a parent
    directory to them, which would open it to every local user. Their data then lives in
    `/var/lib/vsmmon/<hash of data_dir>/{postgres,redis}`: the two levels root-owned 0711 (passable, not
    listable), each server's directory owned by its user, 0700. `data_dir` keeps run.json, the logs and
    the beat schedule, 0700, root's.
    """
    if os.geteuid() != 0:
        return data_dir
    key = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    return ROOT_SERVER_BASE / key


def prepare_home(home: Path) -> None:
    """Create the servers' home: 0700 for an ordinary user; root-owned 0711 levels under root."""
    if os.geteuid() != 0:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        return
    for level in (home.parent, home):
        level.mkdir(mode=0o711, exist_ok=True)
        st = level.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0:
            raise EmbeddedServerError(f"{level} must be a directory owned by root; move it away and start again")
        level.chmod(0o711)  # created by us: whatever the umask made of it


def ensure_user(name: str) -> pwd.struct_passwd:
    """The system user `name`, created (no home, no login shell) when missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)  # fmt: skip
        return pwd.getpwnam(name)


def own_dir(path: Path, user: pwd.struct_passwd | None) -> None:
    """`path` as a directory only its server's user may enter (0700), created when missing."""
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise EmbeddedServerError(f"{path} is not a directory")
    path.chmod(0o700)
    if user is not None and st.st_uid != user.pw_uid:
        # a tree its user did not own yet: they cannot have planted links in it, and lchown follows none
        for entry in (path, *path.rglob("*")):
            os.chown(entry, user.pw_uid, user.pw_gid, follow_symlinks=False)


def check_reachable(target: Path, user: pwd.struct_passwd, what: str) -> None:
    """Raise unless `user` (with no supplementary groups, as the servers run) may pass every directory
    above `target`; vsmmon changes none of them.

    Raises:
        EmbeddedServerError: naming the first directory that stops `user`, and what to do about it.
    """
    for parent in reversed(target.parents):
        st = parent.stat()
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid == user.pw_gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if st.st_mode & bit or _passes(parent, user):  # the probe: an ACL may let it pass all the same
            continue
        raise EmbeddedServerError(
            f"{what} runs as {user.pw_name}, which cannot reach its data directory {target}: {parent} (mode "
            f"{stat.S_IMODE(st.st_mode):04o}, owner {_owner(st.st_uid)}) gives it no search (x) permission. "
            f"vsmmon does not change the permissions of directories it did not create: let {user.pw_name} "
            f"pass (setfacl -m u:{user.pw_name}:x {parent}, or chmod o+x {parent}), or set VSMMON_BROKER_URL "
            f"and VSMMON_DATABASE_URL to servers of your own"
        )


def _passes(directory: Path, user: pwd.struct_passwd) -> bool:
    probe = subprocess.run(["test", "-x", str(directory)], env=server_env(), check=False,
                           user=user.pw_uid, group=user.pw_gid, extra_groups=[])  # fmt: skip
    return probe.returncode == 0


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def write_private(path: Path, text: str, user: pwd.struct_passwd | None = None) -> None:
    """Replace `path` by a file only its owner (`user`, else us) may read, never writing through a link
    or a second name someone put in its place."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            if user is not None:
                os.fchown(out.fileno(), user.pw_uid, user.pw_gid)
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def server_env() -> dict[str, str]:
    """A server's whole environment: a plain PATH and the locale, nothing else of ours (no VSMMON_*)."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    env.update({name: value for name in _PASSED_ENV if (value := os.environ.get(name))})
    return env


VSMMON_ENTRIES = ("run.json", "logs", "postgres", "redis", "postgres.log", "redis.log", "celerybeat-schedule")
"""What `up` keeps in DATA_DIR: a directory holding only these (or nothing) is vsmmon's to make 0700."""


def private_data_dir(path: Path) -> Path:
    """DATA_DIR as a real directory of this user's that no one else may enter (0700); its absolute path.

    Created 0700 when missing. An existing one must not be a symbolic link (whose target `up` would then
    change), must belong to this user and must not be writable by others (a shared directory such as
    /tmp, where another user could plant `logs` or `run.json`). One readable by others is made 0700 only
    when it holds nothing but vsmmon's own files (an older vsmmon made it 0755); any other directory
    (a home directory, a project) is not changed: `up` says so and stops.

    Raises:
        EmbeddedServerError: naming the directory and what is wrong with it.
    """
    path = path.absolute()
    try:
        path.mkdir(mode=0o700, parents=True)
        return path.resolve()
    except FileExistsError:
        pass
    st = path.lstat()
    advice = "set VSMMON_DATA_DIR to a directory of vsmmon's own"
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a directory"
        raise EmbeddedServerError(f"data directory {path} is {what}: {advice}")
    if st.st_uid != os.geteuid():
        raise EmbeddedServerError(f"data directory {path} belongs to {_owner(st.st_uid)}, not to this user: {advice}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022:
        raise EmbeddedServerError(f"data directory {path} (mode {mode:04o}) is writable by others: {advice}")
    if mode & 0o077:
        foreign = sorted(e.name for e in path.iterdir() if not e.name.startswith(VSMMON_ENTRIES))
        if foreign:
            raise EmbeddedServerError(
                f"data directory {path} (mode {mode:04o}) is open to others and holds files that are not "
                f"vsmmon's ({', '.join(foreign[:5])}): vsmmon keeps its data owner-only, {advice}"
            )
        os.chmod(path, 0o700, follow_symlinks=False)
    return path.resolve()
