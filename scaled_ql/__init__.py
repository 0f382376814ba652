"""scaled-ql: Scaled Q-Learning (Kumar et al., ICLR 2023) on DeepMind Acme.

Importing the package makes sure the documented dm-acme 0.4.0 / jax 0.4.30 compatibility
aliases (`scaled_ql_acme_compat`) are applied when jax is imported (at once if it already is;
importing the package imports no jax, so `scaled-ql` starts light) and quiets TensorFlow's C++
INFO and WARNING logs, which would otherwise bury the user's terminal at import. Errors still
print. Set TF_CPP_MIN_LOG_LEVEL yourself to override (0 shows everything).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # 2: drop INFO and WARNING, keep ERROR.

import scaled_ql_acme_compat  # noqa: E402

scaled_ql_acme_compat.install()  # now if jax is imported, else right after it is

if os.environ.get("SCALED_QL_QUIET") == "1":  # a process started by `scaled-ql` (_quiet.py)
    from scaled_ql._quiet import is_the_command, quiet_third_party

    # Not in `scaled-ql` itself (one started by another, or by a test after an in-process run
    # set the variable): it quiets itself after installing its startup signal handling, and
    # quieting imports gym, where a signal would otherwise find no handler.
    if not is_the_command():
        quiet_third_party()

__version__ = "0.1.0"
