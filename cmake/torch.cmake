# LibTorch from the PyPI torch wheel (2.11.0, CUDA 13.0, CXX11 ABI) in the
# environment of ${SEGQAT_PYTHON}, found through torch.utils.cmake_prefix_path.
#
# Defines segqat_torch, the one target through which everything links LibTorch:
#   - the wheel's own libraries by full path (libtorch, libtorch_cpu, libc10,
#     libtorch_cuda, libc10_cuda), after libstdc++ (see below). The CUDA
#     runtime, cuDNN and NCCL then load from the wheel's nvidia packages through
#     libtorch_cuda's RUNPATH; nothing links the toolkit's copies, which serve
#     nvcc at configure time (Caffe2's CMake probes it) and headers only.
#   - the wheel's headers through ${CMAKE_BINARY_DIR}/torch-include, a folder of
#     links to every entry of torch/include but google/ (protobuf 3.13 headers,
#     which would shadow Debian's for every .pb.h) and fmt/ (which would shadow
#     the fmt that spdlog is built with).
# SEGQAT_TORCH_CUDA_INCLUDE: NCCL's headers from the wheel's nvidia-nccl (the
# version LibTorch loads) and the CUDA runtime's from the toolkit CMake found,
# for the few files that include ATen/cuda or c10d's NCCL process group.
# The toolkit may be the system's (CUDA 13.0) or the wheels nvidia-cuda-nvcc and
# nvidia-nvvm (-DCUDAToolkit_ROOT=.../nvidia/cu13, as deploy/Dockerfile does).
if(NOT EXISTS ${SEGQAT_PYTHON})
  message(FATAL_ERROR "${SEGQAT_PYTHON} does not exist: run scripts/install-python.sh "
                      "(it installs the torch wheel whose LibTorch segqat builds on)")
endif()
execute_process(
  COMMAND ${SEGQAT_PYTHON} -c
          "import torch, torch.utils; print(torch.utils.cmake_prefix_path); print(torch.__version__)"
  OUTPUT_VARIABLE _segqat_torch_out ERROR_VARIABLE _segqat_torch_err
  RESULT_VARIABLE _segqat_torch_rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _segqat_torch_rc EQUAL 0)
  message(FATAL_ERROR "${SEGQAT_PYTHON} cannot import torch: ${_segqat_torch_err}")
endif()
string(REPLACE "\n" ";" _segqat_torch_out "${_segqat_torch_out}")
list(GET _segqat_torch_out 0 SEGQAT_TORCH_CMAKE_PREFIX)
list(GET _segqat_torch_out 1 SEGQAT_TORCH_VERSION)
if(NOT SEGQAT_TORCH_VERSION MATCHES "^2\\.11\\.0")
  message(FATAL_ERROR "torch ${SEGQAT_TORCH_VERSION} in ${SEGQAT_PYTHON}; segqat needs 2.11.0 "
                      "(scripts/python-requirements.txt)")
endif()

find_package(CUDAToolkit REQUIRED)  # headers only; see above
find_package(Torch REQUIRED CONFIG PATHS ${SEGQAT_TORCH_CMAKE_PREFIX}/Torch NO_DEFAULT_PATH)
set(SEGQAT_TORCH_LIB_DIR ${TORCH_INSTALL_PREFIX}/lib)
foreach(lib torch torch_cpu c10 torch_cuda c10_cuda)
  if(NOT EXISTS ${SEGQAT_TORCH_LIB_DIR}/lib${lib}.so)
    message(FATAL_ERROR "${SEGQAT_TORCH_LIB_DIR}/lib${lib}.so missing: the torch wheel in "
                        "${SEGQAT_PYTHON} is not the CUDA build")
  endif()
endforeach()

set(_segqat_torch_include ${CMAKE_BINARY_DIR}/torch-include)
file(REMOVE_RECURSE ${_segqat_torch_include})
file(MAKE_DIRECTORY ${_segqat_torch_include})
file(GLOB _segqat_torch_entries RELATIVE ${TORCH_INSTALL_PREFIX}/include
     ${TORCH_INSTALL_PREFIX}/include/*)
foreach(entry ${_segqat_torch_entries})
  if(NOT entry STREQUAL "google" AND NOT entry STREQUAL "fmt")
    file(CREATE_LINK ${TORCH_INSTALL_PREFIX}/include/${entry} ${_segqat_torch_include}/${entry}
         SYMBOLIC)
  endif()
endforeach()

add_library(segqat_torch INTERFACE)
target_include_directories(segqat_torch SYSTEM INTERFACE
  ${_segqat_torch_include} ${_segqat_torch_include}/torch/csrc/api/include)
# The wheel's libtorch and libtorch_cpu export std::filesystem (their own
# static copy; its remove_all called a null pointer here). libstdc++ goes
# first among the needed libraries so that the system's copy is the one every
# caller binds to (tests/build/test_link_hygiene.py checks the order).
# libtorch_cuda and libc10_cuda are kept (--no-as-needed) though no segqat
# object calls into them: loading them is what registers CUDA.
target_link_libraries(segqat_torch INTERFACE
  -Wl,--push-state,--no-as-needed -lstdc++
  ${SEGQAT_TORCH_LIB_DIR}/libtorch.so ${SEGQAT_TORCH_LIB_DIR}/libtorch_cpu.so
  ${SEGQAT_TORCH_LIB_DIR}/libc10.so ${SEGQAT_TORCH_LIB_DIR}/libtorch_cuda.so
  ${SEGQAT_TORCH_LIB_DIR}/libc10_cuda.so -Wl,--pop-state)
get_filename_component(_segqat_site ${TORCH_INSTALL_PREFIX} DIRECTORY)
set(SEGQAT_TORCH_CUDA_INCLUDE ${_segqat_site}/nvidia/nccl/include ${CUDAToolkit_INCLUDE_DIRS})
if(NOT EXISTS ${_segqat_site}/nvidia/nccl/include/nccl.h)
  message(FATAL_ERROR "${_segqat_site}/nvidia/nccl/include/nccl.h missing: "
                      "scripts/install-python.sh installs nvidia-nccl-cu13")
endif()
message(STATUS "segqat: LibTorch ${SEGQAT_TORCH_VERSION} from ${TORCH_INSTALL_PREFIX}")
