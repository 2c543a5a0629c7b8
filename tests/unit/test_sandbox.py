"""`up`'s data directory: its own, owner-only, and nobody else's directory changed (issue #20, item 1)."""

import os
import stat
from pathlib import Path

import pytest

from vsmmon.errors import EmbeddedServerError
from vsmmon.local._sandbox import private_data_dir


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_new_data_directory_is_created_owner_only(tmp_path: Path) -> None:
    made = private_data_dir(tmp_path / "a" / "data")
    assert made == (tmp_path / "a" / "data").resolve()
    assert mode(made) == 0o700


def test_an_older_vsmmon_directory_is_closed_but_a_directory_with_other_files_is_left_alone(tmp_path: Path) -> None:
    old = tmp_path / "old"
    (old / "logs").mkdir(parents=True)
    (old / "run.json").write_text("{}")
    old.chmod(0o755)
    private_data_dir(old)
    assert mode(old) == 0o700
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("")
    home.chmod(0o755)
    with pytest.raises(EmbeddedServerError, match=r"holds files that are not vsmmon's \(\.bashrc\)"):
        private_data_dir(home)
    assert mode(home) == 0o755  # told, not changed


def test_a_shared_or_linked_directory_is_refused_naming_it(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    with pytest.raises(EmbeddedServerError, match=f"{shared} \\(mode 1777\\) is writable by others"):
        private_data_dir(shared)
    assert mode(shared) == 0o1777
    target = tmp_path / "target"
    target.mkdir(mode=0o755)
    os.symlink(target, tmp_path / "link")
    with pytest.raises(EmbeddedServerError, match="is a symbolic link"):
        private_data_dir(tmp_path / "link")
    assert mode(target) == 0o755
