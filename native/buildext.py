"""Compile native/avroenc.c for the interpreter running this script, outside the source tree.

``make setup`` builds the extension in place (``twin/_avroenc*.so``) through setuptools; this builds
extra copies next to it without touching that one: an AddressSanitizer/UBSan build (``make asan``)
and one build per interpreter (``make native-matrix``). The output is ``OUT/twin/_avroenc<suffix>``,
where suffix is this interpreter's extension suffix, so putting ``OUT/twin`` first on
``twin.__path__`` makes ``import twin._avroenc`` load it (see native/pytest_native.py).

    python3.12 native/buildext.py --out build/native/py3.12 --werror
    python3.11 native/buildext.py --out build/native/asan --sanitize
    python3.11 native/buildext.py --print-libasan     # what LD_PRELOAD needs for that build

Standard library only: it runs under interpreters that have nothing else installed.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "avroenc.c"
# The flags pyproject.toml gives setuptools for the in-place build, so every build sees the same code.
WARNINGS = ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
# -O1 keeps the stack traces readable; no recovery makes any UBSan finding abort the process (by
# default UBSan prints and carries on, and the test run would pass).
SANITIZE = [
    "-O1",
    "-g",
    "-fno-omit-frame-pointer",
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
]


def compiler() -> str:
    return shutil.which((sysconfig.get_config_var("CC") or "cc").split()[0]) or "cc"


def libasan() -> Path:
    """The AddressSanitizer runtime of this compiler: an interpreter that loads a sanitized
    extension must preload it (LD_PRELOAD), as Python itself is not built with ASan."""
    found = subprocess.run(
        [compiler(), "-print-file-name=libasan.so"], capture_output=True, text=True, check=False
    ).stdout.strip()
    path = Path(found)
    if not path.is_absolute() or not path.exists():
        msg = f"{compiler()} has no AddressSanitizer runtime (libasan.so); install it (Debian: libasan8)"
        raise SystemExit(msg)
    return path.resolve()


def command(out: Path, *, sanitize: bool, werror: bool) -> list[str]:
    cc = compiler()
    include = sysconfig.get_paths()["include"]
    if not (Path(include) / "Python.h").is_file():
        msg = f"{include}/Python.h not found: this interpreter has no development headers"
        raise SystemExit(msg)
    target = out / "twin" / f"_avroenc{sysconfig.get_config_var('EXT_SUFFIX')}"
    # Unsanitized, the flags this interpreter gives every extension (what setuptools uses for the
    # in-place build); sanitized, none of them: -fwrapv would hide signed overflow from UBSan.
    base = [] if sanitize else shlex.split(sysconfig.get_config_var("CFLAGS") or "")
    flags = [*base, *WARNINGS, *(["-Werror"] if werror else []), *(SANITIZE if sanitize else ["-O2"])]
    return [cc, "-shared", "-fPIC", *flags, f"-I{include}", str(SOURCE), "-o", str(target)]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="build directory (OUT/twin/_avroenc*.so)")
    parser.add_argument("--sanitize", action="store_true", help="-fsanitize=address,undefined")
    parser.add_argument("--werror", action="store_true", help="treat compiler warnings as errors")
    parser.add_argument("--print-libasan", action="store_true", help="print the path of libasan.so and exit")
    args = parser.parse_args()
    if args.print_libasan:
        print(libasan())
        return 0
    if args.out is None:
        parser.error("--out is required")
    argv = command(args.out.resolve(), sanitize=args.sanitize, werror=args.werror)
    Path(argv[-1]).parent.mkdir(parents=True, exist_ok=True)
    print(f"python {sys.version.split()[0]}: {shlex.join(argv)}", flush=True)
    return subprocess.run(argv, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
