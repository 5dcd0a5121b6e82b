"""Install `beltrami`: graph Beltrami flow and BLEND (Beltrami Neural Diffusion)."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
about: dict = {}
exec((HERE / "beltrami" / "version.py").read_text(), about)

setup(
    name="beltrami",
    version=about["__version__"],
    description="Graph Beltrami flow and BLEND (Beltrami Neural Diffusion) on CSR sparse graphs",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["beltrami", "beltrami.*"]),
    # The embedded default dataset (Cora's eight raw Planetoid files) ships inside the package.
    package_data={"beltrami.datasets": ["raw/planetoid/ind.cora.*"], "beltrami.sparse": ["csrc/*.cpp", "csrc/*.h"]},
    include_package_data=True,
    install_requires=[
        # A range that 2.13.0 satisfies: with the local CPU wheel installed, pip adds nothing.
        "torch>=2.1",
        "torchdiffeq>=0.2.3",
        "scipy>=1.9",
        "numpy>=1.23",
        "rich>=12",
    ],
    extras_require={
        # triton: the tests run the CUDA kernels of backend "cpp" through Triton's interpreter on the CPU;
        # matplotlib: the plotting tool's test (skipped without it, so CI never ran it)
        "test": ["pytest>=7", "pytest-benchmark>=4", "asv>=0.6", "optuna>=3", "matplotlib>=3.5",
                 "triton>=3.2; platform_system == 'Linux' and platform_machine == 'x86_64'"],
        "tune": ["ray[tune]>=2.9", "optuna>=3"],
        "sparse": ["torch-scatter>=2.1", "torch-sparse>=0.6.17"],
        "plot": ["matplotlib>=3.5"],
        "cpp": ["ninja>=1.10"],  # builds the C++ CPU kernels (sparse backend "cpp") on first use
    },
    entry_points={"console_scripts": ["beltrami-bench=beltrami.bench.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
