#!/usr/bin/env bash
# Build twin._avroenc with each Python version (warnings are errors) and check every build against
# fastavro (native/roundtrip.py): `make native-matrix`. Usage: native/matrix.sh 3.11 3.12 3.13
#
# Each version gets a throwaway virtual environment under build/native/ holding only the pinned
# fastavro (constraints.txt), reused while it still holds that version. An interpreter is found as
# python3.X on PATH, else under pyenv's versions. A missing one is skipped with a message, except
# under CI=true, where it fails the run: CI must prove every version it claims.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/native
PIN=$(grep -E '^fastavro==' constraints.txt | cut -d= -f3)
[ -n "$PIN" ] || { echo "error: constraints.txt pins no fastavro"; exit 1; }
status=0
declare -a summary=()

find_python() {
  local version=$1 candidate
  if candidate=$(command -v "python$version") && "$candidate" -c '' 2>/dev/null; then
    echo "$candidate"
    return
  fi
  # pyenv's shims exist for every installed version but run only the active ones: look inside.
  for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/"python$version" 2>/dev/null | sort -V -r); do
    "$candidate" -c '' 2>/dev/null && { echo "$candidate"; return; }
  done
  return 1
}

for version in "$@"; do
  if ! python=$(find_python "$version"); then
    if [ "${CI:-}" = true ]; then
      echo "error: python$version not found (CI=true: every version of the matrix must be checked)"
      summary+=("$version  MISSING")
      status=1
    else
      echo "skipped: python$version not found (install it, e.g. \`pyenv install $version\`, to check it)"
      summary+=("$version  skipped (no interpreter)")
    fi
    continue
  fi
  venv=$OUT/venv-$version
  if ! "$venv/bin/python" -c "import fastavro, sys; sys.exit(fastavro.__version__ != '$PIN')" 2>/dev/null; then
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "fastavro==$PIN"
  fi
  build=$OUT/py$version
  rm -rf "$build"
  if "$python" native/buildext.py --out "$build" --werror && "$venv/bin/python" native/roundtrip.py --native-build "$build"; then
    summary+=("$version  ok ($("$python" -c 'import platform; print(platform.python_version())'))")
  else
    summary+=("$version  FAILED")
    status=1
  fi
done

echo "native build matrix (fastavro $PIN):"
printf '  python%s\n' "${summary[@]}"
exit $status
