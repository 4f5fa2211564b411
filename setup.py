"""ament_python / setuptools build of actial_ros (works with colcon on ROS 2 and with plain pip)."""

from glob import glob

from setuptools import find_packages, setup

package_name = 'actial_ros'

# ROS 2 Kilted from the package index's wheels, for machines without a ROS install
# (../shared/notes/ENVIRONMENT.md). On a ROS machine, rclpy and the messages come from the distro.
ROS_WHEELS = [
    'ros-rclpy',
    'ros-rmw-fastrtps-cpp',
    'ros-sensor-msgs',
    'ros-nav-msgs',
    'ros-geometry-msgs',
    'ros-std-msgs',
    'ros-diagnostic-msgs',
    'ros-visualization-msgs',
    'ros-std-srvs',
    'ros-rosgraph-msgs',
]

setup(
    name=package_name,
    version='0.1.0',
    # training/ installs as the subpackage actial_ros.training (never a top-level `training`).
    packages=[
        *find_packages(include=[package_name, f'{package_name}.*']),
        f'{package_name}.training',
        *(f'{package_name}.training.{sub}' for sub in find_packages('training')),
    ],
    package_dir={f'{package_name}.training': 'training'},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{package_name}']),
        (f'share/{package_name}', ['package.xml']),
        (f'share/{package_name}/launch', glob('launch/*.launch.py')),
        (f'share/{package_name}/config', glob('config/*.yaml') + glob('config/*.rviz') + glob('config/*.json')),
        (f'share/{package_name}/config/training', glob('config/training/*.yaml')),
        (f'share/{package_name}/config/accelerate', glob('config/accelerate/*')),
    ],
    python_requires='>=3.10',
    install_requires=[
        'setuptools',
        'numpy>=1.24',
        'scipy>=1.10',
        'opencv-python-headless>=4.8',
        'openai>=1.40',
        'pyyaml>=6',
        'rich>=13',
        'rosbags>=0.11,<0.12',
        'rosbags-image>=0.10',
        # Salvage of bags cut by power loss (stream reading up to the cut; robots replay bags too).
        'mcap>=1.6',
    ],
    extras_require={
        'ros': ROS_WHEELS,
        # Dataset building (no torch): Hugging Face datasets, COLMAP models, progress bars.
        'build': ['datasets>=5.2', 'pyarrow>=15', 'pycolmap>=3.10', 'tqdm>=4.66', 'pillow>=10'],
        'train': [
            'datasets>=5.2',
            'pyarrow>=15',
            'pycolmap>=3.10',
            'pillow>=10',
            'torch==2.13.0',
            'transformers>=5.20',
            'trl>=1.16',
            'datasets>=5.2',
            'accelerate>=1.15',
            'peft>=0.21',
            'tqdm>=4.66',
        ],
        'serve': ['vllm>=0.11'],
        # ZeRO-3 training on GPUs (config/accelerate/multi_gpu_zero3.yaml).
        'deepspeed': ['deepspeed>=0.15'],
        'sim': ['pybullet>=3.2.6'],
        # The benchmarks' plots (PNG next to their results.json); never needed on a robot.
        'plots': ['matplotlib>=3.8'],
        'dev': [
            'matplotlib>=3.8',  # the benchmarks' plots, checked by the tests
            'pytest>=8',
            'pytest-timeout>=2.3',
            'ruff>=0.6',
            'mypy>=1.11',
            'deepspeed>=0.15',  # ZeRO-3 with 2 CPU processes in CI (config/accelerate/cpu_2proc_zero3.yaml)
            'psutil>=5.9',  # benchmarks' peak-memory figures; the kill-and-resume test kills a launcher's process tree
            'hypothesis>=6.100',  # property-based fuzzing of every input boundary
            'vermin>=1.6',  # make lint: nothing newer than Python 3.10 (ROS 2 Humble)
            'import-linter>=2.0',  # make lint: the layers as an import contract (pyproject.toml)
        ],
    },
    zip_safe=True,
    maintainer='actial_ros maintainers',
    maintainer_email='actial-ros@example.com',
    description="Actial's viewpoint reasoning for ROS 2 robots: node, dataset builder, training, serving.",
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'actial-ros = actial_ros.cli:main',
            'spatial_reasoner = actial_ros.nodes.spatial_reasoner:main',
            'capture_replay = actial_ros.nodes.capture_replay:main',
            'bag_recorder = actial_ros.nodes.bag_recorder:main',
            'sim_rig = actial_ros.nodes.sim_rig:main',
            'bag_replay = actial_ros.nodes.bag_replay:main',
            'actial-ros-train = actial_ros.training.cli:main',
        ],
    },
)
