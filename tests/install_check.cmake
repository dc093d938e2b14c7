# ctest Python.InstallTree: `cmake --install` into a scratch prefix, then the installed binary and
# the installed Python client, found the way a user finds them (PATH, PYTHONPATH), score one cell.
#   cmake -DBUILD=<build dir> -DPYTHON=<python3> -DDATA=<shared data dir> -P tests/install_check.cmake
set(prefix "${BUILD}/install-check")
file(REMOVE_RECURSE "${prefix}")
execute_process(COMMAND ${CMAKE_COMMAND} --install "${BUILD}" --prefix "${prefix}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed (${rc}):\n${out}${err}")
endif()
if(NOT EXISTS "${prefix}/bin/hybridnas")
  message(FATAL_ERROR "no ${prefix}/bin/hybridnas after the install:\n${out}")
endif()
file(GLOB_RECURSE inits "${prefix}/__init__.py")
list(FILTER inits INCLUDE REGEX "/hybridnas/__init__.py$")
list(LENGTH inits n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "expected one installed hybridnas/__init__.py under ${prefix}, found ${n}:\n${out}")
endif()
get_filename_component(pkg "${inits}" DIRECTORY)
get_filename_component(site "${pkg}" DIRECTORY)
if(NOT out MATCHES "Python client: ${site}/hybridnas")
  message(FATAL_ERROR "the install does not say where the Python client went:\n${out}")
endif()

execute_process(COMMAND "${prefix}/bin/hybridnas" --version RESULT_VARIABLE rc OUTPUT_VARIABLE version)
if(NOT rc EQUAL 0 OR NOT version MATCHES "^hybridnas [0-9]+\\.[0-9]+\\.[0-9]+\ncpu: OpenBLAS.*\ncuda: ")
  message(FATAL_ERROR "hybridnas --version (${rc}) printed:\n${version}")
endif()

set(arch "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env --unset=HYBRIDNAS_BIN "PATH=${prefix}/bin:$ENV{PATH}" "PYTHONPATH=${site}"
          "${PYTHON}" -c "
import os, sys, hybridnas
assert os.path.dirname(hybridnas.__file__) == sys.argv[1], hybridnas.__file__
assert os.path.realpath(hybridnas.find_binary()) == os.path.realpath(sys.argv[2]), hybridnas.find_binary()
with hybridnas.Client(['--backend', 'cpu', '--proxies', 'naswot', '--batch', '8', '-q', '--data', sys.argv[3]]) as c:
    r = c.score([sys.argv[4]])
assert r[0]['arch'] == sys.argv[4] and isinstance(r[0]['naswot'], float), r
print('installed client scored', r[0]['arch'], r[0]['naswot'])
" "${pkg}" "${prefix}/bin/hybridnas" "${DATA}/cifar10/cifar10_sample.bin" "${arch}"
  WORKING_DIRECTORY "${prefix}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the installed client failed (${rc}):\n${out}${err}")
endif()
message(STATUS "${out}")
file(REMOVE_RECURSE "${prefix}")
