# The C++ client as an installable package (docs/cpp-client.md, "Install and link"):
#   <prefix>/lib/libflame_object_cache_client.so.<major>     one shared library: client + the
#                                                            wire pieces it needs (protocol,
#                                                            key, object); libbson is private
#   <prefix>/include/flame_object_cache/*.h                  public headers
#   <prefix>/include/flame_object_cache/detail/{base,cache,key,object,protocol}/ headers the
#                                                            public ones include
#   <prefix>/lib/cmake/FlameObjectCache/                     find_package(FlameObjectCache)
#                                                            -> FlameObjectCache::client
#   <prefix>/lib/pkgconfig/flame-object-cache.pc             pkg-config
#   <prefix>/lib/libarrow{,_flight}.so.<N>                  with Arrow from the pyarrow wheel
# Decision: key.h and object.h stay in src/ (the server uses them too); they are installed
# under detail/ and that directory is on the package's include path, so the public headers'
# `#include "key/key.h"` resolves in the build tree and after installation alike.
include(CMakePackageConfigHelpers)

set(_foc_client_sources
    "${PROJECT_SOURCE_DIR}/src/client/cache_client.cc"
    "${PROJECT_SOURCE_DIR}/src/client/client_cache.cc"
    "${PROJECT_SOURCE_DIR}/src/client/atomic_file.cc"
    "${PROJECT_SOURCE_DIR}/src/client/watch_stream.cc"
    "${PROJECT_SOURCE_DIR}/src/protocol/protocol.cc"
    "${PROJECT_SOURCE_DIR}/src/protocol/endpoint.cc"
    "${PROJECT_SOURCE_DIR}/src/protocol/routing.cc"
    "${PROJECT_SOURCE_DIR}/src/protocol/watch_protocol.cc"
    "${PROJECT_SOURCE_DIR}/src/key/key.cc"
    "${PROJECT_SOURCE_DIR}/src/object/object.cc")
add_library(flame_object_cache_client SHARED ${_foc_client_sources})
add_library(FlameObjectCache::client ALIAS flame_object_cache_client)
set_target_properties(flame_object_cache_client PROPERTIES
  VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
  EXPORT_NAME client)
target_compile_features(flame_object_cache_client PUBLIC cxx_std_20)
target_include_directories(flame_object_cache_client
  PUBLIC "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>"
         "$<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>"
         "$<INSTALL_INTERFACE:include>"
         "$<INSTALL_INTERFACE:include/flame_object_cache/detail>")
# Arrow is public (the headers use arrow::Buffer, arrow::Table, arrow::Status). In the installed
# package FlameObjectCache::arrow_flight is defined by FlameObjectCacheArrow.cmake.
target_link_libraries(flame_object_cache_client
  PUBLIC "$<BUILD_INTERFACE:foc::arrow_flight>"
         "$<INSTALL_INTERFACE:FlameObjectCache::arrow_flight>"
  PRIVATE mongo::bson_shared foc_warnings)

install(TARGETS flame_object_cache_client EXPORT FlameObjectCacheTargets
        LIBRARY DESTINATION lib)
# With Arrow from the pyarrow wheel, the wheel's two Arrow libraries are installed beside ours, so
# the installed library (RUNPATH $ORIGIN/../lib) and binaries load without the wheel at run time
# (deploy/install.sh relies on the same directory). Headers for compiling still come from pyarrow.
if(FOC_ARROW_FROM_PYARROW)
  install(FILES "${FOC_ARROW_LIBRARY_DIR}/libarrow.so.${FOC_ARROW_SO_VERSION}"
                "${FOC_ARROW_LIBRARY_DIR}/libarrow_flight.so.${FOC_ARROW_SO_VERSION}"
          DESTINATION lib)
endif()
install(FILES "${PROJECT_SOURCE_DIR}/include/flame_object_cache/cache_client.h"
              "${PROJECT_SOURCE_DIR}/include/flame_object_cache/client_cache.h"
              "${PROJECT_SOURCE_DIR}/include/flame_object_cache/watch_stream.h"
        DESTINATION "include/flame_object_cache")
install(FILES "${PROJECT_SOURCE_DIR}/src/protocol/watch_protocol.h"
              "${PROJECT_SOURCE_DIR}/src/protocol/metadata_keys.h"
        DESTINATION "include/flame_object_cache/detail/protocol")
install(FILES "${PROJECT_SOURCE_DIR}/src/key/key.h"
        DESTINATION "include/flame_object_cache/detail/key")
# The annotated mutex (CacheClient, CacheWatch) and the LRU the client cache is built on.
install(FILES "${PROJECT_SOURCE_DIR}/src/base/check.h"
              "${PROJECT_SOURCE_DIR}/src/base/mutex.h"
              "${PROJECT_SOURCE_DIR}/src/base/thread_annotations.h"
        DESTINATION "include/flame_object_cache/detail/base")
install(FILES "${PROJECT_SOURCE_DIR}/src/cache/lru_cache.h"
        DESTINATION "include/flame_object_cache/detail/cache")
install(FILES "${PROJECT_SOURCE_DIR}/src/object/object.h"
        DESTINATION "include/flame_object_cache/detail/object")

set(_foc_cmakedir "lib/cmake/FlameObjectCache")
install(EXPORT FlameObjectCacheTargets NAMESPACE FlameObjectCache:: DESTINATION "${_foc_cmakedir}")
# What the build used for Arrow, recorded for the package's own Arrow lookup.
if(FOC_ARROW_FROM_PYARROW)
  set(FOC_PACKAGE_ARROW_SOURCE pyarrow)
  set(FOC_PACKAGE_PYTHON "${FOC_PYTHON}")
else()
  set(FOC_PACKAGE_ARROW_SOURCE find_package)
  set(FOC_PACKAGE_PYTHON "")
endif()
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/package/FlameObjectCacheConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/package/FlameObjectCacheConfig.cmake" INSTALL_DESTINATION "${_foc_cmakedir}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/package/FlameObjectCacheConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/package/FlameObjectCacheConfig.cmake"
              "${PROJECT_BINARY_DIR}/package/FlameObjectCacheConfigVersion.cmake"
        DESTINATION "${_foc_cmakedir}")

# pkg-config. With Arrow from the pyarrow wheel (which ships no .pc files) the Arrow include
# directory found at build time is written in; with an installed Arrow the file
# requires arrow-flight.
if(FOC_ARROW_FROM_PYARROW)
  get_target_property(_foc_arrow_inc foc::arrow INTERFACE_INCLUDE_DIRECTORIES)
  set(FOC_PC_REQUIRES "")
  set(FOC_PC_ARROW_CFLAGS "-I${_foc_arrow_inc}")
  # The libraries themselves are the copies installed in <prefix>/lib (above).
  set(FOC_PC_ARROW_LIBS
      "-l:libarrow_flight.so.${FOC_ARROW_SO_VERSION} -l:libarrow.so.${FOC_ARROW_SO_VERSION}")
else()
  set(FOC_PC_REQUIRES "arrow-flight")
  set(FOC_PC_ARROW_CFLAGS "")
  set(FOC_PC_ARROW_LIBS "")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/package/flame-object-cache.pc.in"
               "${PROJECT_BINARY_DIR}/package/flame-object-cache.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/package/flame-object-cache.pc"
        DESTINATION "lib/pkgconfig")
