# Compiles SOURCE with COMPILER (-fsyntax-only, warnings as errors) and checks
# the outcome: EXPECT "compiles", or "fails" with an error matching REGEX.
# usage: cmake -DCOMPILER=... -DSOURCE=... -DINCLUDES="a|b" [-DDEFINE=X]
#              -DEXPECT=compiles|fails [-DREGEX=...] -P check_compile.cmake
string(REPLACE "|" ";" include_list "${INCLUDES}")
set(args -std=c++20 -fsyntax-only -Wall -Wextra -Werror)
foreach(dir IN LISTS include_list)
  if(dir)
    list(APPEND args "-I${dir}")
  endif()
endforeach()
if(DEFINE)
  list(APPEND args "-D${DEFINE}")
endif()
execute_process(COMMAND "${COMPILER}" ${args} "${SOURCE}"
                RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(EXPECT STREQUAL "compiles")
  if(NOT code EQUAL 0)
    message(FATAL_ERROR "${SOURCE} (${DEFINE}) should compile, but:\n${err}")
  endif()
elseif(code EQUAL 0)
  message(FATAL_ERROR "${SOURCE} (${DEFINE}) compiled, but the SDK should refuse it")
elseif(NOT err MATCHES "${REGEX}")
  message(FATAL_ERROR "${SOURCE} (${DEFINE}) failed, but not with /${REGEX}/:\n${err}")
endif()
