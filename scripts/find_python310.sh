#!/usr/bin/env bash
# Prints the path of a CPython 3.10 interpreter, or explains what to install and exits 1.
# Order: $PYTHON (if set, it must work: no silent fallback), python3.10 on PATH,
# pyenv's versions folder.  Launchpad has no wheels past 3.10 (docs/STACK.md).
set -u

is_py310() { "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null; }

if [ -n "${PYTHON:-}" ]; then
  if is_py310 "$PYTHON"; then echo "$PYTHON"; exit 0; fi
  echo "error: PYTHON=$PYTHON is not a working Python 3.10 interpreter." >&2
  echo "       scaled-ql needs CPython 3.10 (dm-launchpad publishes wheels only up to 3.10)." >&2
  echo "       Point PYTHON at one, or unset PYTHON to search python3.10 on PATH and pyenv." >&2
  exit 1
fi

if command -v python3.10 >/dev/null 2>&1 && is_py310 "$(command -v python3.10)"; then
  command -v python3.10; exit 0
fi

pyenv_root="${PYENV_ROOT:-}"
if [ -z "$pyenv_root" ] && command -v pyenv >/dev/null 2>&1; then pyenv_root="$(pyenv root)"; fi
[ -n "$pyenv_root" ] || pyenv_root="$HOME/.pyenv"
for candidate in $(ls -d "$pyenv_root"/versions/3.10.* 2>/dev/null | sort -rV); do
  if is_py310 "$candidate/bin/python"; then echo "$candidate/bin/python"; exit 0; fi
done

cat >&2 <<'MSG'
error: no Python 3.10 interpreter found.
       scaled-ql needs CPython 3.10: dm-launchpad (required by dm-acme) publishes wheels only
       up to Python 3.10.  Install one, for example:
         pyenv install 3.10.13            (https://github.com/pyenv/pyenv)
         apt-get install python3.10 python3.10-venv   (Debian/Ubuntu with 3.10 available)
       or point the Makefile at one: make test PYTHON=/path/to/python3.10
MSG
exit 1
