"""The package installs from source into a clean virtualenv, with its native
extension (built in FERRY_NATIVE_BUILD_DIR, as scripts/test-python sets it),
and imports."""
import subprocess
import sys

from conftest import REPO


def test_pip_install_in_clean_venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    out = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                          str(REPO / "sdk" / "python")], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    check = ("import ferry, ferry.aio, ferry.v1.publisher_pb2_grpc as g, ferry.v1.admin_pb2; "
             "assert hasattr(g, 'PublisherStub'); "
             "assert issubclass(ferry.NotFound, ferry.FerryError); "
             "assert ferry.native_available(), 'no native extension'; "
             "print(ferry.__version__, ferry.v1.publisher_pb2.__file__)")
    run = subprocess.run([str(py), "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert str(venv) in run.stdout  # imported from the venv, not the source tree


def test_pip_install_without_cmake_installs_pure_python_with_one_warning(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp_path)}  # no cmake, no compiler
    out = subprocess.run([str(py), "-m", "pip", "install", "-v", "--disable-pip-version-check",
                          str(REPO / "sdk" / "python")], capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (out.stdout + out.stderr).count("native extension not built") == 1, out.stdout
    run = subprocess.run([str(py), "-c", "import ferry; print(ferry.native_available())"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.split() == ["False"], run.stdout + run.stderr
