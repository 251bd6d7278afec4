// For the fuzz targets that parse protobuf: protobuf logs an error for every
// string field that is not UTF-8, millions of lines in a fuzzing run.
#pragma once

#include <google/protobuf/stubs/logging.h>

#include <string>

namespace ratchet::fuzz {

inline void quiet_protobuf() {
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
}

}  // namespace ratchet::fuzz
