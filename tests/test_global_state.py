"""Process-wide state that importing or using beltrami must leave alone: warning filters (they were set at
import), and what a fixed-step solve with the adjoint shows (torchdiffeq's warnings about callbacks its
fixed-grid solvers cannot call were silenced by such a filter; the counters now offer only the callbacks each
solver takes)."""
import subprocess
import sys

CODE = """
import warnings
import numpy, scipy.sparse, scipy.sparse.linalg, scipy.special, torch, torchdiffeq, rich.progress  # their own filters
before = list(warnings.filters)
import beltrami, beltrami.training, beltrami.bench.cli
from beltrami.solvers import solve
from beltrami.functions import LaplacianDiffusion
from tests.reference import random_graph
assert warnings.filters == before, "import beltrami changed the warning filters"
warnings.simplefilter("error")  # any warning below fails
g = random_graph(n=20, m=60).symmetrize()
z0 = torch.randn(20, 3, requires_grad=True)
f = LaplacianDiffusion(g, 3)
for scheme, backprop, extra in (("rk4", "direct", {}), ("rk4", "adjoint", {"adjoint_step_size": 0.5}),
                                ("dopri5", "adjoint", {"adjoint_scheme": "rk4", "adjoint_step_size": 0.5}),
                                ("dopri5", "adjoint", {})):
    step = {"step_size": 0.5} if scheme == "rk4" else {}
    sol = solve(f, z0, 1.0, scheme=scheme, backprop=backprop, **step, **extra)
    sol.z.sum().backward()
beltrami.fit("cora", preset="fast", epochs=1, progress=False)  # sparse CSR inputs and kernels
warnings.resetwarnings()
assert warnings.filters == [], warnings.filters
print("ok")
"""


def test_beltrami_sets_no_warning_filter_and_its_solves_warn_nothing():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_the_environment_is_read_in_one_module_and_every_variable_is_documented():
    import re
    from pathlib import Path

    from beltrami.environment import VARIABLES

    package = Path(__file__).resolve().parents[1] / "beltrami"
    readers = [str(p.relative_to(package)) for p in package.rglob("*.py")
               if re.search(r"os\.environ\.get|os\.getenv|os\.environ\[[^\]]+\](?!\s*=)", p.read_text())]
    assert readers == ["environment.py"], readers
    doc = (package.parent / "docs" / "architecture.md").read_text()
    assert all(f"`{name}`" in doc for name in VARIABLES)
