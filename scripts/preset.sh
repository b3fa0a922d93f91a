#!/usr/bin/env bash
# Prints the CMake preset to build here: cuda where a GPU is usable, cpu otherwise.
# (Compiling CUDA without a GPU to run it is what `.ci/run` and `cmake --preset cuda` are for.)
if command -v nvcc >/dev/null 2>&1 && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo cuda
else
  echo cpu
fi
