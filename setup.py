"""One build step that pyproject.toml cannot declare (all metadata lives there).

The wheel also carries `scaled_ql_acme_compat.pth` at its root, which pip installs into
site-packages: its line makes every interpreter of the environment apply the dm-acme 0.4.0
aliases as soon as jax is imported (scaled_ql_acme_compat.py explains why).
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_NAME = "scaled_ql_acme_compat.pth"
PTH_LINE = "import scaled_ql_acme_compat; scaled_ql_acme_compat.install()\n"


class BuildPyWithPth(build_py):
    """build_py, plus the .pth file at the wheel's root.

    A regular wheel's root is `build_lib`.  An editable install (`pip install -e .`, PEP 660)
    maps only modules from `build_lib`, so there the file goes to the editable wheel's root,
    which setuptools passes as the install command's `install_lib`.
    """

    def run(self) -> None:
        super().run()
        root = (self.get_finalized_command("install").install_lib if self.editable_mode
                else self.build_lib)
        Path(root).mkdir(parents=True, exist_ok=True)
        Path(root, PTH_NAME).write_text(PTH_LINE)


setup(cmdclass={"build_py": BuildPyWithPth})
