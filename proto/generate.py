"""Regenerate the Python stubs in services/hello_proto from proto/hello.proto.

The stubs are committed; tests/unit/test_stubs_fresh.py fails when they
differ from what this script would write, so they never go stale.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "services" / "hello_proto"
GENERATED = ("hello_pb2.py", "hello_pb2.pyi", "hello_pb2_grpc.py")


def generate(out_dir: pathlib.Path) -> None:
    """Run protoc (from grpcio-tools) into out_dir, making imports package-relative."""
    from grpc_tools import protoc

    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_DIR / "hello.proto"),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see its message above")
    grpc_module = out_dir / "hello_pb2_grpc.py"
    # grpc_tools writes an absolute `import hello_pb2`, which only works when
    # the output folder is on sys.path; the stubs live in a package.
    text = grpc_module.read_text()
    text = text.replace("import hello_pb2 as hello__pb2", "from . import hello_pb2 as hello__pb2")
    grpc_module.write_text(text)


def stale_files() -> list[str]:
    """Names of committed stubs that differ from freshly generated ones."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = pathlib.Path(tmp)
        generate(fresh)
        return [
            name
            for name in GENERATED
            if not (OUT_DIR / name).exists()
            or (OUT_DIR / name).read_text() != (fresh / name).read_text()
        ]


if __name__ == "__main__":
    if "--check" in sys.argv:
        stale = stale_files()
        if stale:
            raise SystemExit(f"stale stubs: {', '.join(stale)}; run python proto/generate.py")
    else:
        generate(OUT_DIR)
