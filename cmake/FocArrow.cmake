# Arrow C++ with Flight for flame-object-cache.
#
# Two sources, in this order:
#   1. an installed Arrow found by find_package(Arrow) / find_package(ArrowFlight), when
#      FOC_ARROW_FROM_PYARROW is OFF (what a distribution packager would use);
#   2. the pinned pyarrow wheel in the project's virtual environment (default): the wheel ships
#      Arrow's headers and versioned shared libraries (libarrow.so.<N>, libarrow_flight.so.<N>).
#      We wrap them in IMPORTED targets without writing anything into site-packages.
#
# Either way the result is three targets: foc::arrow, foc::arrow_flight and foc::arrow_s3
# (Arrow's S3 file system, arrow::fs::S3FileSystem, used by the s3:// storage engine). gRPC and protobuf stay
# hidden inside libarrow_flight: we use the Flight API only and never link a second gRPC.

option(FOC_ARROW_FROM_PYARROW "Take Arrow C++ from the pyarrow wheel in FOC_PYTHON's environment" ON)
set(FOC_PYTHON "${PROJECT_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH
    "Python interpreter whose pyarrow provides Arrow C++")

if(NOT FOC_ARROW_FROM_PYARROW)
  find_package(Arrow REQUIRED)
  find_package(ArrowFlight REQUIRED)
  add_library(foc::arrow ALIAS Arrow::arrow_shared)
  # An installed Arrow built with ARROW_S3=ON carries S3FileSystem in libarrow itself.
  add_library(foc::arrow_s3 ALIAS Arrow::arrow_shared)
  add_library(foc::arrow_flight ALIAS ArrowFlight::arrow_flight_shared)
  set(FOC_ARROW_LIBRARY_DIR "" CACHE INTERNAL "")
  message(STATUS "Arrow ${Arrow_VERSION} from find_package")
  return()
endif()

execute_process(
  COMMAND "${FOC_PYTHON}" -c
          "import pyarrow as pa; print(pa.get_include()); print(pa.get_library_dirs()[0]); print(pa.cpp_build_info.so_version); print(pa.__version__)"
  OUTPUT_VARIABLE _foc_pa_out
  RESULT_VARIABLE _foc_pa_rc
  ERROR_VARIABLE _foc_pa_err
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _foc_pa_rc EQUAL 0)
  message(FATAL_ERROR
          "Cannot import pyarrow with ${FOC_PYTHON}: ${_foc_pa_err}\n"
          "Run scripts/bootstrap.sh first, or configure with -DFOC_ARROW_FROM_PYARROW=OFF "
          "to use an installed Arrow C++.")
endif()
string(REPLACE "\n" ";" _foc_pa_lines "${_foc_pa_out}")
list(GET _foc_pa_lines 0 _foc_pa_include)
list(GET _foc_pa_lines 1 _foc_pa_libdir)
list(GET _foc_pa_lines 2 _foc_pa_so)
list(GET _foc_pa_lines 3 _foc_pa_version)
set(FOC_ARROW_LIBRARY_DIR "${_foc_pa_libdir}" CACHE INTERNAL "Directory of the Arrow shared libraries")
set(FOC_ARROW_SO_VERSION "${_foc_pa_so}" CACHE INTERNAL "Arrow shared-library version suffix")

foreach(_lib arrow arrow_flight arrow_s3)
  set(_path "${_foc_pa_libdir}/lib${_lib}.so.${_foc_pa_so}")
  if(NOT EXISTS "${_path}")
    message(FATAL_ERROR "pyarrow ${_foc_pa_version} lacks ${_path}")
  endif()
  add_library(foc::${_lib} SHARED IMPORTED GLOBAL)
  set_target_properties(foc::${_lib} PROPERTIES
    IMPORTED_LOCATION "${_path}"
    IMPORTED_SONAME "lib${_lib}.so.${_foc_pa_so}"
    INTERFACE_INCLUDE_DIRECTORIES "${_foc_pa_include}"
    # Arrow's headers are third-party code: no -Werror on their warnings.
    INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_foc_pa_include}")
endforeach()
set_property(TARGET foc::arrow_flight PROPERTY INTERFACE_LINK_LIBRARIES foc::arrow)
set_property(TARGET foc::arrow_s3 PROPERTY INTERFACE_LINK_LIBRARIES foc::arrow)
message(STATUS "Arrow C++ ${_foc_pa_version} from the pyarrow wheel at ${_foc_pa_libdir}")
