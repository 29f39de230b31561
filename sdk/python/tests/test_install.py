"""The package installs from source into a clean virtualenv and imports."""
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
             "print(ferry.__version__, ferry.v1.publisher_pb2.__file__)")
    run = subprocess.run([str(py), "-c", check], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert str(venv) in run.stdout  # imported from the venv, not the source tree
