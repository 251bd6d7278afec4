#include "common/status.hpp"

#include <array>

namespace ratchet {
namespace {

struct CodeInfo {
  Code code;
  std::string_view name;  // Connect error code
  int exit_code;          // `ratchet` exit code (JOBS.md)
  int http_status;
};

// The one table from Ratchet's codes to the outside world's.
constexpr std::array<CodeInfo, 12> kCodes{{
    {Code::kOk, "ok", 0, 200},
    {Code::kInvalidArgument, "invalid_argument", 2, 400},
    {Code::kNotFound, "not_found", 3, 404},
    {Code::kFailedPrecondition, "failed_precondition", 4, 400},
    {Code::kBusy, "unavailable", 5, 503},
    {Code::kConflict, "aborted", 4, 409},
    {Code::kUnavailable, "unavailable", 1, 503},
    {Code::kUnauthenticated, "unauthenticated", 1, 401},
    {Code::kPermissionDenied, "permission_denied", 1, 403},
    {Code::kDeadlineExceeded, "deadline_exceeded", 1, 504},
    {Code::kDataLoss, "data_loss", 1, 500},
    {Code::kInternal, "internal", 1, 500},  // last: what a code not in the table gets
}};

const CodeInfo& info(Code code) {
  for (const auto& entry : kCodes) {
    if (entry.code == code) return entry;
  }
  return kCodes.back();
}

}  // namespace

std::string_view code_name(Code code) { return info(code).name; }
int exit_code_for(Code code) { return info(code).exit_code; }
int http_status_for(Code code) { return info(code).http_status; }

}  // namespace ratchet
