"""Build hook: generates the ferry.v1 protobuf and gRPC stubs at build time.

The wire API lives in the repository's ``proto/`` directory (two levels up
from this file). While building, ``grpc_tools.protoc`` compiles every
``proto/ferry/v1/*.proto`` into the build tree as the sub-package
``ferry.v1`` (``ferry/v1/publisher_pb2.py``, ``publisher_pb2_grpc.py``, ...),
so generated code is never edited by hand nor committed. Set ``FERRY_PROTO_DIR``
to build from a different copy of ``proto/``.

It also builds the native extension ``ferry._native`` (sdk/python/native, over
the C++ SDK) with CMake: in the build directory ``FERRY_NATIVE_BUILD_DIR`` when
given (e.g. the checkout's ``build/`` of ``scripts/build``: one build for CI),
else in ``build/native`` of this folder, configured with ``FERRY_CLIENT_ONLY``
(the stubs, the C++ SDK and the extension only: no ferryd, tests or their
dependencies).
Without a checkout, CMake or the C++ SDK's libraries (``scripts/setup``) the
package installs pure Python, with one warning; ``FERRY_NATIVE_BUILD=0``
skips the attempt.

The runtime dependencies are pinned to at least the grpcio/protobuf versions
that generated the stubs, because generated code refuses older runtimes.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import warnings

from setuptools import Distribution, setup
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


def native_module(build_dir, own):
    """Builds ferry._native in the CMake build directory ``build_dir``
    (configured here when it is not yet) and returns its path. Only this
    package's ``own`` build directory is configured client-only: a directory
    the user named (say the checkout's build/) gets the whole project, as
    scripts/build would configure it, so ferryd and the tests still build there."""
    checkout = os.path.abspath(os.path.join(HERE, "..", ".."))
    if not os.path.exists(os.path.join(build_dir, "build.ninja")) and not os.path.exists(
            os.path.join(build_dir, "Makefile")):
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        scope = ["-DFERRY_CLIENT_ONLY=ON"] if own else []
        subprocess.run(["cmake", "-S", checkout, "-B", build_dir,
                        "-DPython3_EXECUTABLE=" + sys.executable] + scope + generator,
                       check=True, stdout=subprocess.DEVNULL)
    # As scripts/build: ccache paths relative to the checkout, so a pip build
    # of a clone at another path hits the objects earlier pip builds left.
    env = dict(os.environ)
    env.setdefault("CCACHE_BASEDIR", checkout)
    env.setdefault("CCACHE_NOHASHDIR", "1")
    subprocess.run(["cmake", "--build", build_dir, "--target", "ferry_python_native", "-j",
                    os.environ.get("FERRY_BUILD_JOBS", "2")], check=True, stdout=subprocess.DEVNULL,
                   env=env)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    built = glob.glob(os.path.join(build_dir, "sdk", "python", "native", "_native" + suffix))
    if not built:
        raise RuntimeError("no _native%s in %s (built for another Python?)" % (suffix, build_dir))
    return built[0]


def add_native(out_dir):
    """Copies ferry._native into the package, or warns once and leaves the
    package pure Python."""
    for pattern in ("_native*.so", "_native*.pyd"):  # extensions only, not a _native.pyi
        for stale in glob.glob(os.path.join(out_dir, "ferry", pattern)):
            os.remove(stale)  # an earlier build's (pip builds in the source tree)
    if os.environ.get("FERRY_NATIVE_BUILD") == "0":
        return
    named = os.environ.get("FERRY_NATIVE_BUILD_DIR")
    build_dir = named or os.path.join(HERE, "build", "native")
    try:
        if not os.path.exists(os.path.join(HERE, "native", "CMakeLists.txt")):
            raise RuntimeError("not built from a Ferry checkout")
        module = native_module(os.path.abspath(build_dir), own=not named)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        warnings.warn("ferry-client: native extension not built (%s); installing the pure-Python "
                      "SDK (same API, more CPU per message; see README, 'Native path')" % (e,))
        return
    # Without its debug info (a RelWithDebInfo build's is most of its 11 MB).
    target = os.path.join(out_dir, "ferry", os.path.basename(module))
    objcopy = shutil.which("objcopy")
    if objcopy is None or subprocess.run([objcopy, "--strip-debug", module, target]).returncode:
        shutil.copy(module, target)


class BuildPyWithProtos(build_py):
    def run(self):
        super().run()
        if not self.dry_run:
            generate(self.build_lib)
            add_native(self.build_lib)


class PlatformDistribution(Distribution):
    """Wheels carry ferry._native: tag them for this platform and Python."""

    def has_ext_modules(self):
        return True


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


setup(cmdclass={"build_py": BuildPyWithProtos}, distclass=PlatformDistribution,
      install_requires=runtime_requirements())
