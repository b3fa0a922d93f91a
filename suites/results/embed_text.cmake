# Writes the text file INPUT into the C++ header OUTPUT as `inline constexpr char NAME[]`, a raw
# string literal, so that a program carries the file with it.
#   cmake -DINPUT=script.py -DOUTPUT=script.h -DNAME=kScript -P embed_text.cmake
file(READ "${INPUT}" text)
set(delimiter "embedded_text")
string(FIND "${text}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw string delimiter ${delimiter}")
endif()
get_filename_component(input_name "${INPUT}" NAME)
file(WRITE "${OUTPUT}"
  "// Generated from ${input_name} at build time; edit that file instead.\n"
  "#pragma once\n\n"
  "namespace longseq {\n\n"
  "inline constexpr char ${NAME}[] = R\"${delimiter}(${text})${delimiter}\";\n\n"
  "}  // namespace longseq\n")
