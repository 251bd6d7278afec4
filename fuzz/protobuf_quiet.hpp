// For the fuzz targets that parse protobuf (include it in one file of each):
// protobuf logs an error for every string field that is not UTF-8, millions of
// lines in a fuzzing run. libFuzzer calls this once, before the first input.
#pragma once

#include <google/protobuf/stubs/logging.h>

#include <string>

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  return 0;
}
