"""Build hook: generates the ferry.v1 protobuf and gRPC stubs at build time.

The wire API lives in the repository's ``proto/`` directory (two levels up
from this file). While building, ``grpc_tools.protoc`` compiles every
``proto/ferry/v1/*.proto`` into the build tree as the sub-package
``ferry.v1`` (``ferry/v1/publisher_pb2.py``, ``publisher_pb2_grpc.py``, ...),
so generated code is never edited by hand nor committed. Set ``FERRY_PROTO_DIR``
to build from a different copy of ``proto/``.

The runtime dependencies are pinned to at least the grpcio/protobuf versions
that generated the stubs, because generated code refuses older runtimes.
"""
import glob
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def proto_dir():
    candidates = [os.environ.get("FERRY_PROTO_DIR"),
                  os.path.join(HERE, "..", "..", "proto"),
                  os.path.join(HERE, "proto")]
    for candidate in candidates:
        if candidate and glob.glob(os.path.join(candidate, "ferry", "v1", "*.proto")):
            return os.path.abspath(candidate)
    raise RuntimeError(
        "ferry-client: cannot find proto/ferry/v1/*.proto; build from a Ferry "
        "checkout (sdk/python) or set FERRY_PROTO_DIR")


def generate(out_dir):
    import grpc_tools
    from grpc_tools import protoc

    src = proto_dir()
    protos = sorted(glob.glob(os.path.join(src, "ferry", "v1", "*.proto")))
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    os.makedirs(os.path.join(out_dir, "ferry", "v1"), exist_ok=True)
    args = ["grpc_tools.protoc", "-I" + src, "-I" + well_known,
            "--python_out=" + out_dir, "--pyi_out=" + out_dir,
            "--grpc_python_out=" + out_dir] + protos
    if protoc.main(args) != 0:
        raise RuntimeError("grpc_tools.protoc failed on " + " ".join(protos))
    init = os.path.join(out_dir, "ferry", "v1", "__init__.py")
    with open(init, "w") as f:
        f.write('"""Generated ferry.v1 wire API (from proto/ferry/v1 at build time)."""\n')


class BuildPyWithProtos(build_py):
    def run(self):
        super().run()
        if not self.dry_run:
            generate(self.build_lib)


def runtime_requirements():
    try:
        import grpc_tools
        from google import protobuf
        from importlib.metadata import version
        grpc_version = version("grpcio-tools")
        pb = protobuf.__version__.split(".")
        return ["grpcio>=" + grpc_version,
                "protobuf>=%s.%s,<%d" % (pb[0], pb[1], int(pb[0]) + 1)]
    except Exception:  # metadata-only steps without grpcio-tools
        return ["grpcio>=1.62", "protobuf>=4.25"]


setup(cmdclass={"build_py": BuildPyWithProtos},
      install_requires=runtime_requirements())
